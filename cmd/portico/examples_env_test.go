package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// exampleWorld is what the documented configs (examples/*.yaml and the
// README's YAML blocks) need to validate offline: certificate files, a
// local OpenID provider with a JWK Set, and environment variables pointing
// at them. Validation builds every plugin, and jwt (jwks_url, oidc_issuer)
// and oidc_login (issuer) fetch from their provider while they are built,
// so the configs write those URLs as ${VAR:-default} and the test points
// the variables at its own provider: nothing leaves 127.0.0.1.
type exampleWorld struct {
	dir string
	env map[string]string
	idp *httptest.Server
	// idpFetches counts the discovery and JWKS requests the provider served.
	idpFetches *atomic.Int64
}

// certFiles are the certificate file names the README's blocks use
// (relative to the directory the gateway runs in); the test creates each of
// them in its working directory.
var certFiles = struct{ certs, keys, cas []string }{
	certs: []string{"a.crt", "server.crt", "gw.pem"},
	keys:  []string{"a.key", "server.key", "gw.key"},
	cas:   []string{"ca.pem", "clients-ca.pem"},
}

// newExampleWorld creates the files, starts the provider and changes the
// working directory to a temporary one holding the certificates, so that
// relative paths in the documented configs resolve there.
func newExampleWorld(t *testing.T) *exampleWorld {
	t.Helper()
	w := &exampleWorld{dir: t.TempDir()}
	caCert, caKey := newTestCA(t)
	leafCert, leafKey := newTestLeaf(t, caCert, caKey, "gateway", []string{"localhost", "gateway", "payments.internal"})
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})
	write := func(name string, data []byte) string {
		p := filepath.Join(w.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, n := range certFiles.certs {
		write(n, leafCert)
	}
	for _, n := range certFiles.keys {
		write(n, leafKey)
	}
	for _, n := range certFiles.cas {
		write(n, caPEM)
	}
	cert := write("env/gateway.crt", leafCert)
	key := write("env/gateway.key", leafKey)
	ca := write("env/ca.crt", caPEM)

	w.idpFetches = new(atomic.Int64)
	w.idp = newTestIDP(t, w.idpFetches)
	w.env = map[string]string{
		// examples/mtls-upstream.yaml
		"GATEWAY_CERT_FILE":         cert,
		"GATEWAY_KEY_FILE":          key,
		"CLIENT_CA_FILE":            ca,
		"UPSTREAM_CA_FILE":          ca,
		"UPSTREAM_CLIENT_CERT_FILE": cert,
		"UPSTREAM_CLIENT_KEY_FILE":  key,
		// jwt and oidc_login: the local provider.
		"JWKS_URL":    w.idp.URL + "/jwks",
		"JWT_ISSUER":  w.idp.URL,
		"OIDC_ISSUER": w.idp.URL,
	}
	t.Chdir(w.dir)
	return w
}

// envRef matches ${VAR} and ${VAR:-default} references.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// setEnv gives every ${VAR} reference in data a value: the world's own when
// it has one; otherwise, for a reference with a default, nothing (the
// default is what is checked); otherwise a value unique to the variable
// that passes as any secret (long enough for cookie and HMAC secrets, and
// distinct, since API keys must be unique).
func (w *exampleWorld) setEnv(t *testing.T, data []byte) {
	t.Helper()
	for _, m := range envRef.FindAllStringSubmatch(string(data), -1) {
		name := m[1]
		switch v, ok := w.env[name]; {
		case ok:
			t.Setenv(name, v)
		case m[2] != "":
			t.Setenv(name, "") // empty counts as unset: the default applies
		default:
			t.Setenv(name, "example-"+strings.ToLower(name)+"-0123456789abcdef0123456789abcdef")
		}
	}
}

// checkOffline fails when a jwt or oidc_login spec in doc would fetch from
// a host other than this machine while the config is built: such URLs must
// be written as ${VAR:-https://…} so the test can point them at its
// provider. Call it after setEnv.
func checkOffline(t *testing.T, what string, doc *yaml.Node) {
	t.Helper()
	fields := map[string][]string{"jwt": {"jwks_url", "oidc_issuer"}, "oidc_login": {"issuer"}}
	walkYAML(doc, func(n *yaml.Node) {
		if n.Kind != yaml.MappingNode {
			return
		}
		name, cfg := config.MapValue(n, "name"), config.MapValue(n, "config")
		if name == nil || cfg == nil || fields[name.Value] == nil {
			return
		}
		for _, f := range fields[name.Value] {
			v := config.MapValue(cfg, f)
			if v == nil {
				continue
			}
			raw := envRef.ReplaceAllStringFunc(v.Value, func(s string) string {
				m := envRef.FindStringSubmatch(s)
				if e := os.Getenv(m[1]); e != "" {
					return e
				}
				return strings.TrimPrefix(m[2], ":-")
			})
			u, err := url.Parse(raw)
			if err != nil || (u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") {
				t.Errorf("%s: %s %s %q (line %d) would be fetched from the network while validating; write it as \"${VAR:-%s}\" and give VAR in exampleWorld",
					what, name.Value, f, v.Value, v.Line, v.Value)
			}
		}
	})
}

func walkYAML(n *yaml.Node, f func(*yaml.Node)) {
	f(n)
	for _, c := range n.Content {
		walkYAML(c, f)
	}
}

func newTestCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "portico examples CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newTestLeaf returns a PEM certificate for server and client use, signed by
// the CA, and its PEM private key.
func newTestLeaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, dns []string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dns,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
}

// newTestIDP serves an OpenID discovery document and a JWK Set with one
// ES256 key, which is all jwt and oidc_login fetch while being built.
func newTestIDP(t *testing.T, fetches *atomic.Int64) *httptest.Server {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	pub, err := key.PublicKey.Bytes() // uncompressed point: 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": "examples", "use": "sig", "alg": "ES256",
		"x": b64(pub[1:33]), "y": b64(pub[33:]),
	}}})
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                srv.URL,
			"authorization_endpoint":                srv.URL + "/authorize",
			"token_endpoint":                        srv.URL + "/token",
			"jwks_uri":                              srv.URL + "/jwks",
			"end_session_endpoint":                  srv.URL + "/logout",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	return srv
}
