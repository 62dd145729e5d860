package gateway_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// shutdownBackend serves a WebSocket echo on /ws (the handler never closes
// the socket itself), a raw-byte echo behind "Upgrade: foo" on /tunnel, and
// an endless SSE stream on /events.
func shutdownBackend(t *testing.T) string {
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			e2eWebSocketEcho(w, r)
		case "/tunnel":
			conn, brw, ok := e2eSwitchProtocols(w, "foo", "")
			if !ok {
				return
			}
			defer conn.Close()
			io.Copy(conn, brw)
		case "/events":
			e2eServeEvents(w, r, func() <-chan time.Time { return time.After(50 * time.Millisecond) })
		default:
			io.WriteString(w, "ok")
		}
	}))
	return be.URL
}

func shutdownGateway(t *testing.T, backend string) (*gateway.Gateway, string) {
	t.Helper()
	addr := freeAddr(t)
	g := testutil.NewGateway(testutil.Logger(t))
	if err := g.Start(testutil.ParseConfig(t, fmt.Sprintf(`
server: {listen: [{addr: %q}], shutdown_grace: 10s}
admin: {listen: "off"}
log: {access: {output: "off"}}
upstreams:
  be: {targets: [{url: %q}]}
routes:
  - {name: all, match: {path_prefix: /}, upstream: be, upgrades: [websocket, foo]}
plugins: [{name: request_id}]
`, addr, backend))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	return g, addr
}

// TestShutdownEndsUpgradedConnectionsAtGrace: WebSockets, a generic upgraded
// tunnel and an SSE stream are open when Shutdown starts. Shutdown returns
// shortly after its grace; each WebSocket client reads close code 1001
// (going away), the tunnel and the stream are closed. Before, net/http
// forgot hijacked connections, Shutdown then waited a minute for the
// retired snapshot, and WebSockets were cut without a close frame.
func TestShutdownEndsUpgradedConnectionsAtGrace(t *testing.T) {
	t.Parallel()
	g, addr := shutdownGateway(t, shutdownBackend(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var wss []*websocket.Conn
	for i := 0; i < 3; i++ {
		ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		msg := fmt.Sprintf("hello %d", i)
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := ws.Read(ctx); err != nil || string(got) != msg {
			t.Fatalf("echo %q, %v", got, err)
		}
		wss = append(wss, ws)
	}

	tun, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	tun.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(tun, "GET /tunnel HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
	tbr := bufio.NewReader(tun)
	if resp, err := http.ReadResponse(tbr, &http.Request{Method: "GET"}); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("tunnel upgrade: %v %v", resp, err)
	}

	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/events", nil)
	sse, err := testutil.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Body.Close()
	if n, err := sse.Body.Read(make([]byte, 64)); n == 0 || err != nil {
		t.Fatalf("first event: %d %v", n, err)
	}
	wait.For(t, 5*time.Second, "4 tracked upgraded connections", func() bool { return gateway.UpgradedConns(g.Runtime) == 4 })

	const grace = 500 * time.Millisecond
	sctx, scancel := context.WithTimeout(context.Background(), grace)
	defer scancel()
	start := time.Now()
	shutErr := make(chan error, 1)
	go func() { shutErr <- g.Shutdown(sctx) }()

	for i, ws := range wss {
		_, _, err := ws.Read(ctx)
		if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
			t.Errorf("websocket %d: read after shutdown = %v (close status %d), want close status 1001", i, err, code)
		}
		if d := time.Since(start); d < grace-50*time.Millisecond {
			t.Errorf("websocket %d closed after %v, before the grace of %v", i, d, grace)
		}
	}
	if n, err := io.Copy(io.Discard, tbr); err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Errorf("tunnel: %d bytes, %v; want it closed", n, err)
	}
	if _, err := io.Copy(io.Discard, sse.Body); err == nil {
		t.Log("SSE stream ended cleanly")
	}
	select {
	case err := <-shutErr:
		if err == nil {
			t.Error("Shutdown returned nil although connections were cut at the deadline")
		}
	case <-time.After(grace + 3*time.Second):
		t.Fatal("Shutdown did not return within the grace plus 3 s")
	}
	if d := time.Since(start); d > grace+1500*time.Millisecond {
		t.Errorf("Shutdown took %v with a grace of %v", d, grace)
	}
	if n := gateway.UpgradedConns(g.Runtime); n != 0 {
		t.Errorf("%d upgraded connections still tracked after Shutdown", n)
	}
}

// TestShutdownWaitsForWebSocketToEnd: Shutdown waits for an open WebSocket
// during the grace and returns as soon as it ends, without error.
func TestShutdownWaitsForWebSocketToEnd(t *testing.T) {
	t.Parallel()
	g, addr := shutdownGateway(t, shutdownBackend(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	wait.For(t, 5*time.Second, "the tracked WebSocket", func() bool { return gateway.UpgradedConns(g.Runtime) == 1 })
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	shutErr := make(chan error, 1)
	go func() { shutErr <- g.Shutdown(sctx) }()
	// The socket still works during the grace.
	if err := ws.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := ws.Read(ctx); err != nil || string(got) != "still here" {
		t.Fatalf("echo during the grace: %q %v", got, err)
	}
	select {
	case err := <-shutErr:
		t.Fatalf("Shutdown returned (%v) while the WebSocket was open", err)
	default:
	}
	ws.Close(websocket.StatusNormalClosure, "done")
	select {
	case err := <-shutErr:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the WebSocket closed")
	}
}

// TestShutdownLongResponseBoundedByGrace: an endless response (SSE) does not
// hold Shutdown past its grace.
func TestShutdownLongResponseBoundedByGrace(t *testing.T) {
	t.Parallel()
	g, addr := shutdownGateway(t, shutdownBackend(t))
	req, _ := http.NewRequest("GET", "http://"+addr+"/events", nil)
	resp, err := testutil.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if n, err := resp.Body.Read(make([]byte, 64)); n == 0 || err != nil {
		t.Fatalf("first event: %d %v", n, err)
	}
	const grace = 300 * time.Millisecond
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	start := time.Now()
	if err := g.Shutdown(sctx); err == nil {
		t.Error("Shutdown returned nil although a stream was cut")
	}
	if d := time.Since(start); d > grace+1500*time.Millisecond {
		t.Errorf("Shutdown took %v with a grace of %v", d, grace)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err == nil {
		t.Error("stream ended cleanly; want it cut at the deadline")
	}
}

// TestShutdownWebSocketOverTLS: a wss:// WebSocket gets its 1001 close frame
// at the grace deadline too (the close frame goes through TLS).
func TestShutdownWebSocketOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	crt, key, cert := e2eSelfSigned(t, dir, "gw", "gw.test")
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	backend := shutdownBackend(t)
	addr := freeAddr(t)
	g := testutil.NewGateway(testutil.Logger(t))
	if err := g.Start(testutil.ParseConfig(t, fmt.Sprintf(`
server: {listen: [{addr: %q, tls: {certificates: [{cert_file: %q, key_file: %q}]}}]}
admin: {listen: "off"}
log: {access: {output: "off"}}
upstreams:
  be: {targets: [{url: %q}]}
routes:
  - {name: all, match: {path_prefix: /}, upstream: be}
`, addr, crt, key, backend))); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "gw.test"}}}
	ws, _, err := websocket.Dial(ctx, "wss://"+addr+"/ws", &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, got, err := ws.Read(ctx); err != nil || string(got) != "hi" {
		t.Fatalf("echo %q %v", got, err)
	}
	const grace = 300 * time.Millisecond
	sctx, scancel := context.WithTimeout(context.Background(), grace)
	defer scancel()
	start := time.Now()
	shutErr := make(chan error, 1)
	go func() { shutErr <- g.Shutdown(sctx) }()
	_, _, err = ws.Read(ctx)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Errorf("read after shutdown = %v (close status %d), want 1001", err, code)
	}
	select {
	case <-shutErr:
	case <-time.After(grace + 3*time.Second):
		t.Fatal("Shutdown did not return")
	}
	if d := time.Since(start); d > grace+1500*time.Millisecond {
		t.Errorf("Shutdown took %v with a grace of %v", d, grace)
	}
}
