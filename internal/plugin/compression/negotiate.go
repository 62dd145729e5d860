package compression

// Encoding identifiers; encNone (0) is identity.
const (
	encNone = iota
	encZstd
	encBrotli
	encGzip
	numEnc
)

// encNames are the Content-Encoding tokens, indexed by encoding.
var encNames = [numEnc]string{"identity", "zstd", "br", "gzip"}

// encHeader holds the Content-Encoding values, allocated once.
var encHeader = [numEnc][]string{nil, {"zstd"}, {"br"}, {"gzip"}}

// encodingByName returns the encoding a config or Content-Encoding token
// names ("x-gzip" is gzip), or encNone.
func encodingByName(s string) int {
	switch {
	case equalFold(s, "zstd"):
		return encZstd
	case equalFold(s, "br"):
		return encBrotli
	case equalFold(s, "gzip"), equalFold(s, "x-gzip"):
		return encGzip
	}
	return encNone
}

// negotiate picks the response encoding for an Accept-Encoding header
// (RFC 9110 §12.5.3): among offered (in preference order) the one with the
// highest q-value, ties going to the earlier one in offered. A coding not
// listed takes the q-value of "*" when present, else it is not accepted;
// q=0 refuses. When identity is listed with a higher q-value than the best
// coding, or nothing offered is accepted, the answer is encNone (identity:
// a gateway sends the uncompressed response rather than 406). It never
// allocates.
func negotiate(header []string, offered []int) int {
	var q [numEnc]int // q-value ×1000 per encoding; -1 when not listed
	for i := range q {
		q[i] = -1
	}
	star, identity := -1, -1
	for _, h := range header {
		for len(h) > 0 {
			var elem string
			if i := indexByte(h, ','); i >= 0 {
				elem, h = h[:i], h[i+1:]
			} else {
				elem, h = h, ""
			}
			name, qv := parseElement(elem)
			if name == "" {
				continue
			}
			switch {
			case name == "*":
				star = max(star, qv)
			case equalFold(name, "identity"):
				identity = max(identity, qv)
			default:
				if e := encodingByName(name); e != encNone {
					q[e] = max(q[e], qv)
				}
			}
		}
	}
	best, bestQ := encNone, 0
	for _, e := range offered {
		v := q[e]
		if v < 0 {
			v = star
		}
		if v > bestQ {
			best, bestQ = e, v
		}
	}
	if best != encNone && identity > bestQ {
		return encNone
	}
	return best
}

// parseElement splits one Accept-Encoding element, "coding;q=0.5", into
// its trimmed coding and q-value ×1000 (1000 when absent). A malformed
// q-value gives 0, so the element refuses rather than accepts.
func parseElement(s string) (string, int) {
	name, params := s, ""
	if i := indexByte(s, ';'); i >= 0 {
		name, params = s[:i], s[i+1:]
	}
	name = trim(name)
	q := 1000
	for len(params) > 0 {
		var p string
		if i := indexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		p = trim(p)
		if len(p) >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' {
			q = parseQ(trim(p[2:]))
		}
	}
	return name, q
}

// parseQ parses a qvalue ("0", "0.5", "1.000") as thousandths; anything
// else is 0.
func parseQ(s string) int {
	if len(s) == 0 || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0
	}
	v := int(s[0]-'0') * 1000
	if len(s) == 1 {
		return v
	}
	if s[1] != '.' {
		return 0
	}
	mult := 100
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		v += int(c-'0') * mult
		mult /= 10
	}
	if v > 1000 {
		return 0
	}
	return v
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trim(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold compares ASCII strings case-insensitively; b is lower case.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}

// hasPrefixFold reports whether s starts with the lower-case prefix p,
// ignoring ASCII case.
func hasPrefixFold(s, p string) bool {
	return len(s) >= len(p) && equalFold(s[:len(p)], p)
}

// typeMatcher decides whether a Content-Type is compressible: exact media
// types ("application/json"), type prefixes ("text/*") and structured
// suffixes ("+json"), all lower case, compiled at load time.
type typeMatcher struct {
	exact, prefixes, suffixes []string
}

// match reports whether the media type of a Content-Type value matches.
func (m *typeMatcher) match(ct string) bool {
	if i := indexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = trim(ct)
	if ct == "" {
		return false
	}
	for _, e := range m.exact {
		if equalFold(ct, e) {
			return true
		}
	}
	for _, p := range m.prefixes {
		if hasPrefixFold(ct, p) {
			return true
		}
	}
	for _, s := range m.suffixes {
		if len(ct) > len(s) && equalFold(ct[len(ct)-len(s):], s) {
			return true
		}
	}
	return false
}

// hasToken reports whether a comma-separated header list holds tok (lower
// case) or "*".
func hasToken(values []string, tok string) bool {
	for _, h := range values {
		for len(h) > 0 {
			var t string
			if i := indexByte(h, ','); i >= 0 {
				t, h = h[:i], h[i+1:]
			} else {
				t, h = h, ""
			}
			t = trim(t)
			if t == "*" || equalFold(t, tok) {
				return true
			}
		}
	}
	return false
}
