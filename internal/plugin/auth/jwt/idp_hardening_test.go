package jwt

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// setMinInterval lowers a remote's minimum kid-refresh interval below what
// the config accepts, so a test can exercise every refresh.
func setMinInterval(p *JWT, d time.Duration) {
	p.remote.mu.Lock()
	p.remote.minInterval = d
	p.remote.kidNext = time.Time{}
	p.remote.mu.Unlock()
}

// buildLogged is mustBuild with the plugin's log written to the returned
// buffer.
func buildLogged(t testing.TB, cfg map[string]any) (http.Handler, *JWT, *logbuf.Buffer) {
	t.Helper()
	src, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lb := &logbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, _, err := plugintest.Build[*JWT](t, "jwt", string(src), plugintest.WithStore(testStore(t)), plugintest.WithLogger(log))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return p.Wrap(http.HandlerFunc(upstream)), p, lb
}

// callRec is call with a request record; it returns the response and the
// auth failure reason recorded for the access log.
func callRec(h http.Handler, token string, mod ...func(*http.Request)) (*httptest.ResponseRecorder, string) {
	rec := &request.Record{}
	mod = append([]func(*http.Request){func(r *http.Request) {
		*r = *r.WithContext(request.WithRecord(r.Context(), rec))
	}}, mod...)
	w := call(h, token, mod...)
	return w, rec.AuthFailure
}

func TestInlineOctJWKS(t *testing.T) {
	t.Parallel()
	sec := []byte("0123456789abcdef0123456789abcdef-oct")
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: sec, KeyID: "hmac-1", Algorithm: "HS256", Use: "sig"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := mustBuild(t, map[string]any{"algorithms": []string{"HS256"}, "jwks": string(set)})
	k := testKey{sec: sec}
	if w := call(h, sign(t, "HS256", k, "hmac-1", claims(nil))); w.Code != 200 {
		t.Fatalf("HS256 token verified by an inline oct JWK: status %d, want 200", w.Code)
	}
	if w := call(h, sign(t, "HS256", k, "", claims(nil))); w.Code != 200 {
		t.Fatalf("HS256 token without kid: status %d, want 200", w.Code)
	}
	if w := call(h, sign(t, "HS256", testKey{sec: []byte("another-secret-of-enough-length-000")}, "hmac-1", claims(nil))); w.Code != 401 {
		t.Fatalf("token signed with another secret: status %d, want 401", w.Code)
	}
	// A too-short oct key is a load error, not a silently missing key.
	short, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("short"), KeyID: "s", Use: "sig"}}})
	if in, err := build(t, map[string]any{"algorithms": []string{"HS256"}, "jwks": string(short)}); err == nil {
		in.Cleanup()
		t.Fatal("a 5-byte oct key was accepted")
	} else if !strings.Contains(err.Error(), "too short") {
		t.Fatalf("error %q does not say the key is too short", err)
	}
	// An oct key declaring an RSA algorithm is refused.
	wrong, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: sec, KeyID: "w", Algorithm: "RS256", Use: "sig"}}})
	if in, err := build(t, map[string]any{"algorithms": []string{"HS256", "RS256"}, "jwks": string(wrong)}); err == nil {
		in.Cleanup()
		t.Fatal("an oct key declaring RS256 was accepted")
	}
}

func TestTimeSettingsBounded(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, jwk(newECKey(t).pub, "k1", "ES256"))
	for _, tc := range []struct {
		kv   []any
		want string
	}{
		{[]any{"leeway", "6m"}, "leeway: 6m0s is out of range (0 to 5m0s)"},
		{[]any{"leeway", "-1s"}, "leeway"},
		{[]any{"jwks_min_refresh_interval", "0s"}, "jwks_min_refresh_interval: 0s is out of range (1s to 1h0m0s)"},
		{[]any{"jwks_min_refresh_interval", "500ms"}, "jwks_min_refresh_interval: 500ms is out of range"},
		{[]any{"jwks_min_refresh_interval", "2h"}, "jwks_min_refresh_interval: 2h0m0s is out of range"},
	} {
		in, err := build(t, jwksCfg(srv.URL+"/jwks", tc.kv...))
		if err == nil {
			in.Cleanup()
			t.Errorf("%v accepted", tc.kv)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %q does not contain %q", tc.kv, err, tc.want)
		}
	}
	for _, kv := range [][]any{{"leeway", "5m"}, {"leeway", "0s"}, {"jwks_min_refresh_interval", "1s"}, {"jwks_min_refresh_interval", "1h"}} {
		in, err := build(t, jwksCfg(srv.URL+"/jwks", kv...))
		if err != nil {
			t.Errorf("%v refused: %v", kv, err)
			continue
		}
		in.Cleanup()
	}
}

