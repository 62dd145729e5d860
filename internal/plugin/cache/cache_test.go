package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

func TestConfigErrors(t *testing.T) {
	plugintest.ExpectErrors(t, Name, []plugintest.ConfigError{
		{Desc: "unknown store", Config: "{store: disk}", Want: []string{"store", "memory or redis"}},
		{Desc: "tiny max_bytes", Config: "{max_bytes: 100}", Want: []string{"max_bytes", "4KiB"}},
		{Desc: "max_entry above max_bytes", Config: "{max_bytes: 1MiB, max_entry: 2MiB}", Want: []string{"max_entry"}},
		{Desc: "bad ttl_mode", Config: "{ttl: 1s, ttl_mode: forever}", Want: []string{"ttl_mode", "cap or override"}},
		{Desc: "override without ttl", Config: "{ttl_mode: override}", Want: []string{"positive ttl"}},
		{Desc: "bad status header", Config: "{status_header: 'X Cache'}", Want: []string{"status_header"}},
		{Desc: "bad key part", Config: "{key: {extra: [header]}}", Want: []string{"key.extra", "key[0]"}},
		{Desc: "bad ignore_query", Config: "{key: {ignore_query: ['a=b']}}", Want: []string{"key.ignore_query[0]"}},
		{Desc: "waiters", Config: "{coalesce: {max_waiters: -1}}", Want: []string{"coalesce.max_waiters"}},
		{Desc: "wait", Config: "{coalesce: {wait: 2h}}", Want: []string{"coalesce.wait"}},
		{Desc: "unknown field", Config: "{max_size: 1MiB}", Want: []string{"max_size"}},
	})
}

// clock is a fake clock tests move forward.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestStaleWhileRevalidate serves the stale entry at once and refreshes it
// with one background request.
func TestStaleWhileRevalidate(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	stats := observe.NewStats()
	c := plugintest.MustBuild[*Cache](t, Name, "{}", plugintest.WithClock(clk.Now), plugintest.WithStats(stats), plugintest.WithRoute("r"))
	var hits atomic.Int32
	release := make(chan struct{})
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if n == 2 {
			<-release // the background revalidation waits until the test lets it go
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		w.Header().Set("Date", clk.Now().Format(http.TimeFormat))
		fmt.Fprintf(w, "v%d", n)
	}))
	get := func() (string, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://api.example/swr", nil))
		return w.Header().Get("X-Cache"), w.Body.String()
	}
	if s, b := get(); s != "MISS" || b != "v1" {
		t.Fatalf("%s %s", s, b)
	}
	clk.add(20 * time.Second)
	// Every stale answer is immediate; one revalidation runs for the key.
	for range 20 {
		if s, b := get(); s != "STALE" || b != "v1" {
			t.Fatalf("%s %s", s, b)
		}
	}
	wait.For(t, 5*time.Second, "the background request", func() bool { return hits.Load() == 2 })
	close(release)
	wait.For(t, 5*time.Second, "background revalidation", func() bool {
		s, b := get()
		return s == "HIT" && b == "v2"
	})
	if n := hits.Load(); n != 2 {
		t.Fatalf("upstream requests %d", n)
	}
}

// TestLargeResponseStreams: a response above max_entry reaches the client
// whole and is not stored; SSE-style flushes pass through a miss.
func TestLargeResponseStreams(t *testing.T) {
	c := plugintest.MustBuild[*Cache](t, Name, "{max_bytes: 64KiB, max_entry: 1KiB}")
	body := make([]byte, 4000)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	var hits atomic.Int32
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write(body[:2000])
		_, _ = w.Write(body[2000:])
	}))
	for i := range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://api.example/big", nil))
		if w.Body.String() != string(body) || w.Header().Get("X-Cache") != "MISS" {
			t.Fatalf("request %d: X-Cache %q, %d bytes", i, w.Header().Get("X-Cache"), w.Body.Len())
		}
	}
	if hits.Load() != 2 || c.StoreStats().Entries != 0 {
		t.Fatalf("upstream %d, entries %d", hits.Load(), c.StoreStats().Entries)
	}
	plugintest.Streaming(t, c.Wrap, nil)
}

