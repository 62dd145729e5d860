package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
)

func TestErrorsUpstreamFailures(t *testing.T) {
	slow := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http notices a closed connection only once the body is read.
		io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(2 * time.Second):
			io.WriteString(w, "late")
		case <-r.Context().Done():
		}
	}))
	ok := e2eNewRecorder(t, "ok", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  closed: {targets: [{url: "http://{{CLOSED}}"}]}
  slow-hdr: {targets: [{url: "{{SLOW}}"}], response_header_timeout: 200ms}
  slow: {targets: [{url: "{{SLOW}}"}]}
  ok: {targets: [{url: "{{OK}}"}]}
routes:
  - {name: closed, match: {path_prefix: /closed}, upstream: closed}
  - {name: header-timeout, match: {path_prefix: /header-timeout}, upstream: slow-hdr}
  - {name: route-timeout, match: {path_prefix: /route-timeout}, upstream: slow, timeout: 200ms}
  - {name: ok, match: {path_prefix: /ok}, upstream: ok}
plugins:
  - name: request_id
`, map[string]string{"CLOSED": e2eFreePort(t), "SLOW": slow.URL, "OK": ok.URL})

	tests := []struct {
		desc   string
		method string
		path   string
		reqID  string
		body   string
		status int
		maxDur time.Duration
	}{
		{desc: "connect refused", method: "GET", path: "/closed", status: http.StatusBadGateway, maxDur: 2 * time.Second},
		{desc: "connect refused keeps incoming id", method: "GET", path: "/closed/x", reqID: "client-id-502", status: http.StatusBadGateway, maxDur: 2 * time.Second},
		{desc: "connect refused with body", method: "POST", path: "/closed", body: "payload", status: http.StatusBadGateway, maxDur: 2 * time.Second},
		{desc: "response header timeout", method: "GET", path: "/header-timeout", status: http.StatusGatewayTimeout, maxDur: 1500 * time.Millisecond},
		{desc: "response header timeout keeps incoming id", method: "GET", path: "/header-timeout", reqID: "client-id-504", status: http.StatusGatewayTimeout, maxDur: 1500 * time.Millisecond},
		{desc: "route timeout", method: "GET", path: "/route-timeout", status: http.StatusGatewayTimeout, maxDur: 1500 * time.Millisecond},
		{desc: "route timeout with body", method: "PUT", path: "/route-timeout", body: "data", status: http.StatusGatewayTimeout, maxDur: 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := e2eReq(t, tc.method, tg.URL+tc.path, body)
			if tc.reqID != "" {
				req.Header.Set("X-Request-Id", tc.reqID)
			}
			start := time.Now()
			resp, b := e2eDo(t, req)
			if d := time.Since(start); d > tc.maxDur {
				t.Errorf("answer took %v, want under %v", d, tc.maxDur)
			}
			eb := e2eCheckError(t, resp.StatusCode, resp.Header, b, tc.status)
			if tc.reqID != "" && eb.RequestID != tc.reqID {
				t.Errorf("request_id = %q, want the incoming %q", eb.RequestID, tc.reqID)
			}
			if tc.reqID == "" && !e2eHex32.MatchString(eb.RequestID) {
				t.Errorf("request_id = %q, want 32 hex digits", eb.RequestID)
			}
			if got := resp.Header.Get("X-Request-Id"); got != eb.RequestID {
				t.Errorf("response X-Request-Id %q differs from body request_id %q", got, eb.RequestID)
			}
		})
	}
}

func TestErrorsRequestValidation(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStartRec(t, rec, `
routes:
  - {name: enc, match: {path_prefix: /enc}, upstream: rec, allow_encoded_slash: true}
  - {name: all, match: {path_prefix: /}, upstream: rec}
`)
	addr := e2eHostPort(tg.URL)

	headers := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("X-Fill-%d: v", i)
		}
		return out
	}

	tests := []struct {
		desc    string
		raw     string
		status  int
		json    bool   // the body must be the gateway's JSON error shape
		wantURI string // for 200: what the backend must have received
	}{
		// max_header_count bounds the header fields of the request as sent,
		// Host included. e2eRawGet adds Host and Connection, so n extra
		// lines make n+2 header fields.
		{desc: "101 header fields", raw: e2eRawGet("/many", "gw.test", headers(99)...), status: 431, json: true},
		{desc: "200 header fields", raw: e2eRawGet("/many", "gw.test", headers(198)...), status: 431, json: true},
		{desc: "100 header fields", raw: e2eRawGet("/some", "gw.test", headers(98)...), status: 200, wantURI: "/some"},
		{desc: "90 header fields", raw: e2eRawGet("/some", "gw.test", headers(88)...), status: 200, wantURI: "/some"},
		{desc: "101 header fields with a repeated name", raw: e2eRawGet("/many", "gw.test", append(headers(49), headers(50)...)...), status: 431, json: true},
		{desc: "encoded slash refused by default", raw: e2eRawGet("/a%2Fb", "gw.test"), status: 400, json: true},
		{desc: "lower-case encoded slash refused", raw: e2eRawGet("/a%2fb", "gw.test"), status: 400, json: true},
		{desc: "encoded backslash refused", raw: e2eRawGet("/a%5Cb", "gw.test"), status: 400, json: true},
		{desc: "encoded NUL refused", raw: e2eRawGet("/a%00b", "gw.test"), status: 400, json: true},
		{desc: "encoded semicolon refused", raw: e2eRawGet("/a%3Bb", "gw.test"), status: 400, json: true},
		{desc: "encoded percent refused", raw: e2eRawGet("/a%25b", "gw.test"), status: 400, json: true},
		{desc: "encoded question mark refused", raw: e2eRawGet("/a%3Fb", "gw.test"), status: 400, json: true},
		{desc: "encoded hash refused", raw: e2eRawGet("/a%23b", "gw.test"), status: 400, json: true},
		{desc: "encoded slash allowed and kept encoded", raw: e2eRawGet("/enc/a%2Fb", "gw.test"), status: 200, wantURI: "/enc/a%2Fb"},
		{desc: "allowed encoded slash canonical upper case", raw: e2eRawGet("/enc/a%2fb?x=%2f", "gw.test"), status: 200, wantURI: "/enc/a%2Fb?x=%2f"},
		{desc: "allowed encoded slash is no dot segment", raw: e2eRawGet("/enc/x/..%2Fy", "gw.test"), status: 200, wantURI: "/enc/x/..%2Fy"},
		{desc: "allowed encoded percent", raw: e2eRawGet("/enc/100%25", "gw.test"), status: 200, wantURI: "/enc/100%25"},
		// net/http rejects malformed escapes in the request line before the
		// gateway's handler runs, so the body is net/http's plain text.
		{desc: "invalid percent-encoding", raw: e2eRawGet("/a%zzb", "gw.test"), status: 400},
		{desc: "truncated percent-encoding", raw: e2eRawGet("/a%4", "gw.test"), status: 400},
		{desc: "conflicting Content-Length", raw: "POST /cl HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", status: 400},
		{desc: "absolute-form with bad path", raw: "GET http://gw.test/a%2Fb HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n", status: 400, json: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			before := len(rec.all())
			resp := e2eRawDo(t, addr, "GET", tc.raw)
			if tc.status == 200 {
				if resp.StatusCode != 200 {
					t.Fatalf("status %d body %q", resp.StatusCode, resp.Body)
				}
				if s := e2eDecodeSeen(t, resp.Body); s.RequestURI != tc.wantURI {
					t.Errorf("backend request URI = %q, want %q", s.RequestURI, tc.wantURI)
				}
				return
			}
			if tc.json {
				e2eCheckError(t, resp.StatusCode, resp.Header, resp.Body, tc.status)
			} else if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %q", resp.StatusCode, tc.status, resp.Body)
			}
			// The refused request itself must not have been forwarded.
			target := strings.Fields(tc.raw)[1]
			if i := strings.Index(target, "://"); i >= 0 {
				target = target[i+3:]
				target = target[strings.IndexByte(target, '/'):]
			}
			for _, s := range rec.all()[before:] {
				if s.RequestURI == target || s.RawPath == target {
					t.Errorf("refused request reached the backend: %s %q", s.Method, s.RequestURI)
				}
			}
		})
	}
}

// e2eRawBackend is a TCP backend that records the exact request heads it
// receives (net/http would drop a Content-Length sent next to chunked
// Transfer-Encoding before a handler could see it) and answers each request
// with "<path> <body length>".
type e2eRawBackend struct {
	ln    net.Listener
	mu    sync.Mutex
	heads []string
}

func e2eNewRawBackend(t testing.TB) *e2eRawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rb := &e2eRawBackend{ln: ln}
	e2eServeConns(t, ln, func(_ int, c net.Conn) { rb.serveConn(c) })
	return rb
}

func (rb *e2eRawBackend) serveConn(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" || line == "\n" {
				break
			}
		}
		rb.mu.Lock()
		rb.heads = append(rb.heads, head.String())
		rb.mu.Unlock()
		req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head.String()), br)))
		if err != nil {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		n, err := io.Copy(io.Discard, req.Body)
		if err != nil {
			return
		}
		msg := fmt.Sprintf("%s %d", req.URL.Path, n)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(msg), msg)
	}
}

func (rb *e2eRawBackend) all() []string {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return append([]string(nil), rb.heads...)
}

func TestErrorsSmuggling(t *testing.T) {
	rb := e2eNewRawBackend(t)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  raw: {targets: [{url: "http://{{RAW}}"}]}
routes:
  - {name: all, match: {path_prefix: /}, upstream: raw}
`, map[string]string{"RAW": rb.ln.Addr().String()})
	addr := e2eHostPort(tg.URL)

	tests := []struct {
		desc     string
		raw      string
		wantBody string // "<path> <length>" the backend must report for a 200
		tail     string // a request following the chunked body, if any
	}{
		{
			desc:     "Content-Length then chunked",
			raw:      "POST /smuggle HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			wantBody: "/smuggle 5",
		},
		{
			desc:     "chunked then Content-Length",
			raw:      "POST /smuggle HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			wantBody: "/smuggle 5",
		},
		{
			desc:     "second request after the chunked body",
			raw:      "POST /smuggle HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n",
			wantBody: "/smuggle 0",
			tail:     "/smuggled 0",
		},
		{
			desc: "identity and chunked",
			raw:  "POST /smuggle HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: identity, chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		},
		{
			desc: "two Transfer-Encoding fields",
			raw:  "POST /smuggle HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, tc.raw)
			br := bufio.NewReader(c)
			resp := e2eReadRaw(t, br, "POST")
			switch resp.StatusCode {
			case http.StatusOK:
				if string(resp.Body) != tc.wantBody || tc.wantBody == "" {
					t.Errorf("backend answered %q, want %q", resp.Body, tc.wantBody)
				}
			case http.StatusBadRequest, http.StatusNotImplemented:
				// Refusing the ambiguous framing is fine.
			default:
				t.Errorf("status %d body %q", resp.StatusCode, resp.Body)
			}
			if tc.tail == "" {
				return
			}
			// The body is framed by Transfer-Encoding alone, so the bytes
			// after the last chunk are a second request on the client
			// connection. If the gateway serves it, it does so as a request
			// of its own that the client sees answered, never hidden inside
			// the first one upstream.
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := br.Peek(1); err != nil {
				return // connection closed after the ambiguous request
			}
			second := e2eReadRaw(t, br, "GET")
			if second.StatusCode != http.StatusOK || string(second.Body) != tc.tail {
				t.Errorf("second response: status %d body %q, want 200 %q", second.StatusCode, second.Body, tc.tail)
			}
		})
	}
	heads := rb.all()
	if len(heads) == 0 {
		t.Error("no request reached the backend")
	}
	for _, h := range heads {
		lh := strings.ToLower(h)
		if strings.Contains(lh, "\r\ncontent-length:") && strings.Contains(lh, "\r\ntransfer-encoding:") {
			t.Errorf("backend received both Content-Length and Transfer-Encoding:\n%s", h)
		}
		if strings.Count(lh, "\r\ntransfer-encoding:") > 1 || strings.Count(lh, "\r\ncontent-length:") > 1 {
			t.Errorf("backend received repeated framing headers:\n%s", h)
		}
	}
	// The gateway still serves.
	if resp, body := e2eGet(t, tg.URL+"/after"); resp.StatusCode != http.StatusOK || string(body) != "/after 0" {
		t.Errorf("request after the smuggling attempts: status %d body %q", resp.StatusCode, body)
	}
}

