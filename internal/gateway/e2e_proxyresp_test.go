package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/proxy"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// e2eRespBackend is a raw TCP backend whose answers are exact bytes, for
// upstream responses net/http would refuse to produce (hop-by-hop headers
// on 1xx, Content-Length next to Transfer-Encoding, stalls mid-body). It
// records which connection carried which request and when the gateway
// closed each connection.
type e2eRespBackend struct {
	ln      net.Listener
	respond func(path string, c net.Conn) bool // writes the answer; false: close the connection
	mu      sync.Mutex
	reqs    []e2eRespSeen
	closed  map[int]bool
	changed chan struct{}
}

// e2eRespSeen is one request the backend received.
type e2eRespSeen struct {
	conn int
	path string
}

func e2eNewRespBackend(t testing.TB, respond func(path string, c net.Conn) bool) *e2eRespBackend {
	t.Helper()
	return e2eNewRespBackendTLS(t, nil, respond)
}

// e2eNewRespBackendTLS is e2eNewRespBackend serving TLS with conf (plain
// text when nil).
func e2eNewRespBackendTLS(t testing.TB, conf *tls.Config, respond func(path string, c net.Conn) bool) *e2eRespBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	b := &e2eRespBackend{ln: ln, respond: respond, closed: map[int]bool{}, changed: make(chan struct{}, 1)}
	e2eServeConns(t, ln, func(id int, c net.Conn) {
		b.serveConn(id, c)
		b.mu.Lock()
		b.closed[id] = true
		b.mu.Unlock()
		b.notify()
	})
	return b
}

func (b *e2eRespBackend) notify() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

func (b *e2eRespBackend) serveConn(id int, c net.Conn) {
	br := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		b.mu.Lock()
		b.reqs = append(b.reqs, e2eRespSeen{conn: id, path: req.URL.Path})
		b.mu.Unlock()
		b.notify()
		if !b.respond(req.URL.Path, c) {
			return
		}
	}
}

func (b *e2eRespBackend) url() string { return "http://" + b.ln.Addr().String() }

func (b *e2eRespBackend) seen() []e2eRespSeen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]e2eRespSeen(nil), b.reqs...)
}

// waitClosed waits until the gateway has closed backend connection id.
func (b *e2eRespBackend) waitClosed(t testing.TB, id int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		b.mu.Lock()
		done := b.closed[id]
		b.mu.Unlock()
		if done {
			return
		}
		select {
		case <-b.changed:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("backend connection %d still open after %v", id, within)
		}
	}
}

// e2eRespRawClient is one raw HTTP/1.1 client connection to the gateway.
type e2eRespRawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func e2eRespDial(t testing.TB, addr string) *e2eRespRawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &e2eRespRawClient{c: c, br: bufio.NewReader(c)}
}

func (rc *e2eRespRawClient) get(t testing.TB, path string) {
	t.Helper()
	if _, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: gw.test\r\n\r\n", path); err != nil {
		t.Fatalf("write request: %v", err)
	}
}

// block reads one raw header block (status line and fields, up to the
// empty line).
func (rc *e2eRespRawClient) block(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for {
		line, err := rc.br.ReadString('\n')
		if err != nil {
			t.Fatalf("read header block: %v (so far %q)", err, b.String())
		}
		b.WriteString(line)
		if line == "\r\n" {
			return b.String()
		}
	}
}

// final reads the final response after any interim ones already read.
func (rc *e2eRespRawClient) final(t testing.TB) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: http.MethodGet})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, body
}

const e2eRespOK = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"

