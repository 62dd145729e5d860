package oidclogin

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

// env is a provider, a gateway serving the plugin over TLS in front of a
// recording upstream, and a browser (a client with a cookie jar).
type env struct {
	t      *testing.T
	idp    *fakeIdP
	clock  *testClock
	plugin *OIDCLogin
	gw     *httptest.Server
	jar    *cookiejar.Jar
	// browser follows redirects; hops records every URL it was sent to.
	browser *http.Client
	// step does not follow redirects.
	step *http.Client

	mu       sync.Mutex
	hops     []*url.URL
	upstream []http.Header
	// lastReason is the auth failure reason recorded for the last request.
	lastReason string
}

type envOpts struct {
	extraYAML string
	store     consumer.Store
	setup     func(*fakeIdP)
	// recPath, when set, gives the normalised path the gateway would
	// record for a request.
	recPath func(*http.Request) string
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	e := &env{t: t, clock: &testClock{}}
	e.idp = newFakeIdP(t, e.clock)
	if o.setup != nil {
		o.setup(e.idp)
	}
	src := fmt.Sprintf(`
issuer: %s
client_id: portico
client_secret: s3cret
cookie_secret: %s
pass_access_token: true
claims_to_headers: {email: X-User-Email, groups: X-User-Groups}
%s`, e.idp.URL(), testSecret, o.extraYAML)
	in, err := build(t, src, o.store)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	t.Cleanup(in.Cleanup)
	e.plugin = in.Plugin.(*OIDCLogin)
	e.plugin.now = e.clock.Now

	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.upstream = append(e.upstream, r.Header.Clone())
		e.mu.Unlock()
		_, _ = io.WriteString(w, "upstream "+r.URL.RequestURI())
	})
	h := e.plugin.Wrap(upstream)
	// Like the gateway, give every request a record.
	e.gw = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &request.Record{RequestID: "req-1", TLS: r.TLS != nil, Route: "test"}
		if o.recPath != nil {
			rec.Path = o.recPath(r)
		}
		h.ServeHTTP(w, r.WithContext(request.WithRecord(r.Context(), rec)))
		e.mu.Lock()
		e.lastReason = rec.AuthFailure
		e.mu.Unlock()
	}))
	t.Cleanup(e.gw.Close)
	e.jar, _ = cookiejar.New(nil)
	e.browser = e.gw.Client()
	e.browser.Jar = e.jar
	e.browser.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		e.mu.Lock()
		e.hops = append(e.hops, req.URL)
		e.mu.Unlock()
		if len(via) > 10 {
			return fmt.Errorf("too many redirects")
		}
		return nil
	}
	e.step = &http.Client{Transport: e.browser.Transport, Jar: e.jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return e
}

// build decodes src the way the gateway does and builds the instance.
func build(t testing.TB, src string, store consumer.Store) (*plugin.Instance, error) {
	t.Helper()
	_, in, err := plugintest.Build[plugin.Plugin](t, Name, src, plugintest.WithStore(store))
	return in, err
}

func (e *env) get(c *http.Client, path string, hdr ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.gw.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(c, req)
}

func (e *env) do(c *http.Client, req *http.Request) *http.Response {
	e.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func body(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// login runs the whole browser flow for path and expects the upstream.
func (e *env) login(path string) *http.Response {
	e.t.Helper()
	resp := e.get(e.browser, path)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body(resp), "upstream ") {
		e.t.Fatalf("login: got %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return resp
}

func (e *env) lastUpstream() http.Header {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.upstream) == 0 {
		e.t.Fatal("upstream was not called")
	}
	return e.upstream[len(e.upstream)-1]
}

func (e *env) upstreamCalls() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.upstream)
}

func (e *env) cookie(name string) *http.Cookie {
	u, _ := url.Parse(e.gw.URL)
	for _, c := range e.jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (e *env) setCookie(name, value string) {
	u, _ := url.Parse(e.gw.URL)
	e.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true}})
}

func setCookieHeader(resp *http.Response, name string) string {
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, name+"=") {
			return v
		}
	}
	return ""
}

func isAuthorizeRedirect(e *env, resp *http.Response) bool {
	return resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), e.idp.URL()+"/authorize?")
}

