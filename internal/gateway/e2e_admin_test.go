package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// e2eAdminYAML is a small config whose admin listener has the given extra
// settings (token, allowed_hosts) inside its flow mapping.
func e2eAdminYAML(adminExtra string) string {
	return `
server:
  listen: [{addr: "127.0.0.1:0"}]
admin: {listen: "127.0.0.1:0"` + adminExtra + `}
routes:
  - name: hello
    match: {path: /hello}
    respond: {body: hi}
`
}

// e2eAdminRaw sends one raw request to the admin listener.
func e2eAdminRaw(t *testing.T, tg *testutil.Gateway, method, path, host string, extra ...string) e2eRawResponse {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", method, path)
	if host != "\x00" {
		fmt.Fprintf(&b, "Host: %s\r\n", host)
	}
	body := ""
	for _, h := range extra {
		if v, ok := strings.CutPrefix(h, "BODY:"); ok {
			body = v
			continue
		}
		b.WriteString(h + "\r\n")
	}
	if method != "GET" && method != "HEAD" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("Connection: close\r\n\r\n" + body)
	return e2eRawDo(t, e2eHostPort(tg.AdminURL), method, b.String())
}

// e2eAdminPut is a raw PUT /routes/evil that creates a route when accepted.
func e2eAdminPut(t *testing.T, tg *testutil.Gateway, host string, extra ...string) e2eRawResponse {
	t.Helper()
	rev := `"` + tg.RunningConfig().Hash + `"`
	extra = append(extra, "If-Match: "+rev, `BODY:{"match":{"path":"/evil"},"respond":{"body":"pwned"}}`)
	return e2eAdminRaw(t, tg, "PUT", "/routes/evil", host, extra...)
}

func e2eAdminHasRoute(tg *testutil.Gateway, name string) bool {
	for _, r := range tg.RunningConfig().Routes {
		if r != nil && r.Name == name {
			return true
		}
	}
	return false
}

func e2eAdminForbidden(t *testing.T, what string, r e2eRawResponse) {
	t.Helper()
	if r.StatusCode == http.StatusBadRequest && strings.Contains(string(r.Body), "malformed Host header") {
		return // net/http refuses it before the admin handler runs
	}
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("%s: status %d, want 403\n%s", what, r.StatusCode, r.Body)
		return
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil || body["error"] == nil {
		t.Errorf("%s: 403 body is not a JSON error: %s", what, r.Body)
	}
	if strings.Contains(string(r.Body), "hello") || strings.Contains(string(r.Body), "routes") {
		t.Errorf("%s: 403 body leaks config: %s", what, r.Body)
	}
}

// badAdminHosts are Host values a DNS-rebinding page (or a confused
// client) could send; none names the loopback admin listener.
var badAdminHosts = []string{
	"evil.example", "evil.example:9901", "EVIL.example", "localhost.evil.example", "127.0.0.1.evil.example",
	"127.0.0.1.nip.io", "localhost@evil.example", "evil.example@localhost", "0.0.0.0", "0.0.0.0:9901",
	"10.0.0.1", "192.168.1.1:9901", "[::2]", "[::ffff:10.0.0.1]:80", "2130706433", "127.1", "0x7f.0.0.1",
	"localhost:abc", "localhost:1:2", "[::1", "[fe80::1%25lo]", "[::1]x", "", "local host", "xn--localhost",
}

// goodAdminHosts all name the loopback listener.
var goodAdminHosts = []string{
	"localhost", "LocalHost", "localhost:9901", "localhost.", "localhost.:9901", "127.0.0.1", "127.0.0.1:9901",
	"127.1.2.3", "127.255.255.254:1", "[::1]", "[::1]:9901", "[::ffff:127.0.0.1]:9901", "localhost:",
}

