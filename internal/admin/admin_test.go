package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portico-gw/portico/internal/observe"
)

// fakeController is a Controller whose readiness can be flipped.
type fakeController struct {
	ready atomic.Bool
	info  map[string]any
	stats *observe.Stats
}

func (f *fakeController) Ready() bool          { return f.ready.Load() }
func (f *fakeController) Info() map[string]any { return f.info }

// Metrics and Stats are private to the fake.
func (f *fakeController) Metrics() *observe.Metrics { return observe.NewMetrics(f.Stats()) }
func (f *fakeController) Stats() *observe.Stats {
	if f.stats == nil {
		f.stats = observe.NewStats()
	}
	return f.stats
}

// TestAdminEndpoints checks status codes, JSON bodies and headers of the
// admin endpoints against a real server.
func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	info := map[string]any{"source": "/etc/portico.yaml", "routes": float64(3)}
	tests := []struct {
		desc       string
		ready      bool
		method     string
		path       string
		wantStatus int
		wantBody   map[string]any // nil: body not checked
		wantAllow  bool           // an Allow header naming GET is expected
	}{
		{desc: "healthz", method: http.MethodGet, path: "/healthz", wantStatus: 200, wantBody: map[string]any{"status": "ok"}},
		{desc: "healthz while not ready", ready: false, method: http.MethodGet, path: "/healthz", wantStatus: 200, wantBody: map[string]any{"status": "ok"}},
		{desc: "readyz not ready", ready: false, method: http.MethodGet, path: "/readyz", wantStatus: 503, wantBody: map[string]any{"status": "not ready"}},
		{desc: "readyz ready merges info", ready: true, method: http.MethodGet, path: "/readyz", wantStatus: 200,
			wantBody: map[string]any{"status": "ready", "source": "/etc/portico.yaml", "routes": float64(3)}},
		{desc: "unknown path", method: http.MethodGet, path: "/nope", wantStatus: 404, wantBody: map[string]any{"error": "not found"}},
		{desc: "root", method: http.MethodGet, path: "/", wantStatus: 404, wantBody: map[string]any{"error": "not found"}},
		{desc: "healthz subpath", method: http.MethodGet, path: "/healthz/x", wantStatus: 404, wantBody: map[string]any{"error": "not found"}},
		{desc: "POST healthz", method: http.MethodPost, path: "/healthz", wantStatus: 405, wantAllow: true},
		{desc: "DELETE readyz", ready: true, method: http.MethodDelete, path: "/readyz", wantStatus: 405, wantAllow: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := &fakeController{info: info}
			c.ready.Store(tc.ready)
			srv := httptest.NewServer(Handler(c))
			defer srv.Close()
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.wantStatus)
			}
			if tc.wantAllow && !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("Allow = %q, want it to list GET", resp.Header.Get("Allow"))
			}
			if tc.wantBody == nil {
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			var got map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if len(got) != len(tc.wantBody) {
				t.Fatalf("body = %v, want %v", got, tc.wantBody)
			}
			for k, v := range tc.wantBody {
				if got[k] != v {
					t.Fatalf("body[%q] = %v, want %v (body %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// TestReadyzFollowsController checks that readiness is read on every
// request, so the endpoint flips as soon as the gateway becomes ready.
func TestReadyzFollowsController(t *testing.T) {
	t.Parallel()
	c := &fakeController{info: map[string]any{"routes": float64(1)}}
	srv := httptest.NewServer(Handler(c))
	defer srv.Close()
	get := func() int {
		resp, err := srv.Client().Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != http.StatusServiceUnavailable {
		t.Fatalf("before ready: %d", s)
	}
	c.ready.Store(true)
	if s := get(); s != http.StatusOK {
		t.Fatalf("after ready: %d", s)
	}
	c.ready.Store(false)
	if s := get(); s != http.StatusServiceUnavailable {
		t.Fatalf("after unready: %d", s)
	}
}

// TestHealthzHead checks that HEAD /healthz answers 200 like GET.
func TestHealthzHead(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler(&fakeController{}))
	defer srv.Close()
	resp, err := srv.Client().Head(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD /healthz = %d", resp.StatusCode)
	}
}