func TestLoginFlowStepByStep(t *testing.T) {
	e := newEnv(t, envOpts{})

	// 1. The protected resource sends the browser to the provider.
	resp := e.get(e.step, "/app/page?x=1")
	if !isAuthorizeRedirect(e, resp) {
		t.Fatalf("got %d Location %q, want redirect to authorize", resp.StatusCode, resp.Header.Get("Location"))
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	for k, want := range map[string]string{
		"response_type": "code", "client_id": "portico", "redirect_uri": e.gw.URL + "/oauth2/callback",
		"scope": "openid profile email", "code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("authorize %s = %q, want %q", k, q.Get(k), want)
		}
	}
	if len(q.Get("state")) < 32 || len(q.Get("nonce")) < 32 || len(q.Get("code_challenge")) != 43 {
		t.Errorf("weak state/nonce/challenge: %v", q)
	}
	sc := setCookieHeader(resp, stateCookiePrefix+q.Get("state")[:stateNameLen])
	for _, attr := range []string{"Path=/oauth2/callback", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("state cookie %q lacks %s", sc, attr)
		}
	}
	if strings.Contains(sc, q.Get("nonce")) || strings.Contains(sc, "/app/page") {
		t.Errorf("state cookie is not encrypted: %q", sc)
	}

	// 2. The provider approves and sends the browser back.
	resp = e.do(e.step, mustReq(t, resp.Header.Get("Location")))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.gw.URL+"/oauth2/callback?") {
		t.Fatalf("authorize: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	callback := resp.Header.Get("Location")

	// 3. The callback creates the session and returns to the original URL.
	resp = e.do(e.step, mustReq(t, callback))
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/app/page?x=1" {
		t.Fatalf("callback: %d %q body %s", resp.StatusCode, resp.Header.Get("Location"), body(resp))
	}
	sc = setCookieHeader(resp, DefaultCookieName)
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=28800"} {
		if !strings.Contains(sc, attr) {
			t.Errorf("session cookie %q lacks %s", sc, attr)
		}
	}
	if _, _, ok, bad := e.idp.counts(); ok != 1 || bad != 0 {
		t.Errorf("provider verified PKCE %d times, refused %d, want 1 and 0", ok, bad)
	}

	// 4. The callback URL cannot be replayed: the attempt is single-use.
	if resp := e.do(e.step, mustReq(t, callback)); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d, want 400", resp.StatusCode)
	}

	// 5. The session grants access.
	resp = e.get(e.step, "/app/page?x=1")
	if resp.StatusCode != http.StatusOK || body(resp) != "upstream /app/page?x=1" {
		t.Fatalf("with session: %d %s", resp.StatusCode, body(resp))
	}
}

func mustReq(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestLoginIdentityAndHeaders(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.setCookie("theme", "dark")
	resp := e.login("/app?x=1")
	if got := resp.Request.URL.RequestURI(); got != "/app?x=1" {
		t.Errorf("landed on %q, want the original URL", got)
	}
	// Spoofed claim headers are replaced.
	resp = e.get(e.browser, "/app", "X-User-Email", "mallory@evil.example", "X-User-Groups", "root")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := e.lastUpstream()
	for k, want := range map[string]string{
		"X-Consumer-Username":     "alice-sub",
		"X-Consumer-Id":           "alice-sub",
		"X-Authenticated-By":      "oidc_login",
		"X-Credential-Identifier": "alice-sub",
		"X-User-Email":            "alice@example.com",
		"X-User-Groups":           "admins, dev",
		"Cookie":                  "theme=dark",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("upstream %s = %q, want %q", k, got, want)
		}
	}
	if len(h.Values("X-User-Email")) != 1 {
		t.Errorf("X-User-Email values %q", h.Values("X-User-Email"))
	}
	if a := h.Get("Authorization"); !strings.HasPrefix(a, "Bearer at-") {
		t.Errorf("Authorization = %q, want the access token", a)
	}
	if authz, _, _, _ := e.idp.counts(); authz != 1 {
		t.Errorf("provider saw %d logins, want 1", authz)
	}
}