// TestBadUpstreamHeaders: malformed caching headers never crash and are
// not trusted for freshness.
func TestBadUpstreamHeaders(t *testing.T) {
	c := plugintest.MustBuild[*Cache](t, Name, "{}")
	for i, hv := range [][2]string{
		{"Cache-Control", "max-age=abc"}, {"Cache-Control", "max-age=99999999999999999999"},
		{"Expires", "yesterday"}, {"Vary", ",,,"}, {"Age", "-5"}, {"Content-Length", "x"}, {"Date", "\x00"},
		{"Cache-Control", `max-age="10`}, {"Vary", "*"},
	} {
		h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(hv[0], hv[1])
			_, _ = w.Write([]byte("ok"))
		}))
		for range 2 {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", fmt.Sprintf("http://api.example/bad%d", i), nil))
			if w.Code != 200 {
				t.Fatalf("%v: status %d", hv, w.Code)
			}
		}
	}
}

// TestHitAllocations bounds the allocations of a fresh hit (the hot path).
func TestHitAllocations(t *testing.T) {
	c := plugintest.MustBuild[*Cache](t, Name, "{}")
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = w.Write([]byte("hello"))
	}))
	r := httptest.NewRequest("GET", "http://api.example/items?a=1", nil)
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	n := testing.AllocsPerRun(200, func() {
		clear(w.h)
		h.ServeHTTP(w, r)
	})
	t.Logf("allocations per hit: %.0f", n)
	if w.h.Get("X-Cache") != "HIT" || n > 2 {
		t.Fatalf("X-Cache %q, %.0f allocations per hit", w.h.Get("X-Cache"), n)
	}
}

type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }

// TestOverrideStatuses: ttl_mode override stores a 200 without
// Cache-Control, never a 500 the upstream did not mark cacheable.
func TestOverrideStatuses(t *testing.T) {
	c := plugintest.MustBuild[*Cache](t, Name, "{ttl: 30s, ttl_mode: override}")
	var hits atomic.Int32
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/err" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		_, _ = w.Write([]byte("x"))
	}))
	for _, path := range []string{"/ok", "/ok", "/err", "/err"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://api.example"+path, nil))
	}
	if n := hits.Load(); n != 3 {
		t.Fatalf("upstream requests %d, want 3 (one for /ok, two for /err)", n)
	}
}

// TestRevalidationCoalesced: concurrent requests for one stale entry make
// one conditional request upstream and all get the refreshed entry.
func TestRevalidationCoalesced(t *testing.T) {
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := plugintest.MustBuild[*Cache](t, Name, "{}", plugintest.WithClock(clk.Now))
	var hits atomic.Int32
	release := make(chan struct{})
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=10")
		w.Header().Set("Etag", `"v1"`)
		w.Header().Set("Date", clk.Now().Format(http.TimeFormat))
		if n > 1 {
			<-release
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		_, _ = w.Write([]byte("v1"))
	}))
	newReq := func() *http.Request { return httptest.NewRequest("GET", "http://api.example/rv", nil) }
	h.ServeHTTP(httptest.NewRecorder(), newReq())
	clk.add(20 * time.Second)
	const n = 20
	var wg sync.WaitGroup
	got := make([]*httptest.ResponseRecorder, n)
	for i := range n {
		wg.Go(func() {
			got[i] = httptest.NewRecorder()
			h.ServeHTTP(got[i], newReq())
		})
	}
	key := c.primaryKey(newReq())
	wait.For(t, 5*time.Second, "waiters", func() bool { return c.rgroup.Waiting(key) == n-1 })
	close(release)
	wg.Wait()
	for i, w := range got {
		if w.Code != 200 || w.Body.String() != "v1" || w.Header().Get("X-Cache") != "REVALIDATED" {
			t.Fatalf("answer %d: %d %q %q", i, w.Code, w.Body.String(), w.Header().Get("X-Cache"))
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("upstream requests %d, want 2", hits.Load())
	}
}
