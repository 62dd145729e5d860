package jwt

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
)

var allAlgs = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// sourceFor returns the config keys that make the plugin trust alg's key.
func sourceFor(t *testing.T, alg string) map[string]any {
	k := keyFor(t, alg)
	if k.sec != nil {
		return map[string]any{"secret": string(k.sec)}
	}
	return map[string]any{"public_keys": []string{pemOf(t, k.pub)}}
}

func cfgWith(base map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range base {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func TestEveryAlgorithmVerifies(t *testing.T) {
	t.Parallel()
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			h, _ := mustBuild(t, cfgWith(sourceFor(t, alg), "algorithms", []string{alg}))
			w := call(h, sign(t, alg, keyFor(t, alg), "", claims(nil)))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200", w.Code)
			}
			if got := w.Header().Get("X-Got-X-Consumer-Username"); got != "user-1" {
				t.Errorf("X-Consumer-Username = %q, want user-1 (from sub)", got)
			}
			if got := w.Header().Get("X-Got-X-Authenticated-By"); got != "jwt" {
				t.Errorf("X-Authenticated-By = %q", got)
			}
			// A different key of the same type is refused.
			other := keyFor(t, alg)
			switch {
			case other.sec != nil:
				other.sec = []byte("another-secret-another-secret-another-secret")
			case alg[0] == 'R' || alg[0] == 'P':
				other.priv = rsaKey2
			default:
				return
			}
			if w := call(h, sign(t, alg, other, "", claims(nil))); w.Code != http.StatusUnauthorized {
				t.Fatalf("token signed by another key: status %d, want 401", w.Code)
			}
		})
	}
}