// TestE2EAdminHostWithoutToken: without a token the admin API answers only
// to loopback Host values, so a DNS-rebinding page can neither read the
// config nor write a route.
func TestE2EAdminHostWithoutToken(t *testing.T) {
	t.Parallel()
	tg := e2eStart(t, e2eAdminYAML(""), nil)
	for _, h := range badAdminHosts {
		for _, p := range []string{"/config", "/routes", "/readyz", "/healthz", "/metrics", "/openapi.json", "/dashboard/", "/nope"} {
			e2eAdminForbidden(t, "GET "+p+" Host "+h, e2eAdminRaw(t, tg, "GET", p, h))
		}
		e2eAdminForbidden(t, "PUT Host "+h, e2eAdminPut(t, tg, h))
		if e2eAdminHasRoute(tg, "evil") {
			t.Fatalf("Host %q: the route was created", h)
		}
	}
	// HTTP/1.0 without any Host header.
	r := e2eRawDo(t, e2eHostPort(tg.AdminURL), "GET", "GET /config HTTP/1.0\r\n\r\n")
	e2eAdminForbidden(t, "HTTP/1.0 without Host", r)
	for _, h := range goodAdminHosts {
		if r := e2eAdminRaw(t, tg, "GET", "/config", h); r.StatusCode != 200 || !strings.Contains(string(r.Body), "hello") {
			t.Errorf("GET /config Host %q = %d %s", h, r.StatusCode, r.Body)
		}
	}
	if r := e2eAdminPut(t, tg, "127.0.0.1"); r.StatusCode != 200 || !e2eAdminHasRoute(tg, "evil") {
		t.Errorf("loopback PUT = %d %s", r.StatusCode, r.Body)
	}
}

// TestE2EAdminAllowedHosts: admin.allowed_hosts adds names; with a token
// set the list is enforced too.
func TestE2EAdminAllowedHosts(t *testing.T) {
	t.Parallel()
	tg := e2eStart(t, e2eAdminYAML(`, allowed_hosts: [admin.internal, "10.1.2.3", "[fd00::1]"]`), nil)
	for _, h := range []string{"admin.internal", "ADMIN.internal:9901", "admin.internal.", "10.1.2.3:80", "[fd00::1]:9901", "localhost"} {
		if r := e2eAdminRaw(t, tg, "GET", "/config", h); r.StatusCode != 200 {
			t.Errorf("GET /config Host %q = %d %s", h, r.StatusCode, r.Body)
		}
	}
	for _, h := range []string{"evil.example", "admin.internal.evil.example", "xadmin.internal", "10.1.2.4", "[fd00::2]"} {
		e2eAdminForbidden(t, "Host "+h, e2eAdminRaw(t, tg, "GET", "/config", h))
	}

	tok := e2eStart(t, e2eAdminYAML(`, token: t0k3n-e2e, allowed_hosts: [admin.internal]`), nil)
	e2eAdminForbidden(t, "token + allowed_hosts, Host evil", e2eAdminRaw(t, tok, "GET", "/config", "evil.example", "Authorization: Bearer t0k3n-e2e"))
	if r := e2eAdminRaw(t, tok, "GET", "/config", "admin.internal", "Authorization: Bearer t0k3n-e2e"); r.StatusCode != 200 {
		t.Errorf("token + allowed host = %d %s", r.StatusCode, r.Body)
	}
}

// TestE2EAdminTokenAnyHost: with a token and no allowed_hosts the Host is
// not checked (a rebinding page cannot send the token), so an admin API
// behind a load balancer keeps working.
func TestE2EAdminTokenAnyHost(t *testing.T) {
	t.Parallel()
	tg := e2eStart(t, e2eAdminYAML(`, token: t0k3n-e2e`), nil)
	if r := e2eAdminRaw(t, tg, "GET", "/config", "admin.example.org", "Authorization: Bearer t0k3n-e2e"); r.StatusCode != 200 {
		t.Errorf("GET /config with token = %d %s", r.StatusCode, r.Body)
	}
	if r := e2eAdminRaw(t, tg, "GET", "/config", "admin.example.org"); r.StatusCode != 401 {
		t.Errorf("GET /config without token = %d %s", r.StatusCode, r.Body)
	}
}

