package cache

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// BenchmarkHit measures a fresh memory-store hit through the plugin alone
// (no network, no gateway): the bypass checks, the key, the lookup, the
// freshness decision and the stored response written out with Age and
// X-Cache. The response is the load test's /cacheable one (100 bytes,
// public, max-age=3600) and the request carries the headers wrk sends.
func BenchmarkHit(b *testing.B) {
	h, r, w, upstream := benchSetup(b, "/cacheable", "public, max-age=3600")
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.h.Get("X-Cache") != "HIT" || *upstream != 1 {
		b.Fatalf("X-Cache %q after %d upstream requests, want HIT after 1", w.h.Get("X-Cache"), *upstream)
	}
}

// BenchmarkMiss measures a miss through the plugin alone: the response
// (the load test's /no-store one) is not storable, so every request is
// looked up, finds the key marked uncacheable (no coalescing), is forwarded
// to the handler through the recorder and not stored. The handler's own work is a few header writes.
func BenchmarkMiss(b *testing.B) {
	h, r, w, upstream := benchSetup(b, "/no-store", "no-store")
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.h.Get("X-Cache") != "MISS" || *upstream != b.N {
		b.Fatalf("X-Cache %q after %d upstream requests for %d, want MISS for each", w.h.Get("X-Cache"), *upstream, b.N)
	}
}

// benchSetup builds a memory cache in front of a handler that answers the
// load test's 100-byte body with Cache-Control cc and counts its calls, a
// request for path with the headers wrk sends, and a writer that discards.
func benchSetup(b *testing.B, path, cc string) (http.Handler, *http.Request, *discard, *int) {
	c := plugintest.MustBuild[*Cache](b, Name, "{store: memory}")
	body := bytes.Repeat([]byte("x"), 100)
	upstream := new(int)
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*upstream++
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Cache-Control"] = []string{cc}
		_, _ = w.Write(body)
	}))
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:28095"+path, nil)
	r.Header.Set("User-Agent", "wrk")
	return h, r, &discard{h: http.Header{}}, upstream
}
