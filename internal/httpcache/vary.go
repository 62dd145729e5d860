package httpcache

import (
	"net/http"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/httpx"
)

// VaryNames returns the normalised header names a response's Vary lines
// list: lower-case, sorted, without duplicates. star is true for "*", which
// no request matches (do not store such a response).
func VaryNames(vary []string) (names []string, star bool) {
	for _, v := range vary {
		for _, f := range strings.Split(v, ",") {
			f = strings.ToLower(strings.Trim(f, " \t"))
			if f == "" {
				continue
			}
			if f == "*" {
				return nil, true
			}
			names = append(names, f)
		}
	}
	slices.Sort(names)
	return slices.Compact(names), false
}

// SecondaryKey is the secondary cache key of a request for a response that
// varies on names (from VaryNames): for each name, whether the request has
// the field, and its value normalised for comparison (RFC 9111 §4.1, RFC
// 9110 §5.3): all lines combined in order, each list element trimmed of
// whitespace, elements joined by ",". Two requests get the same key exactly
// when the stored response may be reused for both. A field that is absent
// and one that is empty are different. The key has no line breaks in it
// (field values cannot), which separates the parts unambiguously.
func SecondaryKey(names []string, h http.Header) string {
	if len(names) == 0 {
		return ""
	}
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		vs := h.Values(name)
		if vs == nil {
			b.WriteString("!\n")
			continue
		}
		b.WriteByte(':')
		first := true
		httpx.Tokens(vs, func(f string) bool {
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.WriteString(f)
			return true
		})
		b.WriteByte('\n')
	}
	return b.String()
}
