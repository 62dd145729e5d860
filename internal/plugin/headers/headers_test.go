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

// build decodes src the way the gateway does and builds the instance.
func build(t testing.TB, src string) (*plugin.Instance, error) {
	t.Helper()
	_, in, err := plugintest.Build[plugin.Plugin](t, "headers", src)
	return in, err
}

func mustBuild(t testing.TB, src string) http.Handler {
	t.Helper()
	in, err := build(t, src)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return in.Plugin.Wrap(http.HandlerFunc(echoHandler))
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
	in, err := build(t, "response: {set: {X-Set: v}, remove: [Server]}")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			w := httptest.NewRecorder()
			in.Plugin.Wrap(tc.handler).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
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
	in, err := build(t, "response: {set: {X-Stream: yes}}")
	if err != nil {
		t.Fatal(err)
	}
	if got := plugintest.Streaming(t, in.Plugin.Wrap, nil).Get("X-Stream"); got != "yes" {
		t.Errorf("X-Stream = %q, want yes", got)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		config string
		want   []string // substrings of the error
	}{
		{desc: "empty config", config: "", want: []string{"routes[0].plugins[0].config", "nothing to do"}},
		{desc: "empty sides", config: "request: {}\nresponse: {}", want: []string{"nothing to do"}},
		{desc: "unknown field", config: "request: {sett: {X-A: b}}", want: []string{"routes[0].plugins[0].config.request.sett", "unknown field"}},
		{desc: "unknown top-level field", config: "requests: {}", want: []string{"config.requests", "unknown field"}},
		{desc: "remove not a list", config: "request: {remove: X-A}", want: []string{"request.remove", "expected a list"}},
		{desc: "invalid name in set", config: "request: {set: {'X Bad': v}}", want: []string{"request.set", `"X Bad" is not a valid header name`}},
		{desc: "invalid name in remove", config: "response: {remove: ['X:Bad']}", want: []string{"response.remove[0]", "not a valid header name"}},
		{desc: "invalid rename target", config: "response: {rename: {X-A: 'X B'}}", want: []string{"response.rename.X-A", "not a valid header name"}},
		{desc: "CR in value", config: "request: {set: {X-A: \"a\\rb\"}}", want: []string{"request.set.X-A", "CR or LF"}},
		{desc: "LF in value", config: "response: {add: {X-A: \"a\\nb\"}}", want: []string{"response.add.X-A", "CR or LF"}},
		{desc: "NUL in value", config: "response: {add: {X-A: \"a\\0b\"}}", want: []string{"response.add.X-A", "NUL"}},
		{desc: "hop-by-hop header", config: "request: {remove: [Connection]}", want: []string{"request.remove[0]", "Connection is managed"}},
		{desc: "transfer-encoding set", config: "response: {set: {transfer-encoding: chunked}}", want: []string{"response.set", "Transfer-Encoding is managed"}},
		{desc: "Host removal", config: "request: {remove: [Host]}", want: []string{"request.remove[0]", "Host can only be set"}},
		{desc: "Host on response", config: "response: {set: {Host: x}}", want: []string{"response.set", "Host can only be set"}},
		{desc: "invalid Host value", config: "request: {set: {Host: 'a b'}}", want: []string{"request.set.Host", "not a valid host"}},
		{desc: "duplicate names", config: "request: {set: {X-A: 1, x-a: 2}}", want: []string{"request.set", "name the same header"}},
		{desc: "rename to itself", config: "request: {rename: {X-A: x-a}}", want: []string{"request.rename.X-A", "to itself"}},
		{desc: "chained rename", config: "request: {rename: {X-A: X-B, X-B: X-C}}", want: []string{"request.rename.X-B", "chained"}},
		{desc: "two renames to one target", config: "request: {rename: {X-A: X-C, X-B: X-C}}", want: []string{"request.rename", "both renamed"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := build(t, tc.config)
			plugintest.ErrorMentions(t, err, tc.want...)
		})
	}
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
			in, err := build(b, bc.config)
			if err != nil {
				b.Fatal(err)
			}
			h := in.Plugin.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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