func TestSpoofedClaimHeadersRemovedWhenUnauthenticated(t *testing.T) {
	e := newEnv(t, envOpts{})
	// The headers are stripped before anything else, so nothing after the
	// plugin (or logging it) ever sees the client's values.
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Header.Set("X-User-Email", "mallory@evil.example")
	r.Header.Set("Accept", "application/json")
	w := httptest.NewRecorder()
	e.plugin.Wrap(http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || r.Header.Get("X-User-Email") != "" {
		t.Errorf("status %d, header %q", w.Code, r.Header.Get("X-User-Email"))
	}
}

func TestStateMismatch(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp := e.get(e.step, "/app")
	resp = e.do(e.step, mustReq(t, resp.Header.Get("Location")))
	cb, _ := url.Parse(resp.Header.Get("Location"))
	q := cb.Query()
	st := q.Get("state")
	// Same cookie name (prefix), different value.
	last := "A"
	if strings.HasSuffix(st, "A") {
		last = "B"
	}
	q.Set("state", st[:len(st)-1]+last)
	cb.RawQuery = q.Encode()
	resp = e.do(e.step, mustReq(t, cb.String()))
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("state mismatch: %d, want 400", resp.StatusCode)
	}
	if e.cookie(DefaultCookieName) != nil {
		t.Error("a session was created")
	}
	if strings.Contains(body(resp), "mismatch") {
		t.Error("the error body explains the failure")
	}

	// A callback without any login in progress (login CSRF).
	fresh := newEnv(t, envOpts{})
	resp = fresh.get(fresh.step, "/oauth2/callback?code=abc&state="+st)
	if resp.StatusCode != http.StatusBadRequest || fresh.cookie(DefaultCookieName) != nil {
		t.Errorf("callback without state cookie: %d", resp.StatusCode)
	}
	// The provider reporting an error.
	resp = e.get(e.step, "/oauth2/callback?error=access_denied&state=short")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed state: %d", resp.StatusCode)
	}
}

func TestWrongNonce(t *testing.T) {
	e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.wrongNonce = true }})
	resp := e.get(e.browser, "/app")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong nonce: %d, want 401", resp.StatusCode)
	}
	if e.cookie(DefaultCookieName) != nil || e.upstreamCalls() != 0 {
		t.Error("a session was created")
	}
}

func TestPKCEEnforcedByProvider(t *testing.T) {
	e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.corruptChallenge = true }})
	resp := e.get(e.browser, "/app")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered PKCE: %d, want 401", resp.StatusCode)
	}
	if _, _, ok, bad := e.idp.counts(); ok != 0 || bad != 1 {
		t.Errorf("provider PKCE checks: ok %d refused %d", ok, bad)
	}
	if e.cookie(DefaultCookieName) != nil {
		t.Error("a session was created")
	}
}

func TestTamperedSession(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.login("/app")
	c := e.cookie(DefaultCookieName)
	v := []byte(c.Value)
	i := len(v) / 2
	if v[i] == 'A' {
		v[i] = 'B'
	} else {
		v[i] = 'A'
	}
	e.setCookie(DefaultCookieName, string(v))
	resp := e.get(e.step, "/app")
	if !isAuthorizeRedirect(e, resp) {
		t.Fatalf("tampered cookie: %d, want a new login", resp.StatusCode)
	}
	if sc := setCookieHeader(resp, DefaultCookieName); !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("tampered cookie not cleared: %q", sc)
	}

	// A state cookie sealed for the login flow is not a session.
	e2 := newEnv(t, envOpts{})
	resp = e2.get(e2.step, "/app")
	for _, sc := range resp.Cookies() {
		if strings.HasPrefix(sc.Name, stateCookiePrefix) {
			e2.setCookie(DefaultCookieName, sc.Value)
		}
	}
	if resp := e2.get(e2.step, "/app"); !isAuthorizeRedirect(e2, resp) {
		t.Errorf("state cookie accepted as a session: %d", resp.StatusCode)
	}
}

func TestExpiredSessionLogsInAgain(t *testing.T) {
	e := newEnv(t, envOpts{extraYAML: "session_ttl: 1h"})
	e.login("/app")
	e.clock.Advance(61 * time.Minute)
	if resp := e.get(e.step, "/app"); !isAuthorizeRedirect(e, resp) {
		t.Fatalf("expired session: %d, want a new login", resp.StatusCode)
	}
	e.login("/app")
	if authz, refresh, _, _ := e.idp.counts(); authz != 2 || refresh != 0 {
		t.Errorf("provider saw %d logins and %d refreshes, want 2 and 0", authz, refresh)
	}
}

func TestRefresh(t *testing.T) {
	e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.tokenTTL = 5 * time.Minute }})
	e.login("/app")
	before := e.lastUpstream().Get("Authorization")
	e.clock.Advance(6 * time.Minute)

	e.mu.Lock()
	e.hops = nil
	e.mu.Unlock()
	resp := e.get(e.browser, "/app")
	if resp.StatusCode != http.StatusOK || len(e.hops) != 0 {
		t.Fatalf("after expiry: %d with %d redirects, want 200 without redirect", resp.StatusCode, len(e.hops))
	}
	after := e.lastUpstream().Get("Authorization")
	if after == before || !strings.HasPrefix(after, "Bearer at-") {
		t.Errorf("access token not renewed: %q → %q", before, after)
	}
	if setCookieHeader(resp, DefaultCookieName) == "" {
		t.Error("session cookie not rewritten")
	}
	// The rewritten cookie holds the new tokens: no second refresh.
	e.get(e.browser, "/app")
	e.get(e.browser, "/app")
	if authz, refresh, _, _ := e.idp.counts(); authz != 1 || refresh != 1 {
		t.Errorf("provider saw %d logins and %d refreshes, want 1 and 1", authz, refresh)
	}

	// A refused refresh starts a new login.
	e.idp.revokeRefreshTokens()
	e.clock.Advance(6 * time.Minute)
	if resp := e.get(e.step, "/app"); !isAuthorizeRedirect(e, resp) {
		t.Errorf("refused refresh: %d, want a new login", resp.StatusCode)
	}
}

