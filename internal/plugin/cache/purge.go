package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
)

// MetricPurged counts the stored entries removed through the admin API's
// purge, labelled with the route and kind="url|prefix|tag|all".
const MetricPurged = "portico_cache_purged_total"

// purgeCounters are the purge counters of one instance, by kind.
type purgeCounters struct {
	url, prefix, tag, all *observe.Counter
}

func (c *Cache) resolvePurgeCounters(s *observe.Stats, route string) {
	l := fmt.Sprintf("route=%q,kind=", route)
	c.purged = purgeCounters{
		url:    s.Counter(MetricPurged, l+`"url"`),
		prefix: s.Counter(MetricPurged, l+`"prefix"`),
		tag:    s.Counter(MetricPurged, l+`"tag"`),
		all:    s.Counter(MetricPurged, l+`"all"`),
	}
}

// Purge removes the stored responses p selects from the route's store and
// returns how many entries went: a response that varies counts each
// variant and the entry that indexes them. A URL is keyed as requests are
// (host case, default port, path normalisation, sorted query without the
// key.ignore_query parameters), so every method, variant and consumer of
// it goes, whatever order its query parameters are in; http and https
// share one URL. Since the store is shared by the route's instances
// across reloads (and, for a shared store, by every node), what one purge
// removed a second finds gone.
func (c *Cache) Purge(ctx context.Context, p plugin.PurgeRequest) (int, error) {
	hp, err := c.purgeSelector(p)
	if err != nil {
		return 0, err
	}
	n, err := c.store.Purge(ctx, hp)
	if n > 0 {
		c.purgeCounter(p).Add(int64(n))
		c.syncStoreStats()
	}
	return n, err
}

func (c *Cache) purgeCounter(p plugin.PurgeRequest) *observe.Counter {
	switch p.Kind() {
	case "all":
		return c.purged.all
	case "url":
		return c.purged.url
	case "prefix":
		return c.purged.prefix
	}
	return c.purged.tag
}

// purgeSelector turns a purge request into the store's selector.
func (c *Cache) purgeSelector(p plugin.PurgeRequest) (httpcache.Purge, error) {
	n := 0
	for _, set := range [...]bool{p.All, p.URL != "", p.Prefix != "", p.Tag != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return httpcache.Purge{}, &plugin.PurgeInputError{Field: "all", Err: plugin.ErrPurgeSelector}
	}
	switch {
	case p.All:
		return httpcache.Purge{All: true}, nil
	case p.URL != "":
		u, err := purgeURL(p.URL, &c.keyOpts)
		if err != nil {
			return httpcache.Purge{}, &plugin.PurgeInputError{Field: "url", Err: err}
		}
		return httpcache.Purge{URL: u}, nil
	case p.Prefix != "":
		pre, err := purgePrefix(p.Prefix, &c.keyOpts)
		if err != nil {
			return httpcache.Purge{}, &plugin.PurgeInputError{Field: "prefix", Err: err}
		}
		return httpcache.Purge{Prefix: pre}, nil
	}
	if len(p.Tag) > httpcache.MaxTagLen || !visible(p.Tag) || strings.ContainsAny(p.Tag, ", \t") {
		return httpcache.Purge{}, &plugin.PurgeInputError{Field: "tag", Err: fmt.Errorf("a tag is at most %d bytes without commas, whitespace or control characters", httpcache.MaxTagLen)}
	}
	return httpcache.Purge{Tag: p.Tag}, nil
}

// errPurgeURL describes what a purge URL must look like.
var errPurgeURL = errors.New("must be an absolute http or https URL such as https://api.example.com/v1/items?id=1")

// purgeURL returns the stored form of an absolute URL (httpcache.URL with
// the route's key options).
func purgeURL(raw string, o *httpcache.KeyOptions) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", errPurgeURL
	}
	return httpcache.URL(purgeRequest(u), o), nil
}

// purgeRequest is the request the cache would have stored u under.
func purgeRequest(u *url.URL) *http.Request {
	r := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host}
	if u.Scheme == "https" {
		r.TLS = tlsMarker
	}
	return r
}

// purgePrefix returns the stored form of a prefix: "host/path…" or an
// absolute URL, the host normalised as httpcache.URL does (lower case,
// without the scheme's default port; without a scheme, :80 is dropped),
// the path's escapes normalised and a query part canonical. A host alone
// stands for host/.
func purgePrefix(raw string, o *httpcache.KeyOptions) (string, error) {
	abs := strings.Contains(raw, "://")
	if !abs {
		if strings.HasPrefix(raw, "/") {
			return "", errors.New("starts with the host, e.g. api.example.com/v1/ (stored URLs are host, path and query)")
		}
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", errors.New(`must be "host/path", e.g. api.example.com/v1/, or an absolute http or https URL`)
	}
	// A host alone selects its URLs, not those of longer host names.
	if u.Path == "" {
		u.Path = "/"
	}
	// "host/items?" selects the URLs of /items that have a query.
	q := u.ForceQuery && u.RawQuery == ""
	u.Fragment, u.RawFragment = "", ""
	pre := httpcache.URL(purgeRequest(u), o)
	if q {
		pre += "?"
	}
	return pre, nil
}

// tlsMarker marks a purge request for an https URL (httpcache.URL reads
// only whether TLS is set).
var tlsMarker = &tls.ConnectionState{}

// Interface guard.
var _ plugin.Purger = (*Cache)(nil)
