package compression

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// discardWriter is a ResponseWriter that drops the body.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkCompress16KiB measures the plugin compressing one 16 KiB
// JSON-like response per encoding at the default levels, with pooled
// encoders.
func BenchmarkCompress16KiB(b *testing.B) {
	body := jsonBody(16 << 10)
	cl := []string{strconv.Itoa(len(body))}
	ct := []string{"application/json"}
	c := build(b, "{}")
	for _, enc := range []string{"gzip", "zstd", "br"} {
		b.Run(enc, func(b *testing.B) {
			h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Content-Type"] = ct
				w.Header()["Content-Length"] = cl
				_, _ = w.Write(body)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.Header.Set("Accept-Encoding", enc)
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkNegotiate measures Accept-Encoding negotiation of a browser's
// header.
func BenchmarkNegotiate(b *testing.B) {
	ae := []string{"gzip, deflate, br, zstd"}
	b.ReportAllocs()
	for b.Loop() {
		negotiate(ae, offeredDefault)
	}
}
