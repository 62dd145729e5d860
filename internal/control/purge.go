package control

import (
	"fmt"
	"net/url"
	"strings"
)

// CachePurge asks for stored responses to be removed from the running
// gateway's caches: exactly one of All, URL, Prefix or Tag is set. Route,
// when set, limits the purge to that route's cache; else every route with
// a cache (a global cache included) is purged.
type CachePurge struct {
	Route  string
	URL    string
	Prefix string
	Tag    string
	All    bool
}

// CachePurgeResult is what a purge removed. Purged counts stored entries
// (a response that varies counts each variant and the entry that indexes
// them), each once: a store shared by several routes or instances is
// emptied by the first of them and the others find nothing more. Routes
// lists, in config order, the routes whose caches were purged.
type CachePurgeResult struct {
	Purged int      `json:"purged"`
	Routes []string `json:"routes"`
}

// PurgeError is returned by a cache purge the running config cannot carry
// out. Field names the request field at fault (route, url, prefix, tag or
// all); NotFound is set when Route names no route of the running config.
type PurgeError struct {
	Field    string
	Msg      string
	NotFound bool
}

func (e *PurgeError) Error() string { return e.Msg }

// MaxPurgeTagLen is the longest tag a purge names, the cache's limit on a
// stored tag.
const MaxPurgeTagLen = 256

// Check reports the first problem of the request's shape: not exactly one
// selector, a URL that is not an absolute http or https URL, a prefix
// that does not start with the host, a tag with a comma, whitespace or a
// control character or longer than MaxPurgeTagLen. The cache normalises
// what passes (see the cache plugin's Purge).
func (p CachePurge) Check() *PurgeError {
	var set []string
	for _, f := range []struct {
		name string
		on   bool
	}{{"url", p.URL != ""}, {"prefix", p.Prefix != ""}, {"tag", p.Tag != ""}, {"all", p.All}} {
		if f.on {
			set = append(set, f.name)
		}
	}
	switch {
	case len(set) == 0:
		return &PurgeError{Msg: `name what to purge: one of "url", "prefix", "tag" or "all": true`}
	case len(set) > 1:
		return &PurgeError{Field: set[1], Msg: `only one of "url", "prefix", "tag" and "all" may be set; "` + set[0] + `" is set too`}
	case p.URL != "":
		if !absoluteHTTP(p.URL) {
			return &PurgeError{Field: "url", Msg: "must be an absolute http or https URL such as https://api.example.com/v1/items?id=1"}
		}
	case p.Prefix != "":
		if strings.HasPrefix(p.Prefix, "/") {
			return &PurgeError{Field: "prefix", Msg: "must start with the host, e.g. api.example.com/v1/ (stored URLs are host, path and query)"}
		}
		if raw := p.Prefix; !absoluteHTTP(raw) && (strings.Contains(raw, "://") || !absoluteHTTP("http://"+raw)) {
			return &PurgeError{Field: "prefix", Msg: `must be "host/path", e.g. api.example.com/v1/, or an absolute http or https URL`}
		}
	case p.Tag != "":
		if len(p.Tag) > MaxPurgeTagLen || strings.IndexFunc(p.Tag, func(r rune) bool { return r <= ' ' || r == ',' || r == 0x7f }) >= 0 {
			return &PurgeError{Field: "tag", Msg: fmt.Sprintf("must be at most %d bytes without commas, whitespace or control characters", MaxPurgeTagLen)}
		}
	}
	return nil
}

// absoluteHTTP reports whether raw parses as an http or https URL with a
// host and no user information.
func absoluteHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Opaque == "" && u.User == nil
}
