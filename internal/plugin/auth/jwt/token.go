package jwt

import (
	"net/http"
	"net/url"
	"strings"
)

// token returns the token from the header, the cookie or the query, in
// that order. ambiguous reports a request that carries more than one
// credential: two headers of the token header (whatever their values), the
// cookie more than once, the query parameter more than once, or different
// tokens in two of those places. The plugin and the upstream could then
// read different tokens, so such a request is refused.
func (p *JWT) token(r *http.Request) (tok string, ambiguous bool) {
	if hv := r.Header[p.header]; len(hv) > 1 {
		return "", true
	} else if len(hv) == 1 {
		tok = p.fromHeader(hv[0])
	}
	if p.Cookie != "" && r.Header["Cookie"] != nil {
		seen := false
		for _, c := range r.CookiesNamed(p.Cookie) {
			if seen {
				return "", true
			}
			seen = true
			if c.Value == "" {
				continue
			}
			if tok != "" && tok != c.Value {
				return "", true
			}
			tok = c.Value
		}
	}
	if p.Query != "" && r.URL.RawQuery != "" {
		v, n := queryValue(r.URL.RawQuery, p.Query)
		if n > 1 || (v != "" && tok != "" && v != tok) {
			return "", true
		}
		if v != "" {
			tok = v
		}
	}
	return tok, false
}

// fromHeader returns the token in a header value: "Bearer <token>", or in
// a header other than Authorization also the bare token.
func (p *JWT) fromHeader(v string) string {
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	if !p.bearerOnly {
		return strings.TrimSpace(v)
	}
	return ""
}

// queryValue returns the first value of name in a raw query and how many
// times name occurs.
func queryValue(raw, name string) (string, int) {
	val, n := "", 0
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k == name || (strings.ContainsAny(k, "%+") && unescape(k) == name) {
			if n == 0 {
				val = unescape(v)
			}
			n++
		}
	}
	return val, n
}

func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return ""
	}
	return u
}

// stripParam removes every occurrence of name from a raw query, keeping the
// rest as sent.
func stripParam(raw, name string) (string, bool) {
	var b strings.Builder
	found := false
	rest := raw
	for rest != "" {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(kv, "=")
		if k == name || (strings.ContainsAny(k, "%+") && unescape(k) == name) {
			found = true
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(kv)
	}
	if !found {
		return raw, false
	}
	return b.String(), true
}