func TestRefreshConcurrentRequestsShareOneCall(t *testing.T) {
	e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.tokenTTL = 5 * time.Minute }})
	e.login("/app")
	e.clock.Advance(6 * time.Minute)
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			req := mustReq(t, e.gw.URL+"/app")
			resp, err := e.step.Do(req)
			if err == nil {
				codes[i] = resp.StatusCode
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d", i, c)
		}
	}
	if _, refresh, _, _ := e.idp.counts(); refresh != 1 {
		t.Errorf("provider saw %d refreshes, want 1", refresh)
	}
}

func TestRefreshDisabled(t *testing.T) {
	e := newEnv(t, envOpts{extraYAML: "refresh: false", setup: func(p *fakeIdP) { p.tokenTTL = 5 * time.Minute }})
	e.login("/app")
	e.clock.Advance(6 * time.Minute)
	if resp := e.get(e.step, "/app"); !isAuthorizeRedirect(e, resp) {
		t.Errorf("expired token without refresh: %d, want a new login", resp.StatusCode)
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.login("/app")
	idToken := e.idp.lastIDToken
	resp := e.get(e.step, "/oauth2/logout")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Scheme+"://"+loc.Host+loc.Path != e.idp.URL()+"/end_session" {
		t.Fatalf("logout Location %q, want the end_session endpoint", loc)
	}
	q := loc.Query()
	if q.Get("id_token_hint") != idToken || q.Get("post_logout_redirect_uri") != e.gw.URL+"/" || q.Get("client_id") != "portico" {
		t.Errorf("end_session query %v", q)
	}
	if e.cookie(DefaultCookieName) != nil {
		t.Error("session cookie not cleared")
	}
	if resp := e.get(e.step, "/app"); !isAuthorizeRedirect(e, resp) {
		t.Errorf("after logout: %d, want a new login", resp.StatusCode)
	}
	// Following the redirect reaches the provider.
	e.login("/app")
	if resp := e.get(e.browser, "/oauth2/logout"); resp.StatusCode != http.StatusOK || body(resp) != "logged out" {
		t.Errorf("end_session: %d %q", resp.StatusCode, body(resp))
	}
}

func TestAPIClientsGet401(t *testing.T) {
	e := newEnv(t, envOpts{})
	for _, tc := range []struct {
		desc   string
		method string
		hdr    []string
	}{
		{"json", http.MethodGet, []string{"Accept", "application/json"}},
		{"xhr", http.MethodGet, []string{"X-Requested-With", "XMLHttpRequest"}},
		{"post", http.MethodPost, nil},
	} {
		req, _ := http.NewRequest(tc.method, e.gw.URL+"/api/items", nil)
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			req.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		resp := e.do(e.step, req)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" ||
			resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body(resp), `"error":"unauthorized"`) {
			t.Errorf("%s: %d %q", tc.desc, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	deny := newEnv(t, envOpts{extraYAML: "unauthenticated_action: deny"})
	if resp := deny.get(deny.step, "/app"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("deny: %d, want 401", resp.StatusCode)
	}
}

func TestNoOpenRedirect(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp := e.get(e.browser, "//evil.example/x")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	gw, _ := url.Parse(e.gw.URL)
	idp, _ := url.Parse(e.idp.URL())
	for _, h := range e.hops {
		if h.Host != gw.Host && h.Host != idp.Host {
			t.Errorf("redirected off-site to %s", h)
		}
	}
	if got := resp.Request.URL.Path; got != "/" {
		t.Errorf("landed on %q, want /", got)
	}
}

func TestSafeReturn(t *testing.T) {
	for in, want := range map[string]string{
		"/app?x=1#f":              "/app?x=1#f",
		"/":                       "/",
		"":                        "/",
		"//evil.example/x":        "/",
		"/\\evil.example":         "/",
		"/a\\b":                   "/",
		"https://evil.example/":   "/",
		"javascript:alert(1)":     "/",
		"evil.example":            "/",
		"/ok\r\nSet-Cookie: x=1":  "/",
		"/oauth2/callback?code=x": "/",
		"/%2F%2Fevil.example":     "/%2F%2Fevil.example",
		"///evil.example":         "/",
		"/\t/evil.example":        "/",
	} {
		if got := safeReturn(in, DefaultRedirectPath); got != want {
			t.Errorf("safeReturn(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChunkedSession(t *testing.T) {
	e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.extraClaims = map[string]any{"blob": strings.Repeat("x", 6000)} }})
	e.login("/app")
	if e.cookie(DefaultCookieName) != nil || e.cookie(DefaultCookieName+"_0") == nil || e.cookie(DefaultCookieName+"_1") == nil {
		t.Fatal("large session not split into numbered cookies")
	}
	if resp := e.get(e.step, "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("chunked session: %d", resp.StatusCode)
	}
	if c := e.lastUpstream().Get("Cookie"); c != "" {
		t.Errorf("session chunks sent upstream: %q", c)
	}
	c := e.cookie(DefaultCookieName + "_1")
	e.setCookie(c.Name, c.Value[:len(c.Value)-2])
	if resp := e.get(e.step, "/app"); !isAuthorizeRedirect(e, resp) {
		t.Errorf("tampered chunk: %d, want a new login", resp.StatusCode)
	}
}

func TestConsumerFromStore(t *testing.T) {
	store, err := consumer.NewStore([]*config.Consumer{{Name: "alice@example.com", ID: "c-42", Groups: []string{"admins"}}})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOpts{extraYAML: "consumer_claim: email", store: store})
	e.login("/app")
	h := e.lastUpstream()
	if h.Get("X-Consumer-Id") != "c-42" || h.Get("X-Consumer-Groups") != "admins" || h.Get("X-Consumer-Username") != "alice@example.com" {
		t.Errorf("consumer headers %v", h)
	}
}

func TestLazyDiscovery(t *testing.T) {
	e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.down.Store(true) }})
	e.plugin.retry = 0
	if resp := e.get(e.step, "/app"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("provider down: %d, want 503", resp.StatusCode)
	}
	e.idp.down.Store(false)
	e.login("/app")
}

