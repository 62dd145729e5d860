package oidclogin_test

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/plugin/auth/oidclogin"
	"github.com/portico-gw/portico/internal/testutil"
)

// These tests run oidc_login inside a real gateway, in front of a real
// backend, against the package's test OpenID provider, with a real
// redis-server where revocation is tested.

// e2eBackend records the requests the gateway forwards.
type e2eBackend struct {
	URL  string
	mu   sync.Mutex
	seen []*http.Request
}

func newE2EBackend(t *testing.T) *e2eBackend {
	b := &e2eBackend{}
	srv := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.seen = append(b.seen, r.Clone(context.Background()))
		b.mu.Unlock()
		_, _ = io.WriteString(w, "backend "+r.URL.Path)
	}))
	b.URL = srv.URL
	return b
}

func (b *e2eBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seen)
}

func (b *e2eBackend) last() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.seen) == 0 {
		return nil
	}
	return b.seen[len(b.seen)-1]
}

// startLoginGateway serves route (path_prefix /app) with oidc_login whose
// callback and logout are under /app; extra is more config lines.
func startLoginGateway(t *testing.T, idp *oidclogin.FakeIdP, be *e2eBackend, route, extra string) *testutil.Gateway {
	t.Helper()
	return testutil.StartGateway(t, fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {be: {targets: [{url: %q}]}}
routes:
  - name: %s
    match: {path_prefix: /app}
    upstream: be
    plugins:
      - name: oidc_login
        config:
          issuer: %q
          client_id: portico
          client_secret: s3cret
          cookie_secret: "0123456789abcdef0123456789abcdef-gateway-e2e"
          cookie_secure: false
          redirect_path: /app/oauth2/callback
          logout_path: /app/oauth2/logout
%s`, be.URL, route, idp.URL(), indent(extra)))
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "          " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// browser is a client with a cookie jar that follows redirects.
type browser struct {
	t   *testing.T
	c   *http.Client
	jar *cookiejar.Jar
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, jar: jar, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// login runs the browser flow for /app/page and returns the session
// cookies as a Cookie header value, as an attacker who copied them would
// send them.
func (b *browser) login(gw *testutil.Gateway) string {
	b.t.Helper()
	resp, body := b.get(gw.URL + "/app/page")
	if resp.StatusCode != http.StatusOK || body != "backend /app/page" || resp.Request.URL.Path != "/app/page" {
		b.t.Fatalf("login: %d %q at %s", resp.StatusCode, body, resp.Request.URL)
	}
	u, _ := url.Parse(gw.URL)
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		if strings.HasPrefix(c.Name, oidclogin.DefaultCookieName) {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		b.t.Fatal("login: no session cookie")
	}
	return strings.Join(parts, "; ")
}

// rawGet sends one GET with the given Cookie header on a fresh connection,
// as a script would (Accept: application/json, so no login redirect).
func rawGet(t *testing.T, gw *testutil.Gateway, path, cookie string) *http.Response {
	t.Helper()
	u, _ := url.Parse(gw.URL)
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\nCookie: %s\r\nConnection: close\r\n\r\n", path, u.Host, cookie)
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(body)))
	return resp
}

func clearsSession(resp *http.Response) bool {
	for _, v := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(v, oidclogin.DefaultCookieName+"=;") && strings.Contains(v, "Max-Age=0") {
			return true
		}
	}
	return false
}

// TestGatewayLoginWithCallbackUnderRoute: with redirect_path under the
// route's prefix (what validate asks for), the whole login works through
// the gateway and the callback never reaches the backend. Without redis,
// logout deletes the browser's cookie but a copy of it stays valid, as
// documented.
func TestGatewayLoginWithCallbackUnderRoute(t *testing.T) {
	t.Parallel()
	idp := oidclogin.NewFakeIdP(t)
	be := newE2EBackend(t)
	gw := startLoginGateway(t, idp, be, "app-login", "")
	b := newBrowser(t)
	cookie := b.login(gw)
	if n := be.count(); n != 1 {
		t.Fatalf("backend saw %d requests, want only /app/page", n)
	}
	if got := be.last().Header.Get("X-Consumer-Username"); got != "alice-sub" {
		t.Errorf("X-Consumer-Username %q, want alice-sub", got)
	}
	resp, body := b.get(gw.URL + "/app/oauth2/logout")
	if resp.StatusCode != http.StatusOK || body != "logged out" || idp.EndSessionCalls() != 1 {
		t.Fatalf("logout: %d %q, end_session calls %d", resp.StatusCode, body, idp.EndSessionCalls())
	}
	if resp := rawGet(t, gw, "/app/data", cookie); resp.StatusCode != http.StatusOK {
		t.Errorf("copied cookie without redis: %d, want 200 (logout is browser-side only)", resp.StatusCode)
	}
}

func redisKeys(t *testing.T, addr, pattern string) map[string]time.Duration {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx := context.Background()
	keys, err := c.Keys(ctx, pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Duration{}
	for _, k := range keys {
		out[k], _ = c.TTL(ctx, k).Result()
	}
	return out
}

// TestGatewayLogoutRevokesCopiedCookie: with redis set, logout records the
// session as revoked for the rest of its lifetime, and a copy of the
// session cookie is refused afterwards; the backend gets nothing.
func TestGatewayLogoutRevokesCopiedCookie(t *testing.T) {
	t.Parallel()
	rs := testutil.StartRedis(t)
	idp := oidclogin.NewFakeIdP(t)
	be := newE2EBackend(t)
	gw := startLoginGateway(t, idp, be, "app-revoke", fmt.Sprintf("redis: {addr: %q, timeout: 2s}", rs.Addr))
	b := newBrowser(t)
	cookie := b.login(gw)
	if resp := rawGet(t, gw, "/app/data", cookie); resp.StatusCode != http.StatusOK {
		t.Fatalf("copied cookie before logout: %d, want 200", resp.StatusCode)
	}
	// A second login in another browser is a separate session.
	other := newBrowser(t).login(gw)

	resp, body := b.get(gw.URL + "/app/oauth2/logout")
	if resp.StatusCode != http.StatusOK || body != "logged out" {
		t.Fatalf("logout: %d %q", resp.StatusCode, body)
	}
	keys := redisKeys(t, rs.Addr, "portico:oidc:revoked:*")
	if len(keys) != 1 {
		t.Fatalf("revocation keys %v, want one", keys)
	}
	for k, ttl := range keys {
		if ttl <= oidclogin.DefaultSessionTTL-time.Minute || ttl > oidclogin.DefaultSessionTTL {
			t.Errorf("%s TTL %v, want the rest of the session (about %v)", k, ttl, oidclogin.DefaultSessionTTL)
		}
	}
	before := be.count()
	resp = rawGet(t, gw, "/app/data", cookie)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("copied cookie after logout: %d, want 401", resp.StatusCode)
	}
	if !clearsSession(resp) {
		t.Errorf("refusal does not delete the session cookie: %v", resp.Header.Values("Set-Cookie"))
	}
	if n := be.count(); n != before {
		t.Errorf("backend got %d requests with the revoked cookie", n-before)
	}
	// The browser itself is sent to log in again; the other session lives.
	if resp := rawGet(t, gw, "/app/data", other); resp.StatusCode != http.StatusOK {
		t.Errorf("other session after logout: %d, want 200", resp.StatusCode)
	}
	b.login(gw)
}

// TestGatewayRevocationRedisDown: when Redis cannot answer, requests with
// a session and logouts are refused with 503 by default (fail_closed) and
// counted; with on_redis_error: fail_open sessions are accepted unchecked
// and logout deletes the browser's cookie only.
func TestGatewayRevocationRedisDown(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "fail_closed", "fail_open"} {
		t.Run("mode="+mode, func(t *testing.T) {
			t.Parallel()
			rs := testutil.StartRedis(t)
			idp := oidclogin.NewFakeIdP(t)
			be := newE2EBackend(t)
			route := "app-redis-down-" + strings.ReplaceAll(cmp.Or(mode, "default"), "_", "-")
			extra := fmt.Sprintf("redis: {addr: %q, timeout: 2s}", rs.Addr)
			if mode != "" {
				extra += "\non_redis_error: " + mode
			}
			gw := startLoginGateway(t, idp, be, route, extra)
			cookie := newBrowser(t).login(gw)
			errs := gw.Stats().Counter("portico_oidc_login_redis_errors_total", fmt.Sprintf("route=%q", route))
			rs.Stop()
			before := be.count()
			data := rawGet(t, gw, "/app/data", cookie)
			logout := rawGet(t, gw, "/app/oauth2/logout", cookie)
			if mode == "fail_open" {
				if data.StatusCode != http.StatusOK || be.count() != before+1 {
					t.Errorf("fail_open, Redis down: %d, want 200 from the backend", data.StatusCode)
				}
				if logout.StatusCode != http.StatusFound || !clearsSession(logout) {
					t.Errorf("fail_open logout, Redis down: %d %v, want a redirect that deletes the cookie", logout.StatusCode, logout.Header.Values("Set-Cookie"))
				}
			} else {
				if data.StatusCode != http.StatusServiceUnavailable || data.Header.Get("Retry-After") == "" {
					t.Errorf("Redis down: %d, want 503 with Retry-After", data.StatusCode)
				}
				if n := be.count(); n != before {
					t.Errorf("backend got %d requests while Redis was down", n-before)
				}
				if logout.StatusCode != http.StatusServiceUnavailable || clearsSession(logout) {
					t.Errorf("logout, Redis down: %d %v, want 503 keeping the cookie so logout can be retried", logout.StatusCode, logout.Header.Values("Set-Cookie"))
				}
			}
			if errs.Value() < 2 {
				t.Errorf("portico_oidc_login_redis_errors_total = %d, want 2", errs.Value())
			}
			// Redis back: the session works again (fail_closed) and can
			// be logged out.
			rs.Restart()
			if mode != "fail_open" {
				if resp := rawGet(t, gw, "/app/data", cookie); resp.StatusCode != http.StatusOK {
					t.Errorf("Redis back: %d, want 200", resp.StatusCode)
				}
				if resp := rawGet(t, gw, "/app/oauth2/logout", cookie); resp.StatusCode != http.StatusFound {
					t.Errorf("logout with Redis back: %d, want 302", resp.StatusCode)
				}
				if resp := rawGet(t, gw, "/app/data", cookie); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("after logout: %d, want 401", resp.StatusCode)
				}
			}
		})
	}
}
