// Package keyauth implements the "key_auth" plugin: clients present an API
// key in a header, a query parameter or a cookie, and the key is looked up
// in the consumer store by its SHA-256 digest, so the lookup's timing never
// depends on how much of a presented key matches a stored one.
//
// Sources are headers, query parameters and cookies, each in config order.
// A request must carry exactly one non-empty key value among all of them:
// a key in two header lines, in a header and the query, in a repeated
// query parameter or in two cookies is refused with 400 ("more than one
// credential"), even with `anonymous`, because the key checked here and
// the one an upstream reads could differ. With hide_credentials
// (the default) every configured key name is removed from the request before
// it goes upstream: the headers, the query parameters (the query string is
// rebuilt without them) and the cookies (only those cookies are removed from
// the Cookie header).
package keyauth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
)

// Name is the plugin's name in configs.
const Name = "key_auth"

// challenge is the WWW-Authenticate value of a 401.
const challenge = `Key realm="portico"`

// credentialIDLen is how many hex digits of the key's SHA-256 identify the
// credential upstream (X-Credential-Identifier) and in logs.
const credentialIDLen = 12

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(KeyAuth) }})
}

// KeyAuth is the configuration of one "key_auth" instance.
type KeyAuth struct {
	// Anonymous names the consumer a request continues as when it carries
	// no valid key, instead of being refused.
	Anonymous string `yaml:"anonymous"`
	// HeaderNames are the request headers that may carry the key.
	// Default ["X-API-Key"]; [] disables headers.
	HeaderNames []string `yaml:"header_names"`
	// QueryNames are the query parameters that may carry the key.
	// Default ["apikey"]; [] disables the query string.
	QueryNames []string `yaml:"query_names"`
	// CookieNames are the cookies that may carry the key. Default none.
	CookieNames []string `yaml:"cookie_names"`
	// HideCredentials removes the key from the request before it is passed
	// on. Default true.
	HideCredentials *bool `yaml:"hide_credentials"`

	base    auth.Base
	store   consumer.Store
	headers []string // canonical header names
	queries []string
	cookies []string
	hide    bool
}

// Provision applies defaults and resolves the anonymous consumer.
func (p *KeyAuth) Provision(ctx plugin.Context) error {
	if p.HeaderNames == nil {
		p.HeaderNames = []string{"X-API-Key"}
	}
	if p.QueryNames == nil {
		p.QueryNames = []string{"apikey"}
	}
	p.hide = p.HideCredentials == nil || *p.HideCredentials
	p.headers = make([]string, len(p.HeaderNames))
	for i, h := range p.HeaderNames {
		p.headers[i] = http.CanonicalHeaderKey(strings.TrimSpace(h))
	}
	p.queries = p.QueryNames
	p.cookies = p.CookieNames
	p.store = ctx.Consumers()
	p.base.Anonymous = p.Anonymous
	return p.base.Setup(ctx, Name, reasonUnknownKey)
}

// reasonUnknownKey is the failure reason of a key no consumer owns.
const reasonUnknownKey = "unknown_key"

// Validate checks that at least one key source is configured and that every
// name is usable.
func (p *KeyAuth) Validate() error {
	var errs []error
	if len(p.headers)+len(p.queries)+len(p.cookies) == 0 {
		errs = append(errs, errors.New("at least one of header_names, query_names and cookie_names must be set"))
	}
	for i, h := range p.HeaderNames {
		if !httpx.ValidToken(strings.TrimSpace(h)) {
			errs = append(errs, fmt.Errorf("header_names[%d]: %q is not a valid header name", i, h))
		}
	}
	for i, q := range p.QueryNames {
		if q == "" {
			errs = append(errs, fmt.Errorf("query_names[%d]: must not be empty", i))
		}
	}
	for i, c := range p.CookieNames {
		if !httpx.ValidToken(c) {
			errs = append(errs, fmt.Errorf("cookie_names[%d]: %q is not a valid cookie name", i, c))
		}
	}
	return errors.Join(errs...)
}

// Wrap returns the handler that authenticates the request, then runs next.
func (p *KeyAuth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, n := p.find(r)
		if n > 1 {
			p.base.Ambiguous(w, r)
			return
		}
		if key == "" {
			p.base.Unauthenticated(w, r, next, challenge, "missing")
			return
		}
		if p.hide {
			p.strip(r)
		}
		c, ok := p.store.ByAPIKey(key)
		if !ok {
			p.base.Unauthenticated(w, r, next, challenge, reasonUnknownKey)
			return
		}
		p.base.Authenticated(r, c, credentialID(key))
		next.ServeHTTP(w, r)
	})
}

