package gateway_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// Credentials of the consumers in the AUTHOTHER end-to-end tests.
const (
	aoKey        = "alice-key-0123456789"
	aoBasicPass  = "alice-pass-0123"
	aoHMACKeyID  = "alice-hmac"
	aoHMACSecret = "alice-hmac-secret-0123456789"
)

const aoConsumers = `
consumers:
  - name: alice
    credentials:
      key_auth: [{key: ` + aoKey + `}]
      basic_auth: [{username: alice, password: ` + aoBasicPass + `}]
      hmac_auth: [{key_id: ` + aoHMACKeyID + `, secret: ` + aoHMACSecret + `}]
  - name: bob
    credentials:
      key_auth: [{key: bob-key-0123456789}]
`

// aoSign returns the Date and Authorization header lines of an hmac_auth
// signature over "@request-target date" for method and target.
func aoSign(method, target string, date time.Time, keyID, secret string) (string, string) {
	d := date.UTC().Format(http.TimeFormat)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("@request-target: " + strings.ToLower(method) + " " + target + "\ndate: " + d))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return "Date: " + d, fmt.Sprintf(`Authorization: hmac username="%s", algorithm="hmac-sha256", headers="@request-target date", signature="%s"`, keyID, sig)
}

func aoBasic(user, pass string) string {
	return "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// aoIntrospection is an RFC 7662 endpoint: "good" is active for alice.
func aoIntrospection(t *testing.T) (url string, calls *atomic.Int64) {
	calls = new(atomic.Int64)
	srv := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if r.PostForm.Get("token") == "good" {
			_, _ = w.Write([]byte(`{"active":true,"sub":"alice"}`))
			return
		}
		_, _ = w.Write([]byte(`{"active":false}`))
	}))
	return srv.URL + "/introspect", calls
}

// aoAuthorizer is a forward_auth service with a deny-list policy: it
// allows "Authorization: Bearer good" except under /fwd/admin, and
// remembers every X-Forwarded-Uri it was asked about.
type aoAuthorizer struct {
	url  string
	mu   sync.Mutex
	uris []string
}

func newAOAuthorizer(t *testing.T) *aoAuthorizer {
	a := &aoAuthorizer{}
	srv := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri := r.Header.Get("X-Forwarded-Uri")
		a.mu.Lock()
		a.uris = append(a.uris, uri)
		a.mu.Unlock()
		switch {
		case r.Header.Values("Authorization")[0] != "Bearer good" || len(r.Header.Values("Authorization")) != 1:
			w.WriteHeader(http.StatusUnauthorized)
		case strings.HasPrefix(uri, "/fwd/admin"):
			w.WriteHeader(http.StatusForbidden)
		default:
			w.WriteHeader(http.StatusOK)
		}
	}))
	a.url = srv.URL + "/check"
	return a
}

func (a *aoAuthorizer) asked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.uris...)
}