func TestErrorsClientDisconnects(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	canceled := make(chan string, 8)
	arrived := make(chan string, 8)
	slow := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// net/http notices a closed connection only once the body is read.
		io.Copy(io.Discard, r.Body)
		arrived <- r.Method + " " + r.URL.Path
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			canceled <- r.Method + " " + r.URL.Path
		}
	}))
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
  slow: {targets: [{url: "{{SLOW}}"}]}
routes:
  - {name: slow, match: {path_prefix: /slow}, upstream: slow}
  - {name: all, match: {path_prefix: /}, upstream: rec}
plugins:
  - name: request_id
  - name: headers
    config: {response: {set: {X-Gw: "1"}}}
`, map[string]string{"REC": rec.URL, "SLOW": slow.URL})
	addr := e2eHostPort(tg.URL)

	tests := []struct {
		desc   string
		raw    string
		cancel string // the upstream request the disconnect must cancel
	}{
		{desc: "mid body", raw: "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 100000\r\n\r\npartial-body"},
		{desc: "mid chunked body", raw: "POST /upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n20\r\nshort"},
		{desc: "mid headers", raw: "GET /x HTTP/1.1\r\nHost: gw.test\r\nX-Partial: "},
		{desc: "while waiting for the upstream", raw: "GET /slow HTTP/1.1\r\nHost: gw.test\r\n\r\n", cancel: "GET /slow"},
		{desc: "after sending the body to a slow upstream", raw: "POST /slow HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\n0123456789", cancel: "POST /slow"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, tc.raw)
			// TCP delivers the partial request before the close, so the
			// gateway reads it first; a request that reaches the upstream
			// is awaited there, so the client goes away while it runs.
			if tc.cancel != "" {
				select {
				case got := <-arrived:
					if got != tc.cancel {
						t.Fatalf("upstream got %q, want %q", got, tc.cancel)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("upstream request %s did not arrive", tc.cancel)
				}
			}
			c.Close()
			if tc.cancel != "" {
				select {
				case got := <-canceled:
					if got != tc.cancel {
						t.Errorf("upstream request %q canceled, want %q", got, tc.cancel)
					}
				case <-time.After(time.Second):
					t.Errorf("upstream request %s still running 1 s after the client went away", tc.cancel)
				}
			}

			resp, body := e2eGet(t, tg.URL+"/next")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request after a disconnect: status %d body %q", resp.StatusCode, body)
			}
			if s := e2eDecodeSeen(t, body); s.Path != "/next" {
				t.Errorf("backend path %q", s.Path)
			}
		})
	}
}