func TestKeyFilesAndJWKSInline(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "RS256")
	f := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(f, []byte(pemOf(t, k.pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	h, _ := mustBuild(t, map[string]any{"algorithms": []string{"RS256"}, "key_files": []string{f}})
	if w := call(h, sign(t, "RS256", k, "", claims(nil))); w.Code != 200 {
		t.Fatalf("key_files: status %d", w.Code)
	}
	ek := keyFor(t, "ES256")
	set, _ := json.Marshal(map[string]any{"keys": []any{jwk(ek.pub, "e1", "ES256"), jwk(k.pub, "r1", "")}})
	h, _ = mustBuild(t, map[string]any{"algorithms": []string{"RS256", "ES256"}, "jwks": string(set)})
	for _, tc := range []struct {
		alg, kid string
		k        testKey
		want     int
	}{
		{"ES256", "e1", ek, 200},
		{"RS256", "r1", k, 200},
		{"RS256", "", k, 200},    // no kid: every compatible key is tried
		{"ES256", "r1", ek, 401}, // kid of a key of another type
		{"RS256", "zz", k, 401},  // unknown kid, no kid-less key
	} {
		if w := call(h, sign(t, tc.alg, tc.k, tc.kid, claims(nil))); w.Code != tc.want {
			t.Errorf("%s kid %q: status %d, want %d", tc.alg, tc.kid, w.Code, tc.want)
		}
	}
}

func TestSecretBase64(t *testing.T) {
	t.Parallel()
	sec := []byte("\x00\x01binary-secret-of-enough-length-000000")
	h, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "secret": b64(string(sec)), "secret_base64": true})
	if w := call(h, sign(t, "HS256", testKey{sec: sec}, "", claims(nil))); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "RS256")
	cfg := map[string]any{
		"algorithms":      []string{"RS256"},
		"public_keys":     []string{pemOf(t, k.pub)},
		"issuers":         []string{"https://issuer.test", "https://other-issuer.test"},
		"audiences":       []string{"api", "api2"},
		"leeway":          "30s",
		"required_claims": map[string]string{"tenant": "acme"},
		"required_scopes": []string{"read", "write"},
	}
	h, _ := mustBuild(t, cfg)
	now := time.Now()
	ok := map[string]any{"tenant": "acme", "scope": "read write admin"}
	with := func(kv ...any) map[string]any { return withClaims(ok, kv...) }
	valid := sign(t, "RS256", k, "", claims(ok))
	parts := strings.Split(valid, ".")
	tamperedPayload := parts[0] + "." + b64(`{"sub":"admin","iss":"https://issuer.test","aud":"api","tenant":"acme","scope":"read write","exp":9999999999}`) + "." + parts[2]
	sig := []byte(parts[2])
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)
	noneBody := b64(string(mustJSON(t, claims(ok))))

	tests := []struct {
		desc      string
		token     string
		want      int
		wantError string // error= in WWW-Authenticate
	}{
		{"valid", valid, 200, ""},
		{"second issuer and audience", sign(t, "RS256", k, "", claims(with("iss", "https://other-issuer.test", "aud", []string{"x", "api2"}))), 200, ""},
		{"scopes as scp list", sign(t, "RS256", k, "", claims(with("scope", nil, "scp", []string{"write", "read"}))), 200, ""},
		{"required claim in a list", sign(t, "RS256", k, "", claims(with("tenant", []string{"other", "acme"}))), 200, ""},
		{"expired", sign(t, "RS256", k, "", claims(with("exp", now.Add(-time.Minute).Unix()))), 401, "invalid_token"},
		{"expired within leeway", sign(t, "RS256", k, "", claims(with("exp", now.Add(-10*time.Second).Unix()))), 200, ""},
		{"not yet valid", sign(t, "RS256", k, "", claims(with("nbf", now.Add(time.Minute).Unix()))), 401, "invalid_token"},
		{"nbf within leeway", sign(t, "RS256", k, "", claims(with("nbf", now.Add(10*time.Second).Unix()))), 200, ""},
		{"issued in the future", sign(t, "RS256", k, "", claims(with("iat", now.Add(time.Hour).Unix()))), 401, "invalid_token"},
		{"no exp", sign(t, "RS256", k, "", claims(with("exp", nil))), 401, "invalid_token"},
		{"wrong issuer", sign(t, "RS256", k, "", claims(with("iss", "https://evil.test"))), 401, "invalid_token"},
		{"no issuer", sign(t, "RS256", k, "", claims(with("iss", nil))), 401, "invalid_token"},
		{"wrong audience", sign(t, "RS256", k, "", claims(with("aud", "other"))), 401, "invalid_token"},
		{"no audience", sign(t, "RS256", k, "", claims(with("aud", nil))), 401, "invalid_token"},
		{"required claim mismatch", sign(t, "RS256", k, "", claims(with("tenant", "globex"))), 401, "invalid_token"},
		{"required claim missing", sign(t, "RS256", k, "", claims(with("tenant", nil))), 401, "invalid_token"},
		{"missing scope", sign(t, "RS256", k, "", claims(with("scope", "read"))), 403, "insufficient_scope"},
		{"no scope claim", sign(t, "RS256", k, "", claims(with("scope", nil))), 403, "insufficient_scope"},
		{"scope substring is not a scope", sign(t, "RS256", k, "", claims(with("scope", "read writer"))), 403, "insufficient_scope"},
		{"tampered payload", tamperedPayload, 401, "invalid_token"},
		{"tampered signature", tamperedSig, 401, "invalid_token"},
		{"alg none", b64(`{"alg":"none","typ":"JWT"}`) + "." + noneBody + ".", 401, "invalid_token"},
		{"alg None", b64(`{"alg":"None"}`) + "." + noneBody + ".", 401, "invalid_token"},
		{"alg none with signature", b64(`{"alg":"none"}`) + "." + noneBody + "." + parts[2], 401, "invalid_token"},
		{"garbage", "not-a-token", 401, "invalid_token"},
		{"crit header", signCrit(t, k, claims(ok)), 401, "invalid_token"},
		{"no token", "", 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			w := call(h, tc.token)
			if w.Code != tc.want {
				t.Fatalf("status %d, want %d", w.Code, tc.want)
			}
			if tc.want == 200 {
				return
			}
			ch := w.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(ch, `Bearer realm="portico"`) {
				t.Errorf("WWW-Authenticate = %q", ch)
			}
			if tc.wantError == "" && strings.Contains(ch, "error=") {
				t.Errorf("WWW-Authenticate = %q, want no error", ch)
			}
			if tc.wantError != "" && !strings.Contains(ch, `error="`+tc.wantError+`"`) {
				t.Errorf("WWW-Authenticate = %q, want error=%q", ch, tc.wantError)
			}
			body := w.Body.String()
			for _, leak := range []string{"expired", "issuer", "audience", "signature", "scope", "claim"} {
				if strings.Contains(body, leak) {
					t.Errorf("body %q leaks %q", body, leak)
				}
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signCrit(t *testing.T, k testKey, c gojwt.MapClaims) string {
	tok := gojwt.NewWithClaims(gojwt.SigningMethodRS256, c)
	tok.Header["crit"] = []string{"exp"}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRequireExpFalse(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "HS256")
	h, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec), "require_exp": false})
	if w := call(h, sign(t, "HS256", k, "", claims(map[string]any{"exp": nil}))); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
}

