package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
)

// e2eSelfSigned writes a self-signed ECDSA certificate for dnsName into dir and
// returns the cert and key file paths and the parsed certificate.
func e2eSelfSigned(t *testing.T, dir, file, dnsName string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: dnsName},
		DNSNames:              []string{dnsName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err = x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, file+".crt")
	keyFile = filepath.Join(dir, file+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func TestTLSSNIAndHTTP2(t *testing.T) {
	dir := t.TempDir()
	aCrt, aKey, aCert := e2eSelfSigned(t, dir, "a", "a.test")
	bCrt, bKey, bCert := e2eSelfSigned(t, dir, "b", "*.b.test")
	roots := x509.NewCertPool()
	roots.AddCert(aCert)
	roots.AddCert(bCert)

	rec := e2eNewRecorder(t, "rec", nil)
	stream := &e2eGatedStream{gate: make(chan struct{})}
	sse := testutil.Backend(t, stream.handler("text/event-stream", "data: one\n\n", "data: two\n\n"))
	tg := e2eStart(t, `
server:
  listen:
    - addr: "127.0.0.1:0"
      tls:
        certificates:
          - {cert_file: "{{ACRT}}", key_file: "{{AKEY}}"}
          - {cert_file: "{{BCRT}}", key_file: "{{BKEY}}"}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
  sse: {targets: [{url: "{{SSE}}"}]}
routes:
  - {name: sse, match: {path: /events}, upstream: sse}
  - {name: all, match: {path_prefix: /}, upstream: rec}
plugins:
  - name: request_id
`, map[string]string{"ACRT": aCrt, "AKEY": aKey, "BCRT": bCrt, "BKEY": bKey, "REC": rec.URL, "SSE": sse.URL})
	if !strings.HasPrefix(tg.URL, "https://") {
		t.Fatalf("gateway URL %q is not https", tg.URL)
	}
	env := &e2eTLSEnv{url: tg.URL, addr: e2eHostPort(tg.URL), roots: roots, aCert: aCert, bCert: bCert, stream: stream}
	e2eTLSSNI(t, env)
	e2eTLSProtocols(t, env)
	t.Run("HTTP/2 server-sent events stream", func(t *testing.T) {
		t.Parallel()
		e2eTLSServerSentEvents(t, env)
	})
	t.Run("HTTP/2 error is JSON", func(t *testing.T) {
		t.Parallel()
		e2eTLSErrorJSON(t, env)
	})
}

// e2eTLSEnv is the TLS gateway that TestTLSSNIAndHTTP2's subtests share:
// certificates for a.test (the default) and *.b.test, the pool that
// trusts them, and the gated server-sent events backend behind /events.
type e2eTLSEnv struct {
	url, addr    string
	roots        *x509.CertPool
	aCert, bCert *x509.Certificate
	stream       *e2eGatedStream
}

// e2eTLSSNI checks which certificate each server name gets, and ALPN h2.
func e2eTLSSNI(t *testing.T, env *e2eTLSEnv) {
	sni := []struct {
		desc       string
		serverName string
		want       *x509.Certificate
		verify     bool
	}{
		{desc: "exact name", serverName: "a.test", want: env.aCert, verify: true},
		{desc: "exact name upper case", serverName: "A.TEST", want: env.aCert, verify: true},
		{desc: "wildcard one label", serverName: "x.b.test", want: env.bCert, verify: true},
		{desc: "wildcard does not cover two labels", serverName: "y.x.b.test", want: env.aCert},
		{desc: "wildcard does not cover its base", serverName: "b.test", want: env.aCert},
		{desc: "unknown name gets the default", serverName: "unknown.test", want: env.aCert},
		{desc: "no SNI gets the default", serverName: "", want: env.aCert},
	}
	for _, tc := range sni {
		t.Run("SNI/"+tc.desc, func(t *testing.T) {
			t.Parallel()
			cfg := &tls.Config{ServerName: tc.serverName, RootCAs: env.roots, NextProtos: []string{"h2", "http/1.1"}}
			if !tc.verify {
				cfg.InsecureSkipVerify = true
			}
			d := &net.Dialer{Timeout: 3 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", env.addr, cfg)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if len(st.PeerCertificates) == 0 || !st.PeerCertificates[0].Equal(tc.want) {
				got := "none"
				if len(st.PeerCertificates) > 0 {
					got = strings.Join(st.PeerCertificates[0].DNSNames, ",")
				}
				t.Errorf("served certificate for %v, want %v", got, tc.want.DNSNames)
			}
			if st.NegotiatedProtocol != "h2" {
				t.Errorf("ALPN = %q, want h2", st.NegotiatedProtocol)
			}
		})
	}
}

// e2eTLSProtocols sends requests over HTTP/2 and HTTP/1.1 on TLS and checks
// what the backend saw.
func e2eTLSProtocols(t *testing.T, env *e2eTLSEnv) {
	for _, tc := range []struct {
		desc       string
		serverName string
		h2         bool
	}{
		{desc: "HTTP/2 with a.test", serverName: "a.test", h2: true},
		{desc: "HTTP/2 with x.b.test", serverName: "x.b.test", h2: true},
		{desc: "HTTP/1.1 over TLS", serverName: "a.test", h2: false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: env.roots, ServerName: tc.serverName},
				ForceAttemptHTTP2: tc.h2,
			}
			if !tc.h2 {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for i, p := range []string{"/h2/one?x=1", "/h2/two"} {
				body := strings.NewReader("payload")
				req := e2eReq(t, http.MethodPost, env.url+p, body)
				req.Host = tc.serverName
				req.Header.Set("X-Request-Id", "tls-req")
				resp, err := cl.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				wantMajor := 1
				if tc.h2 {
					wantMajor = 2
				}
				if resp.StatusCode != http.StatusOK || resp.ProtoMajor != wantMajor {
					t.Fatalf("request %d: status %d proto %s, want 200 HTTP/%d", i, resp.StatusCode, resp.Proto, wantMajor)
				}
				s := e2eDecodeSeen(t, b)
				if s.RequestURI != p || s.BodyLen != 7 {
					t.Errorf("backend saw %q with %d body bytes", s.RequestURI, s.BodyLen)
				}
				if s.Header.Get("X-Forwarded-Proto") != "https" {
					t.Errorf("X-Forwarded-Proto = %q, want https", s.Header.Get("X-Forwarded-Proto"))
				}
				if s.Host != tc.serverName {
					t.Errorf("backend Host = %q, want %q", s.Host, tc.serverName)
				}
				if resp.Header.Get("X-Request-Id") != "tls-req" {
					t.Errorf("response X-Request-Id = %q", resp.Header.Get("X-Request-Id"))
				}
			}
		})
	}
}

