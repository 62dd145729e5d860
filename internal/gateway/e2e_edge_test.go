package gateway_test

// End-to-end tests of request header hygiene at arrival (hardening issue 9,
// items 1, 2, 6, 11 and 12): every attack is sent as raw bytes and the test
// checks what the backend received, or that it received nothing.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// edgeTunnelBackend is a recording backend that WOULD switch protocols: it
// answers any request carrying Upgrade with 101 and then writes "TUNNEL"
// and echoes bytes, as an h2c-capable or arbitrary-protocol server would.
func edgeTunnelBackend(t *testing.T) *e2eRecorder {
	return e2eNewRecorder(t, "tunnel", func(w http.ResponseWriter, r *http.Request) {
		up := r.Header.Get("Upgrade")
		if up == "" {
			return
		}
		conn, brw, ok := e2eSwitchProtocols(w, up, "TUNNEL")
		if !ok {
			return
		}
		defer conn.Close()
		_, _ = io.Copy(conn, brw)
	})
}

// e2eSwitchProtocols hijacks a backend's connection and answers 101 to
// protocol, followed by first (raw bytes of the new protocol, may be
// empty). The caller closes the connection.
func e2eSwitchProtocols(w http.ResponseWriter, protocol, first string) (net.Conn, *bufio.ReadWriter, bool) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, false
	}
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n%s", protocol, first)
	brw.Flush()
	return conn, brw, true
}

// edgeConn is one raw client connection to the gateway.
type edgeConn struct {
	c  net.Conn
	br *bufio.Reader
}

func edgeDial(t *testing.T, addr string) *edgeConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return &edgeConn{c: c, br: bufio.NewReader(c)}
}

func (ec *edgeConn) do(t *testing.T, raw string) e2eRawResponse {
	t.Helper()
	if _, err := io.WriteString(ec.c, raw); err != nil {
		t.Fatalf("write: %v", err)
	}
	return e2eReadRaw(t, ec.br, "GET")
}

