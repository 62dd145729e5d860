package cors

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

const (
	exactCfg = `
allow_origins: [https://app.example.com, "http://localhost:3000", "https://*.example.org"]
allow_methods: [get, post]
allow_headers: [Content-Type, X-Api-Key]
expose_headers: [X-Total]
max_age: 10m`
	credsCfg = `
allow_origins: ["https://app.example.com"]
allow_credentials: true`
	anyCfg      = `allow_origins: ["*"]`
	anyCredsCfg = `{allow_origins: ["*"], allow_credentials: true, allow_methods: ["*"], allow_headers: ["*"]}`
)

// corsCase is one request of TestCORS and what the plugin must make of it.
type corsCase struct {
	desc   string
	config string
	method string
	hdr    map[string]string
	// upstream is whether the request must reach the next handler.
	upstream bool
	status   int
	want     map[string]string // "" means absent
}

func TestCORS(t *testing.T) {
	// Table test: its length is the table of cases.
	t.Parallel()
	tests := []corsCase{
		{
			desc: "no origin passes through untouched", config: exactCfg, method: "GET",
			upstream: true, status: 200,
			want: map[string]string{hACAO: "upstream", hVary: "Accept-Encoding", hACEH: "X-Upstream"},
		},
		{
			desc: "actual request from exact origin", config: exactCfg, method: "GET",
			hdr:      map[string]string{"Origin": "https://app.example.com"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "https://app.example.com", hACEH: "X-Total", hVary: "Accept-Encoding, Origin", hACAC: "", hACAM: ""},
		},
		{
			desc: "origin match ignores case", config: exactCfg, method: "GET",
			hdr:      map[string]string{"Origin": "HTTPS://App.Example.com"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "HTTPS://App.Example.com"},
		},
		{
			desc: "actual request from wildcard origin", config: exactCfg, method: "POST",
			hdr:      map[string]string{"Origin": "https://a.b.example.org"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "https://a.b.example.org"},
		},
		{
			desc: "wildcard does not match the apex", config: exactCfg, method: "GET",
			hdr:      map[string]string{"Origin": "https://example.org"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "upstream"},
		},
		{
			desc: "wildcard does not match a lookalike", config: exactCfg, method: "GET",
			hdr:      map[string]string{"Origin": "https://evilexample.org"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "upstream"},
		},
		{
			desc: "port must match", config: exactCfg, method: "GET",
			hdr:      map[string]string{"Origin": "http://localhost:3001"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "upstream"},
		},
		{
			desc: "disallowed origin passes through unchanged", config: exactCfg, method: "GET",
			hdr:      map[string]string{"Origin": "https://evil.example.com"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "upstream", hVary: "Accept-Encoding", hACEH: "X-Upstream"},
		},
		{
			desc: "preflight allowed", config: exactCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "http://localhost:3000", hReqMeth: "POST", hReqHdrs: "content-type"},
			status: 204,
			want: map[string]string{
				hACAO: "http://localhost:3000", hACAM: "GET, POST", hACAH: "Content-Type, X-Api-Key",
				hMaxAge: "600", hVary: "Origin", hACAC: "",
			},
		},
		{
			desc: "preflight origin not allowed", config: exactCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "https://evil.example.com", hReqMeth: "GET"},
			status: 403,
			want:   map[string]string{hACAO: "", "Content-Type": "application/json"},
		},
		{
			desc: "preflight method not allowed", config: exactCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "https://app.example.com", hReqMeth: "DELETE"},
			status: 403,
			want:   map[string]string{hACAO: "", "Content-Type": "application/json"},
		},
		{
			desc: "OPTIONS without request method is an actual request", config: exactCfg, method: "OPTIONS",
			hdr:      map[string]string{"Origin": "https://app.example.com"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "https://app.example.com", hACAM: ""},
		},
		{
			desc: "default methods and reflected headers", config: credsCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "https://app.example.com", hReqMeth: "PATCH", hReqHdrs: "x-a, x-b"},
			status: 204,
			want: map[string]string{
				hACAO: "https://app.example.com", hACAC: "true", hACAM: "GET, HEAD, PUT, PATCH, POST, DELETE",
				hACAH: "x-a, x-b", hMaxAge: "", hVary: "Origin, Access-Control-Request-Headers",
			},
		},
		{
			desc: "default methods exclude OPTIONS", config: credsCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "https://app.example.com", hReqMeth: "OPTIONS"},
			status: 403,
		},
		{
			desc: "credentials on actual request", config: credsCfg, method: "GET",
			hdr:      map[string]string{"Origin": "https://app.example.com"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "https://app.example.com", hACAC: "true", hACEH: ""},
		},
		{
			desc: "any origin sends *", config: anyCfg, method: "GET",
			hdr:      map[string]string{"Origin": "https://whoever.test"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "*", hVary: "Accept-Encoding", hACEH: ""},
		},
		{
			desc: "any origin preflight", config: anyCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "null", hReqMeth: "PUT"},
			status: 204,
			want:   map[string]string{hACAO: "*", hVary: "Access-Control-Request-Headers", hACAH: ""},
		},
		{
			desc: "any origin with credentials echoes the origin", config: anyCredsCfg, method: "GET",
			hdr:      map[string]string{"Origin": "https://whoever.test"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "https://whoever.test", hACAC: "true", hVary: "Accept-Encoding, Origin"},
		},
		{
			desc: "any origin with credentials reflects method and headers", config: anyCredsCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "https://whoever.test", hReqMeth: "PURGE", hReqHdrs: "X-Custom"},
			status: 204,
			want: map[string]string{
				hACAO: "https://whoever.test", hACAC: "true", hACAM: "PURGE", hACAH: "X-Custom",
				hVary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
			},
		},
		{
			desc: "any origin with credentials refuses null", config: anyCredsCfg, method: "OPTIONS",
			hdr:    map[string]string{"Origin": "null", hReqMeth: "GET"},
			status: 403,
		},
		{
			desc: "default port is normalised", config: `allow_origins: ["https://app.example.com:443"]`, method: "GET",
			hdr:      map[string]string{"Origin": "https://app.example.com"},
			upstream: true, status: 200,
			want: map[string]string{hACAO: "https://app.example.com"},
		},
	}
	plugintest.RunCases(t, tests, func(tc corsCase) string { return tc.desc }, checkCORS)
}