// e2eTLSServerSentEvents checks that an HTTP/2 response streams.
func e2eTLSServerSentEvents(t *testing.T, env *e2eTLSEnv) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.roots, ServerName: "a.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 8 * time.Second}).Get(env.url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d proto %s", resp.StatusCode, resp.Proto)
	}
	first := make(chan string, 1)
	go func() {
		buf := make([]byte, len("data: one\n\n"))
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			first <- err.Error()
			return
		}
		first <- string(buf)
	}()
	select {
	case got := <-first:
		if got != "data: one\n\n" {
			t.Fatalf("first event %q", got)
		}
	case <-time.After(2500 * time.Millisecond):
		t.Fatal("first event not received: the HTTP/2 response is buffered, not streamed")
	}
	close(env.stream.gate)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "data: two\n\n" || env.stream.timed.Load() {
		t.Errorf("second event %q (backend gate timed out: %v)", rest, env.stream.timed.Load())
	}
}

// e2eTLSErrorJSON checks that a gateway error over HTTP/2 is JSON.
func e2eTLSErrorJSON(t *testing.T, env *e2eTLSEnv) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.roots, ServerName: "a.test"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := cl.Get(env.url + "/x%2Fy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		t.Errorf("proto %s", resp.Proto)
	}
	e2eCheckError(t, resp.StatusCode, resp.Header, b, http.StatusBadRequest)
}