// TestUpstreamInterimResponseHeaders checks that a 1xx (103 Early Hints)
// from an upstream reaches the client with the same hop-by-hop cleanup as a
// final response: the Connection header, the fields it names and the
// fixed hop-by-hop fields are removed, end-to-end fields stay.
func TestUpstreamInterimResponseHeaders(t *testing.T) {
	t.Parallel()
	interim := map[string]string{
		// The fields the Connection header names, in any case and spacing.
		"/connection-named": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-Foo, x-bar ,X-Baz\r\n" +
			"X-Foo: secret-foo\r\nx-bar: secret-bar\r\nX-Baz: secret-baz\r\n\r\n",
		// Several Connection headers.
		"/connection-repeated": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-Foo\r\nConnection: X-Bar\r\n" +
			"X-Foo: secret-foo\r\nX-Bar: secret-bar\r\n\r\n",
		// The fixed hop-by-hop set.
		"/fixed": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n" +
			"Proxy-Authenticate: Basic\r\nTe: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\n\r\n",
		// Two interim responses in a row, both cleaned.
		"/two": "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-Foo\r\nX-Foo: secret-foo\r\n\r\n" +
			"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nKeep-Alive: timeout=5\r\n\r\n",
	}
	be := e2eNewRespBackend(t, func(path string, c net.Conn) bool {
		io.WriteString(c, interim[path]+e2eRespOK)
		return true
	})
	tg := e2eStartOne(t, "raw", be.url(), `
routes:
  - {name: raw, match: {path_prefix: /}, upstream: raw}
`)
	banned := []string{"connection", "x-foo", "x-bar", "x-baz", "keep-alive", "proxy-connection", "proxy-authenticate",
		"te", "trailer", "upgrade", "secret"}
	for path, raw := range interim {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			t.Parallel()
			rc := e2eRespDial(t, e2eHostPort(tg.URL))
			rc.get(t, path)
			for range strings.Count(raw, "HTTP/1.1 103") {
				block := rc.block(t)
				if !strings.HasPrefix(block, "HTTP/1.1 103") {
					t.Fatalf("first block is not the 103: %q", block)
				}
				if !strings.Contains(block, "Link: </a.css>; rel=preload") {
					t.Errorf("103 lost its end-to-end Link header: %q", block)
				}
				for _, line := range strings.Split(block, "\r\n")[1:] {
					name, _, _ := strings.Cut(strings.ToLower(line), ":")
					for _, b := range banned {
						if name == b || strings.Contains(line, "secret") {
							t.Errorf("103 forwarded hop-by-hop field %q: %q", line, block)
						}
					}
				}
			}
			resp, body := rc.final(t)
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("final response %d %q, want 200 ok", resp.StatusCode, body)
			}
			for _, h := range []string{"X-Foo", "X-Bar", "X-Baz", "Link"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("final response carries the 103's %s: %q", h, v)
				}
			}
		})
		// Over HTTP/2 connection-specific fields are malformed: a client
		// must get the 103 cleaned, and the stream must survive it.
		t.Run("h2c "+strings.TrimPrefix(path, "/"), func(t *testing.T) {
			t.Parallel()
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			t.Cleanup(tr.CloseIdleConnections)
			var mu sync.Mutex
			var interims []textproto.MIMEHeader
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					mu.Lock()
					interims = append(interims, h)
					mu.Unlock()
					return nil
				},
			})
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL+path, nil)
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
			if err != nil {
				t.Fatalf("GET over h2c: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(body) != "ok" || resp.ProtoMajor != 2 {
				t.Fatalf("final response %s %d %q (%v), want HTTP/2 200 ok", resp.Proto, resp.StatusCode, body, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(interims) != strings.Count(raw, "HTTP/1.1 103") {
				t.Fatalf("%d interim responses, want %d", len(interims), strings.Count(raw, "HTTP/1.1 103"))
			}
			for _, h := range interims {
				if h.Get("Link") == "" {
					t.Errorf("103 lost its Link header: %v", h)
				}
				for k, v := range h {
					for _, b := range banned {
						if strings.EqualFold(k, b) || strings.Contains(strings.Join(v, ","), "secret") {
							t.Errorf("103 forwarded hop-by-hop field %s: %q", k, v)
						}
					}
				}
			}
		})
	}
}

// e2eRespHeaders builds a response head with n extra fields of size bytes
// each (besides Content-Length).
func e2eRespHeaders(n, size int) string {
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n")
	for i := range n {
		fmt.Fprintf(&b, "X-H-%03d: %s\r\n", i, strings.Repeat("v", size))
	}
	b.WriteString("\r\nok")
	return b.String()
}

