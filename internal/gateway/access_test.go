package gateway_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
)

// seenBackend records the headers of the last request and whether it was
// reached at all.
type seenBackend struct {
	url  string
	hits atomic.Int64
	last atomic.Value // http.Header
	path atomic.Value // string
}

func newSeenBackend(t *testing.T) *seenBackend {
	b := &seenBackend{}
	srv := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.last.Store(r.Header.Clone())
		b.path.Store(r.URL.Path)
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "upstream")
	}))
	b.url = srv.URL
	return b
}

func (b *seenBackend) header(k string) string {
	h, _ := b.last.Load().(http.Header)
	return h.Get(k)
}

// testCA issues client certificates for mutual TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func newTestCA(t *testing.T, dir string) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, "client-ca.pem")
	os.WriteFile(file, pemBlock("CERTIFICATE", der), 0o600)
	return &testCA{cert: cert, key: key, file: file}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// client returns a TLS certificate for cn, signed by the CA.
func (ca *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	tmpl := clientTemplate(pkix.Name{CommonName: cn, Organization: []string{"Example"}})
	tmpl.DNSNames = []string{cn + ".clients.test"}
	return ca.issue(t, tmpl)
}

// clientTemplate is a client-auth certificate for subject, valid from an
// hour ago to an hour from now, with a random serial.
func clientTemplate(subject pkix.Name) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	return &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// issue signs tmpl for a new key with the CA.
func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// TestMTLSAndACL: a client certificate verified by the listener maps to a
// consumer (by subject or SAN), and acl allows or denies it by group.
func TestMTLSAndACL(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, serverCert := e2eSelfSigned(t, dir, "srv", "gw.test")
	ca := newTestCA(t, dir)
	otherCA := newTestCA(t, t.TempDir())
	up := newSeenBackend(t)
	tg := testutil.StartGateway(t, fmt.Sprintf(`
server:
  listen: [{addr: "127.0.0.1:0", tls: {certificates: [{cert_file: %q, key_file: %q}], client_ca_file: %q}}]
consumers:
  - {name: alice, groups: [admins], credentials: {mtls: [{subject: "CN=alice,O=Example"}]}}
  - {name: bob, groups: [users], credentials: {mtls: [{san: "bob.clients.test"}]}}
upstreams: {u: {targets: [{url: %q}]}}
routes:
  - name: admin
    match: {path_prefix: /admin}
    upstream: u
    plugins: [{name: acl, config: {allow: [admins]}}, {name: mtls}]
  - name: open
    match: {path_prefix: /open}
    upstream: u
`, certFile, keyFile, ca.file, up.url))
	roots := x509.NewCertPool()
	roots.AddCert(serverCert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, ServerName: "gw.test", Certificates: certs}}}
	}
	tests := []struct {
		desc     string
		client   *http.Client
		path     string
		status   int
		consumer string
	}{
		{desc: "admin by subject", client: client(ca.client(t, "alice")), path: "/admin/x", status: 200, consumer: "alice"},
		{desc: "user by SAN is forbidden", client: client(ca.client(t, "bob")), path: "/admin/x", status: 403},
		{desc: "unknown certificate", client: client(ca.client(t, "mallory")), path: "/admin/x", status: 401},
		{desc: "no certificate", client: client(), path: "/admin/x", status: 401},
		{desc: "no certificate on an open route", client: client(), path: "/open/x", status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := up.hits.Load()
			resp, err := tc.client.Get(tg.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tc.status)
			}
			reached := up.hits.Load() > before
			if reached != (tc.status == 200) {
				t.Fatalf("upstream reached = %v with status %d", reached, tc.status)
			}
			if tc.consumer != "" && up.header("X-Consumer-Username") != tc.consumer {
				t.Fatalf("X-Consumer-Username = %q", up.header("X-Consumer-Username"))
			}
			if tc.status >= 400 {
				var e struct {
					Error     string `json:"error"`
					RequestID string `json:"request_id"`
				}
				if json.Unmarshal(body, &e) != nil || e.RequestID == "" || e.Error == "" {
					t.Fatalf("error body %q is not the JSON error", body)
				}
			}
		})
	}
	t.Run("certificate from another CA fails the handshake", func(t *testing.T) {
		if _, err := client(otherCA.client(t, "alice")).Get(tg.URL + "/open/x"); err == nil {
			t.Fatal("a certificate from an unknown CA was accepted")
		}
	})
}

