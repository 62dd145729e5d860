package gateway_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// limitsExchange writes raw to addr (from a goroutine, so a large request
// cannot block the test) and reads everything the gateway sends until it
// closes the connection. err is the read error: nil when the response ended
// in a clean close, ECONNRESET when the connection was reset.
func limitsExchange(t *testing.T, addr, raw string) (resp *http.Response, body []byte, err error) {
	t.Helper()
	c, derr := net.DialTimeout("tcp", addr, 2*time.Second)
	if derr != nil {
		t.Fatalf("dial %s: %v", addr, derr)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = io.WriteString(c, raw) }()
	all, err := io.ReadAll(c)
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("no response (read error: %v)", err)
	}
	resp, perr := http.ReadResponse(bufio.NewReader(bytes.NewReader(all)), nil)
	if perr != nil {
		t.Fatalf("parse response: %v\n%q", perr, all)
	}
	body, berr := io.ReadAll(resp.Body)
	if berr != nil {
		t.Fatalf("response body: %v\n%q", berr, all)
	}
	return resp, body, err
}

// limitsRawRequest builds a raw HTTP/1.1 request with the given header lines.
func limitsRawRequest(method, target string, lines []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: gw.test\r\n", method, target)
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

func limitsRepeat(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// Issue 9 items 3, 4 and 5: edge limits, query and path handling.

// Header fields the gateway drops from an untrusted peer (forwarding and
// identity headers) still count against max_header_count.
func TestLimitsHeaderCountIncludesDroppedFields(t *testing.T) {
	t.Parallel()
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStartRec(t, rec, `
routes: [{name: all, upstream: rec}]
`)
	addr := e2eHostPort(tg.URL)
	attacks := map[string][]string{
		"150 X-Forwarded-For lines": limitsRepeat(150, func(i int) string { return fmt.Sprintf("X-Forwarded-For: 10.0.0.%d", i%250) }),
		"forwarding headers of every kind": limitsRepeat(120, func(i int) string {
			return []string{"Forwarded: for=1.2.3.4", "X-Real-Ip: 1.2.3.4", "X-Forwarded-Host: a", "X-Forwarded-Proto: https"}[i%4]
		}),
		"identity headers": limitsRepeat(110, func(i int) string {
			return []string{"X-Consumer-Id: root", "X-Consumer-Username: root", "X-Authenticated-Userid: root", "X-Userinfo: e30"}[i%4]
		}),
		"dropped and kept fields together": append(limitsRepeat(60, func(int) string { return "X-Forwarded-For: 1.1.1.1" }),
			limitsRepeat(41, func(i int) string { return fmt.Sprintf("X-Keep-%d: v", i) })...),
	}
	for name, lines := range attacks {
		t.Run(name, func(t *testing.T) {
			resp := e2eRawDo(t, addr, "GET", limitsRawRequest("GET", "/x", append(lines, "Connection: close"), ""))
			e2eCheckError(t, resp.StatusCode, resp.Header, resp.Body, http.StatusRequestHeaderFieldsTooLarge)
		})
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("backend received %d requests, want none", n)
	}
	// Within the limit (98 fields + Host + Connection) the request passes,
	// and the backend sees none of the client's forwarding headers.
	lines := limitsRepeat(98, func(i int) string { return fmt.Sprintf("X-Forwarded-For: 10.0.0.%d", i) })
	resp := e2eRawDo(t, addr, "GET", limitsRawRequest("GET", "/ok", append(lines, "Connection: close"), ""))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("100 fields: status %d, want 200; %s", resp.StatusCode, resp.Body)
	}
	if got := e2eDecodeSeen(t, resp.Body).Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
		t.Errorf("backend X-Forwarded-For = %q, want the gateway's own", got)
	}
}