// TestAlgorithmConfusion: a token's alg never makes a public key act as an
// HMAC secret, and a key never verifies another family's algorithm.
func TestAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	rk := keyFor(t, "RS256")
	pubPEM := pemOf(t, rk.pub)
	ek := keyFor(t, "ES256")
	// HS256 signed with the RSA public key's bytes (PEM and DER).
	confusedPEM := sign(t, "HS256", testKey{sec: []byte(pubPEM)}, "", claims(nil))
	der, err := x509.MarshalPKIXPublicKey(rk.pub)
	if err != nil {
		t.Fatal(err)
	}
	confusedDER := sign(t, "HS256", testKey{sec: der}, "", claims(nil))
	// The same, naming the RSA key's kid in a JWKS.
	confusedKid := sign(t, "HS256", testKey{sec: []byte(pubPEM)}, "r1", claims(nil))
	set, _ := json.Marshal(map[string]any{"keys": []any{jwk(rk.pub, "r1", "")}})

	cases := []struct {
		desc string
		cfg  map[string]any
	}{
		{"RS256 only", map[string]any{"algorithms": []string{"RS256"}, "public_keys": []string{pubPEM}}},
		{"RS256 and HS256 with another secret", map[string]any{"algorithms": []string{"RS256", "HS256"}, "public_keys": []string{pubPEM}, "secret": "a-completely-different-secret-value-0123"}},
		{"JWKS RSA key, HS256 allowed", map[string]any{"algorithms": []string{"RS256", "HS256"}, "jwks": string(set), "secret": "a-completely-different-secret-value-0123"}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			h, _ := mustBuild(t, tc.cfg)
			for name, tok := range map[string]string{"pem": confusedPEM, "der": confusedDER, "kid": confusedKid} {
				if w := call(h, tok); w.Code != http.StatusUnauthorized {
					t.Errorf("%s: HS256 signed with the RSA public key: status %d, want 401", name, w.Code)
				}
			}
			// The genuine RS256 token still works.
			if w := call(h, sign(t, "RS256", rk, "", claims(nil))); w.Code != 200 {
				t.Errorf("RS256: status %d", w.Code)
			}
		})
	}
	// An allowed algorithm of another family than the key is refused even
	// when validly signed by a key of that family.
	h, _ := mustBuild(t, map[string]any{"algorithms": []string{"RS256", "ES256"}, "public_keys": []string{pubPEM}})
	if w := call(h, sign(t, "ES256", ek, "", claims(nil))); w.Code != 401 {
		t.Errorf("ES256 with only an RSA key: status %d", w.Code)
	}
	// A not-allowed algorithm is refused even with the right key.
	if w := call(h, sign(t, "PS256", rk, "", claims(nil))); w.Code != 401 {
		t.Errorf("PS256 not allowed: status %d", w.Code)
	}
	// EC keys verify only the algorithm of their curve.
	e384 := keyFor(t, "ES384")
	h, _ = mustBuild(t, map[string]any{"algorithms": []string{"ES256", "ES384"}, "public_keys": []string{pemOf(t, ek.pub)}})
	if w := call(h, sign(t, "ES384", e384, "", claims(nil))); w.Code != 401 {
		t.Errorf("ES384 against a P-256 key: status %d", w.Code)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	rk := keyFor(t, "RS256")
	pubPEM := pemOf(t, rk.pub)
	for _, tc := range []struct {
		desc string
		cfg  map[string]any
		want string
	}{
		{"no algorithms", map[string]any{"secret": "0123456789abcdef0123456789abcdef"}, "algorithms"},
		{"unknown algorithm", map[string]any{"algorithms": []string{"none"}, "secret": "0123456789abcdef0123456789abcdef"}, "unsupported algorithm"},
		{"no key", map[string]any{"algorithms": []string{"HS256"}}, "no key source"},
		{"short secret", map[string]any{"algorithms": []string{"HS256"}, "secret": "short"}, "too short"},
		{"key unusable", map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "public_keys": []string{pubPEM}}, "cannot verify"},
		{"secret unusable", map[string]any{"algorithms": []string{"RS256"}, "secret": "0123456789abcdef0123456789abcdef"}, "cannot verify"},
		{"unknown field", map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "bogus": 1}, "unknown field"},
		{"bad pem", map[string]any{"algorithms": []string{"RS256"}, "public_keys": []string{"nope"}}, "no PEM"},
		{"reserved header", map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "claims_to_headers": map[string]string{"sub": "X-Consumer-Username"}}, "reserved"},
		{"framing header", map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "claims_to_headers": map[string]string{"sub": "transfer-encoding"}}, "reserved"},
		{"length header", map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "claims_to_headers": map[string]string{"sub": "Content-Length"}}, "reserved"},
		{"hop-by-hop header", map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "claims_to_headers": map[string]string{"sub": "Connection"}}, "reserved"},
		{"unknown anonymous", map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "anonymous": "nobody"}, "anonymous"},
		{"stale below refresh", map[string]any{"algorithms": []string{"RS256"}, "jwks_url": "http://127.0.0.1:1/jwks", "jwks_refresh": "1m", "jwks_stale_ttl": "10s"}, "jwks_stale_ttl"},
		{"both remote", map[string]any{"algorithms": []string{"RS256"}, "jwks_url": "http://127.0.0.1:1/jwks", "oidc_issuer": "http://127.0.0.1:1"}, "not both"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			in, err := build(t, tc.cfg)
			if err == nil {
				in.Cleanup()
				t.Fatal("build succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestTokenSources(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "HS256")
	h, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec), "cookie": "session", "query": "access_token"})
	tok := sign(t, "HS256", k, "", claims(nil))

	w := call(h, "", func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: tok}) })
	if w.Code != 200 {
		t.Fatalf("cookie: status %d", w.Code)
	}

	w = call(h, "", func(r *http.Request) {
		r.URL.RawQuery = "a=1&access_token=" + url.QueryEscape(tok) + "&b=2"
	})
	if w.Code != 200 {
		t.Fatalf("query: status %d", w.Code)
	}
	if q := w.Header().Get("X-Got-Query"); q != "a=1&b=2" {
		t.Errorf("upstream query %q, want the token removed and the rest kept", q)
	}
	// A valid header and a different cookie: two credentials, refused.
	w = call(h, tok, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: "bad"}) })
	if w.Code != 400 {
		t.Fatalf("header and different cookie: status %d, want 400", w.Code)
	}
	// The same token in the header and the cookie is one credential.
	w = call(h, tok, func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "session", Value: tok}) })
	if w.Code != 200 {
		t.Fatalf("header and same cookie: status %d", w.Code)
	}
	// A non-Bearer Authorization header falls through to the cookie.
	w = call(h, "", func(r *http.Request) {
		r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
		r.AddCookie(&http.Cookie{Name: "session", Value: tok})
	})
	if w.Code != 200 {
		t.Fatalf("basic + cookie: status %d", w.Code)
	}
	// The token parameter is stripped even when the request is refused.
	w = call(h, "", func(r *http.Request) { r.URL.RawQuery = "access_token=bad" })
	if w.Code != 401 {
		t.Fatalf("bad query token: status %d", w.Code)
	}
	// Without cookie/query configured, those sources are ignored.
	h2, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec)})
	if w := call(h2, "", func(r *http.Request) { r.URL.RawQuery = "access_token=" + tok }); w.Code != 401 {
		t.Fatalf("query not configured: status %d", w.Code)
	}
	// strip_query: false keeps the parameter.
	h3, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec), "query": "t", "strip_query": false})
	w = call(h3, "", func(r *http.Request) { r.URL.RawQuery = "t=" + tok })
	if w.Code != 200 || w.Header().Get("X-Got-Query") != "t="+tok {
		t.Fatalf("strip_query false: status %d query %q", w.Code, w.Header().Get("X-Got-Query"))
	}
}