// TestUpstreamResponseHeaderLimits checks that a response over the
// upstream's header count or size limit is answered with 502, for the
// default limits and configured ones, and that an interim response over the
// count is not forwarded.
func TestUpstreamResponseHeaderLimits(t *testing.T) {
	t.Parallel()
	answers := map[string]string{
		// Content-Length + 99 = 100 fields: at the default limit.
		"/default/count-ok":  e2eRespHeaders(99, 8),
		"/default/count-bad": e2eRespHeaders(100, 8),
		// About 60 KiB fits the default 64 KiB; 70 KiB does not.
		"/default/size-ok":  e2eRespHeaders(60, 1000),
		"/default/size-bad": e2eRespHeaders(1, 70<<10),
		// Configured: 10 fields, 2 KiB.
		"/small/count-ok":  e2eRespHeaders(9, 8),
		"/small/count-bad": e2eRespHeaders(10, 8),
		"/small/size-bad":  e2eRespHeaders(1, 3<<10),
		// An interim response over the count is dropped; the final one passes.
		"/small/interim": "HTTP/1.1 103 Early Hints\r\n" + strings.Repeat("Link: </a.css>; rel=preload\r\n", 11) + "\r\n" + e2eRespOK,
	}
	be := e2eNewRespBackend(t, func(path string, c net.Conn) bool {
		io.WriteString(c, answers[path])
		return true
	})
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  def: {targets: [{url: "{{BE}}"}]}
  small: {max_response_header_count: 10, max_response_header_bytes: 2KiB, targets: [{url: "{{BE}}"}]}
routes:
  - {name: def, match: {path_prefix: /default/}, upstream: def}
  - {name: small, match: {path_prefix: /small/}, upstream: small}
`, map[string]string{"BE": be.url()})
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/default/count-ok", 200}, {"/default/count-bad", 502}, {"/default/size-ok", 200}, {"/default/size-bad", 502},
		{"/small/count-ok", 200}, {"/small/count-bad", 502}, {"/small/size-bad", 502},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			t.Parallel()
			resp, body := e2eGet(t, tg.URL+tc.path)
			if tc.want == 200 {
				if resp.StatusCode != 200 || string(body) != "ok" {
					t.Fatalf("status %d %q, want 200 ok", resp.StatusCode, body)
				}
				return
			}
			eb := e2eCheckError(t, resp.StatusCode, resp.Header, body, tc.want)
			if eb.Error != "upstream response header too large" {
				t.Errorf("error %q, want %q", eb.Error, "upstream response header too large")
			}
			if resp.Header.Get("X-H-000") != "" {
				t.Error("the refused response's headers reached the client")
			}
		})
	}
	t.Run("interim over the count", func(t *testing.T) {
		t.Parallel()
		rc := e2eRespDial(t, e2eHostPort(tg.URL))
		rc.get(t, "/small/interim")
		resp, body := rc.final(t)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("first response %d %q, want the final 200 ok (the 103 over the count dropped)", resp.StatusCode, body)
		}
	})
}

// TestUpstreamContentLengthWithTransferEncoding checks that an upstream
// response carrying both Content-Length and Transfer-Encoding is refused
// with 502 and that its connection is closed, never used for another
// request; responses with one framing header keep their connection.
func TestUpstreamContentLengthWithTransferEncoding(t *testing.T) {
	t.Parallel()
	chunked := "7\r\npartial\r\n0\r\n\r\n"
	bad := map[string]string{
		"/cl-then-te":   "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
		"/te-then-cl":   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n" + chunked,
		"/lower-case":   "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 7\r\n\r\n" + chunked,
		"/no-space":     "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING:chunked\r\nCONTENT-LENGTH:7\r\n\r\n" + chunked,
		"/bare-lf":      "HTTP/1.1 200 OK\nContent-Length: 7\nTransfer-Encoding: chunked\n\n" + chunked,
		"/zero-length":  "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
		"/after-103":    "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
		"/status-404":   "HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
		"/http10":       "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\npartial",
		"/smuggled-res": "HTTP/1.1 200 OK\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged",
	}
	good := map[string]string{
		"/ok":      e2eRespOK,
		"/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
		// Framing names inside a body or a field value are not framing.
		"/body-lookalike": "HTTP/1.1 200 OK\r\nX-Note: Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"28\r\n\r\nContent-Length: 5\r\nTransfer-Encoding\r\n\r\n0\r\n\r\n",
		"/long-names": "HTTP/1.1 200 OK\r\nContent-Length-X: 5\r\nX-Transfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok",
	}
	be := e2eNewRespBackend(t, func(path string, c net.Conn) bool {
		if a, ok := bad[path]; ok {
			io.WriteString(c, a)
			return true // keep the connection: the gateway must not reuse it
		}
		io.WriteString(c, good[path])
		return true
	})
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  raw: {balancer: round_robin, targets: [{url: "{{BE}}"}], retry: {attempts: 0}}
routes:
  - {name: raw, match: {path_prefix: /}, upstream: raw}
`, map[string]string{"BE": be.url()})

	// One client connection per case and requests in sequence, so the
	// gateway's keep-alive pool holds at most the connections of the good
	// responses.
	for path := range bad {
		t.Run(strings.TrimPrefix(path, "/"), func(t *testing.T) {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				resp, body := e2eDo(t, e2eReq(t, method, tg.URL+path, nil))
				eb := e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusBadGateway)
				if eb.Error != "upstream response framing invalid" {
					t.Errorf("%s: error %q, want %q", method, eb.Error, "upstream response framing invalid")
				}
				if bytes.Contains(body, []byte("partial")) || bytes.Contains(body, []byte("forged")) {
					t.Errorf("%s: the refused body reached the client: %q", method, body)
				}
				// A good request afterwards works.
				resp, body = e2eGet(t, tg.URL+"/ok")
				if resp.StatusCode != 200 || string(body) != "ok" {
					t.Fatalf("after %s: /ok = %d %q", path, resp.StatusCode, body)
				}
			}
		})
	}
	for path := range good {
		resp, body := e2eGet(t, tg.URL+path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d %q, want 200", path, resp.StatusCode, body)
		}
	}

	// No connection carried a request after a refused response, and each
	// such connection was closed by the gateway.
	seen := be.seen()
	badConn := map[int]string{}
	for _, s := range seen {
		if p, ok := badConn[s.conn]; ok {
			t.Errorf("backend connection %d was reused for %s after the ambiguous response to %s", s.conn, s.path, p)
		}
		if _, ok := bad[s.path]; ok {
			badConn[s.conn] = s.path
		}
	}
	if len(badConn) == 0 {
		t.Fatal("no ambiguous response was sent")
	}
	for id := range badConn {
		be.waitClosed(t, id, 5*time.Second)
	}
	// Good responses do share connections: the checks do not disable reuse.
	perConn := map[int]int{}
	for _, s := range seen {
		if _, isBad := bad[s.path]; !isBad {
			perConn[s.conn]++
		}
	}
	reused := false
	for _, n := range perConn {
		reused = reused || n > 1
	}
	if !reused {
		t.Errorf("no backend connection served two good requests: %v", seen)
	}
}

