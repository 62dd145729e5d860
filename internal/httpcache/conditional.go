package httpcache

import (
	"net/http"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/httpx"
)

// AddValidators sets the conditional headers of the validation request for
// the stored response with header stored (RFC 9111 §4.3.1): If-None-Match
// with its ETag and If-Modified-Since with its Last-Modified. dst is the
// outgoing request's header; the client's own conditionals in it are
// replaced, since the cache validates its stored response, not the
// client's.
func AddValidators(dst, stored http.Header) {
	dst.Del("If-None-Match")
	dst.Del("If-Modified-Since")
	dst.Del("If-Match")
	dst.Del("If-Unmodified-Since")
	dst.Del("If-Range")
	if et := stored.Get("Etag"); et != "" {
		dst.Set("If-None-Match", et)
	}
	if lm := stored.Get("Last-Modified"); lm != "" {
		dst.Set("If-Modified-Since", lm)
	}
}

// Selects304 reports whether a 304 with header nm validates the stored
// response with header stored (RFC 9111 §4.3.4): when the 304 has an ETag,
// the stored ETag must be the same (strong comparison when the 304's is
// strong, weak otherwise); without one, a Last-Modified on the 304 must equal
// the stored one; a 304 without validators selects the stored response.
func Selects304(stored, nm http.Header) bool {
	if et := nm.Get("Etag"); et != "" {
		st := stored.Get("Etag")
		if weakTag(et) {
			return weakMatch(st, et)
		}
		return strongMatch(st, et)
	}
	if lm := nm.Get("Last-Modified"); lm != "" {
		return stored.Get("Last-Modified") == lm
	}
	return true
}

// Update304 updates the stored header with the fields of a 304 response nm
// (RFC 9111 §3.2, §4.3.4) and returns the refreshed Meta: every field of nm
// replaces the stored field of the same name, except those a cache does not
// store (hop-by-hop, fields named by Connection, Age) and Content-Length;
// the body is kept. requestTime and responseTime are those of the
// validation exchange; the 304's Age and Date feed the new age.
// Call Selects304 first. stored must be the caller's own copy (Header.Clone
// of the entry's): stored entries are shared by readers and never modified.
func Update304(stored, nm http.Header, requestTime, responseTime time.Time, p *Policy) Meta {
	conn := nm["Connection"]
	for name, vs := range nm {
		if name == "Content-Length" || name == "Age" || httpx.IsHopByHop(name) || httpx.HasToken(conn, name) {
			continue
		}
		stored[name] = clipped(vs)
	}
	age, hasAge := nm["Age"]
	if hasAge {
		stored["Age"] = age
	}
	m := Freshness(stored, requestTime, responseTime, p)
	delete(stored, "Age")
	return m
}

// NotModified reports whether a client's conditional request req can be
// answered 304 from a fresh stored response with header stored (RFC 9110
// §13.1.2, §13.1.3, §13.2.2; RFC 9111 §4.3.2). Only GET and HEAD qualify.
// If-None-Match uses the weak comparison ("*" matches any stored
// response); If-Modified-Since counts only without If-None-Match and
// compares with the stored Last-Modified, else its Date.
func NotModified(req *http.Request, stored http.Header) bool {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false
	}
	if inm := req.Header["If-None-Match"]; len(inm) > 0 {
		et := stored.Get("Etag")
		match := false
		eachETag(inm, func(t string) bool {
			if t == "*" || (et != "" && weakMatch(t, et)) {
				match = true
				return false
			}
			return true
		})
		return match
	}
	ims, ok := parseDate(req.Header["If-Modified-Since"])
	if !ok {
		return false
	}
	lm, ok := parseDate(stored["Last-Modified"])
	if !ok {
		if lm, ok = parseDate(stored["Date"]); !ok {
			return false
		}
	}
	return !lm.After(ims)
}

// notModifiedFields are the stored fields a 304 carries (RFC 9110 §15.4.5:
// those a 200 would have sent among Content-Location, Date, ETag, Vary,
// Cache-Control and Expires, plus Last-Modified to help caches downstream).
var notModifiedFields = [...]string{
	"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary",
}

// NotModifiedHeader copies into dst the fields of the stored header a 304
// answer carries. The caller adds Age (AgeValue).
func NotModifiedHeader(dst, stored http.Header) {
	for _, name := range notModifiedFields {
		if vs, ok := stored[name]; ok {
			dst[name] = vs
		}
	}
}

// eachETag calls yield for each entity-tag in If-None-Match lines; commas
// inside a quoted opaque tag do not split it.
func eachETag(vs []string, yield func(string) bool) {
	for _, v := range vs {
		for v != "" {
			v = strings.TrimLeft(v, " \t,")
			if v == "" {
				break
			}
			end := 0
			if strings.HasPrefix(v, "W/\"") || strings.HasPrefix(v, "\"") {
				q := strings.IndexByte(v, '"')
				if c := strings.IndexByte(v[q+1:], '"'); c >= 0 {
					end = q + 1 + c + 1
				} else {
					end = len(v)
				}
			} else if c := strings.IndexByte(v, ','); c >= 0 {
				end = c
			} else {
				end = len(v)
			}
			t := strings.TrimRight(v[:end], " \t")
			v = v[end:]
			if !yield(t) {
				return
			}
		}
	}
}

func weakTag(t string) bool { return strings.HasPrefix(t, "W/") }

// opaque returns the entity-tag without its weakness indicator.
func opaque(t string) string { return strings.TrimPrefix(t, "W/") }

// weakMatch is the weak comparison of RFC 9110 §8.8.3.2: the opaque tags
// are equal, weakness ignored.
func weakMatch(a, b string) bool { return a != "" && opaque(a) == opaque(b) }

// strongMatch is the strong comparison: both strong and equal.
func strongMatch(a, b string) bool { return a != "" && !weakTag(a) && !weakTag(b) && a == b }