func aoGateway(t *testing.T, backend, intro, authz string) *testutil.Gateway {
	return e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
`+aoConsumers+`
upstreams: {u: {targets: [{url: "{{BACKEND}}"}]}}
routes:
  - {name: key, match: {path_prefix: /key}, upstream: u, plugins: [{name: key_auth, config: {cookie_names: [apikey]}}]}
  - {name: basic, match: {path_prefix: /basic}, upstream: u, plugins: [{name: basic_auth}]}
  - {name: hmac, match: {path_prefix: /hmac}, upstream: u, plugins: [{name: hmac_auth}]}
  - {name: intro, match: {path_prefix: /intro}, upstream: u, plugins: [{name: oauth2_introspection, config: {introspection_url: "{{INTRO}}", client_auth: none}}]}
  - {name: fwd, match: {path_prefix: /fwd}, upstream: u, plugins: [{name: forward_auth, config: {url: "{{AUTHZ}}"}}]}
`, map[string]string{"BACKEND": backend, "INTRO": intro, "AUTHZ": authz})
}

// TestAuthOtherAmbiguousCredentials (issue 9): every auth plugin refuses a
// request carrying more than one credential of its kind with 400, one valid
// and one forged in either order, and the backend receives nothing. The
// same credentials alone are accepted.
func TestAuthOtherAmbiguousCredentials(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", nil)
	intro, introCalls := aoIntrospection(t)
	authz := newAOAuthorizer(t)
	tg := aoGateway(t, be.URL, intro, authz.url)
	addr := e2eHostPort(tg.URL)
	host := "api.test"
	now := time.Now()

	hmacReq := func(n int) []string {
		d, a := aoSign("GET", fmt.Sprintf("/hmac/%d", n), now, aoHMACKeyID, aoHMACSecret)
		return []string{d, a}
	}
	_, forgedHMAC := aoSign("GET", "/hmac/1", now, aoHMACKeyID, "forged-secret")

	// Controls: one credential is accepted.
	for _, ok := range []string{
		e2eRawGet("/key", host, "X-API-Key: "+aoKey),
		e2eRawGet("/key?apikey="+aoKey, host),
		e2eRawGet("/key", host, "Cookie: apikey="+aoKey+"; other=1"),
		e2eRawGet("/basic", host, aoBasic("alice", aoBasicPass)),
		e2eRawGet("/hmac/0", host, hmacReq(0)...),
		e2eRawGet("/intro", host, "Authorization: Bearer good"),
		e2eRawGet("/fwd/x", host, "Authorization: Bearer good"),
	} {
		if res := e2eRawDo(t, addr, "GET", ok); res.StatusCode != 200 {
			t.Fatalf("control %q: status %d %s", ok, res.StatusCode, res.Body)
		}
	}

	cases := []struct {
		desc string
		raw  string
	}{
		{"key_auth: two header lines", e2eRawGet("/key", host, "X-API-Key: "+aoKey, "X-API-Key: forged-key-000")},
		{"key_auth: two header lines, forged first", e2eRawGet("/key", host, "X-API-Key: forged-key-000", "X-API-Key: "+aoKey)},
		{"key_auth: header and query", e2eRawGet("/key?apikey=forged-key-000", host, "X-API-Key: "+aoKey)},
		{"key_auth: repeated query parameter", e2eRawGet("/key?apikey="+aoKey+"&apikey=forged-key-000", host)},
		{"key_auth: query name encoded", e2eRawGet("/key?apikey="+aoKey+"&api%6Bey=forged-key-000", host)},
		{"key_auth: header and cookie", e2eRawGet("/key", host, "X-API-Key: "+aoKey, "Cookie: apikey=forged-key-000")},
		{"key_auth: two cookies", e2eRawGet("/key", host, "Cookie: apikey="+aoKey+"; apikey=forged-key-000")},
		{"key_auth: two cookie lines", e2eRawGet("/key", host, "Cookie: apikey=forged-key-000", "Cookie: apikey="+aoKey)},
		{"basic_auth: two Authorization", e2eRawGet("/basic", host, aoBasic("alice", aoBasicPass), aoBasic("mallory", "x"))},
		{"basic_auth: two Authorization, forged first", e2eRawGet("/basic", host, aoBasic("mallory", "x"), aoBasic("alice", aoBasicPass))},
		{"hmac_auth: valid and forged signature", e2eRawGet("/hmac/1", host, append(hmacReq(1), forgedHMAC)...)},
		{"hmac_auth: forged signature first", e2eRawGet("/hmac/2", host, hmacReq(2)[0], forgedHMAC, hmacReq(2)[1])},
		{"hmac_auth: signature and Basic", e2eRawGet("/hmac/3", host, append(hmacReq(3), aoBasic("alice", aoBasicPass))...)},
		{"oauth2_introspection: two bearer lines", e2eRawGet("/intro", host, "Authorization: Bearer good", "Authorization: Bearer forged")},
		{"oauth2_introspection: forged bearer first", e2eRawGet("/intro", host, "Authorization: Bearer forged", "Authorization: Bearer good")},
		{"oauth2_introspection: two tokens in one line", e2eRawGet("/intro", host, "Authorization: Bearer good,forged")},
		{"forward_auth: two Authorization", e2eRawGet("/fwd/x", host, "Authorization: Bearer good", "Authorization: Bearer forged")},
		{"forward_auth: forged first", e2eRawGet("/fwd/x", host, "Authorization: Bearer forged", "Authorization: Bearer good")},
	}
	introBefore, authzBefore := introCalls.Load(), len(authz.asked())
	for _, tc := range cases {
		before := be.count()
		res := e2eRawDo(t, addr, "GET", tc.raw)
		e2eCheckError(t, res.StatusCode, res.Header, res.Body, http.StatusBadRequest)
		if n := be.count() - before; n != 0 {
			t.Errorf("%s: the backend received %d requests", tc.desc, n)
		}
	}
	if n := introCalls.Load() - introBefore; n != 0 {
		t.Errorf("the introspection endpoint was called %d times for ambiguous requests", n)
	}
	if n := len(authz.asked()) - authzBefore; n != 0 {
		t.Errorf("the authorizer was called %d times for ambiguous requests", n)
	}
}

// aoHMACConfig has a global hmac_auth over two routes that differ only in
// an unsigned header; version changes a respond body so a reload is a real
// change.
func aoHMACConfig(backend, extra string, version int) string {
	return fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "off"}
log: {access: {output: "off"}}
%s
upstreams: {u: {targets: [{url: %q}]}}
plugins:
  - {name: hmac_auth%s}
routes:
  - {name: pay-b, priority: 10, match: {path_prefix: /pay, headers: {X-Route: b}}, upstream: u}
  - {name: pay-a, match: {path_prefix: /pay}, upstream: u}
  - {name: version, match: {path: /version}, respond: {body: "%d"}}
`, aoConsumers, backend, extra, version)
}