func TestClaimsToHeaders(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "HS256")
	h, _ := mustBuild(t, map[string]any{
		"algorithms":        []string{"HS256"},
		"secret":            string(k.sec),
		"claims_to_headers": map[string]string{"sub": "X-User-Sub", "email": "x-user-email", "roles": "X-User-Roles", "missing": "X-User-Missing"},
	})
	spoof := func(r *http.Request) {
		r.Header.Set("X-User-Sub", "forged")
		r.Header.Set("X-User-Email", "forged@evil.test")
		r.Header.Set("X-User-Missing", "forged")
	}
	w := call(h, sign(t, "HS256", k, "", claims(map[string]any{"email": "u@example.test", "roles": []string{"a", "b"}})), spoof)
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	for hdr, want := range map[string]string{"X-User-Sub": "user-1", "X-User-Email": "u@example.test", "X-User-Roles": "a, b", "X-User-Missing": ""} {
		if got := w.Header().Values("X-Got-" + hdr); strings.Join(got, "|") != want {
			t.Errorf("%s = %q, want %q", hdr, got, want)
		}
	}
	// Spoofed headers are removed when the request proceeds anonymously.
	ha, _ := mustBuild(t, map[string]any{
		"algorithms": []string{"HS256"}, "secret": string(k.sec), "anonymous": "bob",
		"claims_to_headers": map[string]string{"sub": "X-User-Sub"},
	})
	for _, tok := range []string{"", "invalid.token.here"} {
		w = call(ha, tok, spoof)
		if w.Code != 200 {
			t.Fatalf("anonymous: status %d", w.Code)
		}
		if got := w.Header().Get("X-Got-X-User-Sub"); got != "" {
			t.Errorf("token %q: spoofed X-User-Sub reached upstream: %q", tok, got)
		}
	}
}

