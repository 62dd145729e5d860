package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
)

// discardWriter is a reusable ResponseWriter so the benchmark measures the
// gateway, not the recorder.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchServe measures rt serving GET path from a fixed client address.
func benchServe(b *testing.B, rt http.Handler, path string) {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = "10.1.2.3:4567"
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		rt.ServeHTTP(w, r)
	}
}

// BenchmarkServeRespond measures the gateway's own per-request cost: snapshot
// load, header checks, path normalisation, routing among 1,000 routes, the
// request_id and headers plugins, and a direct response (no network).
func BenchmarkServeRespond(b *testing.B) {
	rt := gateway.NewRuntime(testutil.Logger(b))
	yaml := strings.Replace(routesConfig("127.0.0.1:0", "http://127.0.0.1:1", 1000), "\nplugins: [",
		"\n  - {name: bench, match: {path: \"/bench/{id}\"}, respond: {body: ok}, plugins: [{name: headers, config: {response: {set: {X-A: b}}}}]}\nplugins: [", 1)
	if err := rt.Apply(testutil.ParseConfig(b, yaml)); err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	for _, path := range []string{"/svc998", "/bench/123"} {
		b.Run(path, func(b *testing.B) {
			benchServe(b, rt, path)
		})
	}
}

// BenchmarkServeRespondAccessLog is BenchmarkServeRespond with the JSON
// access log written to a file.
func BenchmarkServeRespondAccessLog(b *testing.B) {
	rt := gateway.NewRuntime(testutil.Logger(b))
	yaml := routesConfig("127.0.0.1:0", "http://127.0.0.1:1", 10)
	yaml = strings.Replace(yaml, `log: {access: {output: "off"}}`, `log: {access: {output: "`+b.TempDir()+`/access.log"}}`, 1)
	if err := rt.Apply(testutil.ParseConfig(b, yaml)); err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	benchServe(b, rt, "/svc2")
}
