package oidclogin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/request"
)

func (e *env) reason() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lastReason
}

// getRaw sends a GET whose path is sent exactly as given (dot segments,
// double slashes and escapes kept), with the jar's cookies.
func (e *env) getRaw(target string, hdr ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.gw.URL+"/", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.URL.Opaque = "//" + req.URL.Host + target
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.do(e.step, req)
}

// cleanPath is what the gateway's normalisation gives for these tests'
// paths: the decoded path with dot segments and empty segments removed.
func cleanPath(r *http.Request) string { return path.Clean(r.URL.Path) }

func sessionCleared(resp *http.Response) bool {
	v := setCookieHeader(resp, DefaultCookieName)
	return v != "" && strings.Contains(v, "Max-Age=0")
}

// TestPathDecisionsUseNormalisedPath: the callback and logout paths are
// recognised in every spelling the router normalises to them, so a
// request the upstream would receive as /oauth2/logout or /oauth2/callback
// never bypasses them and reaches the upstream with the session.
func TestPathDecisionsUseNormalisedPath(t *testing.T) {
	e := newEnv(t, envOpts{recPath: cleanPath})
	for _, p := range []string{"/x/../oauth2/logout", "/x/%2e%2e/oauth2/logout", "/x/%2E%2E/oauth2/logout", "//oauth2/logout", "/oauth2//logout", "/oauth2/./logout", "/oauth2/%6cogout"} {
		e.login("/app")
		before := e.upstreamCalls()
		resp := e.getRaw(p)
		if resp.StatusCode != http.StatusFound || !sessionCleared(resp) {
			t.Errorf("%s: status %d, session cleared %v; want the logout (302, cookie cleared)", p, resp.StatusCode, sessionCleared(resp))
		}
		if e.upstreamCalls() != before {
			t.Errorf("%s: reached the upstream", p)
		}
	}
	e.login("/app")
	for _, p := range []string{"/x/../oauth2/callback?state=abcdefghijklmnop&code=x", "/x/%2e%2e/oauth2/callback?state=abcdefghijklmnop&code=x", "//oauth2/callback?state=abcdefghijklmnop&code=x", "/oauth2/%63allback?code=x"} {
		before := e.upstreamCalls()
		resp := e.getRaw(p)
		if resp.StatusCode != http.StatusBadRequest || e.reason() != reasonBadState {
			t.Errorf("%s: status %d reason %q; want the callback's 400 %q", p, resp.StatusCode, e.reason(), reasonBadState)
		}
		if e.upstreamCalls() != before {
			t.Errorf("%s: reached the upstream", p)
		}
	}
	// The plain paths still work as before, and other paths pass through.
	if resp := e.getRaw("/x/../app"); resp.StatusCode != http.StatusOK {
		t.Errorf("/x/../app with a session: %d", resp.StatusCode)
	}
}

// TestDuplicateSessionCookie: two session cookies of the plugin's name (or
// of one chunk) are refused with 400 and never reach the upstream.
func TestDuplicateSessionCookie(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.login("/app")
	good := e.cookie(DefaultCookieName)
	if good == nil {
		t.Fatal("no session cookie after login")
	}
	for _, cookie := range []string{
		DefaultCookieName + "=" + good.Value + "; " + DefaultCookieName + "=forged",
		DefaultCookieName + "=forged; " + DefaultCookieName + "=" + good.Value,
		DefaultCookieName + "=" + good.Value + "; other=1; " + DefaultCookieName + "=" + good.Value,
		DefaultCookieName + "_0=a; " + DefaultCookieName + "_1=b; " + DefaultCookieName + "_0=c",
	} {
		before := e.upstreamCalls()
		req := httptest.NewRequest(http.MethodGet, "/app", nil)
		req.Header.Set("Cookie", cookie)
		rec := &request.Record{}
		w := httptest.NewRecorder()
		e.plugin.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
			t.Errorf("%q: reached the upstream", cookie)
		})).ServeHTTP(w, req.WithContext(request.WithRecord(req.Context(), rec)))
		if w.Code != http.StatusBadRequest || rec.AuthFailure != "multiple" {
			t.Errorf("%q: status %d reason %q, want 400 multiple", cookie, w.Code, rec.AuthFailure)
		}
		if e.upstreamCalls() != before {
			t.Errorf("%q: reached the upstream", cookie)
		}
	}
	// Two Cookie header lines are as ambiguous as one line with both.
	req := httptest.NewRequest(http.MethodGet, "/app", nil)
	req.Header.Add("Cookie", DefaultCookieName+"="+good.Value)
	req.Header.Add("Cookie", DefaultCookieName+"=forged")
	w := httptest.NewRecorder()
	e.plugin.Wrap(http.NotFoundHandler()).ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest {
		t.Errorf("two Cookie lines: status %d, want 400", w.Code)
	}
	// Two state cookies for one login at the callback.
	state := "abcdefghijklmnopqrstuvwxyz"
	name := stateCookiePrefix + state[:stateNameLen]
	req = httptest.NewRequest(http.MethodGet, "/oauth2/callback?code=c&state="+state, nil)
	req.Header.Set("Cookie", name+"=a; "+name+"=b")
	rec := &request.Record{}
	w = httptest.NewRecorder()
	e.plugin.Wrap(http.NotFoundHandler()).ServeHTTP(w, req.WithContext(request.WithRecord(req.Context(), rec)))
	if w.Code != http.StatusBadRequest || rec.AuthFailure != "multiple" {
		t.Errorf("two state cookies: status %d reason %q, want 400 multiple", w.Code, rec.AuthFailure)
	}
	// The single cookie still works.
	if resp := e.get(e.step, "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("single session cookie: %d", resp.StatusCode)
	}
}