// TestAuthOtherHMACReplayAcrossRoutesAndReloads (issue 10): a captured
// signed request is refused as a replay on another route of a global
// hmac_auth (reached by adding an unsigned header) and after a reload.
func TestAuthOtherHMACReplayAcrossRoutesAndReloads(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", nil)
	tg := testutil.StartGateway(t, aoHMACConfig(be.URL, "", 1))
	addr := e2eHostPort(tg.URL)
	d, a := aoSign("POST", "/pay/42", time.Now(), aoHMACKeyID, aoHMACSecret)
	send := func(extra ...string) e2eRawResponse {
		raw := "POST /pay/42 HTTP/1.1\r\nHost: api.test\r\n" + d + "\r\n" + a + "\r\n" + strings.Join(append(extra, ""), "\r\n") + "Content-Length: 0\r\nConnection: close\r\n\r\n"
		return e2eRawDo(t, addr, "POST", raw)
	}
	if res := send(); res.StatusCode != 200 {
		t.Fatalf("first: %d %s", res.StatusCode, res.Body)
	}
	if n := be.count(); n != 1 {
		t.Fatalf("backend got %d requests", n)
	}
	for _, extra := range [][]string{nil, {"X-Route: b"}, {"X-Route: b", "X-Other: 1"}} {
		res := send(extra...)
		e2eCheckError(t, res.StatusCode, res.Header, res.Body, http.StatusUnauthorized)
	}
	// A real reload: a changed config is applied, the old snapshot retired.
	cfg2 := testutil.ParseConfig(t, aoHMACConfig(be.URL, "", 2))
	if err := tg.Runtime.Apply(cfg2); err != nil {
		t.Fatal(err)
	}
	tg.Runtime.WaitRetired()
	if tg.Runtime.Current().Config() != cfg2 {
		t.Fatal("reload not in force")
	}
	for _, extra := range [][]string{nil, {"X-Route: b"}} {
		res := send(extra...)
		e2eCheckError(t, res.StatusCode, res.Header, res.Body, http.StatusUnauthorized)
	}
	if n := be.count(); n != 1 {
		t.Fatalf("replays reached the backend: %d requests", n)
	}
	// A fresh signature is still accepted after the reload.
	d2, a2 := aoSign("GET", "/pay/43", time.Now().Add(time.Second), aoHMACKeyID, aoHMACSecret)
	if res := e2eRawDo(t, addr, "GET", e2eRawGet("/pay/43", "api.test", d2, a2, "X-Route: b")); res.StatusCode != 200 {
		t.Fatalf("fresh request after reload: %d %s", res.StatusCode, res.Body)
	}
}