// TestJWKSRedirectNotFollowed: a JWKS URL or discovery document that
// redirects to another host is a failed fetch; the other host is never
// asked and its keys never trusted.
func TestJWKSRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	k := newECKey(t)
	evil := newJWKSServer(t, jwk(k.pub, "k1", "ES256"))
	evil.discovery = true
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(redirector.Close)
	tok := sign(t, "ES256", k, "k1", claims(map[string]any{"iss": redirector.URL}))
	for _, cfg := range []map[string]any{
		jwksCfg(redirector.URL+"/jwks", "jwks_min_refresh_interval", "1h"),
		{"algorithms": []string{"ES256"}, "oidc_issuer": redirector.URL, "jwks_min_refresh_interval": "1h"},
	} {
		h, p, logs := buildLogged(t, cfg)
		if p.remote.state.Load() != nil {
			t.Fatalf("%v: keys were loaded through a redirect", cfg)
		}
		if w := call(h, tok); w.Code != 401 {
			t.Fatalf("%v: token signed by the redirect target's key: status %d, want 401", cfg, w.Code)
		}
		if !strings.Contains(logs.String(), "status 302") {
			t.Errorf("%v: the failed fetch is not logged with its status:\n%s", cfg, logs)
		}
	}
	if n := evil.fetches.Load(); n != 0 {
		t.Fatalf("the redirect target was fetched %d times", n)
	}
}

// TestJWKSRecoversQuicklyAfterOutage: during an identity-provider outage a
// token with a new kid fails (unknown_kid) and the failure is logged at
// WARN; once the provider is back with the new key, the token is accepted
// after the short failure back-off, not after jwks_min_refresh_interval.
func TestJWKSRecoversQuicklyAfterOutage(t *testing.T) {
	t.Parallel()
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	// Count every attempt, failed ones included.
	var attempts atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		srv.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	// Background refresh far away: only kid-triggered fetches can help.
	h, _, logs := buildLogged(t, jwksCfg(front.URL+"/jwks", "jwks_refresh", "1h", "jwks_min_refresh_interval", "1h"))
	srv.down.Store(true)
	tok2 := sign(t, "ES256", k2, "k2", claims(nil))
	w, reason := callRec(h, tok2)
	if w.Code != 401 || reason != reasonUnknownKid {
		t.Fatalf("new kid during the outage: status %d reason %q, want 401 %q", w.Code, reason, reasonUnknownKid)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "JWKS fetch failed") {
		t.Fatalf("failed fetch not logged at WARN:\n%s", logs)
	}
	// Hammering during the outage does not hammer the provider.
	before := attempts.Load()
	for range 20 {
		call(h, tok2)
	}
	if n := attempts.Load() - before; n > 2 {
		t.Fatalf("%d fetches for 20 requests right after a failure, want the back-off to hold them", n)
	}
	// The provider returns with the new key.
	srv.set(t, jwk(k1.pub, "k1", "ES256"), jwk(k2.pub, "k2", "ES256"))
	srv.down.Store(false)
	start := time.Now()
	if !wait.Within(5*time.Second, func() bool { return call(h, tok2).Code == 200 }) {
		t.Fatal("token with the new kid still refused 5s after the provider came back")
	}
	if d := time.Since(start); d > kidRetryMax+time.Second {
		t.Fatalf("recovered after %v, want within the failure back-off (%v)", d, kidRetryMax)
	}
	// The WARN lines are rate limited: one per interval, not one per failure.
	if n := strings.Count(logs.String(), "JWKS fetch failed"); n > 2 {
		t.Errorf("%d WARN lines for one outage, want rate-limited:\n%s", n, logs)
	}
}

