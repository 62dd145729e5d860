package gateway_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// TestCacheWithCompression: with compression and a cache on one route, one
// identity copy is stored, and each answer, miss or hit, is compressed as
// its own client's Accept-Encoding asks.
func TestCacheWithCompression(t *testing.T) {
	t.Parallel()
	body := []byte(strings.Repeat(`{"id": 1, "name": "a fairly repetitive JSON document"}`, 100))
	var hits atomic.Int64
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write(body)
	}))
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {be: {targets: [{url: "{{BE}}"}]}}
routes:
  - name: docs
    match: {path_prefix: /docs}
    upstream: be
    plugins:
      - {name: compression}
      - {name: cache}
`, map[string]string{"BE": be.URL})
	for i, tc := range []struct{ ae, wantCE, wantCache string }{
		{"gzip", "gzip", "MISS"},
		{"zstd", "zstd", "HIT"},
		{"br;q=1, gzip;q=0.5", "br", "HIT"},
		{"identity", "", "HIT"},
	} {
		req := e2eReq(t, http.MethodGet, tg.URL+"/docs/a", nil)
		req.Header.Set("Accept-Encoding", tc.ae)
		resp, raw := e2eDo(t, req)
		if ce, xc := resp.Header.Get("Content-Encoding"), resp.Header.Get("X-Cache"); ce != tc.wantCE || xc != tc.wantCache {
			t.Errorf("request %d (%s): Content-Encoding %q X-Cache %q, want %q %q", i, tc.ae, ce, xc, tc.wantCE, tc.wantCache)
			continue
		}
		got, err := io.ReadAll(e2eDecoder(t, tc.wantCE, bytes.NewReader(raw)))
		if err != nil || !bytes.Equal(got, body) {
			t.Errorf("request %d (%s): decoded %d bytes (err %v), want the backend's %d", i, tc.ae, len(got), err, len(body))
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("backend answered %d times, want 1", n)
	}
}

// TestCacheVaryAcceptEncoding: an upstream that compresses by itself and
// says Vary: Accept-Encoding gets one stored variant per Accept-Encoding,
// and each client the variant it asked for.
func TestCacheVaryAcceptEncoding(t *testing.T) {
	t.Parallel()
	body := []byte(strings.Repeat("plain text that compresses well. ", 50))
	var hits atomic.Int64
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Encoding")
		if r.Header.Get("Accept-Encoding") == "gzip" {
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = zw.Write(body)
			_ = zw.Close()
			return
		}
		_, _ = w.Write(body)
	}))
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {be: {targets: [{url: "{{BE}}"}]}}
routes:
  - name: v
    match: {path_prefix: /}
    upstream: be
    plugins:
      - {name: cache}
`, map[string]string{"BE": be.URL})
	for i, tc := range []struct{ ae, wantCE, wantCache string }{
		{"gzip", "gzip", "MISS"},
		{"identity", "", "MISS"},
		{"gzip", "gzip", "HIT"},
		{"identity", "", "HIT"},
	} {
		req := e2eReq(t, http.MethodGet, tg.URL+"/v", nil)
		req.Header.Set("Accept-Encoding", tc.ae)
		resp, raw := e2eDo(t, req)
		if ce, xc := resp.Header.Get("Content-Encoding"), resp.Header.Get("X-Cache"); ce != tc.wantCE || xc != tc.wantCache {
			t.Fatalf("request %d (%s): Content-Encoding %q X-Cache %q, want %q %q", i, tc.ae, ce, xc, tc.wantCE, tc.wantCache)
		}
		if resp.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("request %d: Vary %q", i, resp.Header.Get("Vary"))
		}
		got, err := io.ReadAll(e2eDecoder(t, tc.wantCE, bytes.NewReader(raw)))
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("request %d (%s): decoded %d bytes (err %v)", i, tc.ae, len(got), err)
		}
	}
	if n := hits.Load(); n != 2 {
		t.Errorf("backend answered %d times, want 2 (one per variant)", n)
	}
}
