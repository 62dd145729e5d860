package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// rtLog is a goroutine-safe buffer for a gateway's log lines.
type rtLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *rtLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *rtLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rtWaitRetired waits until every retired snapshot has been released.
func rtWaitRetired(t *testing.T, rt *gateway.Runtime) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		rt.WaitRetired()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a retired snapshot was never released")
	}
}

// rtStreamBackend streams "first chunk\n", then waits for release (or the
// client to go) before "last chunk\n". Other paths answer "ok".
func rtStreamBackend(t *testing.T) (url string, started <-chan struct{}, release chan struct{}) {
	st := make(chan struct{}, 8)
	rel := make(chan struct{})
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stream" {
			io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first chunk\n")
		_ = http.NewResponseController(w).Flush()
		st <- struct{}{}
		select {
		case <-rel:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "last chunk\n")
	}))
	return be.URL, st, rel
}

// rtConfig is a config with one listener on addr whose upstream "name" has a
// max_requests: 1 breaker; extra is appended to the routes.
func rtConfig(addr, backend, name, extra string) string {
	return fmt.Sprintf(`
server: {listen: [{addr: %q}]}
admin: {listen: "off"}
log: {access: {output: "off"}}
upstreams:
  %s: {targets: [{url: %q}], limits: {max_requests: 1}}
routes:
  - {name: main, match: {path_prefix: /}, upstream: %s}
%s`, addr, name, backend, name, extra)
}

// rtOpenStream sends GET /stream as raw bytes and returns the response once
// its first chunk has arrived.
func rtOpenStream(t *testing.T, addr string, started <-chan struct{}) (net.Conn, *http.Response, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("read stream response: %v", err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("stream: status %d, transfer-encoding %v", resp.StatusCode, resp.TransferEncoding)
	}
	body := bufio.NewReader(resp.Body)
	line, err := body.ReadString('\n')
	if err != nil || line != "first chunk\n" {
		t.Fatalf("first chunk = %q, %v", line, err)
	}
	<-started
	return c, resp, body
}

// TestRuntimeStreamOutlivesRetiredSnapshot: a stream that began before a
// reload and ends long after the drain period ends cleanly (its last chunk
// and the chunked terminator arrive), the breaker counter it shares with the
// new snapshot goes back to 0, and the old snapshot is then released.
// Before, the old snapshot's pools were closed after the drain period and
// the stream's end panicked on the closed pool: the client lost the end of
// the body and max_requests stayed exhausted for good.
func TestRuntimeStreamOutlivesRetiredSnapshot(t *testing.T) {
	cases := []struct {
		desc string
		// next is the upstream name of the reloaded config; a different
		// name removes the stream's upstream from the config.
		next string
	}{
		{desc: "upstream kept", next: "svc"},
		{desc: "upstream removed", next: "other"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			backend, started, release := rtStreamBackend(t)
			addr := freeAddr(t)
			logs := &rtLog{}
			g := rtStartDraining(t, slog.New(slog.NewTextHandler(logs, nil)), addr, backend)
			client := testutil.Client()
			t.Cleanup(client.CloseIdleConnections)

			_, resp, body := rtOpenStream(t, addr, started)
			defer resp.Body.Close()
			if err := g.Runtime.Apply(testutil.ParseConfig(t, rtConfig(addr, backend, tc.next,
				"  - {name: v2, match: {path: /v2}, respond: {body: v2}}\n"))); err != nil {
				t.Fatal(err)
			}
			if code, b := fetch(t, client, "http://"+addr+"/v2"); code != 200 || b != "v2" {
				t.Fatalf("new config not in force: %d %q", code, b)
			}
			// The drain period passes with the stream still running.
			wait.For(t, 5*time.Second, "the drain-period warning", func() bool {
				return strings.Contains(logs.String(), "retired configuration still serves")
			})
			if tc.next == "svc" {
				// The stream still counts against the shared breaker.
				if code, _ := fetch(t, client, "http://"+addr+"/x"); code != http.StatusServiceUnavailable {
					t.Fatalf("second request with max_requests 1 = %d, want 503 while the stream runs", code)
				}
			}
			close(release)
			rest, err := io.ReadAll(body)
			if err != nil {
				t.Fatalf("stream of the retired snapshot broke: %v (got %q)", err, rest)
			}
			if string(rest) != "last chunk\n" {
				t.Fatalf("rest of the stream = %q, want %q", rest, "last chunk\n")
			}
			rtWaitRetired(t, g.Runtime)
			if tc.next != "svc" {
				// Add the upstream back: it must start with no request
				// in flight.
				if err := g.Runtime.Apply(testutil.ParseConfig(t, rtConfig(addr, backend, "svc", ""))); err != nil {
					t.Fatal(err)
				}
			}
			if n := gateway.PoolActive(g.Runtime, "svc"); n != 0 {
				t.Fatalf("in-flight requests to svc after the stream ended = %d, want 0", n)
			}
			if code, b := fetch(t, client, "http://"+addr+"/x"); code != 200 || b != "ok" {
				t.Fatalf("request after the stream ended = %d %q; the breaker stayed open", code, b)
			}
			if strings.Contains(logs.String(), "panic") {
				t.Fatalf("log mentions a panic:\n%s", logs.String())
			}
		})
	}
}

// TestRuntimeAbortedStreamOfRetiredSnapshot: a client that walks away from
// a stream of a retired snapshot (the proxy aborts the handler with a panic)
// still gives back its breaker slot and lets the snapshot be released.
func TestRuntimeAbortedStreamOfRetiredSnapshot(t *testing.T) {
	backend, started, _ := rtStreamBackend(t)
	addr := freeAddr(t)
	g := rtStartDraining(t, testutil.Logger(t), addr, backend)
	client := testutil.Client()
	t.Cleanup(client.CloseIdleConnections)
	c, _, _ := rtOpenStream(t, addr, started)
	for i := 0; i < 3; i++ {
		if err := g.Runtime.Apply(testutil.ParseConfig(t, rtConfig(addr, backend, "svc", ""))); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	rtWaitRetired(t, g.Runtime)
	if n := gateway.PoolActive(g.Runtime, "svc"); n != 0 {
		t.Fatalf("in-flight requests to svc after the client left = %d, want 0", n)
	}
	if code, _ := fetch(t, client, "http://"+addr+"/x"); code != 200 {
		t.Fatalf("request after the aborted stream = %d; the breaker stayed open", code)
	}
}

// rtStartDraining starts a gateway on addr with route svc to backend whose
// retired snapshots drain for at most 20ms; it is shut down when the test
// ends.
func rtStartDraining(t *testing.T, logger *slog.Logger, addr, backend string) *gateway.Gateway {
	t.Helper()
	g := testutil.NewGateway(logger)
	gateway.SetMaxDrain(g.Runtime, 20*time.Millisecond)
	if err := g.Start(testutil.ParseConfig(t, rtConfig(addr, backend, "svc", ""))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	return g
}