func TestFailureReasons(t *testing.T) {
	t.Parallel()
	rk := keyFor(t, "RS256")
	hk := keyFor(t, "HS256")
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk(rk.pub, "r1", "RS256")}})
	h, _ := mustBuild(t, map[string]any{
		"algorithms": []string{"RS256", "HS256"}, "jwks": string(set),
		"issuer": "https://issuer.test", "audiences": []string{"api"},
		"required_claims": map[string]string{"tenant": "acme"},
		"consumer_claim":  "sub", "required_scopes": []string{"read"},
	})
	now := time.Now()
	ok := map[string]any{"tenant": "acme", "sub": "alice", "scope": "read"}
	with := func(kv ...any) map[string]any { return withClaims(ok, kv...) }
	good := sign(t, "RS256", rk, "r1", claims(with()))
	for _, tc := range []struct {
		desc, token string
		mod         func(*http.Request)
		status      int
		reason      string
	}{
		{"valid", good, nil, 200, ""},
		{"no token", "", nil, 401, "missing"},
		{"not a JWT", "not-a-jwt", nil, 401, "malformed"},
		{"bad base64", "@@@.@@@.@@@", nil, 401, "malformed"},
		{"tampered signature", good[:len(good)-4] + "AAAA", nil, 401, "bad_signature"},
		{"other key", sign(t, "RS256", testKey{priv: rsaKey2}, "r1", claims(with())), nil, 401, "bad_signature"},
		{"unknown kid", sign(t, "RS256", rk, "nope", claims(with())), nil, 401, "unknown_kid"},
		{"no key for the algorithm", sign(t, "HS256", hk, "", claims(with())), nil, 401, "bad_algorithm"},
		{"algorithm not allowed", sign(t, "ES256", keyFor(t, "ES256"), "r1", claims(with())), nil, 401, "bad_signature"},
		{"expired", sign(t, "RS256", rk, "r1", claims(with("exp", now.Add(-time.Hour).Unix()))), nil, 401, "expired"},
		{"not yet valid", sign(t, "RS256", rk, "r1", claims(with("nbf", now.Add(time.Hour).Unix()))), nil, 401, "not_yet_valid"},
		{"issued in the future", sign(t, "RS256", rk, "r1", claims(with("iat", now.Add(time.Hour).Unix()))), nil, 401, "not_yet_valid"},
		{"wrong issuer", sign(t, "RS256", rk, "r1", claims(with("iss", "https://evil.test"))), nil, 401, "bad_issuer"},
		{"wrong audience", sign(t, "RS256", rk, "r1", claims(with("aud", "other"))), nil, 401, "bad_audience"},
		{"required claim mismatch", sign(t, "RS256", rk, "r1", claims(with("tenant", "evil"))), nil, 401, "bad_claims"},
		{"no exp", sign(t, "RS256", rk, "r1", claims(with("exp", nil))), nil, 401, "bad_claims"},
		{"unknown consumer", sign(t, "RS256", rk, "r1", claims(with("sub", "mallory"))), nil, 401, "unknown_consumer"},
		{"missing scope", sign(t, "RS256", rk, "r1", claims(with("scope", "write"))), nil, 403, "insufficient_scope"},
		{"two Authorization headers", good, func(r *http.Request) { r.Header.Add("Authorization", "Bearer forged") }, 400, "multiple"},
	} {
		var mods []func(*http.Request)
		if tc.mod != nil {
			mods = append(mods, tc.mod)
		}
		w, reason := callRec(h, tc.token, mods...)
		if w.Code != tc.status || reason != tc.reason {
			t.Errorf("%s: status %d reason %q, want %d %q", tc.desc, w.Code, reason, tc.status, tc.reason)
		}
		if strings.Contains(w.Body.String(), tc.reason) && tc.reason != "" {
			t.Errorf("%s: the response body reveals the reason: %s", tc.desc, w.Body)
		}
	}
}

