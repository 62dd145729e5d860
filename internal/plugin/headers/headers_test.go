package headers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

func mustBuild(t testing.TB, src string) http.Handler {
	t.Helper()
	in := plugintest.MustBuild[plugin.Plugin](t, "headers", src)
	return in.Wrap(http.HandlerFunc(echoHandler))
}

// echoHandler reports the request headers it received as X-Got-* response
// headers and sets a few response headers of its own.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range r.Header {
		h["X-Got-"+k] = v
	}
	h.Set("X-Got-Host", r.Host)
	h.Set("Server", "upstream/1.0")
	h.Set("X-Old", "old-value")
	h.Add("X-Multi", "one")
	h.Add("X-Multi", "two")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, "ok")
}

func withID(r *http.Request, id string) *http.Request {
	rec := &request.Record{RequestID: id}
	return r.WithContext(request.WithRecord(r.Context(), rec))
}

func TestHeaders(t *testing.T) {
	// Table test: its length is the table of cases.
	t.Parallel()
	tests := []struct {
		desc    string
		config  string
		reqHdr  map[string][]string
		id      string // request ID in the record; "" means no record
		want    map[string][]string
		missing []string
	}{
		{
			desc:   "request set replaces",
			config: "request: {set: {X-From: portico}}",
			reqHdr: map[string][]string{"X-From": {"client", "other"}},
			want:   map[string][]string{"X-Got-X-From": {"portico"}},
		},
		{
			desc:   "request add appends",
			config: "request: {add: {X-Tag: b}}",
			reqHdr: map[string][]string{"X-Tag": {"a"}},
			want:   map[string][]string{"X-Got-X-Tag": {"a", "b"}},
		},
		{
			desc:   "request add to absent header",
			config: "request: {add: {x-tag: b}}",
			want:   map[string][]string{"X-Got-X-Tag": {"b"}},
		},
		{
			desc:    "request remove",
			config:  "request: {remove: [x-internal]}",
			reqHdr:  map[string][]string{"X-Internal": {"secret"}, "X-Keep": {"k"}},
			want:    map[string][]string{"X-Got-X-Keep": {"k"}},
			missing: []string{"X-Got-X-Internal"},
		},
		{
			desc:    "request rename replaces target",
			config:  "request: {rename: {X-Old: x-new}}",
			reqHdr:  map[string][]string{"X-Old": {"1", "2"}, "X-New": {"gone"}},
			want:    map[string][]string{"X-Got-X-New": {"1", "2"}},
			missing: []string{"X-Got-X-Old"},
		},
		{
			desc:    "request rename of absent header is a no-op",
			config:  "request: {rename: {X-Old: X-New}}",
			reqHdr:  map[string][]string{"X-New": {"kept"}},
			want:    map[string][]string{"X-Got-X-New": {"kept"}},
			missing: []string{"X-Got-X-Old"},
		},
		{
			desc:   "order is remove, rename, set, add",
			config: "request: {remove: [X-A], rename: {X-B: X-A}, set: {X-A: set}, add: {X-A: added}}",
			reqHdr: map[string][]string{"X-A": {"orig-a"}, "X-B": {"orig-b"}},
			want:   map[string][]string{"X-Got-X-A": {"set", "added"}},
		},
		{
			desc:   "request Host set",
			config: "request: {set: {Host: internal.example}}",
			want:   map[string][]string{"X-Got-Host": {"internal.example"}},
		},
		{
			desc:   "request_id expands",
			config: "request: {set: {X-Trace: 'id=$request_id;again=$request_id', X-Id: $request_id}}",
			id:     "abc123",
			want:   map[string][]string{"X-Got-X-Trace": {"id=abc123;again=abc123"}, "X-Got-X-Id": {"abc123"}},
		},
		{
			desc:   "request_id without a record expands to empty",
			config: "request: {set: {X-Trace: 'id=$request_id'}}",
			want:   map[string][]string{"X-Got-X-Trace": {"id="}},
		},
		{
			desc:    "response remove, rename, set, add",
			config:  "response: {remove: [Server], rename: {X-Old: X-New}, set: {X-Frame-Options: DENY}, add: {X-Multi: three}}",
			want:    map[string][]string{"X-New": {"old-value"}, "X-Frame-Options": {"DENY"}, "X-Multi": {"one", "two", "three"}},
			missing: []string{"Server", "X-Old"},
		},
		{
			desc:   "response request_id",
			config: "response: {add: {X-Served-By: 'portico/$request_id'}}",
			id:     "r-1",
			want:   map[string][]string{"X-Served-By": {"portico/r-1"}},
		},
		{
			desc:    "both sides",
			config:  "request: {set: {X-From: portico}}\nresponse: {remove: [Server]}",
			want:    map[string][]string{"X-Got-X-From": {"portico"}},
			missing: []string{"Server"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := mustBuild(t, tc.config)
			r := httptest.NewRequest(http.MethodGet, "http://example.com/x", nil)
			for k, v := range tc.reqHdr {
				r.Header[k] = v
			}
			if tc.id != "" {
				r = withID(r, tc.id)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			res := w.Result()
			if res.StatusCode != http.StatusCreated {
				t.Errorf("status = %d, want 201", res.StatusCode)
			}
			for k, want := range tc.want {
				if got := res.Header[k]; !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			for _, k := range tc.missing {
				if got, ok := res.Header[k]; ok {
					t.Errorf("%s = %q, want absent", k, got)
				}
			}
		})
	}
}

func TestResponseWriterPaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		handler http.HandlerFunc
		status  int
	}{
		{
			desc:    "handler never writes",
			handler: func(http.ResponseWriter, *http.Request) {},
			status:  http.StatusOK,
		},
		{
			desc:    "write without WriteHeader",
			handler: func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "x") },
			status:  http.StatusOK,
		},
		{
			desc: "flush before write",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				if err := http.NewResponseController(w).Flush(); err != nil {
					panic(err)
				}
			},
			status: http.StatusOK,
		},
		{
			desc: "header set by handler after WriteHeader is not the one sent",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Server", "kept")
				w.WriteHeader(http.StatusAccepted)
				w.Header().Set("X-Late", "late")
			},
			status: http.StatusAccepted,
		},
	}
	in := plugintest.MustBuild[plugin.Plugin](t, "headers", "response: {set: {X-Set: v}, remove: [Server]}")
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			in.Wrap(tc.handler).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			res := w.Result()
			if res.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", res.StatusCode, tc.status)
			}
			if got := res.Header.Get("X-Set"); got != "v" {
				t.Errorf("X-Set = %q, want v", got)
			}
			if got := res.Header.Get("Server"); got != "" {
				t.Errorf("Server = %q, want removed", got)
			}
		})
	}
}

