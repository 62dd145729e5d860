package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// versionConfig is a valid config whose /version route answers v and whose
// /load route proxies to backend. The listener address is fixed by addr so a
// reload keeps it.
func versionConfig(addr, backend string, v int) string {
	return fmt.Sprintf(`
server:
  listen: [{addr: "%s"}]
admin: {listen: "off"}
log: {access: {output: "off"}}
upstreams:
  b: {targets: [{url: "%s"}]}
routes:
  - name: version
    match: {path: /version}
    respond: {body: "%d"}
  - name: load
    match: {path_prefix: /load}
    upstream: b
  - name: ws
    match: {path: /ws}
    upstream: b
  - name: extra-%d
    match: {path: /extra/%d}
    respond: {body: "extra"}
plugins: [{name: request_id}]
`, addr, backend, v, v, v)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a
}

func fetch(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadUnderLoad rewrites the config 50 times, valid and invalid edits
// alternating, under steady concurrent load: no request may fail, and the
// last valid config must be the one in force (issue 2).
func TestReloadUnderLoad(t *testing.T) {
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	addr := freeAddr(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.yaml")
	g := startFromFile(t, file, versionConfig(addr, backend.URL, 0))
	defer g.Shutdown(context.Background())
	base := "http://" + addr

	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := testutil.Client()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body := fetch(t, c, base+"/load/x")
				if code == 200 && body == "ok" {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
				}
			}
		}()
	}
	rl := &gateway.Reloader{Path: file, Runtime: g.Runtime, Logger: testutil.Logger(t)}
	lastValid := 0
	rejected := 0
	// Between reloads, and after the last, the load serves some requests.
	served := func(what string, n int64) {
		t.Helper()
		from := ok.Load() + failed.Load()
		wait.For(t, 10*time.Second, what, func() bool { return ok.Load()+failed.Load() >= from+n })
	}
	for i := 1; i <= 50; i++ {
		served("requests between reloads", 10)
		var content string
		if i%2 == 0 {
			content = versionConfig(addr, backend.URL, i)
			lastValid = i
		} else {
			// Invalid: an unknown field and an undefined upstream.
			content = versionConfig(addr, backend.URL, i) + "bogus: true\n"
			content = strings.Replace(content, "upstream: b\n", "upstream: missing\n", 1)
		}
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := rl.Reload(); (err != nil) != (i%2 == 1) {
			t.Fatalf("reload %d: err = %v", i, err)
		} else if err != nil {
			rejected++
			if !strings.Contains(err.Error(), "bogus") || !strings.Contains(err.Error(), "missing") {
				t.Errorf("reload %d error lacks detail: %v", i, err)
			}
		}
	}
	served("requests after the last reload", 20)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), ok.Load()+failed.Load(), firstFailure.Load())
	}
	if ok.Load() < 500 {
		t.Fatalf("only %d requests completed; load too low to prove anything", ok.Load())
	}
	if rejected != 25 {
		t.Fatalf("rejected %d reloads, want 25", rejected)
	}
	if code, body := fetch(t, testutil.Client(), base+"/version"); code != 200 || body != fmt.Sprint(lastValid) {
		t.Fatalf("/version = %d %q, want %d", code, body, lastValid)
	}
	t.Logf("%d requests served across 50 reloads, 0 failed", ok.Load())
}

