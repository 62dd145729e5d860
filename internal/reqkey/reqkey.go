// Package reqkey is Portico's one request-key grammar: what rate_limit,
// concurrency_limit, quota and consistent hashing use to tell requests
// apart, so a user learns it once.
//
// A key is a list of parts; requests whose parts all have the same values
// share the key. Parts:
//
//	consumer       the authenticated consumer's ID
//	ip             the client IP (trusted-proxy aware)
//	route          the route name
//	path           the normalised request path
//	method         the request method
//	header:<Name>  the first value of the request header
//	cookie:<name>  the value of the cookie
//	param:<name>   a path parameter of the route template
//	query:<name>   the first value of the query parameter, decoded
//	claim:<name>   a top-level claim of the token that authenticated the
//	               consumer (jwt, oauth2_introspection), rendered as for
//	               claims_to_headers
//
// Missing values: a part with no value (no authenticated consumer, or an
// auth plugin's anonymous consumer; an absent or empty header, cookie,
// path parameter or query parameter) stands for the client IP instead,
// marked so that no real value can equal it: a client without the header
// is counted by its address, never in one bucket shared with every other
// client without it, and no client can pick a value that lands in another
// client's address bucket. ip, route, path and method always have a value.
//
// The package reads the request and its request.Record only; Parse does
// the per-config work, and the per-request methods do not allocate (Render
// allocates the string it returns).
package reqkey

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/request"
)

// MaxParts is the most parts a key may have.
const MaxParts = 8

// Valid lists the part forms, for messages.
const Valid = "consumer, ip, route, path, method, header:<Name>, cookie:<name>, param:<name>, query:<name>, claim:<name>"

// kind is what a part is made of. Its value is also the part's tag in
// hashes, so it must not change within a process.
type kind uint8

const (
	kindConsumer kind = iota + 1
	kindIP
	kindRoute
	kindPath
	kindMethod
	kindHeader
	kindCookie
	kindParam
	kindQuery
	kindClaim
)

// tagMissing tags the client IP that stands for a missing value in hashes.
const tagMissing = 0xff

// part is one parsed element of a key.
type part struct {
	kind kind
	// name is the canonical header name, or the cookie, parameter or
	// query parameter name.
	name string
}

// Key is a parsed key. The zero Key has no parts; Parse never returns it
// without an error.
type Key struct {
	parts []part
	spec  string
}

// Parse parses a key's parts. Each bad part gets its own error, prefixed
// with its position ("key[1]: ..."), naming the valid forms.
func Parse(parts []string) (Key, error) {
	if len(parts) == 0 {
		return Key{}, errors.New("key: at least one part is required (" + Valid + ")")
	}
	if len(parts) > MaxParts {
		return Key{}, fmt.Errorf("key: at most %d parts, got %d", MaxParts, len(parts))
	}
	k := Key{parts: make([]part, 0, len(parts))}
	var errs []error
	names := make([]string, 0, len(parts))
	for i, s := range parts {
		p, err := parsePart(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, fmt.Errorf("key[%d]: %w", i, err))
			continue
		}
		k.parts = append(k.parts, p)
		names = append(names, p.String())
	}
	if err := errors.Join(errs...); err != nil {
		return Key{}, err
	}
	k.spec = "[" + strings.Join(names, ", ") + "]"
	return k, nil
}

// MustParse is Parse for keys known to be valid; it panics otherwise.
func MustParse(parts ...string) Key {
	k, err := Parse(parts)
	if err != nil {
		panic(err)
	}
	return k
}

func parsePart(s string) (part, error) {
	switch s {
	case "consumer":
		return part{kind: kindConsumer}, nil
	case "ip":
		return part{kind: kindIP}, nil
	case "route":
		return part{kind: kindRoute}, nil
	case "path":
		return part{kind: kindPath}, nil
	case "method":
		return part{kind: kindMethod}, nil
	}
	prefix, name, ok := strings.Cut(s, ":")
	var k kind
	switch prefix {
	case "header":
		k = kindHeader
	case "cookie":
		k = kindCookie
	case "param":
		k = kindParam
	case "query":
		k = kindQuery
	case "claim":
		k = kindClaim
	default:
		return part{}, fmt.Errorf("unknown key part %q (valid: %s)", s, Valid)
	}
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return part{}, fmt.Errorf("%q: %s name missing (write %s:<name>)", s, prefix, prefix)
	}
	if k == kindClaim {
		if !validQueryName(name) {
			return part{}, fmt.Errorf("%q: claim name %q may not contain spaces, control characters, '&', '=' or '#'", s, name)
		}
		return part{kind: k, name: name}, nil
	}
	if k == kindQuery {
		if !validQueryName(name) {
			return part{}, fmt.Errorf("%q: query parameter name %q may not contain spaces, control characters, '&', '=' or '#'", s, name)
		}
		return part{kind: k, name: name}, nil
	}
	if !httpx.ValidToken(name) {
		return part{}, fmt.Errorf("%q: %s name %q is not a valid token (letters, digits and !#$%%&'*+-.^_`|~)", s, prefix, name)
	}
	if k == kindHeader {
		name = http.CanonicalHeaderKey(name)
	}
	return part{kind: k, name: name}, nil
}

