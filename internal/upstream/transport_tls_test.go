package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// bufLogger returns a logger writing text lines to a buffer.
func bufLogger() (*slog.Logger, *logbuf.Buffer) {
	buf := &logbuf.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// testPKI is a CA with a server certificate for "backend.test" and a client
// certificate, all generated per test, with their PEM files on disk.
type testPKI struct {
	caPool     *x509.CertPool
	serverCert tls.Certificate
	caFile     string
	certFile   string // client certificate
	keyFile    string // client key
	otherKey   string // a key that does not match certFile
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyPEM(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newCA returns a self-signed CA certificate and its key.
func newCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key := newKey(t)
	tmpl := certTemplate(cn)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der := createCert(t, tmpl, tmpl, key, key)
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key, der
}

// issue signs a leaf certificate for the DNS names with the CA.
func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage, dns ...string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := certTemplate(cn)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	tmpl.DNSNames = dns
	return createCert(t, tmpl, ca, key, caKey), key
}

// certTemplate is a certificate for cn valid from an hour ago to an hour
// from now.
func certTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
}

// createCert signs tmpl for key's public key with parent and parentKey and
// returns the DER certificate.
func createCert(t *testing.T, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey, caDER := newCA(t, "portico test CA")
	srvDER, srvKey := issue(t, ca, caKey, "backend.test", x509.ExtKeyUsageServerAuth, "backend.test")
	srvPair, err := tls.X509KeyPair(certPEM(srvDER), keyPEM(t, srvKey))
	if err != nil {
		t.Fatal(err)
	}
	cliDER, cliKey := issue(t, ca, caKey, "portico", x509.ExtKeyUsageClientAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testPKI{
		caPool:     pool,
		serverCert: srvPair,
		caFile:     writeFile(t, dir, "ca.pem", certPEM(caDER)),
		certFile:   writeFile(t, dir, "client.pem", certPEM(cliDER)),
		keyFile:    writeFile(t, dir, "client-key.pem", keyPEM(t, cliKey)),
		otherKey:   writeFile(t, dir, "other-key.pem", keyPEM(t, newKey(t))),
	}
}

// tlsBackend starts an https backend presenting the "backend.test"
// certificate. clientCAs, when set, makes it require a client certificate.
func (p *testPKI) tlsBackend(t *testing.T, h2 bool, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.serverCert}}
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// get sends a GET through tr and returns the response (body read) or error.
func get(tr http.RoundTripper, url string) (*http.Response, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// acquireWith acquires a transport that must build, releasing it at cleanup.
func acquireWith(t *testing.T, g *Registry, name string, u *config.Upstream, logger *slog.Logger) *Transport {
	t.Helper()
	tr, release, err := g.Acquire(name, u, logger)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(release)
	return tr
}

func baseUpstream() *config.Upstream {
	return &config.Upstream{
		ConnectTimeout:        config.Duration(2 * time.Second),
		ResponseHeaderTimeout: config.Duration(5 * time.Second),
		IdleConnTimeout:       config.Duration(30 * time.Second),
		MaxIdleConnsPerTarget: 8,
	}
}

// TestTLSVerification checks target certificate verification against a
// configured CA bundle and server name, its failures, and the warning logged
// when verification is disabled.
func TestTLSVerification(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	srv := pki.tlsBackend(t, false, nil)
	tests := []struct {
		desc    string
		tls     config.UpstreamTLS
		wantErr func(error) bool
		warn    bool
	}{
		{desc: "ca file and server name", tls: config.UpstreamTLS{CAFile: pki.caFile, ServerName: "backend.test"}},
		{desc: "no ca file", tls: config.UpstreamTLS{ServerName: "backend.test"}, wantErr: func(err error) bool {
			var ua x509.UnknownAuthorityError
			return errors.As(err, &ua)
		}},
		{desc: "wrong server name", tls: config.UpstreamTLS{CAFile: pki.caFile, ServerName: "other.test"}, wantErr: func(err error) bool {
			var he x509.HostnameError
			return errors.As(err, &he)
		}},
		{desc: "no server name", tls: config.UpstreamTLS{CAFile: pki.caFile}, wantErr: func(err error) bool {
			var he x509.HostnameError
			return errors.As(err, &he)
		}},
		{desc: "insecure skip verify", tls: config.UpstreamTLS{InsecureSkipVerify: true}, warn: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			logger, buf := bufLogger()
			u := baseUpstream()
			u.TLS = &tc.tls
			tr := acquireWith(t, NewRegistry(), "secure", u, logger)
			resp, body, err := get(tr, srv.URL)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("request succeeded (%s); want a verification error", body)
				}
				if !tc.wantErr(err) {
					t.Fatalf("error = %v; not the expected verification error", err)
				}
			} else if err != nil {
				t.Fatalf("request failed: %v", err)
			} else if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			logged := buf.String()
			hasWarn := strings.Contains(logged, "upstream TLS verification disabled") &&
				strings.Contains(logged, "upstream=secure") && strings.Contains(logged, "level=WARN")
			if hasWarn != tc.warn {
				t.Fatalf("warning logged = %t, want %t; log:\n%s", hasWarn, tc.warn, logged)
			}
		})
	}
}