// TestReloadOnFileChange checks the file watcher applies an edited file.
func TestReloadOnFileChange(t *testing.T) {
	t.Parallel()
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := freeAddr(t)
	file := filepath.Join(t.TempDir(), "portico.yaml")
	g := startFromFile(t, file, versionConfig(addr, backend.URL, 1))
	defer g.Shutdown(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	results := make(chan error, 16)
	rl := &gateway.Reloader{Path: file, Runtime: g.Runtime, Logger: testutil.Logger(t),
		OnResult: func(err error) { results <- err }}
	watching := make(chan struct{})
	gateway.OnWatching(rl, func() { close(watching) })
	go rl.Watch(ctx, 50*time.Millisecond)
	<-watching

	// Replace the file the way editors do: write a temp file, rename over.
	tmp := file + ".tmp"
	os.WriteFile(tmp, []byte(versionConfig(addr, backend.URL, 2)), 0o644)
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	c := testutil.Client()
	if !wait.Within(5*time.Second, func() bool { _, body := fetch(t, c, "http://"+addr+"/version"); return body == "2" }) {
		t.Fatal("file change was not applied within 5s")
	}
	reloaded := func(what string) error {
		t.Helper()
		select {
		case err := <-results:
			return err
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no reload within 5s", what)
			return nil
		}
	}
	if err := reloaded("the replaced file"); err != nil {
		t.Fatalf("the replaced file: %v", err)
	}
	// An invalid edit keeps the running config.
	os.WriteFile(file, []byte("routes: [oops"), 0o644)
	if reloaded("the invalid edit") == nil {
		t.Fatal("the invalid edit was applied")
	}
	if _, body := fetch(t, c, "http://"+addr+"/version"); body != "2" {
		t.Fatalf("after invalid edit /version = %q, want 2", body)
	}
}

// TestLongLivedConnectionsSurviveReload keeps a WebSocket and an SSE stream
// open across several reloads that change other routes (issue 2).
func TestLongLivedConnectionsSurviveReload(t *testing.T) {
	t.Parallel()
	events := make(chan struct{})
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			e2eWebSocketEcho(w, r)
			return
		}
		e2eServeEvents(w, r, func() <-chan struct{} { return events })
	}))
	addr := freeAddr(t)
	g := testutil.NewGateway(testutil.Logger(t))
	if err := g.Start(testutil.ParseConfig(t, versionConfig(addr, backend.URL, 0))); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/load/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	readEvent := func(want int) {
		t.Helper()
		n, err := resp.Body.Read(buf)
		if err != nil || !strings.Contains(string(buf[:n]), fmt.Sprintf("data: %d", want)) {
			t.Fatalf("SSE event %d: %q %v", want, buf[:n], err)
		}
	}
	readEvent(0)
	for i := 1; i <= 5; i++ {
		if err := g.Runtime.Apply(testutil.ParseConfig(t, versionConfig(addr, backend.URL, i))); err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("after reload %d", i)
		if err := ws.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("websocket write after reload %d: %v", i, err)
		}
		_, got, err := ws.Read(ctx)
		if err != nil || string(got) != msg {
			t.Fatalf("websocket echo after reload %d: %q %v", i, got, err)
		}
		events <- struct{}{}
		readEvent(i)
	}
	if _, body := fetch(t, testutil.Client(), "http://"+addr+"/version"); body != "5" {
		t.Fatalf("version = %q", body)
	}
}

// TestGracefulShutdown drains an in-flight request and then refuses new
// connections.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "finished")
	}))
	addr := freeAddr(t)
	g := testutil.NewGateway(testutil.Logger(t))
	if err := g.Start(testutil.ParseConfig(t, versionConfig(addr, backend.URL, 0))); err != nil {
		t.Fatal(err)
	}
	result := make(chan string, 1)
	go func() {
		code, body := fetch(t, testutil.Client(), "http://"+addr+"/load/slow")
		result <- fmt.Sprint(code, " ", body)
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- g.Shutdown(ctx) }()
	// The request finishes only once shutdown has closed the listener.
	wait.For(t, 5*time.Second, "the listener closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	close(release)
	if err := <-shutdown; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := <-result; got != "200 finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	if _, err := http.Get("http://" + addr + "/version"); err == nil {
		t.Fatal("new request accepted after shutdown")
	}
}

// routesConfig returns a config with n routes of mixed kinds.
func routesConfig(addr, backend string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server: {listen: [{addr: %q}]}\nadmin: {listen: \"off\"}\nlog: {access: {output: \"off\"}}\n", addr)
	fmt.Fprintf(&b, "upstreams:\n  b: {targets: [{url: %q}]}\nroutes:\n", backend)
	for i := 0; i < n; i++ {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path: \"/svc%d/users/{id}\"}, upstream: b}\n", i, i)
		case 1:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path_prefix: /svc%d}, upstream: b, plugins: [{name: headers, config: {request: {set: {X-R: \"%d\"}}}}]}\n", i, i, i)
		case 2:
			fmt.Fprintf(&b, "  - {name: r%d, match: {path: /svc%d, methods: [GET]}, respond: {body: ok}}\n", i, i)
		default:
			fmt.Fprintf(&b, "  - {name: r%d, match: {hosts: [h%d.example.com], path_prefix: /}, upstream: b}\n", i, i)
		}
	}
	b.WriteString("plugins: [{name: request_id}]\n")
	return b.String()
}

// TestReloadDoesNotLeak applies a 250-route config 1,000 times and checks
// that heap, goroutines and pooled transports return to their baseline.
func TestReloadDoesNotLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("long test")
	}
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := freeAddr(t)
	cfg := testutil.ParseConfig(t, routesConfig(addr, backend.URL, 250))
	g := testutil.NewGateway(testutil.Logger(t))
	if err := g.Start(cfg); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	measure := func() (uint64, int) {
		g.Runtime.WaitRetired()
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc, runtime.NumGoroutine()
	}
	for i := 0; i < 20; i++ {
		if err := g.Runtime.Apply(cfg); err != nil {
			t.Fatal(err)
		}
	}
	heap0, gr0 := measure()
	for i := 0; i < 1000; i++ {
		if err := g.Runtime.Apply(cfg); err != nil {
			t.Fatal(err)
		}
	}
	heap1, gr1 := measure()
	t.Logf("heap %d KiB → %d KiB, goroutines %d → %d after 1000 reloads", heap0>>10, heap1>>10, gr0, gr1)
	if heap1 > heap0+8<<20 {
		t.Errorf("heap grew by %d KiB over 1000 reloads", (heap1-heap0)>>10)
	}
	if gr1 > gr0+5 {
		t.Errorf("goroutines grew from %d to %d", gr0, gr1)
	}
	if n := g.Runtime.Registry().Len(); n != 1 {
		t.Errorf("registry holds %d transports, want 1", n)
	}
	if code, _ := fetch(t, testutil.Client(), "http://"+addr+"/svc2"); code != 200 {
		t.Errorf("route after reloads: %d", code)
	}
}

