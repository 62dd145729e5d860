package cache

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// TestPurge stores a few URLs and purges them by URL, prefix, tag and all;
// the next request for a purged URL misses, the others still hit.
func TestPurge(t *testing.T) {
	t.Parallel()
	stats := observe.NewStats()
	c := plugintest.MustBuild[*Cache](t, Name, "{key: {ignore_query: [utm]}}", plugintest.WithStats(stats), plugintest.WithRoute("r"))
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Cache-Tag", "path-"+r.URL.Path[1:])
		w.Header().Set("Vary", "Accept")
		fmt.Fprint(w, r.URL.String())
	}))
	get := func(target string) string {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", target, nil)
		r.Header.Set("Accept", "text/plain")
		h.ServeHTTP(w, r)
		return w.Header().Get("X-Cache")
	}
	urls := []string{"http://API.example/a?x=1&y=2", "http://api.example/a/b", "http://api.example/c", "http://api.example.org/a"}
	fill := func() {
		for _, u := range urls {
			get(u)
		}
	}
	expect := func(want ...string) {
		t.Helper()
		for i, u := range urls {
			if got := get(u); got != want[i] {
				t.Errorf("%s: %s, want %s", u, got, want[i])
			}
		}
	}
	purge := func(p plugin.PurgeRequest, want int) {
		t.Helper()
		n, err := c.Purge(t.Context(), p)
		if err != nil || n != want {
			t.Fatalf("Purge(%+v) = %d, %v; want %d", p, n, err, want)
		}
	}
	fill()
	// Query order, an ignored parameter, host case and the default port do
	// not matter; a response that varies goes with its index entry (2).
	purge(plugin.PurgeRequest{URL: "https://api.example:443/a?utm=z&y=2&x=1"}, 2)
	expect("MISS", "HIT", "HIT", "HIT")
	purge(plugin.PurgeRequest{URL: "http://api.example/a?x=1"}, 0)
	purge(plugin.PurgeRequest{Prefix: "API.example/a"}, 4)
	expect("MISS", "MISS", "HIT", "HIT")
	purge(plugin.PurgeRequest{Prefix: "http://api.example:80/a?"}, 2)
	expect("MISS", "HIT", "HIT", "HIT")
	// A host alone is the host's root: api.example.org is another host.
	purge(plugin.PurgeRequest{Prefix: "api.example"}, 6)
	expect("MISS", "MISS", "MISS", "HIT")
	// The index entry of a varying response has no tags: only the variant goes.
	purge(plugin.PurgeRequest{Tag: "path-c"}, 1)
	expect("HIT", "HIT", "MISS", "HIT")
	purge(plugin.PurgeRequest{All: true}, 8)
	expect("MISS", "MISS", "MISS", "MISS")
	for kind, want := range map[string]int64{"url": 2, "prefix": 12, "tag": 1, "all": 8} {
		if got := stats.Counter(MetricPurged, `route="r",kind="`+kind+`"`).Value(); got != want {
			t.Errorf("%s{kind=%s} = %d, want %d", MetricPurged, kind, got, want)
		}
	}
}

// TestPurgeInput refuses selectors it cannot use, naming the field.
func TestPurgeInput(t *testing.T) {
	t.Parallel()
	c := plugintest.MustBuild[*Cache](t, Name, "{}")
	for _, tc := range []struct {
		desc  string
		p     plugin.PurgeRequest
		field string
	}{
		{desc: "nothing", p: plugin.PurgeRequest{}, field: "all"},
		{desc: "two", p: plugin.PurgeRequest{URL: "http://a/", Tag: "t"}, field: "all"},
		{desc: "relative url", p: plugin.PurgeRequest{URL: "/a"}, field: "url"},
		{desc: "ftp url", p: plugin.PurgeRequest{URL: "ftp://a/b"}, field: "url"},
		{desc: "url without host", p: plugin.PurgeRequest{URL: "http:///a"}, field: "url"},
		{desc: "url with user", p: plugin.PurgeRequest{URL: "http://u:p@a/"}, field: "url"},
		{desc: "bad escape", p: plugin.PurgeRequest{URL: "http://a/%zz"}, field: "url"},
		{desc: "prefix without host", p: plugin.PurgeRequest{Prefix: "/v1/"}, field: "prefix"},
		{desc: "prefix with other scheme", p: plugin.PurgeRequest{Prefix: "ftp://a/"}, field: "prefix"},
		{desc: "tag with space", p: plugin.PurgeRequest{Tag: "a b"}, field: "tag"},
		{desc: "tag with comma", p: plugin.PurgeRequest{Tag: "a,b"}, field: "tag"},
		{desc: "long tag", p: plugin.PurgeRequest{Tag: string(make([]byte, 300))}, field: "tag"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := c.Purge(t.Context(), tc.p)
			var pe *plugin.PurgeInputError
			if !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("err = %v, want a PurgeInputError for %s", err, tc.field)
			}
		})
	}
}

// TestPurgeTagsAfterRevalidation: a 304 that carries new tags replaces the
// stored entry's tags.
func TestPurgeTagsAfterRevalidation(t *testing.T) {
	t.Parallel()
	c := plugintest.MustBuild[*Cache](t, Name, "{}")
	n := 0
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("Cache-Tag", "new")
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Cache-Tag", "old")
		fmt.Fprint(w, "body")
	}))
	for _, want := range []string{"MISS", "REVALIDATED"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://api.example/x", nil))
		if got := w.Header().Get("X-Cache"); got != want || w.Header().Get("Cache-Tag") != "" {
			t.Fatalf("X-Cache %s, want %s; Cache-Tag %q", got, want, w.Header().Get("Cache-Tag"))
		}
	}
	if k, _ := c.Purge(t.Context(), plugin.PurgeRequest{Tag: "old"}); k != 0 {
		t.Fatalf("old tag purged %d", k)
	}
	if k, _ := c.Purge(t.Context(), plugin.PurgeRequest{Tag: "new"}); k != 1 {
		t.Fatalf("new tag purged %d", k)
	}
	if n != 2 {
		t.Fatalf("backend requests %d", n)
	}
}