// TestMultipleCredentials: any request carrying more than one token —
// whichever sources — is refused with 400 before it reaches the upstream,
// even with `anonymous` set.
func TestMultipleCredentials(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "HS256")
	good := sign(t, "HS256", k, "", claims(nil))
	other := sign(t, "HS256", k, "", claims(map[string]any{"sub": "user-2"}))
	var reached atomic.Int64
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		upstream(w, r)
	})
	build := func(extra ...any) http.Handler {
		_, p := mustBuild(t, cfgWith(map[string]any{"algorithms": []string{"HS256"}, "secret": string(k.sec), "cookie": "tok", "query": "access_token"}, extra...))
		return p.Wrap(counting)
	}
	cookie := func(v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Add("Cookie", "tok="+v) }
	}
	query := func(q string) func(*http.Request) { return func(r *http.Request) { r.URL.RawQuery = q } }
	hdr := func(v string) func(*http.Request) { return func(r *http.Request) { r.Header.Add("Authorization", v) } }
	for _, h := range []http.Handler{build(), build("anonymous", "bob")} {
		for _, tc := range []struct {
			desc  string
			token string
			mods  []func(*http.Request)
			want  int
		}{
			{"valid then forged Authorization", good, []func(*http.Request){hdr("Bearer forged")}, 400},
			{"forged then valid Authorization", "", []func(*http.Request){hdr("Bearer forged"), hdr("Bearer " + good)}, 400},
			{"the same token twice", good, []func(*http.Request){hdr("Bearer " + good)}, 400},
			{"Bearer and Basic", good, []func(*http.Request){hdr("Basic dXNlcjpwYXNz")}, 400},
			{"two cookies in one header", "", []func(*http.Request){func(r *http.Request) { r.Header.Set("Cookie", "tok="+good+"; tok="+other) }}, 400},
			{"two cookie headers", "", []func(*http.Request){cookie(good), cookie(good)}, 400},
			{"header and different cookie", good, []func(*http.Request){cookie(other)}, 400},
			{"header and different query", good, []func(*http.Request){query("access_token=" + other)}, 400},
			{"cookie and different query", "", []func(*http.Request){cookie(good), query("access_token=" + other)}, 400},
			{"repeated query parameter", "", []func(*http.Request){query("access_token=" + good + "&access_token=" + good)}, 400},
			{"encoded repeated query parameter", "", []func(*http.Request){query("access_token=" + good + "&access%5Ftoken=" + other)}, 400},
			{"header, same cookie and same query", good, []func(*http.Request){cookie(good), query("access_token=" + url.QueryEscape(good))}, 200},
		} {
			before := reached.Load()
			w, reason := callRec(h, tc.token, tc.mods...)
			if w.Code != tc.want {
				t.Errorf("%s: status %d, want %d", tc.desc, w.Code, tc.want)
				continue
			}
			if tc.want == 400 {
				if reason != "multiple" {
					t.Errorf("%s: reason %q, want multiple", tc.desc, reason)
				}
				if reached.Load() != before {
					t.Errorf("%s: the upstream was called", tc.desc)
				}
			}
		}
	}
}

// FuzzTokenSources checks the token extraction: never a panic, and a token
// is only ever taken from one of the configured places.
func FuzzTokenSources(f *testing.F) {
	f.Add("Bearer a.b.c", "", "tok=a.b.c", "access_token=a.b.c")
	f.Add("Bearer a", "Bearer b", "", "")
	f.Add("", "", "tok=x; tok=y", "")
	f.Add("", "", "", "access_token=x&access%5ftoken=y")
	f.Add("bearer   ", "", "tok=", "access_token=%zz")
	f.Add("Basic x", "", "tok=\"q\"", "a=1&&access_token")
	p := &JWT{Cookie: "tok", Query: "access_token", header: "Authorization", bearerOnly: true}
	f.Fuzz(func(t *testing.T, h1, h2, cookie, query string) {
		r := httptest.NewRequest(http.MethodGet, "http://gw.test/", nil)
		if h1 != "" {
			r.Header.Add("Authorization", h1)
		}
		if h2 != "" {
			r.Header.Add("Authorization", h2)
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		r.URL.RawQuery = query
		tok, ambiguous := p.token(r)
		if ambiguous {
			if tok != "" {
				t.Fatalf("ambiguous with a token %q", tok)
			}
			return
		}
		if h1 != "" && h2 != "" {
			t.Fatal("two Authorization headers not ambiguous")
		}
		if tok == "" {
			return
		}
		if !strings.Contains(h1, tok) && !strings.Contains(cookie, tok) {
			if v, _ := queryValue(query, "access_token"); v != tok {
				t.Fatalf("token %q from nowhere (h=%q cookie=%q query=%q)", tok, h1, cookie, query)
			}
		}
	})
}
