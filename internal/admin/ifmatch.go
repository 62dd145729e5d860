package admin

import (
	"fmt"
	"strings"
)

// IfMatch is a parsed If-Match request header (RFC 9110 §13.1.1): "*", or
// a list of entity tags. Comparison is strong, as the RFC requires for
// If-Match: a weak tag (W/"…") never matches.
type IfMatch struct {
	// Any is set by "If-Match: *", which matches whatever revision runs.
	Any bool
	// Tags are the opaque tags of the strong entity tags, unquoted.
	Tags []string
	// Weak counts the weak entity tags, which were listed but can never
	// match.
	Weak int
}

// Matches reports whether the running revision rev satisfies the header.
func (m IfMatch) Matches(rev string) bool {
	if m.Any {
		return rev != ""
	}
	for _, t := range m.Tags {
		if t == rev {
			return true
		}
	}
	return false
}

// maxIfMatchTags bounds the number of entity tags one If-Match may list.
const maxIfMatchTags = 64

// ParseIfMatch parses the values of the If-Match header lines of a request
// (several lines are one comma-separated list). present is false when no
// line, or only empty ones, was sent. A value that is not "*" nor a list
// of quoted entity tags is an error that says what is expected.
func ParseIfMatch(values []string) (m IfMatch, present bool, err error) {
	var elems []string
	for _, v := range values {
		for _, e := range splitList(v) {
			if e = strings.Trim(e, " \t"); e != "" { // OWS
				elems = append(elems, e)
			}
		}
	}
	if len(elems) == 0 {
		return IfMatch{}, false, nil
	}
	bad := func(why string) (IfMatch, bool, error) {
		return IfMatch{}, true, fmt.Errorf(`If-Match must be * or a comma-separated list of quoted ETags such as "3f1c…" (as sent in the ETag of a GET): %s`, why)
	}
	if len(elems) > maxIfMatchTags {
		return bad(fmt.Sprintf("more than %d entity tags", maxIfMatchTags))
	}
	for _, e := range elems {
		if e == "*" {
			if len(elems) > 1 {
				return bad("* cannot be combined with entity tags")
			}
			return IfMatch{Any: true}, true, nil
		}
		weak := strings.HasPrefix(e, "W/")
		tag := strings.TrimPrefix(e, "W/")
		if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
			return bad(fmt.Sprintf("%s is not a quoted entity tag", quote(e)))
		}
		tag = tag[1 : len(tag)-1]
		for i := 0; i < len(tag); i++ {
			// etagc = %x21 / %x23-7E / obs-text
			if c := tag[i]; c < 0x21 || c == '"' || c == 0x7f {
				return bad(fmt.Sprintf("%s has a character not allowed in an entity tag", quote(e)))
			}
		}
		if weak {
			m.Weak++
			continue
		}
		m.Tags = append(m.Tags, tag)
	}
	return m, true, nil
}

// splitList splits a header list value at commas outside double quotes
// (an entity tag may contain a comma).
func splitList(v string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	return append(out, v[start:])
}
