package httpcache

import (
	"net/http"
	"net/url"
	"strings"
)

// Invalidates reports whether a response with status to a request with
// method makes the cache invalidate stored responses (RFC 9111 §4.4): an
// unsafe method (anything but GET, HEAD, OPTIONS and TRACE) answered with a
// non-error status (2xx or 3xx).
func Invalidates(method string, status int) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return status >= 200 && status < 400
}

// InvalidationTargets returns the request paths whose stored responses an
// invalidating response (see Invalidates) to req makes stale: the target
// URI's, and those of the Location and Content-Location fields of the
// response header h when they resolve to the same scheme and host (§4.4
// forbids following them to another origin, so that one origin cannot purge
// another's responses). The plugin purges the GET and HEAD keys for each,
// with the same host, or by path prefix for the variants.
func InvalidationTargets(req *http.Request, h http.Header) []*url.URL {
	base := &url.URL{Scheme: "http", Host: strings.ToLower(req.Host), Path: req.URL.Path, RawPath: req.URL.RawPath}
	if req.TLS != nil {
		base.Scheme = "https"
	}
	out := []*url.URL{{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}}
	for _, name := range [...]string{"Location", "Content-Location"} {
		v := h.Get(name)
		if v == "" {
			continue
		}
		ref, err := url.Parse(v)
		if err != nil {
			continue
		}
		u := base.ResolveReference(ref)
		if u.Scheme != base.Scheme || !strings.EqualFold(u.Host, base.Host) {
			continue
		}
		out = append(out, &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery})
	}
	return out
}