func validQueryName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '&' || c == '=' || c == '#' {
			return false
		}
	}
	return true
}

// String is the part in its canonical form, as written in configs.
func (p part) String() string {
	switch p.kind {
	case kindConsumer:
		return "consumer"
	case kindIP:
		return "ip"
	case kindRoute:
		return "route"
	case kindPath:
		return "path"
	case kindMethod:
		return "method"
	case kindHeader:
		return "header:" + p.name
	case kindCookie:
		return "cookie:" + p.name
	case kindParam:
		return "param:" + p.name
	case kindClaim:
		return "claim:" + p.name
	}
	return "query:" + p.name
}

// String is the key's canonical spec, e.g. "[consumer, header:X-Tenant]",
// for messages and for telling configurations apart.
func (k Key) String() string { return k.spec }

// Len is the number of parts.
func (k Key) Len() int { return len(k.parts) }

// UsesConsumer reports whether the key has a consumer part.
func (k Key) UsesConsumer() bool {
	for _, p := range k.parts {
		if p.kind == kindConsumer {
			return true
		}
	}
	return false
}

// Consumer returns the ID of the request's authenticated consumer, or false
// when there is none (no consumer, an auth plugin's anonymous consumer, or
// an empty ID).
func Consumer(rec *request.Record) (string, bool) {
	if rec == nil || rec.Consumer == nil || rec.Consumer.Anonymous || rec.Consumer.ID == "" {
		return "", false
	}
	return rec.Consumer.ID, true
}

// ClientIP is the request's client address: the record's, which knows about
// trusted proxies, else (outside the gateway) the TCP peer's. It is the
// zero Addr when neither is known.
func ClientIP(r *http.Request, rec *request.Record) netip.Addr {
	if rec != nil && rec.ClientIP.IsValid() {
		return rec.ClientIP
	}
	if r == nil {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(strings.Trim(r.RemoteAddr, "[]"))
	return a.Unmap()
}

// value returns the part's value for the request; ok is false when the
// part has none. It is not used for ip parts.
func (p *part) value(r *http.Request, rec *request.Record) (string, bool) {
	switch p.kind {
	case kindConsumer:
		return Consumer(rec)
	case kindRoute:
		if rec != nil {
			return rec.Route, true
		}
		return "", true
	case kindPath:
		return rec.PathOf(r), true
	case kindMethod:
		return r.Method, true
	case kindHeader:
		if vs := r.Header[p.name]; len(vs) > 0 && vs[0] != "" {
			return vs[0], true
		}
	case kindCookie:
		if v, ok := CookieValue(r.Header["Cookie"], p.name); ok && v != "" {
			return v, true
		}
	case kindParam:
		if rec != nil {
			if v, ok := rec.Params.Get(p.name); ok && v != "" {
				return v, true
			}
		}
	case kindQuery:
		if r.URL != nil {
			if v, ok := queryValue(r.URL.RawQuery, p.name); ok && v != "" {
				return v, true
			}
		}
	case kindClaim:
		return rec.Claim(p.name)
	}
	return "", false
}

// CookieValue finds the named cookie in the Cookie header lines without
// allocating; a value in double quotes is returned without them.
func CookieValue(lines []string, name string) (string, bool) {
	for _, line := range lines {
		for line != "" {
			var c string
			c, line, _ = strings.Cut(line, ";")
			k, v, ok := strings.Cut(c, "=")
			if !ok || strings.TrimSpace(k) != name {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v, true
		}
	}
	return "", false
}

// queryValue returns the first value of the named parameter in a raw query,
// decoded. It allocates only when the name or value is percent-encoded; a
// value that does not decode is used as written.
func queryValue(raw, name string) (string, bool) {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != name {
			if !strings.ContainsAny(k, "%+") {
				continue
			}
			if uk, err := url.QueryUnescape(k); err != nil || uk != name {
				continue
			}
		}
		if strings.ContainsAny(v, "%+") {
			if uv, err := url.QueryUnescape(v); err == nil {
				v = uv
			}
		}
		return v, true
	}
	return "", false
}