// TestTLSInsecureWarnOncePerTransport checks that the disabled-verification
// warning is logged when a transport is built, not on every acquire.
func TestTLSInsecureWarnOncePerTransport(t *testing.T) {
	t.Parallel()
	logger, buf := bufLogger()
	g := NewRegistry()
	u := baseUpstream()
	u.TLS = &config.UpstreamTLS{InsecureSkipVerify: true}
	a := acquireWith(t, g, "api", u, logger)
	b := acquireWith(t, g, "api", u, logger)
	if a != b {
		t.Fatal("same settings gave different transports")
	}
	if n := strings.Count(buf.String(), "upstream TLS verification disabled"); n != 1 {
		t.Fatalf("warning logged %d times, want 1", n)
	}
}

// TestTLSClientCertificate checks mutual TLS against a backend that
// requires a client certificate signed by the test CA.
func TestTLSClientCertificate(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	srv := pki.tlsBackend(t, false, pki.caPool)
	tests := []struct {
		desc    string
		cert    bool
		wantErr bool
	}{
		{desc: "with client certificate", cert: true},
		{desc: "without client certificate", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			u := baseUpstream()
			u.TLS = &config.UpstreamTLS{CAFile: pki.caFile, ServerName: "backend.test"}
			if tc.cert {
				u.TLS.CertFile, u.TLS.KeyFile = pki.certFile, pki.keyFile
			}
			tr := acquireWith(t, NewRegistry(), "mtls", u, nil)
			_, _, err := get(tr, srv.URL)
			if tc.wantErr != (err != nil) {
				t.Fatalf("error = %v, want error %t", err, tc.wantErr)
			}
		})
	}
}

// TestH2Protocols checks the protocol spoken to a TLS backend that offers
// HTTP/2 by ALPN, for each upstream protocol setting.
func TestH2Protocols(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	h2srv := pki.tlsBackend(t, true, nil)
	h1srv := pki.tlsBackend(t, false, nil)
	tests := []struct {
		desc      string
		protocol  string
		srv       *httptest.Server
		wantMajor int
	}{
		{desc: "default speaks http1", protocol: "", srv: h2srv, wantMajor: 1},
		{desc: "http1", protocol: "http1", srv: h2srv, wantMajor: 1},
		{desc: "http2", protocol: "http2", srv: h2srv, wantMajor: 2},
		{desc: "http2 falls back to http1", protocol: "http2", srv: h1srv, wantMajor: 1},
		{desc: "h2c on an https target uses h2 over TLS", protocol: "h2c", srv: h2srv, wantMajor: 2},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			u := baseUpstream()
			u.Protocol = tc.protocol
			u.TLS = &config.UpstreamTLS{CAFile: pki.caFile, ServerName: "backend.test"}
			tr := acquireWith(t, NewRegistry(), "api", u, nil)
			resp, body, err := get(tr, tc.srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != tc.wantMajor {
				t.Fatalf("ProtoMajor = %d (backend saw %s), want %d", resp.ProtoMajor, body, tc.wantMajor)
			}
		})
	}
}

// TestH2CPriorKnowledge checks that h2c speaks HTTP/2 over plain TCP to an
// http:// target, and that http1 and http2 speak HTTP/1.1 to it.
func TestH2CPriorKnowledge(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: &protos,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.Proto)
		}),
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + ln.Addr().String()
	tests := []struct {
		protocol string
		want     string
	}{
		{protocol: "h2c", want: "HTTP/2.0"},
		{protocol: "http2", want: "HTTP/1.1"},
		{protocol: "http1", want: "HTTP/1.1"},
	}
	for _, tc := range tests {
		t.Run(tc.protocol, func(t *testing.T) {
			t.Parallel()
			u := baseUpstream()
			u.Protocol = tc.protocol
			tr := acquireWith(t, NewRegistry(), "grpc", u, nil)
			for range 3 {
				_, body, err := get(tr, url)
				if err != nil {
					t.Fatal(err)
				}
				if body != tc.want {
					t.Fatalf("backend saw %s, want %s", body, tc.want)
				}
			}
		})
	}
}