// BenchmarkApply10000Routes measures building and swapping in a config of
// 10,000 routes (the reload cost reported in the README).
func BenchmarkApply10000Routes(b *testing.B) {
	backend := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := freeAddr(b)
	cfg := testutil.ParseConfig(b, routesConfig(addr, backend.URL, 10000))
	g := testutil.NewGateway(testutil.Logger(b))
	if err := g.Start(cfg); err != nil {
		b.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		if err := g.Runtime.Apply(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadAndApply10000Routes includes reading and validating the YAML.
func BenchmarkLoadAndApply10000Routes(b *testing.B) {
	backend := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := freeAddr(b)
	yaml := routesConfig(addr, backend.URL, 10000)
	g := testutil.NewGateway(testutil.Logger(b))
	if err := g.Start(testutil.ParseConfig(b, yaml)); err != nil {
		b.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	for b.Loop() {
		cfg, err := config.Parse([]byte(yaml), "bench", os.LookupEnv)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Runtime.Apply(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReloadRotatesCertificates replaces a TLS listener's certificate files
// and reloads: new handshakes get the new certificate on the same listener,
// and a connection opened before the reload keeps working.
func TestReloadRotatesCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, oldCert := e2eSelfSigned(t, dir, "old", "rotate.test")
	addr := freeAddr(t)
	yaml := fmt.Sprintf(`
server:
  listen: [{addr: %q, tls: {certificates: [{cert_file: %q, key_file: %q}]}}]
admin: {listen: "off"}
log: {access: {output: "off"}}
routes: [{name: r, match: {path: /}, respond: {body: ok}}]
`, addr, certFile, keyFile)
	g := testutil.NewGateway(testutil.Logger(t))
	if err := g.Start(testutil.ParseConfig(t, yaml)); err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())

	peerCert := func(c *http.Client) *x509.Certificate {
		t.Helper()
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.TLS.PeerCertificates[0]
	}
	client := func(roots ...*x509.Certificate) *http.Client {
		pool := x509.NewCertPool()
		for _, c := range roots {
			pool.AddCert(c)
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "rotate.test"}, ForceAttemptHTTP2: true}}
	}
	kept := client(oldCert)
	if got := peerCert(kept); !got.Equal(oldCert) {
		t.Fatal("first handshake did not use the configured certificate")
	}

	newCertFile, newKeyFile, newCert := e2eSelfSigned(t, dir, "new", "rotate.test")
	os.Rename(newCertFile, certFile)
	os.Rename(newKeyFile, keyFile)
	if err := g.Runtime.Apply(testutil.ParseConfig(t, yaml)); err != nil {
		t.Fatal(err)
	}
	if got := peerCert(client(newCert)); !got.Equal(newCert) {
		t.Fatal("handshake after reload did not use the rotated certificate")
	}
	if got := peerCert(kept); !got.Equal(oldCert) {
		t.Fatal("connection opened before the reload was not kept")
	}
}

// startFromFile writes src to file and starts a gateway from it, as
// `portico run --config file` does; the caller shuts it down.
func startFromFile(t *testing.T, file, src string) *gateway.Gateway {
	t.Helper()
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	g := testutil.NewGateway(testutil.Logger(t))
	if err := g.Start(cfg); err != nil {
		t.Fatal(err)
	}
	return g
}
