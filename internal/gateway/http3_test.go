package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/portico-gw/portico/internal/testutil"
)

// TestHTTP3Listener serves the same routes over HTTP/3 (QUIC, UDP) on a TLS
// listener with http3 enabled, and advertises it on TCP with Alt-Svc.
func TestHTTP3Listener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, cert := e2eSelfSigned(t, dir, "h3", "h3.test")
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s %s proto=%s", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-Proto"))
	}))
	tg := testutil.StartGateway(t, fmt.Sprintf(`
server:
  listen: [{addr: "127.0.0.1:0", http3: true, tls: {certificates: [{cert_file: %q, key_file: %q}]}}]
upstreams: {b: {targets: [{url: %q}]}}
routes:
  - {name: hello, match: {path: /hello}, respond: {body: "hello over h3"}}
  - {name: proxied, match: {path_prefix: /api}, upstream: b}
`, certFile, keyFile, backend.URL))
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	tlsConf := &tls.Config{RootCAs: roots, ServerName: "h3.test"}

	// TCP responses advertise HTTP/3 on the same port.
	tcp := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf}}
	resp, err := tcp.Get(tg.URL + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	port := tg.URL[strings.LastIndexByte(tg.URL, ':')+1:]
	if alt := resp.Header.Get("Alt-Svc"); !strings.Contains(alt, `h3=":`+port+`"`) {
		t.Fatalf("Alt-Svc = %q, want h3 on port %s", alt, port)
	}

	tr := &http3.Transport{TLSClientConfig: tlsConf}
	defer tr.Close()
	h3 := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	for _, tc := range []struct{ path, want string }{
		{"/hello", "hello over h3"},
		{"/api/x", "backend saw GET /api/x proto=https"},
	} {
		resp, err := h3.Get(tg.URL + tc.path)
		if err != nil {
			t.Fatalf("HTTP/3 GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 3 || string(body) != tc.want {
			t.Fatalf("HTTP/3 GET %s: proto %s, body %q", tc.path, resp.Proto, body)
		}
	}
}