// TestSessionBoundToIssuerAndClient: a session cookie minted on one route
// is not accepted by a route with another issuer, or another client ID,
// that shares the cookie secret and cookie name.
func TestSessionBoundToIssuerAndClient(t *testing.T) {
	a := newEnv(t, envOpts{})
	a.login("/app")
	c := a.cookie(DefaultCookieName)
	if c == nil {
		t.Fatal("no session cookie after login")
	}
	otherIdP := newFakeIdP(t, &testClock{})
	for _, tc := range []struct{ desc, yaml string }{
		{"other issuer", fmt.Sprintf("issuer: %s\nclient_id: portico\ncookie_secret: %s\n", otherIdP.URL(), testSecret)},
		{"same issuer, other client", fmt.Sprintf("issuer: %s\nclient_id: other-client\ncookie_secret: %s\n", a.idp.URL(), testSecret)},
	} {
		in, err := build(t, tc.yaml, nil)
		if err != nil {
			t.Fatalf("%s: build: %v", tc.desc, err)
		}
		t.Cleanup(in.Cleanup)
		for _, accept := range []string{"application/json", "text/html"} {
			req := httptest.NewRequest(http.MethodGet, "https://gw.test/app", nil)
			req.AddCookie(&http.Cookie{Name: DefaultCookieName, Value: c.Value})
			req.Header.Set("Accept", accept)
			rec := &request.Record{}
			w := httptest.NewRecorder()
			in.Plugin.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				t.Errorf("%s: a session from another route reached the upstream", tc.desc)
			})).ServeHTTP(w, req.WithContext(request.WithRecord(req.Context(), rec)))
			switch {
			case accept == "application/json" && (w.Code != http.StatusUnauthorized || rec.AuthFailure != "invalid"):
				t.Errorf("%s: replayed cookie: status %d reason %q, want 401 invalid", tc.desc, w.Code, rec.AuthFailure)
			case accept == "text/html" && (w.Code != http.StatusFound || !strings.Contains(w.Header().Get("Location"), "/authorize?")):
				t.Errorf("%s: replayed cookie: status %d location %q, want a login redirect", tc.desc, w.Code, w.Header().Get("Location"))
			}
		}
	}
	// The cookie is still good where it was minted.
	if resp := a.get(a.step, "/app"); resp.StatusCode != http.StatusOK {
		t.Fatalf("original route: %d", resp.StatusCode)
	}
}

func checkUnavailable(t *testing.T, e *env, step string, resp *http.Response) {
	t.Helper()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%s: status %d, want 503; body %s", step, resp.StatusCode, body(resp))
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s: 503 without Retry-After", step)
	}
	if r := e.reason(); r != reasonUnavailable {
		t.Errorf("%s: reason %q, want %q", step, r, reasonUnavailable)
	}
}

// TestProviderUnreachableAtEveryStep: a provider that cannot be reached
// answers 503 with Retry-After whether the outage hits discovery, the code
// exchange at the callback, the ID token keys, or a refresh.
func TestProviderUnreachableAtEveryStep(t *testing.T) {
	t.Run("discovery", func(t *testing.T) {
		e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.srv.Close() }})
		e.plugin.retry = 0
		checkUnavailable(t, e, "login before discovery", e.get(e.step, "/app"))
	})
	// toCallback starts a login and lets the provider approve it; it
	// returns the callback URL the browser would now be sent to.
	toCallback := func(t *testing.T, e *env) string {
		resp := e.get(e.step, "/app")
		if !isAuthorizeRedirect(e, resp) {
			t.Fatalf("login start: %d", resp.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodGet, resp.Header.Get("Location"), nil)
		resp = e.do(e.step, req)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize: %d", resp.StatusCode)
		}
		return resp.Header.Get("Location")
	}
	t.Run("code exchange", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		cb := toCallback(t, e)
		e.idp.srv.Close()
		req, _ := http.NewRequest(http.MethodGet, cb, nil)
		checkUnavailable(t, e, "callback with the provider stopped", e.do(e.step, req))
	})
	t.Run("token endpoint 5xx", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		cb := toCallback(t, e)
		e.idp.tokenDown.Store(true)
		req, _ := http.NewRequest(http.MethodGet, cb, nil)
		checkUnavailable(t, e, "callback with the token endpoint failing", e.do(e.step, req))
	})
	t.Run("ID token keys", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		e.idp.jwksDown.Store(true)
		cb := toCallback(t, e)
		req, _ := http.NewRequest(http.MethodGet, cb, nil)
		checkUnavailable(t, e, "callback with the JWKS down", e.do(e.step, req))
	})
	t.Run("refresh", func(t *testing.T) {
		e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.tokenTTL = 5 * time.Minute }})
		e.login("/app")
		e.clock.Advance(6 * time.Minute)
		e.idp.srv.Close()
		checkUnavailable(t, e, "refresh with the provider stopped", e.get(e.step, "/app"))
		// A second request shares the failed refresh: 503 too, not a login.
		checkUnavailable(t, e, "second request during the outage", e.get(e.step, "/app"))
	})
	// A provider that answers but refuses is not an outage.
	t.Run("refused code is 401", func(t *testing.T) {
		e := newEnv(t, envOpts{})
		cb := toCallback(t, e)
		e.idp.mu.Lock()
		e.idp.codes = map[string]*grant{}
		e.idp.mu.Unlock()
		req, _ := http.NewRequest(http.MethodGet, cb, nil)
		resp := e.do(e.step, req)
		if resp.StatusCode != http.StatusUnauthorized || e.reason() != reasonExchange {
			t.Fatalf("refused code: %d reason %q, want 401 %q", resp.StatusCode, e.reason(), reasonExchange)
		}
	})
}