// TestEdgeUpgradeNotAllowed (issue 9 item 1): an h2c upgrade, or an upgrade
// to a protocol the route does not list, reaches the backend as a plain
// request without Upgrade, HTTP2-Settings or Connection, so a backend that
// would answer 101 cannot turn the connection into a tunnel: the next
// request on the same connection is routed (and refused) normally.
func TestEdgeUpgradeNotAllowed(t *testing.T) {
	be := edgeTunnelBackend(t)
	tg := e2eStartOne(t, "be", be.URL, `
routes:
  - {name: open, match: {path_prefix: /open}, upstream: be}
  - {name: none, match: {path_prefix: /none}, upstream: be, upgrades: []}
  - name: denied
    match: {path_prefix: /denied}
    upstream: be
    plugins: [{name: ip_restriction, config: {deny: [127.0.0.0/8]}}]
`)
	addr := e2eHostPort(tg.URL)

	tests := []struct {
		desc  string
		path  string
		lines []string
	}{
		{desc: "h2c upgrade", path: "/open", lines: []string{"Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"}},
		{desc: "h2c upgrade, upper case, tokens reversed", path: "/open", lines: []string{"Connection: HTTP2-Settings, UPGRADE", "Upgrade: H2C", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"}},
		{desc: "h2c upgrade, Connection split over two lines", path: "/open", lines: []string{"Connection: Upgrade", "Connection: HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"}},
		{desc: "h2c upgrade with a version", path: "/open", lines: []string{"Connection: Upgrade", "Upgrade: h2c/1"}},
		{desc: "h2c upgrade without HTTP2-Settings in Connection", path: "/open", lines: []string{"Connection: Upgrade", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"}},
		{desc: "arbitrary protocol", path: "/open", lines: []string{"Connection: Upgrade", "Upgrade: foo"}},
		{desc: "arbitrary protocol offered with h2c", path: "/open", lines: []string{"Connection: Upgrade", "Upgrade: foo, h2c"}},
		{desc: "websocket on a route that allows no upgrade", path: "/none", lines: []string{"Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="}},
	}
	for _, tc := range tests {
		// Not parallel: the test counts what the shared backend received.
		t.Run(tc.desc, func(t *testing.T) {
			ec := edgeDial(t, addr)
			raw := "GET " + tc.path + "/x HTTP/1.1\r\nHost: gw.test\r\n" + strings.Join(tc.lines, "\r\n") + "\r\n\r\n"
			resp := ec.do(t, raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200 (a plain request); body %q", resp.StatusCode, resp.Body)
			}
			s := e2eDecodeSeen(t, resp.Body)
			for _, h := range []string{"Upgrade", "Http2-Settings", "Connection"} {
				if v, ok := s.Header[h]; ok {
					t.Errorf("backend received %s: %q", h, v)
				}
			}
			// The connection is still HTTP to the gateway: the next request on
			// it is routed and refused by ip_restriction, and never reaches
			// the backend.
			before := be.count()
			resp = ec.do(t, "GET /denied HTTP/1.1\r\nHost: gw.test\r\n\r\n")
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("second request on the connection: status %d, want 403; body %q", resp.StatusCode, resp.Body)
			}
			if n := be.count(); n != before {
				t.Errorf("second request reached the backend (%d → %d requests)", before, n)
			}
		})
	}
}

// TestEdgeUpgradeAllowed: WebSocket is allowed by default, and a route's
// upgrades list allows others; the backend then sees the upgrade.
func TestEdgeUpgradeAllowed(t *testing.T) {
	be := edgeTunnelBackend(t)
	tg := e2eStartOne(t, "be", be.URL, `
routes:
  - {name: open, match: {path_prefix: /open}, upstream: be}
  - {name: foo, match: {path_prefix: /foo}, upstream: be, upgrades: [Foo]}
`)
	addr := e2eHostPort(tg.URL)
	tests := []struct {
		desc, path, upgrade, want string
	}{
		{desc: "websocket by default", path: "/open", upgrade: "websocket", want: "websocket"},
		{desc: "listed protocol", path: "/foo", upgrade: "foo", want: "foo"},
		{desc: "only the listed protocol of several", path: "/foo", upgrade: "h2c, foo/2, bar", want: "foo/2"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ec := edgeDial(t, addr)
			_, err := io.WriteString(ec.c, "GET "+tc.path+" HTTP/1.1\r\nHost: gw.test\r\nConnection: X-Drop, Upgrade\r\nX-Drop: 1\r\nUpgrade: "+tc.upgrade+"\r\n\r\n")
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(ec.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != tc.want {
				t.Fatalf("status %d Upgrade %q, want 101 %q", resp.StatusCode, resp.Header.Get("Upgrade"), tc.want)
			}
			got := make([]byte, len("TUNNEL"))
			if _, err := io.ReadFull(ec.br, got); err != nil || string(got) != "TUNNEL" {
				t.Fatalf("tunnel: %q %v", got, err)
			}
			seen := be.all()
			last := seen[len(seen)-1]
			for _, s := range seen {
				if s.Path == tc.path && s.Header.Get("Upgrade") == tc.want {
					last = s
				}
			}
			if last.Header.Get("Upgrade") != tc.want {
				t.Errorf("backend Upgrade %q, want %q", last.Header.Get("Upgrade"), tc.want)
			}
			if _, ok := last.Header["X-Drop"]; ok {
				t.Errorf("backend received the Connection-named X-Drop")
			}
		})
	}
}

// TestEdgeConnectionNominated (issue 9 item 2): fields named in the client's
// Connection header are removed on arrival, before plugins, so the proxy's
// later hop-by-hop cleanup cannot delete what plugins set.
func TestEdgeConnectionNominated(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
consumers:
  - {name: alice, credentials: {key_auth: [{key: alice-key-123456}]}}
  - {name: guest}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - name: anon
    match: {path_prefix: /anon}
    upstream: rec
    plugins: [{name: key_auth, config: {anonymous: guest}}]
  - name: set
    match: {path_prefix: /set}
    upstream: rec
    plugins:
      - name: headers
        config: {request: {set: {X-User-Id: from-plugin, X-Added: yes}}}
`, map[string]string{"REC": rec.URL})
	addr := e2eHostPort(tg.URL)
	tests := []struct {
		desc   string
		path   string
		lines  []string
		want   map[string]string
		absent []string
	}{
		{
			desc:  "anonymous consumer header named in Connection",
			path:  "/anon",
			lines: []string{"Connection: X-Anonymous-Consumer"},
			want:  map[string]string{"X-Anonymous-Consumer": "true", "X-Consumer-Username": "guest"},
		},
		{
			desc:  "every identity header named in Connection",
			path:  "/anon",
			lines: []string{"Connection: keep-alive, X-Anonymous-Consumer, x-consumer-id, X-Consumer-Username, X-Authenticated-By"},
			want:  map[string]string{"X-Anonymous-Consumer": "true", "X-Consumer-Id": "guest", "X-Consumer-Username": "guest", "X-Authenticated-By": "key_auth"},
		},
		{
			desc:   "header a plugin sets, named in Connection with a client value",
			path:   "/set",
			lines:  []string{"Connection: X-User-Id, X-Added, X-Client", "X-User-Id: forged", "X-Client: 1"},
			want:   map[string]string{"X-User-Id": "from-plugin", "X-Added": "yes"},
			absent: []string{"X-Client", "Connection"},
		},
		{
			desc:  "forwarding and request-id headers named in Connection",
			path:  "/set",
			lines: []string{"Connection: X-Forwarded-For, X-Request-Id, X-Forwarded-Proto"},
			want:  map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			raw := "GET " + tc.path + " HTTP/1.1\r\nHost: gw.test\r\n" + strings.Join(tc.lines, "\r\n") + "\r\n\r\n"
			resp := e2eRawDo(t, addr, "GET", raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %q", resp.StatusCode, resp.Body)
			}
			s := e2eDecodeSeen(t, resp.Body)
			for k, v := range tc.want {
				if got := s.Header.Get(k); got != v {
					t.Errorf("backend %s = %q, want %q", k, got, v)
				}
			}
			for _, h := range tc.absent {
				if v, ok := s.Header[h]; ok {
					t.Errorf("backend received %s: %q", h, v)
				}
			}
			if s.Header.Get("X-Request-Id") == "" {
				t.Errorf("backend received no X-Request-Id")
			}
		})
	}
}

// TestEdgeClientHeaders (issue 9 item 6): forwarding headers from untrusted
// peers, X-Portico-* from anyone, underscore names and method-override
// headers never reach the backend.
func TestEdgeClientHeaders(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	const routes = `
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - {name: all, match: {path_prefix: /}, upstream: rec}
`
	untrusted := e2eStart(t, `server: {listen: [{addr: "127.0.0.1:0"}]}`+routes, map[string]string{"REC": rec.URL})
	trusted := e2eStart(t, `server: {listen: [{addr: "127.0.0.1:0"}], trusted_proxies: [127.0.0.1]}`+routes, map[string]string{"REC": rec.URL})
	underscores := e2eStart(t, `server: {listen: [{addr: "127.0.0.1:0"}], underscores_in_headers: true}`+routes, map[string]string{"REC": rec.URL})

	forwarding := []string{
		"X-Forwarded-Prefix: /admin", "X-Forwarded-Port: 443", "X-Forwarded-Uri: /admin", "X-Forwarded-Method: DELETE",
		"X-Original-URL: /admin", "X-Rewrite-URL: /admin", "X-Real-IP: 10.0.0.1", "True-Client-IP: 10.0.0.1",
	}
	forwardingNames := []string{"X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Uri", "X-Forwarded-Method",
		"X-Original-Url", "X-Rewrite-Url", "X-Real-Ip", "True-Client-Ip"}
	portico := []string{"X-Portico-Upstream: evil", "x-portico-route: admin", "X-PORTICO-Anything: 1"}
	porticoNames := []string{"X-Portico-Upstream", "X-Portico-Route", "X-Portico-Anything"}
	override := []string{"X-HTTP-Method-Override: DELETE", "X-HTTP-Method: DELETE", "X-Method-Override: DELETE"}
	overrideNames := []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}
	underscore := []string{"X_Consumer_Id: admin", "x_anonymous_consumer: false", "X-Consumer_Username: admin", "X_Forwarded_Prefix: /admin", "X_Portico_Route: x", "X_Custom: kept?", "X_HTTP_Method_Override: DELETE"}
	underscoreNames := []string{"X_consumer_id", "X_anonymous_consumer", "X-Consumer_username", "X_forwarded_prefix", "X_portico_route", "X_custom", "X_http_method_override"}

	tests := []struct {
		desc   string
		gw     string
		lines  []string
		absent []string
		want   map[string]string
	}{
		{desc: "forwarding headers from an untrusted peer", gw: untrusted.URL, lines: forwarding, absent: forwardingNames},
		{desc: "forwarding headers from a trusted proxy are kept", gw: trusted.URL, lines: forwarding,
			want: map[string]string{"X-Forwarded-Prefix": "/admin", "X-Original-Url": "/admin", "X-Forwarded-Port": "443"}},
		{desc: "X-Portico-* from an untrusted peer", gw: untrusted.URL, lines: portico, absent: porticoNames},
		{desc: "X-Portico-* from a trusted proxy", gw: trusted.URL, lines: portico, absent: porticoNames},
		{desc: "method-override headers", gw: untrusted.URL, lines: override, absent: overrideNames, want: map[string]string{}},
		{desc: "underscore names dropped by default", gw: untrusted.URL, lines: underscore, absent: underscoreNames},
		{desc: "underscore names dropped by default, trusted proxy", gw: trusted.URL, lines: underscore, absent: underscoreNames},
		{desc: "underscores allowed: identity, forwarding, X-Portico and override names still dropped", gw: underscores.URL, lines: underscore,
			absent: []string{"X_consumer_id", "X_anonymous_consumer", "X-Consumer_username", "X_forwarded_prefix", "X_portico_route", "X_http_method_override"},
			want:   map[string]string{"X_custom": "kept?"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			raw := "POST /h HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\n" + strings.Join(tc.lines, "\r\n") + "\r\nConnection: close\r\n\r\n"
			resp := e2eRawDo(t, e2eHostPort(tc.gw), "POST", raw)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d body %q", resp.StatusCode, resp.Body)
			}
			s := e2eDecodeSeen(t, resp.Body)
			if s.Method != "POST" {
				t.Errorf("backend method %s, want POST", s.Method)
			}
			for _, h := range tc.absent {
				if v, ok := s.Header[h]; ok {
					t.Errorf("backend received %s: %q", h, v)
				}
			}
			for k, v := range tc.want {
				if got := s.Header[k]; len(got) != 1 || got[0] != v {
					t.Errorf("backend %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestEdgeMethodOverride (issue 9 item 6): by default a "_method" query
// parameter is refused (the query string is never rewritten) and override
// headers are dropped; with server.method_override the override applies
// before routing, so route method matching and the backend see it.
func TestEdgeMethodOverride(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	del := e2eNewRecorder(t, "del", nil)
	const routes = `
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
  del: {targets: [{url: "{{DEL}}"}]}
routes:
  - {name: del, match: {path: /items, methods: [DELETE]}, upstream: del}
  - {name: post, match: {path: /items, methods: [POST]}, upstream: rec}
`
	vars := map[string]string{"REC": rec.URL, "DEL": del.URL}
	off := e2eStart(t, `server: {listen: [{addr: "127.0.0.1:0"}]}`+routes, vars)
	on := e2eStart(t, `server: {listen: [{addr: "127.0.0.1:0"}], method_override: true}`+routes, vars)

	tests := []struct {
		desc    string
		gw      string
		line    string // request line
		header  string
		status  int
		backend string // "rec", "del" or "" (nothing reached)
		method  string
		query   string
	}{
		{desc: "off: header dropped, POST stays POST", gw: off.URL, line: "POST /items", header: "X-HTTP-Method-Override: DELETE", status: 200, backend: "rec", method: "POST"},
		{desc: "off: _method refused", gw: off.URL, line: "POST /items?_method=DELETE", status: 400},
		{desc: "off: encoded _method refused", gw: off.URL, line: "POST /items?a=1&%5Fmethod=DELETE", status: 400},
		{desc: "off: _method after ; refused", gw: off.URL, line: "POST /items?a=1;_method=DELETE", status: 400},
		{desc: "off: PHP spelling .method refused", gw: off.URL, line: "POST /items?.method=DELETE", status: 400},
		{desc: "off: _method on GET refused", gw: off.URL, line: "GET /items?_METHOD=DELETE", status: 400},
		{desc: "off: other parameters pass untouched", gw: off.URL, line: "POST /items?method=x&my_method=y", status: 200, backend: "rec", method: "POST", query: "method=x&my_method=y"},
		{desc: "on: header routes as DELETE", gw: on.URL, line: "POST /items", header: "X-HTTP-Method-Override: delete", status: 200, backend: "del", method: "DELETE"},
		{desc: "on: X-Method-Override", gw: on.URL, line: "POST /items", header: "X-Method-Override: DELETE", status: 200, backend: "del", method: "DELETE"},
		{desc: "on: _method routes as DELETE, query kept", gw: on.URL, line: "POST /items?_method=DELETE&x=1", status: 200, backend: "del", method: "DELETE", query: "_method=DELETE&x=1"},
		{desc: "on: agreeing header and parameter", gw: on.URL, line: "POST /items?_method=DELETE", header: "X-HTTP-Method: DELETE", status: 200, backend: "del", method: "DELETE"},
		{desc: "on: conflicting overrides", gw: on.URL, line: "POST /items?_method=PUT", header: "X-HTTP-Method-Override: DELETE", status: 400},
		{desc: "on: CONNECT is not an override", gw: on.URL, line: "POST /items", header: "X-HTTP-Method-Override: CONNECT", status: 400},
		{desc: "on: junk is not an override", gw: on.URL, line: "POST /items", header: "X-HTTP-Method-Override: DEL ETE", status: 400},
		{desc: "on: only POST is overridden", gw: on.URL, line: "PUT /items", header: "X-HTTP-Method-Override: DELETE", status: 404},
		{desc: "on: _method on GET refused", gw: on.URL, line: "GET /items?_method=DELETE", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := rec.count() + del.count()
			raw := tc.line + " HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\n"
			if tc.header != "" {
				raw += tc.header + "\r\n"
			}
			raw += "Connection: close\r\n\r\n"
			method, _, _ := strings.Cut(tc.line, " ")
			resp := e2eRawDo(t, e2eHostPort(tc.gw), method, raw)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, resp.Body)
			}
			if tc.backend == "" {
				if n := rec.count() + del.count(); n != before {
					t.Errorf("a refused request reached a backend")
				}
				return
			}
			s := e2eDecodeSeen(t, resp.Body)
			if s.Backend != tc.backend || s.Method != tc.method {
				t.Errorf("backend %s saw %s, want %s with %s", s.Backend, s.Method, tc.backend, tc.method)
			}
			if tc.query != "" && s.RawQuery != tc.query {
				t.Errorf("backend query %q, want %q", s.RawQuery, tc.query)
			}
			for _, h := range overrideHeaders {
				if v, ok := s.Header[h]; ok {
					t.Errorf("backend received %s: %q", h, v)
				}
			}
		})
	}
}

var overrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// TestEdgeInjectedHeaders (issue 9 item 11): a header any plugin of the
// config injects is stripped from client requests on every route, also
// routes without that plugin, in any spelling.
func TestEdgeInjectedHeaders(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	cfg := `
server: {listen: [{addr: "127.0.0.1:0"}]%s}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - name: a
    match: {path_prefix: /a}
    upstream: rec
    plugins:
      - {name: jwt, config: {algorithms: [HS256], secret: "{{SECRET}}", claims_to_headers: {sub: X-User, tenant: x_tenant}}}
  - name: c
    match: {path_prefix: /c}
    upstream: rec
    plugins:
      - {name: forward_auth, config: {url: "{{REC}}/auth", copy_response_headers: [X-Auth-Roles]}}
  - {name: b, match: {path_prefix: /b}, upstream: rec}
`
	vars := map[string]string{"REC": rec.URL, "SECRET": jwtSecret}
	plain := e2eStart(t, fmt.Sprintf(cfg, ""), vars)
	underscores := e2eStart(t, fmt.Sprintf(cfg, ", underscores_in_headers: true"), vars)
	lines := []string{"X-User: admin", "x-tenant: acme", "X-Auth-Roles: admin", "X-Consumer-Id: admin", "X_User: admin", "X-AUTH_ROLES: admin", "X_Tenant: acme"}
	absent := []string{"X-User", "X-Tenant", "X-Auth-Roles", "X-Consumer-Id", "X_user", "X-Auth_roles", "X_tenant"}
	for _, gw := range []string{plain.URL, underscores.URL} {
		raw := "GET /b HTTP/1.1\r\nHost: gw.test\r\n" + strings.Join(lines, "\r\n") + "\r\nX-Other: kept\r\nConnection: close\r\n\r\n"
		resp := e2eRawDo(t, e2eHostPort(gw), "GET", raw)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %q", resp.StatusCode, resp.Body)
		}
		s := e2eDecodeSeen(t, resp.Body)
		for _, h := range absent {
			if v, ok := s.Header[h]; ok {
				t.Errorf("route b backend received %s: %q", h, v)
			}
		}
		if s.Header.Get("X-Other") != "kept" {
			t.Errorf("unrelated header lost")
		}
	}
}

// TestEdgeForwardedFor (issue 9 item 12): from a trusted proxy, an
// X-Forwarded-For element that is not an address is refused with 400
// instead of leaving the (allow-listed) proxy as the client; ip:port forms
// are read; IPv4-mapped addresses and CIDRs match their IPv4 forms.
func TestEdgeForwardedFor(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}], trusted_proxies: ["::ffff:127.0.0.1"]}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - name: internal
    match: {path_prefix: /internal}
    upstream: rec
    plugins: [{name: ip_restriction, config: {allow: [127.0.0.1, "::ffff:10.0.0.0/104", "2001:db8::/32"]}}]
  - name: denied
    match: {path_prefix: /denied}
    upstream: rec
    plugins: [{name: ip_restriction, config: {deny: ["::ffff:192.0.2.7"]}}]
`, map[string]string{"REC": rec.URL})
	addr := e2eHostPort(tg.URL)
	tests := []struct {
		desc   string
		path   string
		xff    []string
		status int
	}{
		{desc: "no X-Forwarded-For: the proxy itself", path: "/internal", status: 200},
		{desc: "ip:port of an outside client", path: "/internal", xff: []string{"203.0.113.9:5678"}, status: 403},
		{desc: "garbage", path: "/internal", xff: []string{"garbage"}, status: 400},
		{desc: "garbage after a valid client", path: "/internal", xff: []string{"203.0.113.9, not-an-ip"}, status: 400},
		{desc: "unknown", path: "/internal", xff: []string{"unknown"}, status: 400},
		{desc: "bad port", path: "/internal", xff: []string{"10.0.0.1:99999"}, status: 400},
		{desc: "IPv6 with port", path: "/internal", xff: []string{"[2001:db8::1]:443"}, status: 200},
		{desc: "bracketed IPv6", path: "/internal", xff: []string{"[2001:db8::1]"}, status: 200},
		{desc: "IPv6 outside", path: "/internal", xff: []string{"[2001:db9::1]:443"}, status: 403},
		{desc: "IPv4 client in a mapped CIDR", path: "/internal", xff: []string{"10.1.2.3"}, status: 200},
		{desc: "mapped client in a mapped CIDR", path: "/internal", xff: []string{"::ffff:10.1.2.3"}, status: 200},
		{desc: "IPv4 client outside the mapped CIDR", path: "/internal", xff: []string{"11.1.2.3"}, status: 403},
		{desc: "empty elements are skipped", path: "/internal", xff: []string{"10.1.2.3, ,"}, status: 200},
		{desc: "trusted proxy in mapped form is skipped", path: "/internal", xff: []string{"203.0.113.9, ::ffff:127.0.0.1"}, status: 403},
		{desc: "mapped deny entry matches IPv4", path: "/denied", xff: []string{"192.0.2.7"}, status: 403},
		{desc: "mapped deny entry, ip:port", path: "/denied", xff: []string{"192.0.2.7:1234"}, status: 403},
		{desc: "other address passes deny", path: "/denied", xff: []string{"192.0.2.8"}, status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := rec.count()
			var lines []string
			for _, v := range tc.xff {
				lines = append(lines, "X-Forwarded-For: "+v)
			}
			resp := e2eRawDo(t, addr, "GET", e2eRawGet(tc.path, "gw.test", lines...))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tc.status, resp.Body)
			}
			if tc.status != 200 && rec.count() != before {
				t.Errorf("refused request reached the backend")
			}
		})
	}
}