// TestAuthOtherHMACReplayRedis (issue 10): two gateways whose hmac_auth
// share one Redis refuse each other's replays.
func TestAuthOtherHMACReplayRedis(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	be := e2eNewRecorder(t, "be", nil)
	extra := fmt.Sprintf(", config: {redis: {addr: %q, key_prefix: %q}}", rs.Addr, "e2e-replay:")
	g1 := testutil.StartGateway(t, aoHMACConfig(be.URL, extra, 1))
	g2 := testutil.StartGateway(t, aoHMACConfig(be.URL, extra, 1))
	d, a := aoSign("GET", "/pay/7", time.Now(), aoHMACKeyID, aoHMACSecret)
	raw := e2eRawGet("/pay/7", "api.test", d, a)
	if res := e2eRawDo(t, e2eHostPort(g1.URL), "GET", raw); res.StatusCode != 200 {
		t.Fatalf("gateway 1: %d %s", res.StatusCode, res.Body)
	}
	res := e2eRawDo(t, e2eHostPort(g2.URL), "GET", raw)
	e2eCheckError(t, res.StatusCode, res.Header, res.Body, http.StatusUnauthorized)
	if n := be.count(); n != 1 {
		t.Fatalf("backend got %d requests, want 1", n)
	}
}

// TestAuthOtherForwardAuthNormalisedPath (issue 13): the authorization
// service is asked about the normalised path the router matched and the
// backend receives, so dot segments, encoded dots, duplicate slashes and
// encoded unreserved characters cannot walk past a path policy.
func TestAuthOtherForwardAuthNormalisedPath(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", nil)
	intro, _ := aoIntrospection(t)
	authz := newAOAuthorizer(t)
	tg := aoGateway(t, be.URL, intro, authz.url)
	addr := e2eHostPort(tg.URL)
	for _, target := range []string{
		"/fwd/public/%2e%2e/admin/secret",
		"/fwd/public/%2E%2E/admin/secret",
		"/fwd/public/.%2e/admin/secret",
		"/fwd/public/%2e./admin/secret",
		"/fwd/public/../admin/secret",
		"/fwd/public/./../admin/secret",
		"/fwd//admin/secret",
		"/fwd/./admin/secret",
		"/fwd/public/x//../../admin/secret",
		"/fwd/%61dmin/secret",
		"/fwd/adm%69n/secret?x=1",
	} {
		before := be.count()
		res := e2eRawDo(t, addr, "GET", e2eRawGet(target, "api.test", "Authorization: Bearer good"))
		if res.StatusCode == 400 || res.StatusCode == 404 {
			// Refused by the core's path checks or routed nowhere:
			// nothing was forwarded.
			if n := be.count() - before; n != 0 {
				t.Errorf("%s: 400 but the backend received it", target)
			}
			continue
		}
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403 from the authorizer; it was asked about %q", target, res.StatusCode, authz.asked())
		}
		if n := be.count() - before; n != 0 {
			seen := be.all()[len(be.all())-1]
			t.Errorf("%s: the backend served %q", target, seen.RawPath)
		}
	}
	// What the authorizer is told and what the backend receives agree,
	// and the query is kept as received.
	res := e2eRawDo(t, addr, "GET", e2eRawGet("/fwd/public/./a/../b%2Dc?q=1&r=%20", "api.test", "Authorization: Bearer good"))
	if res.StatusCode != 200 {
		t.Fatalf("allowed request: %d %s", res.StatusCode, res.Body)
	}
	seen := e2eDecodeSeen(t, res.Body)
	asked := authz.asked()
	got := asked[len(asked)-1]
	if want := seen.RawPath + "?" + seen.RawQuery; got != want || got != "/fwd/public/b-c?q=1&r=%20" {
		t.Fatalf("authorizer asked about %q, backend received %q", got, want)
	}
}

// TestAuthOtherAccessLogReasons (issue 21): the access log line of a
// refused request carries the plugin's specific auth_failure, and that of
// an accepted one the consumer; no line carries a secret.
func TestAuthOtherAccessLogReasons(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", nil)
	intro, _ := aoIntrospection(t)
	authz := newAOAuthorizer(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "{{LOG}}", format: json}}
`+aoConsumers+`
upstreams: {u: {targets: [{url: "{{BACKEND}}"}]}}
routes:
  - {name: key, match: {path_prefix: /key}, upstream: u, plugins: [{name: key_auth}]}
  - {name: basic, match: {path_prefix: /basic}, upstream: u, plugins: [{name: basic_auth}]}
  - {name: hmac, match: {path_prefix: /hmac}, upstream: u, plugins: [{name: hmac_auth}]}
  - {name: intro, match: {path_prefix: /intro}, upstream: u, plugins: [{name: oauth2_introspection, config: {introspection_url: "{{INTRO}}", client_auth: none}}]}
  - {name: fwd, match: {path_prefix: /fwd}, upstream: u, plugins: [{name: forward_auth, config: {url: "{{AUTHZ}}"}}]}