// TestE2EAdminCrossOriginWrites: a browser write from another origin is
// refused, with or without a token, whatever the Host.
func TestE2EAdminCrossOriginWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, adminExtra, auth string }{
		{"no token", "", ""},
		{"token", ", token: t0k3n-e2e", "Authorization: Bearer t0k3n-e2e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := e2eStart(t, e2eAdminYAML(tc.adminExtra), nil)
			own := e2eHostPort(tg.AdminURL)
			with := func(h ...string) []string {
				if tc.auth != "" {
					h = append(h, tc.auth)
				}
				return h
			}
			for _, hdr := range [][]string{
				{"Origin: http://evil.example"},
				{"Origin: null"},
				{"Origin: http://localhost:1"},
				{"Origin: https://" + own},
				{"Origin: http://" + own + ".evil.example"},
				{"Sec-Fetch-Site: cross-site"},
				{"Sec-Fetch-Site: same-site"},
				{"Sec-Fetch-Site: cross-site", "Origin: http://" + own},
				{"Sec-Fetch-Site: same-site", "Origin: http://" + own},
			} {
				e2eAdminForbidden(t, fmt.Sprint("PUT ", hdr), e2eAdminPut(t, tg, own, with(hdr...)...))
				rev := `"` + tg.RunningConfig().Hash + `"`
				e2eAdminForbidden(t, fmt.Sprint("DELETE ", hdr), e2eAdminRaw(t, tg, "DELETE", "/routes/hello", own, with(append(hdr, "If-Match: "+rev)...)...))
				if e2eAdminHasRoute(tg, "evil") || !e2eAdminHasRoute(tg, "hello") {
					t.Fatalf("%v: a cross-origin write was applied", hdr)
				}
			}
			// Reads with a foreign Origin are not writes (the browser's
			// same-origin policy keeps the response from the page).
			if r := e2eAdminRaw(t, tg, "GET", "/healthz", own, "Origin: http://evil.example", "Sec-Fetch-Site: cross-site"); r.StatusCode != 200 {
				t.Errorf("cross-origin GET /healthz = %d", r.StatusCode)
			}
			// The dashboard's own same-origin writes work.
			if r := e2eAdminPut(t, tg, own, with("Origin: http://"+own, "Sec-Fetch-Site: same-origin")...); r.StatusCode != 200 || !e2eAdminHasRoute(tg, "evil") {
				t.Errorf("same-origin PUT = %d %s", r.StatusCode, r.Body)
			}
		})
	}
}

// TestE2EAdminReadyzHidesConfigPath: /readyz is public and shows the config
// source only to a caller with the token.
func TestE2EAdminReadyzHidesConfigPath(t *testing.T) {
	t.Parallel()
	tg := e2eStart(t, e2eAdminYAML(""), nil)
	src := tg.RunningConfig().Source
	r := e2eAdminRaw(t, tg, "GET", "/readyz", "127.0.0.1")
	if r.StatusCode != 200 || strings.Contains(string(r.Body), `"config"`) || strings.Contains(string(r.Body), src) {
		t.Errorf("no token configured: /readyz = %d %s", r.StatusCode, r.Body)
	}
	tok := e2eStart(t, e2eAdminYAML(`, token: t0k3n-e2e`), nil)
	for _, auth := range []string{"", "Authorization: Bearer wrong", "Authorization: Basic t0k3n-e2e"} {
		var extra []string
		if auth != "" {
			extra = append(extra, auth)
		}
		r := e2eAdminRaw(t, tok, "GET", "/readyz", "127.0.0.1", extra...)
		if r.StatusCode != 200 || strings.Contains(string(r.Body), `"config"`) {
			t.Errorf("/readyz with %q = %d %s", auth, r.StatusCode, r.Body)
		}
	}
	r = e2eAdminRaw(t, tok, "GET", "/readyz", "127.0.0.1", "Authorization: Bearer t0k3n-e2e")
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil || body["config"] != tok.RunningConfig().Source || body["status"] != "ready" {
		t.Errorf("/readyz with the token = %d %s", r.StatusCode, r.Body)
	}
}
