package httpcache

import "strings"

// MaxDelta is the largest delta-seconds value Portico keeps: RFC 9111 §1.2.2
// says a larger value is to be read as 2147483648 (2^31).
const MaxDelta = 2147483648

// CacheControl is the parsed form of Cache-Control field values, request or
// response. A delta-seconds directive that is absent holds -1, so build one
// with ParseCacheControl (or start from NoDirectives), not as a zero value,
// whose zeros would read as max-age=0 and so on.
//
// Parsing rules (RFC 9111 §5.2, RFC 9110 §5.6): directive names are
// case-insensitive; values are tokens or quoted strings (a quoted value is
// accepted for the delta-seconds directives too, as §5.2 asks); commas
// inside a quoted string do not separate directives; the first occurrence of
// a directive wins (§4.2.1). A delta-seconds directive whose value is not a
// non-negative integer (negative, fractional, alphabetic, with whitespace
// around "=") counts as 0, so a response with an invalid max-age is stale,
// as §4.2.1 encourages; values above 2^31 are capped at 2^31.
//
// The qualified forms no-cache="field" and private="field" are read as
// their unqualified forms, which RFC 9111 §5.2.2.4 and §5.2.2.7 allow: the
// response is revalidated on every use, respectively not stored at all.
type CacheControl struct {
	MaxAge               int64 // max-age (request and response)
	SMaxAge              int64 // s-maxage (response)
	MaxStale             int64 // max-stale=N (request); see MaxStaleAny
	MinFresh             int64 // min-fresh (request)
	StaleWhileRevalidate int64 // stale-while-revalidate (response, RFC 5861)
	StaleIfError         int64 // stale-if-error (request and response, RFC 5861)

	MaxStaleAny     bool // max-stale without a value: any staleness is acceptable
	NoStore         bool
	NoCache         bool
	Private         bool
	Public          bool
	MustRevalidate  bool
	ProxyRevalidate bool
	OnlyIfCached    bool
	Immutable       bool
	NoTransform     bool
}

// NoDirectives is the CacheControl of a message without Cache-Control.
var NoDirectives = CacheControl{MaxAge: -1, SMaxAge: -1, MaxStale: -1, MinFresh: -1,
	StaleWhileRevalidate: -1, StaleIfError: -1}

// ParseCacheControl parses the Cache-Control field lines vs. It does not
// allocate.
func ParseCacheControl(vs []string) CacheControl {
	cc := NoDirectives
	for _, v := range vs {
		for v != "" {
			var name, val string
			var hasVal bool
			name, val, hasVal, v = nextDirective(v)
			if name != "" {
				cc.apply(name, val, hasVal)
			}
		}
	}
	return cc
}

// nextDirective splits the first directive off s. The name is returned
// as written (trimmed); the value has its quotes removed. rest is what
// follows the directive's separating comma.
func nextDirective(s string) (name, val string, hasVal bool, rest string) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
		i++
	}
	s = s[i:]
	j := 0
	for j < len(s) && s[j] != ',' && s[j] != '=' {
		j++
	}
	name = s[:j]
	if j == len(s) || s[j] == ',' {
		name = strings.TrimRight(name, " \t")
		if j < len(s) {
			j++
		}
		return name, "", false, s[j:]
	}
	// s[j] == '='. Whitespace before "=" makes the directive invalid: keep
	// the name with its whitespace so apply rejects it.
	s = s[j+1:]
	if s != "" && s[0] == '"' {
		k := 1
		for k < len(s) && s[k] != '"' {
			if s[k] == '\\' {
				k++
			}
			k++
		}
		if k >= len(s) { // unterminated quoted string: the rest is its value
			val, rest = s[1:], ""
		} else {
			val, rest = s[1:k], s[k+1:]
		}
		if c := strings.IndexByte(rest, ','); c >= 0 {
			// Anything between the closing quote and the comma is junk.
			if strings.Trim(rest[:c], " \t") != "" {
				val = "\x00" // invalid
			}
			rest = rest[c+1:]
		} else {
			if strings.Trim(rest, " \t") != "" {
				val = "\x00"
			}
			rest = ""
		}
		return name, val, true, rest
	}
	k := strings.IndexByte(s, ',')
	if k < 0 {
		val, rest = s, ""
	} else {
		val, rest = s[:k], s[k+1:]
	}
	return name, strings.TrimRight(val, " \t"), true, rest
}

// parseDelta reads delta-seconds (RFC 9111 §1.2.2): digits only. ok is false
// for anything else; the caller treats that as 0.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < MaxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	if n > MaxDelta {
		n = MaxDelta
	}
	return n, true
}

func setDelta(dst *int64, val string, hasVal bool) {
	if *dst >= 0 {
		return // first occurrence wins
	}
	n, ok := parseDelta(val)
	if !hasVal || !ok {
		n = 0
	}
	*dst = n
}

func (cc *CacheControl) apply(name, val string, hasVal bool) {
	switch {
	case strings.EqualFold(name, "max-age"):
		setDelta(&cc.MaxAge, val, hasVal)
	case strings.EqualFold(name, "s-maxage"):
		setDelta(&cc.SMaxAge, val, hasVal)
	case strings.EqualFold(name, "max-stale"):
		if !hasVal {
			if cc.MaxStale < 0 {
				cc.MaxStaleAny = true
			}
			return
		}
		setDelta(&cc.MaxStale, val, hasVal)
	case strings.EqualFold(name, "min-fresh"):
		setDelta(&cc.MinFresh, val, hasVal)
	case strings.EqualFold(name, "stale-while-revalidate"):
		setDelta(&cc.StaleWhileRevalidate, val, hasVal)
	case strings.EqualFold(name, "stale-if-error"):
		setDelta(&cc.StaleIfError, val, hasVal)
	case strings.EqualFold(name, "no-store"):
		cc.NoStore = true
	case strings.EqualFold(name, "no-cache"):
		cc.NoCache = true
	case strings.EqualFold(name, "private"):
		cc.Private = true
	case strings.EqualFold(name, "public"):
		cc.Public = true
	case strings.EqualFold(name, "must-revalidate"):
		cc.MustRevalidate = true
	case strings.EqualFold(name, "proxy-revalidate"):
		cc.ProxyRevalidate = true
	case strings.EqualFold(name, "only-if-cached"):
		cc.OnlyIfCached = true
	case strings.EqualFold(name, "immutable"):
		cc.Immutable = true
	case strings.EqualFold(name, "no-transform"):
		cc.NoTransform = true
	}
}