// e2eRespAccessLog returns the access log path of a test gateway and the
// config line that enables it.
func e2eRespAccessLog(t testing.TB) (path, yaml string) {
	path = filepath.Join(t.TempDir(), "access.log")
	return path, fmt.Sprintf("log: {access: {output: %q}}\n", path)
}

// e2eRespWaitLog waits until the access log contains all of want on one line.
func e2eRespWaitLog(t testing.TB, path string, want ...string) {
	t.Helper()
	var b []byte
	// The gateway flushes the file on a timer: poll it.
	ok := wait.Within(5*time.Second, func() bool {
		b, _ = os.ReadFile(path)
		for _, line := range strings.Split(string(b), "\n") {
			all := true
			for _, w := range want {
				all = all && strings.Contains(line, w)
			}
			if all {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no access log line with %q in:\n%s", want, b)
	}
}

// TestUpstreamBodyIdleTimeout checks that a response whose upstream stalls
// mid-body is aborted after the body idle timeout: the client's connection
// is closed before the end, the upstream connection is closed, the event is
// counted and logged. A trickle with shorter gaps and an upgraded
// connection are not cut.
func TestUpstreamBodyIdleTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	be := e2eNewRespBackend(t, e2eIdleRespond(release))
	// Runs before the backend's cleanup, which waits for its handlers.
	t.Cleanup(func() { close(release) })
	logPath, logYAML := e2eRespAccessLog(t)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  raw: {body_idle_timeout: 400ms, targets: [{url: "{{BE}}"}]}
  long: {targets: [{url: "{{BE}}"}]}
routes:
  - {name: raw, match: {path_prefix: /}, upstream: raw}
  - {name: route-override, match: {path_prefix: /route/}, upstream: long, body_idle_timeout: 300ms}
`+logYAML, map[string]string{"BE": be.url()})
	env := &e2eIdleEnv{be: be, url: tg.URL, logPath: logPath, counter: func(up string) int64 {
		return tg.Stats().Counter(proxy.BodyIdleTimeoutsMetric, fmt.Sprintf("upstream=%q", up)).Value()
	}}

	for _, tc := range []struct{ path, upstream, partial string }{
		{"/stall", "raw", "partial"},
		{"/stall-chunked", "raw", "partial"},
		{"/trickle-slow", "raw", "x"},
		{"/route/stall", "long", "partial"},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			e2eIdleAborted(t, env, tc.path, tc.upstream, tc.partial)
		})
	}

	t.Run("trickle within the timeout completes", func(t *testing.T) {
		resp, body := e2eGet(t, tg.URL+"/trickle-fast")
		if resp.StatusCode != 200 || string(body) != "yyyyyyyyyy" {
			t.Fatalf("status %d body %q, want 200 and the whole body", resp.StatusCode, body)
		}
	})

	t.Run("http2 stream is reset", func(t *testing.T) { e2eIdleHTTP2Reset(t, env) })

	t.Run("upgraded connection is exempt", func(t *testing.T) {
		rc := e2eRespDial(t, e2eHostPort(tg.URL))
		fmt.Fprintf(rc.c, "GET /ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		block := rc.block(t)
		if !strings.HasPrefix(block, "HTTP/1.1 101") {
			t.Fatalf("upgrade answered %q", block)
		}
		got := make([]byte, len("late-frame"))
		if _, err := io.ReadFull(rc.br, got); err != nil || string(got) != "late-frame" {
			t.Fatalf("data sent after 3 idle timeouts: %q, %v; want late-frame", got, err)
		}
	})
}

// e2eIdleRespond is the backend of TestUpstreamBodyIdleTimeout: it stalls,
// trickles or upgrades by path, and gives up when release closes.
func e2eIdleRespond(release <-chan struct{}) func(path string, c net.Conn) bool {
	return func(path string, c net.Conn) bool {
		switch path {
		case "/stall", "/route/stall":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
		case "/stall-chunked":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n")
		case "/trickle-slow":
			// Gaps longer than the timeout.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
			for range 10 {
				if _, err := io.WriteString(c, "x"); err != nil {
					return false
				}
				select {
				case <-time.After(700 * time.Millisecond):
				case <-release:
					return false
				}
			}
			return true
		case "/trickle-fast":
			// Gaps well within the timeout: the response completes.
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n")
			for range 10 {
				io.WriteString(c, "y")
				time.Sleep(50 * time.Millisecond) // the backend's pacing, not synchronisation
			}
			return true
		case "/ws":
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			select {
			case <-time.After(1200 * time.Millisecond):
			case <-release:
				return false
			}
			io.WriteString(c, "late-frame")
			<-release
			return false
		default:
			io.WriteString(c, e2eRespOK)
			return true
		}
		// Stall: hold the connection until the gateway closes it.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.Copy(io.Discard, c)
		return false
	}
}

// e2eIdleEnv is the gateway of TestUpstreamBodyIdleTimeout: its backend,
// address, access log and body idle timeouts counted by upstream.
type e2eIdleEnv struct {
	be      *e2eRespBackend
	url     string
	logPath string
	counter func(upstream string) int64
}

// e2eIdleAborted checks that a response to path, which stalls at the
// backend of upstream after the body prefix partial, is aborted, counted
// and logged, and that its upstream connection is closed.
func e2eIdleAborted(t *testing.T, env *e2eIdleEnv, path, upstream, partial string) {
	before := env.counter(upstream)
	nconn := len(env.be.seen())
	start := time.Now()
	rc := e2eRespDial(t, e2eHostPort(env.url))
	rc.get(t, path)
	// The gateway buffers the head and the first bytes until it
	// flushes, so the client sees either no head at all or a head
	// and a body cut short — never a complete response — and then
	// the end of the connection.
	raw, err := io.ReadAll(rc.br)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("client connection ended with %v, want a clean close", err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), &http.Request{Method: http.MethodGet}); err == nil {
		if resp.StatusCode != 200 {
			t.Errorf("status %d, want the upstream's 200 or no head", resp.StatusCode)
		}
		if body, err := io.ReadAll(resp.Body); err == nil {
			t.Fatalf("complete response %q delivered, want it aborted", body)
		} else if !strings.HasPrefix(string(body), partial) && len(body) > 0 {
			t.Errorf("body %q, want a prefix of what the upstream sent", body)
		}
	}
	if elapsed > 5*time.Second {
		t.Errorf("aborted after %v", elapsed)
	}
	env.be.waitClosed(t, env.be.seen()[nconn].conn, 5*time.Second)
	if got := env.counter(upstream); got != before+1 {
		t.Errorf("%s counter = %d, want %d", proxy.BodyIdleTimeoutsMetric, got, before+1)
	}
	e2eRespWaitLog(t, env.logPath, `"path":"`+path+`"`, "upstream body idle timeout")
}

// e2eIdleHTTP2Reset checks that over HTTP/2 a stalled response ends in a
// stream reset, and is counted.
func e2eIdleHTTP2Reset(t *testing.T, env *e2eIdleEnv) {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	before := env.counter("raw")
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(env.url + "/stall")
	if err == nil {
		defer resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
		}
		var body []byte
		if body, err = io.ReadAll(resp.Body); err == nil {
			t.Fatalf("body %q read to the end, want the stream reset", body)
		}
	}
	// The head may or may not have been flushed before the reset.
	if !strings.Contains(err.Error(), "stream error") {
		t.Errorf("error %v, want a stream reset", err)
	}
	if got := env.counter("raw"); got != before+1 {
		t.Errorf("counter = %d, want %d", got, before+1)
	}
}

// TestUpstreamContentLengthWithTransferEncodingTLS checks the framing check
// on HTTP/1 upstream connections over TLS, for protocol http1 and for
// http2 falling back to HTTP/1.1.
func TestUpstreamContentLengthWithTransferEncodingTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	crt, key, _ := e2eSelfSigned(t, dir, "be", "be.test")
	pair, err := tls.LoadX509KeyPair(crt, key)
	if err != nil {
		t.Fatal(err)
	}
	be := e2eNewRespBackendTLS(t, &tls.Config{Certificates: []tls.Certificate{pair}, NextProtos: []string{"http/1.1"}},
		func(path string, c net.Conn) bool {
			if strings.HasSuffix(path, "/bad") {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n0\r\n\r\n")
				return true
			}
			io.WriteString(c, e2eRespOK)
			return true
		})
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  h1: {protocol: http1, tls: {ca_file: "{{CRT}}", server_name: be.test}, targets: [{url: "https://{{BE}}"}], retry: {attempts: 0}}
  h2: {protocol: http2, tls: {ca_file: "{{CRT}}", server_name: be.test}, targets: [{url: "https://{{BE}}"}], retry: {attempts: 0}}
routes:
  - {name: h1, match: {path_prefix: /h1/}, upstream: h1}
  - {name: h2, match: {path_prefix: /h2/}, upstream: h2}
`, map[string]string{"CRT": crt, "BE": be.ln.Addr().String()})
	for _, prefix := range []string{"/h1", "/h2"} {
		t.Run(prefix, func(t *testing.T) {
			for range 2 {
				resp, body := e2eGet(t, tg.URL+prefix+"/ok")
				if resp.StatusCode != 200 || string(body) != "ok" {
					t.Fatalf("%s/ok = %d %q", prefix, resp.StatusCode, body)
				}
				resp, body = e2eGet(t, tg.URL+prefix+"/bad")
				eb := e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusBadGateway)
				if eb.Error != "upstream response framing invalid" {
					t.Errorf("error %q, want %q", eb.Error, "upstream response framing invalid")
				}
			}
		})
	}
	badConn := map[int]bool{}
	for _, s := range be.seen() {
		if badConn[s.conn] {
			t.Errorf("backend connection %d reused for %s after an ambiguous response", s.conn, s.path)
		}
		if strings.HasSuffix(s.path, "/bad") {
			badConn[s.conn] = true
		}
	}
	for id := range badConn {
		be.waitClosed(t, id, 5*time.Second)
	}
}