func TestConfigErrors(t *testing.T) {
	base := "issuer: https://idp.example\nclient_id: c\ncookie_secret: " + testSecret + "\n"
	for _, tc := range []struct{ src, want string }{
		{"client_id: c\ncookie_secret: " + testSecret, "issuer is required"},
		{"issuer: https://idp.example\nclient_id: c\ncookie_secret: short", "cookie_secret"},
		{base + "scopes: [email]", "openid"},
		{base + "cookie_samesite: none\ncookie_secure: false", "cookie_samesite"},
		{base + "cookie_samesite: loose", "cookie_samesite"},
		{base + "unauthenticated_action: allow", "unauthenticated_action"},
		{base + "claims_to_headers: {sub: X-Consumer-Id}", "reserved"},
		{base + "claims_to_headers: {email: 'bad header'}", "not a valid header name"},
		{base + "redirect_path: /same\nlogout_path: /same", "must differ"},
		{base + "redirect_url: /relative", "redirect_url"},
		{base + "post_logout_redirect: //evil.example", "post_logout_redirect"},
		{base + "unknown_key: 1", "unknown field"},
	} {
		_, err := build(t, tc.src, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

// TestAnonymous sets `anonymous` in Go: without a session the request
// continues as the anonymous consumer instead of being sent to log in.
func TestAnonymous(t *testing.T) {
	idp := newFakeIdP(t, &testClock{})
	store, err := consumer.NewStore([]*config.Consumer{{Name: "guest"}})
	if err != nil {
		t.Fatal(err)
	}
	p := &OIDCLogin{Issuer: idp.URL(), ClientID: "portico", ClientSecret: "s3cret", CookieSecret: testSecret,
		ClaimsToHeaders: map[string]string{"email": "X-User-Email"}}
	p.Anonymous = "guest"
	if err := p.Provision(plugin.StaticContext{Store: store}); err != nil {
		t.Fatal(err)
	}
	defer p.Cleanup()
	var got http.Header
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	r := httptest.NewRequest(http.MethodGet, "/app", nil)
	r.Header.Set("X-User-Email", "mallory@evil.example")
	r = r.WithContext(request.WithRecord(r.Context(), &request.Record{}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || got == nil {
		t.Fatalf("anonymous: %d, want the request passed on", w.Code)
	}
	if got.Get("X-Consumer-Username") != "guest" || got.Get("X-Anonymous-Consumer") != "true" || got.Get("X-User-Email") != "" {
		t.Errorf("anonymous headers %v", got)
	}
}