// Limit errors end in a clean close: a raw client reads the whole response
// and then EOF, never a reset, with the max_connections wrapper and without.
func TestLimitsErrorsCloseCleanly(t *testing.T) {
	t.Parallel()
	for _, maxConns := range []int{2, -1} {
		t.Run(fmt.Sprintf("max_connections %d", maxConns), func(t *testing.T) {
			t.Parallel()
			rec := e2eNewRecorder(t, "rec", nil)
			tg := e2eStart(t, `
server:
  listen: [{addr: "127.0.0.1:0", max_connections: {{MAX}}}]
  limits: {max_header_bytes: 8KiB, max_header_count: 20, max_uri_bytes: 1KiB, max_body_bytes: 64KiB}
upstreams: {rec: {targets: [{url: "{{REC}}"}]}}
routes: [{name: all, upstream: rec}]
`, map[string]string{"REC": rec.URL, "MAX": strconv.Itoa(maxConns)})
			addr := e2eHostPort(tg.URL)
			tests := []struct {
				desc   string
				raw    string
				status int
				json   bool // the gateway's JSON error with Content-Length
			}{
				{"head far over max_header_bytes", limitsRawRequest("GET", "/", []string{"X-Big: " + strings.Repeat("a", 64<<10)}, ""), 431, false},
				{"head just over max_header_bytes", limitsRawRequest("GET", "/", []string{"X-Big: " + strings.Repeat("a", 9<<10)}, ""), 431, true},
				{"too many fields", limitsRawRequest("GET", "/", limitsRepeat(30, func(int) string { return "X-Forwarded-For: 1.1.1.1" }), ""), 431, true},
				{"too many fields with a body", limitsRawRequest("POST", "/", limitsRepeat(30, func(int) string { return "A: b" }), strings.Repeat("b", 32<<10)), 431, true},
				{"target too long", limitsRawRequest("GET", "/"+strings.Repeat("p", 2<<10), nil, ""), 414, true},
				{"body too large", limitsRawRequest("POST", "/", nil, strings.Repeat("b", 2<<20)), 413, true},
			}
			for _, tc := range tests {
				resp, body, err := limitsExchange(t, addr, tc.raw)
				if err != nil {
					t.Errorf("%s: reading to EOF: %v (the connection was not closed cleanly)", tc.desc, err)
					continue
				}
				if resp.StatusCode != tc.status {
					t.Errorf("%s: status %d, want %d; %q", tc.desc, resp.StatusCode, tc.status, body)
					continue
				}
				if tc.json {
					e2eCheckError(t, resp.StatusCode, resp.Header, body, tc.status)
					if resp.ContentLength != int64(len(body)) {
						t.Errorf("%s: Content-Length %d, body %d bytes", tc.desc, resp.ContentLength, len(body))
					}
				}
				if !resp.Close {
					t.Errorf("%s: response does not close the connection", tc.desc)
				}
			}
			if n := rec.count(); n != 0 {
				t.Fatalf("backend received %d requests, want none", n)
			}
		})
	}
}

// A request target over max_uri_bytes is answered 414, in the path or in
// the query; one over the whole head limit is 431.
func TestLimitsLongTarget(t *testing.T) {
	t.Parallel()
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}], limits: {max_header_bytes: 32KiB}}
upstreams: {rec: {targets: [{url: "{{REC}}"}]}}
routes: [{name: all, upstream: rec}]
`, map[string]string{"REC": rec.URL})
	addr := e2eHostPort(tg.URL)
	for _, tc := range []struct {
		desc, target string
		status       int
	}{
		{"long path", "/" + strings.Repeat("a", 8<<10), 414},
		{"long query", "/q?x=" + strings.Repeat("a", 8<<10), 414},
		{"long encoded path", "/" + strings.Repeat("%41", 3<<10), 414},
		{"target longer than the head limit", "/" + strings.Repeat("a", 40<<10), 431},
	} {
		resp, body, err := limitsExchange(t, addr, limitsRawRequest("GET", tc.target, nil, ""))
		if err != nil {
			t.Errorf("%s: %v", tc.desc, err)
			continue
		}
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d; %.200q", tc.desc, resp.StatusCode, tc.status, body)
		}
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("backend received %d requests, want none", n)
	}
	target := "/" + strings.Repeat("b", 8<<10-1)
	resp := e2eRawDo(t, addr, "GET", e2eRawGet(target, "gw.test"))
	if resp.StatusCode != http.StatusOK || e2eDecodeSeen(t, resp.Body).RequestURI != target {
		t.Fatalf("target of exactly 8KiB: status %d", resp.StatusCode)
	}
}

// The query reaches the backend byte for byte, whatever Go's parser thinks
// of it; one with more parameters than url.ParseQuery takes is refused.
func TestLimitsQueryForwardedByteForByte(t *testing.T) {
	t.Parallel()
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}], limits: {max_uri_bytes: 64KiB, max_header_bytes: 128KiB}}
upstreams: {rec: {targets: [{url: "{{REC}}"}]}}
routes: [{name: all, upstream: rec}]
`, map[string]string{"REC": rec.URL})
	addr := e2eHostPort(tg.URL)
	for _, q := range []string{
		"a=1;b=2", "x=%zz&y=%", "a=%2", "k=v&&k2", "q=a+b%20c%2B", "a=1&a=2&A=3", ";", "%",
		strings.TrimSuffix(strings.Repeat("a&", 10000), "&"),
	} {
		resp := e2eRawDo(t, addr, "GET", e2eRawGet("/p?"+q, "gw.test"))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("query %.40q: status %d; %s", q, resp.StatusCode, resp.Body)
			continue
		}
		if got := e2eDecodeSeen(t, resp.Body).RawQuery; got != q {
			t.Errorf("query %.40q reached the backend as %.40q", q, got)
		}
	}
	before := rec.count()
	for _, q := range []string{strings.Repeat("a&", 10000) + "a", strings.Repeat("&", 10000)} {
		resp := e2eRawDo(t, addr, "GET", e2eRawGet("/p?"+q, "gw.test"))
		e2eCheckError(t, resp.StatusCode, resp.Header, resp.Body, http.StatusBadRequest)
	}
	if n := rec.count(); n != before {
		t.Fatalf("backend received %d requests with too many parameters", n-before)
	}
}