// find returns the first non-empty key the request carries, or "", and
// how many non-empty key values it carries in all (counting stops at 2).
func (p *KeyAuth) find(r *http.Request) (key string, n int) {
	for _, h := range p.headers {
		for _, v := range r.Header[h] {
			if v != "" {
				if n++; n > 1 {
					return key, n
				}
				key = v
			}
		}
	}
	if len(p.queries) > 0 && r.URL != nil && r.URL.RawQuery != "" {
		v, qn := queryValue(r.URL.RawQuery, p.queries)
		if n += qn; n > 1 {
			return key, n
		}
		if key == "" {
			key = v
		}
	}
	if len(p.cookies) > 0 {
		for _, c := range r.Cookies() {
			if c.Value == "" || !slices.Contains(p.cookies, c.Name) {
				continue
			}
			if n++; n > 1 {
				return key, n
			}
			key = c.Value
		}
	}
	return key, n
}

// strip removes every configured key name from the request.
func (p *KeyAuth) strip(r *http.Request) {
	for _, h := range p.headers {
		delete(r.Header, h)
	}
	if len(p.queries) > 0 && r.URL != nil && r.URL.RawQuery != "" {
		if q, changed := removeQuery(r.URL.RawQuery, p.queries); changed {
			r.URL.RawQuery = q
		}
	}
	if len(p.cookies) > 0 {
		removeCookies(r.Header, p.cookies)
	}
}

// credentialID is a short, non-secret identifier of a key: a prefix of the
// hex SHA-256 of the key.
func credentialID(key string) string {
	d := sha256.Sum256([]byte(key))
	var b [credentialIDLen]byte
	hex.Encode(b[:], d[:credentialIDLen/2])
	return string(b[:])
}

// queryValue returns the value of the first parameter in raw named one of
// names, decoded, or "", and how many parameters named one of names carry
// a non-empty value (counting stops at 2). A value that does not decode
// counts but is never the key.
func queryValue(raw string, names []string) (key string, n int) {
	for _, name := range names {
		for rest := raw; rest != ""; {
			var pair string
			pair, rest, _ = strings.Cut(rest, "&")
			k, v, _ := strings.Cut(pair, "=")
			if v == "" || !queryKeyIs(k, name) {
				continue
			}
			if n++; n > 1 {
				return key, n
			}
			if dv, err := url.QueryUnescape(v); err == nil {
				key = dv
			}
		}
	}
	return key, n
}

// queryKeyIs reports whether the raw (possibly escaped) key k decodes to name.
func queryKeyIs(k, name string) bool {
	if k == name {
		return true
	}
	if !strings.ContainsAny(k, "%+") {
		return false
	}
	dk, err := url.QueryUnescape(k)
	return err == nil && dk == name
}

// removeQuery rebuilds raw without the parameters named one of names,
// keeping every other parameter byte for byte and in order.
func removeQuery(raw string, names []string) (string, bool) {
	var b strings.Builder
	changed := false
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, _, _ := strings.Cut(pair, "=")
		drop := false
		for _, name := range names {
			if queryKeyIs(k, name) {
				drop = true
				break
			}
		}
		if drop {
			changed = true
			continue
		}
		if pair == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(pair)
	}
	if !changed {
		return raw, false
	}
	return b.String(), true
}

// removeCookies removes the named cookies from every Cookie header line,
// keeping the other cookies as they were sent, and drops lines left empty.
func removeCookies(h http.Header, names []string) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return
	}
	out := lines[:0:0]
	changed := false
	for _, line := range lines {
		var kept []string
		lineChanged := false
		for part := range strings.SplitSeq(line, ";") {
			c := strings.TrimSpace(part)
			if c == "" {
				continue
			}
			name, _, _ := strings.Cut(c, "=")
			drop := false
			for _, n := range names {
				if strings.TrimSpace(name) == n {
					drop = true
					break
				}
			}
			if drop {
				lineChanged = true
				continue
			}
			kept = append(kept, c)
		}
		if !lineChanged {
			out = append(out, line)
			continue
		}
		changed = true
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, "; "))
		}
	}
	if !changed {
		return
	}
	if len(out) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = out
}

// Interface guards.
var (
	_ plugin.Plugin    = (*KeyAuth)(nil)
	_ plugin.Validator = (*KeyAuth)(nil)
)