// TestStreaming checks that flushed chunks reach a real client before the
// handler finishes and that ResponseController reaches the connection.
func TestStreaming(t *testing.T) {
	t.Parallel()
	in := plugintest.MustBuild[plugin.Plugin](t, "headers", "response: {set: {X-Stream: yes}}")
	if got := plugintest.Streaming(t, in.Wrap, nil).Get("X-Stream"); got != "yes" {
		t.Errorf("X-Stream = %q, want yes", got)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, "headers", []plugintest.ConfigError{
		{Desc: "empty config", Config: "", Want: []string{"routes[0].plugins[0].config", "nothing to do"}},
		{Desc: "empty sides", Config: "request: {}\nresponse: {}", Want: []string{"nothing to do"}},
		{Desc: "unknown field", Config: "request: {sett: {X-A: b}}", Want: []string{"routes[0].plugins[0].config.request.sett", "unknown field"}},
		{Desc: "unknown top-level field", Config: "requests: {}", Want: []string{"config.requests", "unknown field"}},
		{Desc: "remove not a list", Config: "request: {remove: X-A}", Want: []string{"request.remove", "expected a list"}},
		{Desc: "invalid name in set", Config: "request: {set: {'X Bad': v}}", Want: []string{"request.set", `"X Bad" is not a valid header name`}},
		{Desc: "invalid name in remove", Config: "response: {remove: ['X:Bad']}", Want: []string{"response.remove[0]", "not a valid header name"}},
		{Desc: "invalid rename target", Config: "response: {rename: {X-A: 'X B'}}", Want: []string{"response.rename.X-A", "not a valid header name"}},
		{Desc: "CR in value", Config: "request: {set: {X-A: \"a\\rb\"}}", Want: []string{"request.set.X-A", "CR or LF"}},
		{Desc: "LF in value", Config: "response: {add: {X-A: \"a\\nb\"}}", Want: []string{"response.add.X-A", "CR or LF"}},
		{Desc: "NUL in value", Config: "response: {add: {X-A: \"a\\0b\"}}", Want: []string{"response.add.X-A", "NUL"}},
		{Desc: "hop-by-hop header", Config: "request: {remove: [Connection]}", Want: []string{"request.remove[0]", "Connection is managed"}},
		{Desc: "transfer-encoding set", Config: "response: {set: {transfer-encoding: chunked}}", Want: []string{"response.set", "Transfer-Encoding is managed"}},
		{Desc: "Host removal", Config: "request: {remove: [Host]}", Want: []string{"request.remove[0]", "Host can only be set"}},
		{Desc: "Host on response", Config: "response: {set: {Host: x}}", Want: []string{"response.set", "Host can only be set"}},
		{Desc: "invalid Host value", Config: "request: {set: {Host: 'a b'}}", Want: []string{"request.set.Host", "not a valid host"}},
		{Desc: "duplicate names", Config: "request: {set: {X-A: 1, x-a: 2}}", Want: []string{"request.set", "name the same header"}},
		{Desc: "rename to itself", Config: "request: {rename: {X-A: x-a}}", Want: []string{"request.rename.X-A", "to itself"}},
		{Desc: "chained rename", Config: "request: {rename: {X-A: X-B, X-B: X-C}}", Want: []string{"request.rename.X-B", "chained"}},
		{Desc: "two renames to one target", Config: "request: {rename: {X-A: X-C, X-B: X-C}}", Want: []string{"request.rename", "both renamed"}},
	})
}

func BenchmarkHeaders(b *testing.B) {
	for _, bc := range []struct{ desc, config string }{
		{"static", `
request: {remove: [X-Internal], rename: {X-Old: X-New}, set: {X-From: portico}, add: {X-Tag: a}}
response: {remove: [Server], set: {X-Frame-Options: DENY}}`},
		{"request_id", `
request: {set: {X-Trace: 'portico-$request_id'}}
response: {set: {X-Request: $request_id}}`},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			in := plugintest.MustBuild[plugin.Plugin](b, "headers", bc.config)
			h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusOK)
			}))
			r := withID(httptest.NewRequest(http.MethodGet, "/", nil), "0123456789abcdef0123456789abcdef")
			w := &discardWriter{h: http.Header{}}
			internal, old := []string{"secret"}, []string{"value"}
			b.ReportAllocs()
			for b.Loop() {
				r.Header["X-Internal"] = internal
				r.Header["X-Old"] = old
				delete(r.Header, "X-Tag")
				clear(w.h)
				w.h["Server"] = internal
				h.ServeHTTP(w, r)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}
