package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/portico-gw/portico/internal/testutil"
)

// e2eSeen is what a recording backend received, as it reports it in its
// JSON response body.
type e2eSeen struct {
	Backend          string      `json:"backend"`
	Method           string      `json:"method"`
	Proto            string      `json:"proto"`
	Path             string      `json:"path"`
	RawPath          string      `json:"raw_path"`
	RequestURI       string      `json:"request_uri"`
	RawQuery         string      `json:"raw_query"`
	Host             string      `json:"host"`
	Header           http.Header `json:"header"`
	ContentLength    int64       `json:"content_length"`
	TransferEncoding []string    `json:"transfer_encoding"`
	BodyLen          int64       `json:"body_len"`
	BodySHA          string      `json:"body_sha"`
	BodyErr          string      `json:"body_err"`
}

// e2eRecorder is a real HTTP backend that remembers every request and answers
// with a JSON description of it.
type e2eRecorder struct {
	*httptest.Server
	name string

	mu   sync.Mutex
	reqs []e2eSeen
}

// e2eNewRecorder starts a recording backend. extra, when not nil, runs after the
// request is recorded and may write response headers before the JSON body.
func e2eNewRecorder(t testing.TB, name string, extra func(w http.ResponseWriter, r *http.Request)) *e2eRecorder {
	t.Helper()
	rc := &e2eRecorder{name: name}
	rc.Server = testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := e2eSeen{
			Backend:          name,
			Method:           r.Method,
			Proto:            r.Proto,
			Path:             r.URL.Path,
			RawPath:          r.URL.EscapedPath(),
			RequestURI:       r.RequestURI,
			RawQuery:         r.URL.RawQuery,
			Host:             r.Host,
			Header:           r.Header.Clone(),
			ContentLength:    r.ContentLength,
			TransferEncoding: r.TransferEncoding,
		}
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		s.BodyLen, s.BodySHA = n, hex.EncodeToString(h.Sum(nil))
		if err != nil {
			s.BodyErr = err.Error()
		}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, s)
		rc.mu.Unlock()
		w.Header().Set("X-Backend", name)
		if extra != nil {
			extra(w, r)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	}))
	return rc
}

// count returns how many requests the backend received.
func (rc *e2eRecorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// all returns a copy of every request the backend received.
func (rc *e2eRecorder) all() []e2eSeen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]e2eSeen(nil), rc.reqs...)
}

// e2eStart starts a gateway from a YAML config in which every "{{NAME}}" is
// replaced by vars["NAME"].
func e2eStart(t testing.TB, yaml string, vars map[string]string) *testutil.Gateway {
	t.Helper()
	for k, v := range vars {
		yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", v)
	}
	if i := strings.Index(yaml, "{{"); i >= 0 {
		t.Fatalf("unexpanded placeholder in config near %q", yaml[i:min(len(yaml), i+20)])
	}
	tg := testutil.StartGateway(t, yaml)
	// Cleanups run last-in first-out: drop the shared client's idle
	// connections before the gateway shuts down, so a connection that was
	// dialled but never used does not hold Shutdown for net/http's 5 s
	// new-connection grace.
	t.Cleanup(e2eClient.CloseIdleConnections)
	return tg
}

// e2eHostPort returns the host:port part of a gateway or backend URL.
func e2eHostPort(u string) string {
	u = strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	if i := strings.IndexByte(u, '/'); i >= 0 {
		u = u[:i]
	}
	return u
}

var e2eClient = testutil.Client()

// e2eDo sends req with the shared test client and returns the response with its
// body read.
func e2eDo(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// e2eReq builds a request, failing the test on error.
func e2eReq(t testing.TB, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, url, err)
	}
	return req
}

// e2eGet is e2eDo for a plain GET.
func e2eGet(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	return e2eDo(t, e2eReq(t, http.MethodGet, url, nil))
}

// e2eDecodeSeen parses a recording backend's JSON answer.
func e2eDecodeSeen(t testing.TB, body []byte) e2eSeen {
	t.Helper()
	var s e2eSeen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("backend answer is not a e2eRecorder JSON body: %v\n%s", err, body)
	}
	return s
}

// e2eErrorBody is the gateway's one error shape.
type e2eErrorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

var e2eHex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// e2eCheckError asserts that a gateway error response has the wanted status, a
// JSON content type and a body {"error": non-empty, "request_id": non-empty},
// and returns the decoded body.
func e2eCheckError(t testing.TB, status int, header http.Header, body []byte, want int) e2eErrorBody {
	t.Helper()
	if status != want {
		t.Fatalf("status = %d, want %d; body %.300q", status, want, body)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var eb e2eErrorBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil {
		t.Fatalf("error body is not the JSON error shape: %v\n%q", err, body)
	}
	if eb.Error == "" {
		t.Errorf("error body has an empty \"error\": %q", body)
	}
	if eb.RequestID == "" {
		t.Errorf("error body has an empty \"request_id\": %q", body)
	}
	return eb
}

// e2eRawResponse is a response read from a raw connection.
type e2eRawResponse struct {
	*http.Response
	Body []byte
}

// e2eRawDo writes raw bytes to addr and reads one HTTP response for method.
// It fails the test if no response arrives within 5 s.
func e2eRawDo(t testing.TB, addr, method, raw string) e2eRawResponse {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write raw request: %v", err)
	}
	return e2eReadRaw(t, bufio.NewReader(c), method)
}

// e2eReadRaw reads one response from br.
func e2eReadRaw(t testing.TB, br *bufio.Reader, method string) e2eRawResponse {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read raw response: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read raw response body: %v", err)
	}
	return e2eRawResponse{resp, body}
}

// e2eRawGet builds a minimal HTTP/1.1 request with the given target and extra
// header lines, closing the connection after the response.
func e2eRawGet(target, host string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\n", target, host)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.String()
}

// e2eServeConns accepts connections on ln until the test ends and serves
// each on its own goroutine with serve, passing its number in accept order
// (from 1), then closes it. The test's cleanup closes ln and waits for
// every connection to finish.
func e2eServeConns(t testing.TB, ln net.Listener, serve func(id int, c net.Conn)) {
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for id := 1; ; id++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				serve(id, c)
			})
		}
	})
}

// e2eFreePort returns a 127.0.0.1 address nobody listens on.
func e2eFreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// e2eWebSocketEcho is a WebSocket backend handler that echoes every message
// (up to 4 MiB) until the connection ends.
func e2eWebSocketEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(4 << 20)
	for {
		typ, msg, err := c.Read(context.Background())
		if err != nil {
			return
		}
		if err := c.Write(context.Background(), typ, msg); err != nil {
			return
		}
	}
}
