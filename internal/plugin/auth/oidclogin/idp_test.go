package oidclogin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testClock is a clock the test moves forward; the plugin and the provider
// share it so issued tokens and their verification agree.
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

var (
	keyOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func signingKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		rsaKey = k
	})
	return rsaKey
}

// grant is an authorization code the provider issued.
type grant struct {
	clientID, redirectURI, challenge, method, nonce string
}

// fakeIdP is a small but real OpenID provider: discovery, an authorization
// endpoint that approves every request, a token endpoint that checks client
// authentication and PKCE (S256) and issues RS256 ID tokens, refresh,
// JWKS and end-session.
type fakeIdP struct {
	t      testing.TB
	srv    *httptest.Server
	clock  *testClock
	signer jose.Signer
	key    *rsa.PrivateKey

	clientID, clientSecret string
	sub, email             string
	groups                 []string

	// Knobs, set before use.
	tokenTTL         time.Duration
	wrongNonce       bool
	corruptChallenge bool
	noRefreshToken   bool
	noExpiresIn      bool
	extraClaims      map[string]any
	down             atomic.Bool
	jwksDown         atomic.Bool
	tokenDown        atomic.Bool

	mu             sync.Mutex
	codes          map[string]*grant
	refreshTokens  map[string]bool
	authorizeCalls int
	refreshCalls   int
	pkceFailures   int
	pkceVerified   int
	lastIDToken    string
	endSession     []url.Values
}

func newFakeIdP(t testing.TB, clock *testClock) *fakeIdP {
	t.Helper()
	key := signingKey(t)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeIdP{
		t: t, clock: clock, signer: signer, key: key,
		clientID: "portico", clientSecret: "s3cret",
		sub: "alice-sub", email: "alice@example.com", groups: []string{"admins", "dev"},
		tokenTTL:      time.Hour,
		codes:         map[string]*grant{},
		refreshTokens: map[string]bool{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /end_session", p.endSessionHandler)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *fakeIdP) URL() string { return p.srv.URL }

func (p *fakeIdP) discovery(w http.ResponseWriter, r *http.Request) {
	if p.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.URL(),
		"authorization_endpoint":                p.URL() + "/authorize",
		"token_endpoint":                        p.URL() + "/token",
		"jwks_uri":                              p.URL() + "/jwks",
		"end_session_endpoint":                  p.URL() + "/end_session",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (p *fakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("response_type") != "code" || q.Get("client_id") != p.clientID || q.Get("redirect_uri") == "" ||
		q.Get("state") == "" || q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256" {
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
		return
	}
	challenge := q.Get("code_challenge")
	if p.corruptChallenge {
		// Change the first character (to something it is not).
		if challenge[0] == 'x' {
			challenge = "y" + challenge[1:]
		} else {
			challenge = "x" + challenge[1:]
		}
	}
	code := randomString()
	p.mu.Lock()
	p.authorizeCalls++
	p.codes[code] = &grant{clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"), challenge: challenge,
		method: q.Get("code_challenge_method"), nonce: q.Get("nonce")}
	p.mu.Unlock()
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if p.tokenDown.Load() {
		http.Error(w, "overloaded", http.StatusBadGateway)
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.clientID || secret != p.clientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var nonce string
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		if g == nil || g.clientID != id || g.redirectURI != r.PostForm.Get("redirect_uri") {
			tokenError(w, "invalid_grant")
			return
		}
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if r.PostForm.Get("code_verifier") == "" || base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
			p.pkceFailures++
			tokenError(w, "invalid_grant")
			return
		}
		p.pkceVerified++
		nonce = g.nonce
		if p.wrongNonce {
			nonce = "not-the-nonce"
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !p.refreshTokens[rt] {
			tokenError(w, "invalid_grant")
			return
		}
		delete(p.refreshTokens, rt) // rotation
		p.refreshCalls++
	default:
		tokenError(w, "unsupported_grant_type")
		return
	}
	now := p.clock.Now()
	claims := map[string]any{
		"iss": p.URL(), "sub": p.sub, "aud": p.clientID,
		"iat": now.Unix(), "exp": now.Add(p.tokenTTL).Unix(),
		"email": p.email, "groups": p.groups,
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	for k, v := range p.extraClaims {
		if v == nil {
			delete(claims, k) // nil removes a claim
			continue
		}
		claims[k] = v
	}
	idToken, err := jwt.Signed(p.signer).Claims(claims).Serialize()
	if err != nil {
		p.t.Errorf("sign: %v", err)
		tokenError(w, "server_error")
		return
	}
	p.lastIDToken = idToken
	resp := map[string]any{
		"access_token": "at-" + randomString()[:16],
		"token_type":   "Bearer",
		"expires_in":   int(p.tokenTTL / time.Second),
		"id_token":     idToken,
	}
	if p.noExpiresIn {
		delete(resp, "expires_in")
	}
	if !p.noRefreshToken {
		rt := "rt-" + randomString()
		p.refreshTokens[rt] = true
		resp["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *fakeIdP) jwks(w http.ResponseWriter, r *http.Request) {
	if p.jwksDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

func (p *fakeIdP) endSessionHandler(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.endSession = append(p.endSession, r.URL.Query())
	p.mu.Unlock()
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("logged out"))
}

// revokeRefreshTokens makes every issued refresh token invalid.
func (p *fakeIdP) revokeRefreshTokens() {
	p.mu.Lock()
	p.refreshTokens = map[string]bool{}
	p.mu.Unlock()
}

func (p *fakeIdP) counts() (authorize, refresh, pkceOK, pkceBad int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.authorizeCalls, p.refreshCalls, p.pkceVerified, p.pkceFailures
}

func tokenError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