// TestRegistryTLSKey checks which upstream settings select a separate
// transport: every timeout, the protocol, limits, DNS refresh and each TLS
// setting, including the content of the CA file.
func TestRegistryTLSKey(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	caCopy, err := os.ReadFile(pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	base := func() *config.Upstream {
		u := baseUpstream()
		u.TLSHandshakeTimeout = config.Duration(3 * time.Second)
		u.TLS = &config.UpstreamTLS{CAFile: pki.caFile, ServerName: "backend.test", CertFile: pki.certFile, KeyFile: pki.keyFile}
		return u
	}
	tests := []struct {
		desc   string
		mutate func(u *config.Upstream)
		same   bool
	}{
		{desc: "identical", mutate: func(*config.Upstream) {}, same: true},
		{desc: "targets differ", mutate: func(u *config.Upstream) { u.Targets = []config.Target{{URL: "https://x:1"}} }, same: true},
		{desc: "explicit http1 equals default", mutate: func(u *config.Upstream) { u.Protocol = "http1" }, same: true},
		{desc: "connect timeout", mutate: func(u *config.Upstream) { u.ConnectTimeout = config.Duration(time.Minute) }},
		{desc: "response header timeout", mutate: func(u *config.Upstream) { u.ResponseHeaderTimeout = config.Duration(time.Minute) }},
		{desc: "idle timeout", mutate: func(u *config.Upstream) { u.IdleConnTimeout = config.Duration(time.Minute) }},
		{desc: "tls handshake timeout", mutate: func(u *config.Upstream) { u.TLSHandshakeTimeout = config.Duration(time.Minute) }},
		{desc: "max idle", mutate: func(u *config.Upstream) { u.MaxIdleConnsPerTarget = 99 }},
		{desc: "protocol", mutate: func(u *config.Upstream) { u.Protocol = "http2" }},
		{desc: "dns refresh", mutate: func(u *config.Upstream) { u.DNSRefresh = config.Duration(time.Minute) }},
		{desc: "max connections", mutate: func(u *config.Upstream) { u.Limits = &config.UpstreamLimits{MaxConnections: 3} }},
		{desc: "server name", mutate: func(u *config.Upstream) { u.TLS.ServerName = "other.test" }},
		{desc: "insecure", mutate: func(u *config.Upstream) { u.TLS.InsecureSkipVerify = true }},
		{desc: "no client cert", mutate: func(u *config.Upstream) { u.TLS.CertFile, u.TLS.KeyFile = "", "" }},
		{desc: "ca file path", mutate: func(u *config.Upstream) { u.TLS.CAFile = writeFile(t, dir, "ca-copy.pem", caCopy) }},
		{desc: "no tls block", mutate: func(u *config.Upstream) { u.TLS = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			g := NewRegistry()
			a := acquireWith(t, g, "api", base(), nil)
			u := base()
			tc.mutate(u)
			b := acquireWith(t, g, "api", u, nil)
			if (a == b) != tc.same {
				t.Fatalf("same transport = %t, want %t", a == b, tc.same)
			}
		})
	}
}

// TestRegistryCARotation checks that rewriting the CA file (a certificate
// rotation) makes the next acquire build a new transport trusting the new
// CA, while the old transport stays usable until released.
func TestRegistryCARotation(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	old, err := os.ReadFile(pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	caFile := writeFile(t, dir, "ca.pem", old)
	u := baseUpstream()
	u.TLS = &config.UpstreamTLS{CAFile: caFile, ServerName: "backend.test"}
	g := NewRegistry()
	a := acquireWith(t, g, "api", u, nil)
	if again := acquireWith(t, g, "api", u, nil); again != a {
		t.Fatal("unchanged CA file gave a new transport")
	}
	_, _, otherDER := newCA(t, "rotated CA")
	writeFile(t, dir, "ca.pem", certPEM(otherDER))
	b := acquireWith(t, g, "api", u, nil)
	if b == a {
		t.Fatal("rewritten CA file kept the old transport")
	}
	srv := pki.tlsBackend(t, false, nil)
	if _, _, err := get(a, srv.URL); err != nil {
		t.Fatalf("old transport: %v", err)
	}
	if _, _, err := get(b, srv.URL); err == nil {
		t.Fatal("new transport trusted the old CA")
	}
}

// TestRegistryErrors checks that invalid transport settings fail to acquire
// with an error naming the setting, and leave nothing registered.
func TestRegistryErrors(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage.pem", []byte("not a certificate\n"))
	tests := []struct {
		desc  string
		u     func(u *config.Upstream)
		field string
	}{
		{desc: "missing ca file", u: func(u *config.Upstream) {
			u.TLS = &config.UpstreamTLS{CAFile: filepath.Join(dir, "missing.pem")}
		}, field: "tls.ca_file"},
		{desc: "garbage ca file", u: func(u *config.Upstream) {
			u.TLS = &config.UpstreamTLS{CAFile: garbage}
		}, field: "tls.ca_file"},
		{desc: "mismatched cert and key", u: func(u *config.Upstream) {
			u.TLS = &config.UpstreamTLS{CertFile: pki.certFile, KeyFile: pki.otherKey}
		}, field: "tls.cert_file"},
		{desc: "garbage cert", u: func(u *config.Upstream) {
			u.TLS = &config.UpstreamTLS{CertFile: garbage, KeyFile: pki.keyFile}
		}, field: "tls.cert_file"},
		{desc: "missing key file", u: func(u *config.Upstream) {
			u.TLS = &config.UpstreamTLS{CertFile: pki.certFile, KeyFile: filepath.Join(dir, "missing-key.pem")}
		}, field: "tls.key_file"},
		{desc: "cert without key", u: func(u *config.Upstream) {
			u.TLS = &config.UpstreamTLS{CertFile: pki.certFile}
		}, field: "tls.key_file"},
		{desc: "unknown protocol", u: func(u *config.Upstream) { u.Protocol = "spdy" }, field: "protocol"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			g := NewRegistry()
			u := baseUpstream()
			tc.u(u)
			tr, release, err := g.Acquire("api", u, nil)
			if err == nil {
				release()
				t.Fatal("Acquire succeeded")
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Fatalf("error %q does not name %s", err, tc.field)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v is not a FieldError for %s", err, tc.field)
			}
			if tr != nil || g.Len() != 0 {
				t.Fatalf("failed acquire left transport %v, Len %d", tr, g.Len())
			}
		})
	}
}

// TestTransportHTTPSettings checks the fields of the built http.Transport.
func TestTransportHTTPSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc            string
		u               func(u *config.Upstream)
		wantHandshake   time.Duration
		wantMaxConns    int
		wantHeaderBytes int64
	}{
		{desc: "defaults", u: func(*config.Upstream) {}, wantHandshake: 10 * time.Second, wantHeaderBytes: 64 << 10},
		{desc: "configured", u: func(u *config.Upstream) {
			u.TLSHandshakeTimeout = config.Duration(4 * time.Second)
			u.Limits = &config.UpstreamLimits{MaxConnections: 7}
			u.MaxResponseHeaderBytes = 8 << 10
		}, wantHandshake: 4 * time.Second, wantMaxConns: 7, wantHeaderBytes: 8 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			u := baseUpstream()
			tc.u(u)
			tr := acquireWith(t, NewRegistry(), "api", u, nil)
			if tr.Proxy != nil || !tr.DisableCompression {
				t.Error("proxy set or compression enabled")
			}
			if tr.TLSHandshakeTimeout != tc.wantHandshake || tr.MaxConnsPerHost != tc.wantMaxConns {
				t.Errorf("TLSHandshakeTimeout %v, MaxConnsPerHost %d; want %v, %d",
					tr.TLSHandshakeTimeout, tr.MaxConnsPerHost, tc.wantHandshake, tc.wantMaxConns)
			}
			if tr.ExpectContinueTimeout != time.Second || tr.MaxResponseHeaderBytes != tc.wantHeaderBytes {
				t.Errorf("ExpectContinueTimeout %v, MaxResponseHeaderBytes %d; want 1s, %d", tr.ExpectContinueTimeout, tr.MaxResponseHeaderBytes, tc.wantHeaderBytes)
			}
			if tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
				t.Errorf("MinVersion = %x", tr.TLSClientConfig.MinVersion)
			}
		})
	}
}

// TestTransportResponseHeaderTimeout checks that a backend slower than the
// response header timeout yields a timeout error.
func TestTransportResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	u := baseUpstream()
	u.ResponseHeaderTimeout = config.Duration(100 * time.Millisecond)
	tr := acquireWith(t, NewRegistry(), "slow", u, nil)
	start := time.Now()
	_, _, err := get(tr, srv.URL)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error = %v; want a net.Error timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("timeout took %v", d)
	}
}

// TestTransportMaxConnections checks that max_connections bounds the
// connections opened to one target under concurrent slow requests.
func TestTransportMaxConnections(t *testing.T) {
	t.Parallel()
	var open, peak, total atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond) // slow on purpose: requests overlap and need connections
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			total.Add(1)
			n := open.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	u := baseUpstream()
	u.Limits = &config.UpstreamLimits{MaxConnections: 2}
	tr := acquireWith(t, NewRegistry(), "limited", u, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("backend saw %d concurrent connections, want at most 2", p)
	}
	if n := total.Load(); n > 2 {
		t.Fatalf("backend saw %d connections in total, want at most 2", n)
	}
}