// When a route matches on a query parameter or header, a request that
// repeats it (or whose query a backend may split or decode differently) is
// refused: otherwise the route decision and the backend could read
// different values.
func TestLimitsRepeatedMatchedNamesRejected(t *testing.T) {
	t.Parallel()
	v1 := e2eNewRecorder(t, "v1", nil)
	v2 := e2eNewRecorder(t, "v2", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  v1: {targets: [{url: "{{V1}}"}]}
  v2: {targets: [{url: "{{V2}}"}]}
routes:
  - {name: v2-query, match: {path_prefix: /api, query: {version: v2}}, upstream: v2}
  - {name: v2-header, match: {path_prefix: /api, headers: {X-Version: v2}}, upstream: v2}
  - {name: v1, match: {path_prefix: /api}, upstream: v1}
`, map[string]string{"V1": v1.URL, "V2": v2.URL})
	addr := e2eHostPort(tg.URL)
	attacks := []struct {
		target string
		lines  []string
	}{
		{target: "/api?version=v2&version=v1"},
		{target: "/api?version=v1&version=v2"},
		{target: "/api?version=v2&Version=v1"},
		{target: "/api?version=v2&%76ersion=v1"},
		{target: "/api?version=v2&version+=v1&version=v1"},
		{target: "/api?version=v2;version=v1"},
		{target: "/api?version=v2&x=%zz"},
		{target: "/api?version=v2%zz"},
		{target: "/api?version=%"},
		{target: "/api", lines: []string{"X-Version: v2", "X-Version: v1"}},
		{target: "/api", lines: []string{"X-Version: v1", "X-Version: v2"}},
		{target: "/api", lines: []string{"X-Version: v2", "x-version: v1"}},
	}
	for _, a := range attacks {
		resp := e2eRawDo(t, addr, "GET", limitsRawRequest("GET", a.target, append(a.lines, "Connection: close"), ""))
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s %q: status %d, want 400; %s", a.target, a.lines, resp.StatusCode, resp.Body)
		}
	}
	if n1, n2 := v1.count(), v2.count(); n1+n2 != 0 {
		t.Fatalf("backends received %d and %d requests, want none", n1, n2)
	}
	for _, tc := range []struct {
		target, backend string
		lines           []string
	}{
		{target: "/api?version=v2", backend: "v2"},
		{target: "/api?x=1&x=2&version=v2", backend: "v2"},
		{target: "/api?tag=a&tag=b", backend: "v1"},
		{target: "/api?version=v1", backend: "v1"},
		{target: "/api", lines: []string{"X-Version: v2"}, backend: "v2"},
		{target: "/api", lines: []string{"X-Other: a", "X-Other: b"}, backend: "v1"},
	} {
		resp := e2eRawDo(t, addr, "GET", limitsRawRequest("GET", tc.target, append(tc.lines, "Connection: close"), ""))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d; %s", tc.target, resp.StatusCode, resp.Body)
			continue
		}
		seen := e2eDecodeSeen(t, resp.Body)
		if seen.Backend != tc.backend || seen.RequestURI != tc.target {
			t.Errorf("%s: backend %s saw %q, want %s", tc.target, seen.Backend, seen.RequestURI, tc.backend)
		}
	}
}

// Path parameters cannot carry a request past a route on /admin to a
// catch-all whose backend strips them.
func TestLimitsPathParams(t *testing.T) {
	t.Parallel()
	attacks := []string{
		"/admin;x=1/secret", "/admin;/secret", "/admin;", "/admin;jsessionid=1", "/%61dmin;x/secret",
		"/admin;a;b/secret", "/ADMIN/../admin;x/secret", "/x/../admin;/secret", "//admin;//secret",
	}
	encoded := []string{"/admin%3B/secret", "/admin%3bx=1/secret", "/admin%3B", "/%61dmin%3Bx/secret"}
	dots := []string{"/public/..;/admin/secret", "/admin/.;/secret", "/public/%2e%2e;/admin"}
	const conf = `
server: {listen: [{addr: "127.0.0.1:0"}]{{MODE}}}
upstreams: {rec: {targets: [{url: "{{REC}}"}]}}
routes:
  - {name: admin, match: {path_prefix: /admin}, upstream: rec, plugins: [{name: ip_restriction, config: {deny: ["127.0.0.0/8"]}}]}
  - {name: public, upstream: rec}
`
	check := func(t *testing.T, addr string, targets []string, want int) {
		t.Helper()
		for _, target := range targets {
			resp := e2eRawDo(t, addr, "GET", e2eRawGet(target, "gw.test"))
			if resp.StatusCode != want {
				t.Errorf("%s: status %d, want %d; %s", target, resp.StatusCode, want, resp.Body)
			}
		}
	}
	// start runs a gateway with path_params mode (YAML, "" for the
	// default) in front of a fresh recorder.
	start := func(t *testing.T, mode string) (*e2eRecorder, string) {
		rec := e2eNewRecorder(t, "rec", nil)
		tg := e2eStart(t, conf, map[string]string{"REC": rec.URL, "MODE": mode})
		return rec, e2eHostPort(tg.URL)
	}
	noneReached := func(t *testing.T, rec *e2eRecorder) {
		t.Helper()
		if n := rec.count(); n != 0 {
			t.Fatalf("backend received %v", rec.all())
		}
	}
	t.Run("reject (default)", func(t *testing.T) {
		t.Parallel()
		rec, addr := start(t, "")
		check(t, addr, attacks, http.StatusBadRequest)
		check(t, addr, encoded, http.StatusBadRequest)
		check(t, addr, dots, http.StatusBadRequest)
		check(t, addr, []string{"/public;x/y"}, http.StatusBadRequest)
		noneReached(t, rec)
	})
	t.Run("strip", func(t *testing.T) {
		t.Parallel()
		rec, addr := start(t, ", path_params: strip")
		check(t, addr, attacks, http.StatusForbidden)
		check(t, addr, encoded, http.StatusBadRequest)
		check(t, addr, dots, http.StatusBadRequest)
		noneReached(t, rec)
		for target, want := range map[string]string{
			"/public;jsessionid=1/y": "/public/y", "/public/y;v=2": "/public/y", "/;x/public": "/public", "/p;a/q;b/": "/p/q/",
		} {
			resp := e2eRawDo(t, addr, "GET", e2eRawGet(target+"?a=1;b", "gw.test"))
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d; %s", target, resp.StatusCode, resp.Body)
				continue
			}
			if got := e2eDecodeSeen(t, resp.Body).RequestURI; got != want+"?a=1;b" {
				t.Errorf("%s reached the backend as %q, want %q", target, got, want+"?a=1;b")
			}
		}
	})
	t.Run("allow", func(t *testing.T) {
		t.Parallel()
		_, addr := start(t, ", path_params: allow")
		check(t, addr, dots, http.StatusBadRequest)
		resp := e2eRawDo(t, addr, "GET", e2eRawGet("/public;v=1/y", "gw.test"))
		if resp.StatusCode != http.StatusOK || e2eDecodeSeen(t, resp.Body).RequestURI != "/public;v=1/y" {
			t.Fatalf("allow: status %d; %s", resp.StatusCode, resp.Body)
		}
	})
}

// The same limits and refusals hold over HTTP/2 (prior knowledge).
func TestLimitsHTTP2(t *testing.T) {
	t.Parallel()
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStartRec(t, rec, `
routes:
  - {name: admin, match: {path_prefix: /admin}, upstream: rec, plugins: [{name: ip_restriction, config: {deny: ["127.0.0.0/8"]}}]}
  - {name: v2, match: {path_prefix: /api, query: {version: v2}, headers: {X-Version: v2}}, upstream: rec}
  - {name: public, upstream: rec}
`)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for _, tc := range []struct {
		desc, target string
		header       http.Header
		status       int
	}{
		{"150 X-Forwarded-For fields", "/x", http.Header{"X-Forwarded-For": limitsRepeat(150, func(int) string { return "1.2.3.4" })}, 431},
		{"long target", "/" + strings.Repeat("a", 9<<10), nil, 414},
		{"repeated header", "/api?version=v2", http.Header{"X-Version": {"v2", "v1"}}, 400},
		{"repeated query", "/api?version=v2&version=v1", http.Header{"X-Version": {"v2"}}, 400},
		{"path parameter", "/admin;x=1/secret", nil, 400},
		{"encoded path parameter", "/admin%3Bx/secret", nil, 400},
	} {
		req := e2eReq(t, http.MethodGet, tg.URL+tc.target, nil)
		for k, v := range tc.header {
			req.Header[k] = v
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("%s: answered over %s", tc.desc, resp.Proto)
		}
		e2eCheckError(t, resp.StatusCode, resp.Header, body, tc.status)
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("backend received %v", rec.all())
	}
}