`, map[string]string{"BACKEND": be.URL, "INTRO": intro, "AUTHZ": authz.url, "LOG": logPath})
	addr := e2eHostPort(tg.URL)
	now := time.Now()
	hd, ha := aoSign("GET", "/hmac/1", now, aoHMACKeyID, aoHMACSecret)
	_, hbad := aoSign("GET", "/hmac/1", now, aoHMACKeyID, "wrong-secret")
	sd, sa := aoSign("GET", "/hmac/2", now.Add(-time.Hour), aoHMACKeyID, aoHMACSecret)
	cases := []struct {
		id, target       string
		headers          []string
		status           int
		reason, consumer string
	}{
		{"ao-key-ok", "/key", []string{"X-API-Key: " + aoKey}, 200, "", "alice"},
		{"ao-key-missing", "/key", nil, 401, "missing", ""},
		{"ao-key-unknown", "/key", []string{"X-API-Key: not-a-key-000"}, 401, "unknown_key", ""},
		{"ao-key-multiple", "/key", []string{"X-API-Key: " + aoKey, "X-API-Key: x"}, 400, "multiple", ""},
		{"ao-basic-ok", "/basic", []string{aoBasic("alice", aoBasicPass)}, 200, "", "alice"},
		{"ao-basic-bad", "/basic", []string{aoBasic("alice", "wrong-password")}, 401, "bad_password", ""},
		{"ao-basic-unknown", "/basic", []string{aoBasic("nobody", "x")}, 401, "unknown_consumer", ""},
		{"ao-hmac-ok", "/hmac/1", []string{hd, ha}, 200, "", "alice"},
		{"ao-hmac-replay", "/hmac/1", []string{hd, ha}, 401, "replay", ""},
		{"ao-hmac-bad", "/hmac/1", []string{hd, hbad}, 401, "bad_signature", ""},
		{"ao-hmac-skew", "/hmac/2", []string{sd, sa}, 401, "clock_skew", ""},
		{"ao-intro-ok", "/intro", []string{"Authorization: Bearer good"}, 200, "", "alice"},
		{"ao-intro-inactive", "/intro", []string{"Authorization: Bearer stale"}, 401, "inactive_token", ""},
		{"ao-fwd-denied", "/fwd/admin", []string{"Authorization: Bearer good"}, 403, "forbidden", ""},
		{"ao-fwd-unauth", "/fwd/x", []string{"Authorization: Bearer nope"}, 401, "unauthorized", ""},
	}
	for _, tc := range cases {
		res := e2eRawDo(t, addr, "GET", e2eRawGet(tc.target, "api.test", append(tc.headers, "X-Request-Id: "+tc.id)...))
		if res.StatusCode != tc.status {
			t.Fatalf("%s: status %d, want %d: %s", tc.id, res.StatusCode, tc.status, res.Body)
		}
	}
	lines := aoWaitLog(t, logPath, len(cases))
	for _, tc := range cases {
		l, ok := lines[tc.id]
		if !ok {
			t.Errorf("%s: no access log line", tc.id)
			continue
		}
		if l["auth_failure"] != tc.reason || l["consumer"] != tc.consumer {
			t.Errorf("%s: auth_failure %q consumer %q, want %q %q", tc.id, l["auth_failure"], l["consumer"], tc.reason, tc.consumer)
		}
	}
	raw, _ := os.ReadFile(logPath)
	for _, secret := range []string{aoKey, aoBasicPass, aoHMACSecret, "wrong-password", "not-a-key-000"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the access log contains a secret %q", secret)
		}
	}
}

// aoWaitLog waits until the access log holds at least n JSON lines and
// returns them by request_id.
func aoWaitLog(t *testing.T, path string, n int) map[string]map[string]any {
	t.Helper()
	var lines map[string]map[string]any
	// The gateway flushes the file on a ticker: poll it.
	wait.Within(10*time.Second, func() bool {
		lines = aoReadLog(path)
		return len(lines) >= n
	})
	return lines
}

// aoReadLog reads the access log's JSON lines by request_id.
func aoReadLog(path string) map[string]map[string]any {
	lines := map[string]map[string]any{}
	f, err := os.Open(path)
	if err != nil {
		return lines
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			if id, _ := m["request_id"].(string); id != "" {
				lines[id] = m
			}
		}
	}
	return lines
}
