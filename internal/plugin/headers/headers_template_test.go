package headers

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"testing"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

// templateRequest is a request with a record carrying a consumer, claims,
// a path parameter, a client IP and a request ID.
func templateRequest(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("X-Tenant", "acme")
	rec := &request.Record{RequestID: "rid-7", ClientIP: netip.MustParseAddr("198.51.100.4"), Route: "users",
		Consumer: &consumer.Consumer{ID: "c-1", Name: "alice"}, Claims: map[string]any{"sub": "u-9"}}
	rec.Params.Add("id", "42")
	return r.WithContext(request.WithRecord(r.Context(), rec))
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, config, target string
		reqHdr               map[string]string
		want                 map[string][]string
		missing              []string
	}{
		{
			desc: "request values",
			config: `request: {set: {X-User: '${param:id}', X-Page: '${query:page|1}', X-T: 't-${header:X-Tenant}',
  X-Ip: '${ip}', X-Consumer: '${consumer}/${consumer_name}', X-Sub: '${claim:sub}', X-Rid: '${request_id}', X-Route: '${route}'}}`,
			target: "/users/42?page=3",
			want: map[string][]string{"X-Got-X-User": {"42"}, "X-Got-X-Page": {"3"}, "X-Got-X-T": {"t-acme"},
				"X-Got-X-Ip": {"198.51.100.4"}, "X-Got-X-Consumer": {"c-1/alice"}, "X-Got-X-Sub": {"u-9"},
				"X-Got-X-Rid": {"rid-7"}, "X-Got-X-Route": {"users"}},
		},
		{
			desc:   "default",
			config: "request: {set: {X-Page: '${query:page|1}'}}",
			target: "/users/42",
			want:   map[string][]string{"X-Got-X-Page": {"1"}},
		},
		{
			desc:    "set rendering empty removes the client's header",
			config:  "request: {set: {X-User: '${query:user}'}}",
			target:  "/",
			reqHdr:  map[string]string{"X-User": "spoofed"},
			missing: []string{"X-Got-X-User"},
		},
		{
			desc:   "add rendering empty adds nothing",
			config: "request: {add: {X-Tag: '${query:tag}'}}",
			target: "/",
			reqHdr: map[string]string{"X-Tag": "a"},
			want:   map[string][]string{"X-Got-X-Tag": {"a"}},
		},
		{
			desc:   "add appends a rendered value",
			config: "request: {add: {X-Tag: '${query:tag}'}}",
			target: "/?tag=b",
			reqHdr: map[string]string{"X-Tag": "a"},
			want:   map[string][]string{"X-Got-X-Tag": {"a", "b"}},
		},
		{
			desc:    "control characters from the query drop the header",
			config:  "request: {set: {X-User: 'u-${query:u}'}, add: {X-Tag: '${query:u}'}}",
			target:  "/?u=a%0D%0AX-Evil:%201",
			reqHdr:  map[string]string{"X-User": "spoofed"},
			missing: []string{"X-Got-X-User", "X-Got-X-Tag", "X-Got-X-Evil"},
		},
		{
			desc:   "legacy $request_id and ${$} escape",
			config: "request: {set: {X-Old: 'gw-$request_id', X-Lit: '${$}{ip}'}}",
			target: "/",
			want:   map[string][]string{"X-Got-X-Old": {"gw-rid-7"}, "X-Got-X-Lit": {"${ip}"}},
		},
		{
			desc:   "response side reads the request",
			config: "response: {set: {X-Served-For: '${consumer}', X-Old: '${header:X-Tenant}-$request_id'}}",
			target: "/",
			want:   map[string][]string{"X-Served-For": {"c-1"}, "X-Old": {"acme-rid-7"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := mustBuild(t, tc.config)
			r := templateRequest(tc.target)
			for k, v := range tc.reqHdr {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Result().Header
			for k, v := range tc.want {
				if g := got.Values(k); !slices.Equal(g, v) {
					t.Errorf("%s = %q, want %q", k, g, v)
				}
			}
			plugintest.HeadersAbsent(t, got, tc.missing)
		})
	}
}

func TestTemplateConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, "headers", []plugintest.ConfigError{
		{Desc: "unknown placeholder", Config: "request: {set: {X-A: 'a${nope}'}}", Want: []string{"request.set.X-A", `position 1: ${nope}: unknown placeholder "nope"`}},
		{Desc: "unclosed", Config: "response: {add: {X-A: '${header:X'}}", Want: []string{"response.add.X-A", `position 0: "${" without a closing "}"`}},
		{Desc: "bad header name", Config: "request: {set: {X-A: '${header:a b}'}}", Want: []string{"request.set.X-A", "not a valid token"}},
		{Desc: "placeholder in Host", Config: "request: {set: {Host: '${header:X-Host}'}}", Want: []string{"request.set.Host", "not a valid host"}},
	})
}

func BenchmarkHeadersTemplate(b *testing.B) {
	in := plugintest.MustBuild[plugin.Plugin](b, "headers", "request: {set: {X-User: '${claim:sub}', X-Tenant-Id: 't-${header:X-Tenant}'}}")
	h := in.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	r := templateRequest("/")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
