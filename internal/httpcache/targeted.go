package httpcache

import (
	"net/http"

	"github.com/dunglas/httpsfv"
)

// DefaultTargeted is the targeted cache-control field a Policy without its
// own list honours: CDN-Cache-Control (RFC 9213), the field for every
// cache operated by or for the origin, gateways included.
var DefaultTargeted = []string{"Cdn-Cache-Control"}

// ResponseDirectives returns the directives that govern the caching of a
// response with header h, and whether its Expires counts.
//
// RFC 9213 §2.2: the first field of p.Targeted (canonical header names)
// with a valid, non-empty value is used instead of Cache-Control and
// Expires. A targeted field is a Structured Field Dictionary (RFC 8941):
// one that does not parse as one, or gives a known directive a value of
// the wrong type (max-age="10", no-store=5), is ignored, as if absent.
// Without a usable targeted field, Cache-Control and Expires apply as
// usual.
func ResponseDirectives(h http.Header, p *Policy) (cc CacheControl, expires bool) {
	if p == nil {
		p = &defaultPolicy
	}
	for _, name := range p.Targeted {
		if vs := h[name]; len(vs) > 0 {
			if cc, ok := parseTargeted(vs); ok {
				return cc, false
			}
		}
	}
	return ParseCacheControl(h["Cache-Control"]), true
}

// parseTargeted reads a targeted field's lines; ok is false when they are
// not a valid, non-empty dictionary of well-typed directives.
func parseTargeted(vs []string) (CacheControl, bool) {
	d, err := httpsfv.UnmarshalDictionary(vs)
	if err != nil {
		return NoDirectives, false
	}
	names := d.Names()
	if len(names) == 0 {
		return NoDirectives, false
	}
	cc := NoDirectives
	for _, name := range names {
		m, _ := d.Get(name)
		if !cc.applyTargeted(name, m) {
			return NoDirectives, false
		}
	}
	return cc, true
}

// applyTargeted sets one dictionary member; false means a known directive
// has a value of the wrong type. Unknown directives are ignored, as in
// Cache-Control.
func (cc *CacheControl) applyTargeted(name string, m httpsfv.Member) bool {
	var delta *int64
	var flag *bool
	switch name {
	case "max-age":
		delta = &cc.MaxAge
	case "s-maxage":
		delta = &cc.SMaxAge
	case "stale-while-revalidate":
		delta = &cc.StaleWhileRevalidate
	case "stale-if-error":
		delta = &cc.StaleIfError
	case "no-store":
		flag = &cc.NoStore
	case "no-cache":
		flag = &cc.NoCache
	case "private":
		flag = &cc.Private
	case "public":
		flag = &cc.Public
	case "must-revalidate":
		flag = &cc.MustRevalidate
	case "proxy-revalidate":
		flag = &cc.ProxyRevalidate
	case "immutable":
		flag = &cc.Immutable
	case "no-transform":
		flag = &cc.NoTransform
	default:
		return true
	}
	if delta != nil {
		it, ok := m.(httpsfv.Item)
		n, isInt := it.Value.(int64)
		if !ok || !isInt || n < 0 {
			return false
		}
		*delta = min(n, MaxDelta)
		return true
	}
	switch v := m.(type) {
	case httpsfv.Item:
		switch b := v.Value.(type) {
		case bool:
			*flag = b
		case string:
			// no-cache="field" and private="field": read as the
			// unqualified forms, as in Cache-Control.
			*flag = name == "no-cache" || name == "private"
			return *flag
		default:
			return false
		}
	case httpsfv.InnerList:
		*flag = name == "no-cache" || name == "private"
		return *flag
	}
	return true
}