// checkCORS sends tc's request through the plugin built from tc.config
// to an upstream that sets CORS headers of its own, and checks the answer.
func checkCORS(t *testing.T, tc corsCase) {
	in := plugintest.MustBuild[plugin.Plugin](t, "cors", tc.config)
	var reached atomic.Bool
	h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached.Store(true)
		h := w.Header()
		h.Set(hACAO, "upstream")
		h.Set(hVary, "Accept-Encoding")
		h.Set(hACEH, "X-Upstream")
		w.WriteHeader(http.StatusOK)
	}))
	r := httptest.NewRequest(tc.method, "/", nil)
	for k, v := range tc.hdr {
		r.Header.Set(k, v)
	}
	r = r.WithContext(request.WithRecord(r.Context(), &request.Record{RequestID: "rid-1"}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	if reached.Load() != tc.upstream {
		t.Errorf("upstream reached = %v, want %v", reached.Load(), tc.upstream)
	}
	if res.StatusCode != tc.status {
		t.Errorf("status = %d, want %d", res.StatusCode, tc.status)
	}
	for k, want := range tc.want {
		got := strings.Join(res.Header.Values(k), ", ")
		if got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if tc.status == http.StatusForbidden {
		var body struct{ Error, RequestID string }
		dec := json.NewDecoder(res.Body)
		if err := dec.Decode(&body); err != nil || !strings.Contains(body.Error, "not allowed") {
			t.Errorf("403 body: %+v, %v", body, err)
		}
	}
}

func TestStreaming(t *testing.T) {
	t.Parallel()
	in := plugintest.MustBuild[plugin.Plugin](t, "cors", credsCfg)
	h := plugintest.Streaming(t, in.Wrap, func(r *http.Request) { r.Header.Set("Origin", "https://app.example.com") })
	if got := h.Get(hACAO); got != "https://app.example.com" {
		t.Errorf("%s = %q", hACAO, got)
	}
	if got := h.Get(hACAC); got != "true" {
		t.Errorf("%s = %q", hACAC, got)
	}
}

func TestHandlerNeverWrites(t *testing.T) {
	t.Parallel()
	in := plugintest.MustBuild[plugin.Plugin](t, "cors", exactCfg)
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Origin", "https://app.example.com")
	in.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
	if got := w.Result().Header.Get(hACAO); got != "https://app.example.com" {
		t.Errorf("%s = %q", hACAO, got)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, "cors", []plugintest.ConfigError{
		{Desc: "empty config", Config: "", Want: []string{"routes[0].plugins[0].config", "allow_origins: at least one origin"}},
		{Desc: "unknown field", Config: "allow_origin: ['*']", Want: []string{"config.allow_origin", "unknown field"}},
		{Desc: "origins not a list", Config: "allow_origins: '*'", Want: []string{"config.allow_origins", "expected a list"}},
		{Desc: "origin without scheme", Config: "allow_origins: [app.example.com]", Want: []string{"allow_origins[0]", "not an origin"}},
		{Desc: "origin with path", Config: "allow_origins: ['*', 'https://a.example.com/x']", Want: []string{"allow_origins[1]", "no path"}},
		{Desc: "wildcard in the middle", Config: "allow_origins: ['https://api.*.example.com']", Want: []string{"allow_origins[0]", "whole leading label"}},
		{Desc: "partial label wildcard", Config: "allow_origins: ['https://*foo.example.com']", Want: []string{"allow_origins[0]", "whole leading label"}},
		{Desc: "bare wildcard host", Config: "allow_origins: ['https://*']", Want: []string{"allow_origins[0]"}},
		{Desc: "wildcard scheme", Config: "allow_origins: ['*://example.com']", Want: []string{"allow_origins[0]", "invalid scheme"}},
		{Desc: "bad port", Config: "allow_origins: ['https://example.com:99999']", Want: []string{"allow_origins[0]", "invalid port"}},
		{Desc: "bad method", Config: "{allow_origins: ['*'], allow_methods: ['GE T']}", Want: []string{"allow_methods[0]", "not a valid method"}},
		{Desc: "bad allow header", Config: "{allow_origins: ['*'], allow_headers: [ok, 'x:y']}", Want: []string{"allow_headers[1]", "not a valid header name"}},
		{Desc: "bad expose header", Config: "{allow_origins: ['*'], expose_headers: ['a b']}", Want: []string{"expose_headers[0]", "not a valid header name"}},
		{Desc: "negative max_age", Config: "{allow_origins: ['*'], max_age: -10m}", Want: []string{"max_age", "must not be negative"}},
		{Desc: "malformed max_age", Config: "{allow_origins: ['*'], max_age: soon}", Want: []string{"config.max_age", "invalid duration"}},
		{Desc: "non-bool credentials", Config: "{allow_origins: ['*'], allow_credentials: yes please}", Want: []string{"config.allow_credentials", "true or false"}},
	})
}

func BenchmarkCORS(b *testing.B) {
	for _, bc := range []struct {
		desc, config, method string
		hdr                  map[string]string
	}{
		{"no origin", exactCfg, "GET", nil},
		{"actual exact", exactCfg, "GET", map[string]string{"Origin": "https://app.example.com"}},
		{"actual wildcard", exactCfg, "GET", map[string]string{"Origin": "https://a.example.org"}},
		{"actual any", anyCfg, "GET", map[string]string{"Origin": "https://a.test"}},
		{"preflight", exactCfg, "OPTIONS", map[string]string{"Origin": "https://app.example.com", hReqMeth: "POST", hReqHdrs: "content-type"}},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			in := plugintest.MustBuild[plugin.Plugin](b, "cors", bc.config)
			h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusOK)
			}))
			r := httptest.NewRequest(bc.method, "/", nil)
			for k, v := range bc.hdr {
				r.Header.Set(k, v)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, r)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
