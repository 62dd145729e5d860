package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// TestCompressionOverHTTP2: each encoding round-trips to a client speaking
// HTTP/2 without TLS (h2c), the framing Portico's HTTP/2 listeners use.
func TestCompressionOverHTTP2(t *testing.T) {
	t.Parallel()
	tg, _, _, _ := e2eStartCompression(t)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: &http.Transport{Protocols: &protos, DisableCompression: true}}
	defer c.CloseIdleConnections()
	want := e2eCompressionBody(32 << 10)
	for _, ce := range []string{"zstd", "br", "gzip", ""} {
		req, err := http.NewRequest(http.MethodGet, tg.URL+"/c/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", ce)
		if ce == "" {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%q: %v", ce, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.ProtoMajor != 2 {
			t.Fatalf("%q: proto %s, read error %v", ce, resp.Proto, err)
		}
		if got := resp.Header.Get("Content-Encoding"); got != ce {
			t.Errorf("Content-Encoding %q, want %q", got, ce)
			continue
		}
		got, err := io.ReadAll(e2eDecoder(t, ce, bytes.NewReader(body)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q over h2c: decoded %d bytes (err %v), want the backend's %d", ce, len(got), err, len(want))
		}
	}
}