func TestConsumerMapping(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "HS256")
	base := map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec), "consumer_claim": "client_id"}
	h, _ := mustBuild(t, base)
	for _, tc := range []struct {
		clientID any
		want     int
		user, id string
		groups   string
	}{
		{"alice", 200, "alice", "id-alice", "admins, dev"},
		{"id-alice", 200, "alice", "id-alice", "admins, dev"}, // by id
		{"bob", 200, "bob", "bob", ""},
		{"mallory", 401, "", "", ""},
		{nil, 401, "", "", ""},
		{42, 401, "", "", ""},
	} {
		w := call(h, sign(t, "HS256", k, "kid-1", claims(map[string]any{"client_id": tc.clientID, "groups": "root"})))
		if w.Code != tc.want {
			t.Errorf("client_id %v: status %d, want %d", tc.clientID, w.Code, tc.want)
			continue
		}
		if tc.want != 200 {
			if ch := w.Header().Get("WWW-Authenticate"); !strings.Contains(ch, "invalid_token") {
				t.Errorf("client_id %v: WWW-Authenticate %q", tc.clientID, ch)
			}
			continue
		}
		got := w.Header()
		if got.Get("X-Got-X-Consumer-Username") != tc.user || got.Get("X-Got-X-Consumer-Id") != tc.id || got.Get("X-Got-X-Consumer-Groups") != tc.groups {
			t.Errorf("client_id %v: identity %q/%q/%q", tc.clientID, got.Get("X-Got-X-Consumer-Username"), got.Get("X-Got-X-Consumer-Id"), got.Get("X-Got-X-Consumer-Groups"))
		}
		if got.Get("X-Got-X-Credential-Identifier") != "kid-1" {
			t.Errorf("credential identifier %q", got.Get("X-Got-X-Credential-Identifier"))
		}
	}
	// allow_unknown_consumers: a synthetic consumer, groups from groups_claim.
	hu, _ := mustBuild(t, cfgWith(base, "allow_unknown_consumers", true, "groups_claim", "groups"))
	w := call(hu, sign(t, "HS256", k, "", claims(map[string]any{"client_id": "svc-9", "groups": "ops, dev"})))
	if w.Code != 200 || w.Header().Get("X-Got-X-Consumer-Username") != "svc-9" || w.Header().Get("X-Got-X-Consumer-Groups") != "ops, dev" {
		t.Fatalf("unknown allowed: status %d user %q groups %q", w.Code, w.Header().Get("X-Got-X-Consumer-Username"), w.Header().Get("X-Got-X-Consumer-Groups"))
	}
	// Known consumers keep their configured groups.
	w = call(hu, sign(t, "HS256", k, "", claims(map[string]any{"client_id": "bob", "groups": "admins"})))
	if w.Code != 200 || w.Header().Get("X-Got-X-Consumer-Groups") != "" {
		t.Fatalf("known consumer took groups from the token: %q", w.Header().Get("X-Got-X-Consumer-Groups"))
	}
	// Without consumer_claim: synthetic from sub; groups claim as a list.
	hs, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec), "groups_claim": "roles"})
	w = call(hs, sign(t, "HS256", k, "", claims(map[string]any{"roles": []string{"a", "b"}})))
	if w.Code != 200 || w.Header().Get("X-Got-X-Consumer-Username") != "user-1" || w.Header().Get("X-Got-X-Consumer-Groups") != "a, b" {
		t.Fatalf("sub identity: status %d user %q groups %q", w.Code, w.Header().Get("X-Got-X-Consumer-Username"), w.Header().Get("X-Got-X-Consumer-Groups"))
	}
	if w := call(hs, sign(t, "HS256", k, "", claims(map[string]any{"sub": nil}))); w.Code != 401 {
		t.Fatalf("no sub: status %d", w.Code)
	}
}

