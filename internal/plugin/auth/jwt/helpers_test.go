package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	gojwt "github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// testKey is a signing key and its public half.
type testKey struct {
	priv crypto.Signer // nil for HMAC
	sec  []byte        // HMAC secret
	pub  crypto.PublicKey
}

var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKeys   map[elliptic.Curve]*ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func genKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		ecKeys = map[elliptic.Curve]*ecdsa.PrivateKey{}
		for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
			k, err := ecdsa.GenerateKey(c, rand.Reader)
			if err != nil {
				panic(err)
			}
			ecKeys[c] = k
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// keyFor returns the test key for alg.
func keyFor(t testing.TB, alg string) testKey {
	genKeys(t)
	switch alg[:2] {
	case "HS":
		return testKey{sec: []byte("0123456789abcdef0123456789abcdef-" + alg)}
	case "RS", "PS":
		return testKey{priv: rsaKey, pub: &rsaKey.PublicKey}
	case "ES":
		c := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		return testKey{priv: ecKeys[c], pub: &ecKeys[c].PublicKey}
	}
	return testKey{priv: edKey, pub: edKey.Public()}
}

func pemOf(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// claims returns a valid claim set, with overrides (a nil value deletes).
func claims(over map[string]any) gojwt.MapClaims {
	now := time.Now()
	c := gojwt.MapClaims{
		"iss": "https://issuer.test",
		"aud": "api",
		"sub": "user-1",
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign makes a token signed with alg by k, with kid when not empty.
func sign(t testing.TB, alg string, k testKey, kid string, c gojwt.MapClaims) string {
	t.Helper()
	tok := gojwt.NewWithClaims(gojwt.GetSigningMethod(alg), c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	var key any = k.priv
	if k.sec != nil {
		key = k.sec
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", alg, err)
	}
	return s
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// testStore holds consumers alice (id id-alice, groups admins) and bob.
func testStore(t testing.TB) consumer.Store {
	t.Helper()
	s, err := consumer.NewStore([]*config.Consumer{
		{Name: "alice", ID: "id-alice", Groups: []string{"admins", "dev"}},
		{Name: "bob"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// build decodes cfg the way the gateway does and builds the instance
// (opts adjust the context, e.g. a shared pool).
func build(t testing.TB, cfg map[string]any, opts ...plugintest.Option) (*plugin.Instance, error) {
	t.Helper()
	src, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, in, err := plugintest.Build[plugin.Plugin](t, "jwt", string(src), append([]plugintest.Option{plugintest.WithStore(testStore(t))}, opts...)...)
	return in, err
}

// mustBuild builds the plugin, registers its cleanup and returns its
// handler in front of the capturing upstream.
func mustBuild(t testing.TB, cfg map[string]any) (http.Handler, *JWT) {
	t.Helper()
	in, err := build(t, cfg)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(in.Cleanup)
	return in.Plugin.Wrap(http.HandlerFunc(upstream)), in.Plugin.(*JWT)
}

// upstream reports what reached it: request headers as X-Got-*, the raw
// query as X-Got-Query.
func upstream(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range r.Header {
		h["X-Got-"+k] = v
	}
	h.Set("X-Got-Query", r.URL.RawQuery)
	w.WriteHeader(http.StatusOK)
}

// call sends a request with the token as a Bearer header ("" for none).
func call(h http.Handler, token string, mod ...func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/api", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for _, m := range mod {
		m(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// jwksServer serves a JWK Set that tests can change, counts fetches and
// can be switched off (500).
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	fetches atomic.Int64
	// served is when a key set was last written to a client (Unix ns).
	served atomic.Int64
	down   atomic.Bool
	delay  time.Duration
	// discovery, when set, is served at /.well-known/openid-configuration.
	discovery bool
}

func newJWKSServer(t testing.TB, keys ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.set(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			if !s.discovery {
				http.NotFound(w, r)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": s.URL, "jwks_uri": s.URL + "/jwks"})
		case "/jwks":
			s.fetches.Add(1)
			if s.delay > 0 {
				time.Sleep(s.delay) // a slow key server on purpose
			}
			s.mu.Lock()
			b := s.body
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(b)
			s.served.Store(time.Now().UnixNano())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(t testing.TB, keys ...jose.JSONWebKey) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func jwk(pub crypto.PublicKey, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: pub, KeyID: kid, Algorithm: alg, Use: "sig"}
}

// withClaims returns a copy of base with the claims kv (name, value, …)
// set.
func withClaims(base map[string]any, kv ...any) map[string]any {
	m := make(map[string]any, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}
