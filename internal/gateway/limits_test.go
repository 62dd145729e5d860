package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
)

// TestBodyReadTimeout checks that body_read_timeout bounds reading a request
// body (a stalled upload gets 408) but is lifted once the body is read, so a
// response that streams for longer than the timeout is not cut.
func TestBodyReadTimeout(t *testing.T) {
	t.Parallel()
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return
		}
		rc := http.NewResponseController(w)
		for i := 0; i < 4; i++ {
			fmt.Fprintf(w, "chunk %d after %d body bytes\n", i, n)
			rc.Flush()
			time.Sleep(250 * time.Millisecond) // slow on purpose: the response outlasts body_read_timeout
		}
	}))
	tg := testutil.StartGateway(t, fmt.Sprintf(`
server:
  listen: [{addr: "127.0.0.1:0"}]
  limits: {body_read_timeout: 400ms}
upstreams: {b: {targets: [{url: %q}]}}
routes: [{name: r, match: {path_prefix: /}, upstream: b}]
`, backend.URL))

	t.Run("long response after body is not cut", func(t *testing.T) {
		resp, err := testutil.Client().Post(tg.URL+"/up", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || strings.Count(string(b), "chunk") != 4 {
			t.Fatalf("streamed response cut: %q %v", b, err)
		}
	})
	t.Run("stalled body gets 408", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(tg.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), `"request_id"`) {
			t.Fatalf("stalled upload: %d %s", resp.StatusCode, body)
		}
	})
}

// TestMaxConnections checks the per-listener connection cap: with
// max_connections 2, a third connection is not served until one closes.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	tg := testutil.StartGateway(t, `
server:
  listen: [{addr: "127.0.0.1:0", max_connections: 2}]
routes: [{name: r, match: {path: /}, respond: {body: ok}}]
`)
	addr := strings.TrimPrefix(tg.URL, "http://")
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	ask := func(c net.Conn, wait time.Duration) error {
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := ask(conns[0], 2*time.Second); err != nil {
		t.Fatalf("first connection: %v", err)
	}
	if err := ask(conns[1], 2*time.Second); err != nil {
		t.Fatalf("second connection: %v", err)
	}
	if err := ask(conns[2], 300*time.Millisecond); err == nil {
		t.Fatal("third connection served while two are open")
	}
	conns[0].Close()
	conns[2].SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conns[2]), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("third connection after one closed: %v", err)
	}
}

// TestMaxHeaderBytes checks that max_header_bytes is the real limit.
func TestMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	tg := testutil.StartGateway(t, `
server:
  listen: [{addr: "127.0.0.1:0"}]
  limits: {max_header_bytes: 16KiB}
routes: [{name: r, match: {path: /}, respond: {body: ok}}]
`)
	for _, tc := range []struct {
		size int
		want int
	}{{size: 12 << 10, want: 200}, {size: 17 << 10, want: 431}} {
		req, _ := http.NewRequest("GET", tg.URL+"/", nil)
		req.Header.Set("X-Big", strings.Repeat("a", tc.size))
		resp, err := testutil.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("header of %d bytes: status %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}