func TestAnonymousFallback(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "HS256")
	h, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec), "anonymous": "bob", "required_scopes": []string{"read"}})
	for _, tok := range []string{"", "garbage", sign(t, "HS256", testKey{sec: []byte("wrong-secret-wrong-secret-wrong-secret")}, "", claims(nil))} {
		w := call(h, tok)
		if w.Code != 200 {
			t.Fatalf("token %q: status %d, want 200 as anonymous", tok, w.Code)
		}
		if w.Header().Get("X-Got-X-Anonymous-Consumer") != "true" || w.Header().Get("X-Got-X-Consumer-Username") != "bob" {
			t.Errorf("token %q: not anonymous bob: %v", tok, w.Header())
		}
	}
	// A valid token is a real consumer.
	w := call(h, sign(t, "HS256", k, "", claims(map[string]any{"scope": "read"})))
	if w.Code != 200 || w.Header().Get("X-Got-X-Anonymous-Consumer") != "" || w.Header().Get("X-Got-X-Consumer-Username") != "user-1" {
		t.Fatalf("valid token: status %d headers %v", w.Code, w.Header())
	}
	// A valid token lacking scope is forbidden, not downgraded.
	if w := call(h, sign(t, "HS256", k, "", claims(nil))); w.Code != 403 {
		t.Fatalf("missing scope with anonymous: status %d, want 403", w.Code)
	}
}