// TestIdentityHeadersCannotBeSpoofed: identity headers sent by a client
// never reach the upstream, on open routes and on authenticated ones.
func TestIdentityHeadersCannotBeSpoofed(t *testing.T) {
	t.Parallel()
	up := newSeenBackend(t)
	tg := testutil.StartGateway(t, fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {u: {targets: [{url: %q}]}}
routes: [{name: open, match: {path_prefix: /}, upstream: u}]
`, up.url))
	req, _ := http.NewRequest("GET", tg.URL+"/x", nil)
	for _, h := range []string{"X-Consumer-Id", "X-Consumer-Username", "X-Consumer-Groups", "X-Anonymous-Consumer",
		"X-Credential-Identifier", "X-Authenticated-By", "X-Authenticated-Userid", "X-Authenticated-Scope", "x-consumer-custom-id"} {
		req.Header.Set(h, "forged")
	}
	resp, err := testutil.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h, _ := up.last.Load().(http.Header)
	for k, v := range h {
		if strings.Contains(strings.Join(v, ","), "forged") {
			t.Errorf("upstream received spoofed %s: %v", k, v)
		}
	}
}

// TestIPRestriction uses the real client IP: X-Forwarded-For counts only
// from a trusted proxy.
func TestIPRestriction(t *testing.T) {
	t.Parallel()
	up := newSeenBackend(t)
	yaml := func(trusted string) string {
		return fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}], trusted_proxies: [%s]}
upstreams: {u: {targets: [{url: %q}]}}
routes:
  - name: r
    match: {path_prefix: /}
    upstream: u
    plugins: [{name: ip_restriction, config: {allow: ["10.1.0.0/16"], deny: ["10.1.9.9"]}}]
`, trusted, up.url)
	}
	behindProxy := testutil.StartGateway(t, yaml(`"127.0.0.1/32"`))
	direct := testutil.StartGateway(t, yaml(""))
	tests := []struct {
		desc   string
		url    string
		xff    string
		status int
	}{
		{desc: "trusted proxy, allowed client", url: behindProxy.URL, xff: "10.1.2.3", status: 200},
		{desc: "trusted proxy, client outside allow", url: behindProxy.URL, xff: "10.2.0.1", status: 403},
		{desc: "trusted proxy, denied client", url: behindProxy.URL, xff: "10.1.9.9", status: 403},
		{desc: "spoofed header from an untrusted peer is ignored", url: direct.URL, xff: "10.1.2.3", status: 403},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.url+"/x", nil)
			req.Header.Set("X-Forwarded-For", tc.xff)
			wantStatus(t, req, tc.status)
		})
	}
}

// TestRequestSizeLimit: a route's limit answers 413 for announced and
// streamed bodies, and the upstream never gets the oversized one.
func TestRequestSizeLimit(t *testing.T) {
	t.Parallel()
	up := newSeenBackend(t)
	tg := testutil.StartGateway(t, fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {u: {targets: [{url: %q}]}}
routes:
  - {name: r, match: {path_prefix: /}, upstream: u, plugins: [{name: request_size_limit, config: {max_body_bytes: 1KiB}}]}
`, up.url))
	small := bytes.Repeat([]byte("a"), 500)
	big := bytes.Repeat([]byte("a"), 4096)
	for _, tc := range []struct {
		desc    string
		body    io.Reader
		length  int64
		status  int
		reaches bool
	}{
		{desc: "small body", body: bytes.NewReader(small), length: 500, status: 200, reaches: true},
		{desc: "announced large body", body: bytes.NewReader(big), length: 4096, status: 413},
		{desc: "streamed large body", body: io.MultiReader(bytes.NewReader(big)), length: -1, status: 413},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := up.hits.Load()
			req, _ := http.NewRequest("POST", tg.URL+"/x", tc.body)
			req.ContentLength = tc.length
			wantStatus(t, req, tc.status)
			if tc.length > 0 && !tc.reaches && up.hits.Load() != before {
				t.Fatal("upstream received an announced oversized body")
			}
		})
	}
}

// wantStatus sends req with the test client and fails the test unless the
// answer has status want; it returns the answer, its body closed.
func wantStatus(t *testing.T, req *http.Request, want int) *http.Response {
	t.Helper()
	resp, err := testutil.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d", resp.StatusCode, want)
	}
	return resp
}
