package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/testutil/fakeclock"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// fakeDNS is a lookup whose answer tests change at will.
type fakeDNS struct {
	mu    sync.Mutex
	addrs []netip.Addr
	err   error
	calls atomic.Int64
}

func (f *fakeDNS) set(err error, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
	f.addrs = nil
	for _, a := range addrs {
		f.addrs = append(f.addrs, netip.MustParseAddr(a))
	}
}

func (f *fakeDNS) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if host != "backend.test" {
		return nil, fmt.Errorf("no such host %s", host)
	}
	return append([]netip.Addr(nil), f.addrs...), f.err
}

// namedBackend is a plain HTTP backend answering with its name. gate, when
// set by the test, makes requests to /wait block until it is closed.
type namedBackend struct {
	name  string
	srv   *http.Server
	conns atomic.Int64
	hits  atomic.Int64
	gate  chan struct{}
	seen  chan struct{}
}

func startNamed(t *testing.T, name string, ln net.Listener) *namedBackend {
	t.Helper()
	b := &namedBackend{name: name, gate: make(chan struct{}), seen: make(chan struct{}, 16)}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.hits.Add(1)
			if r.URL.Path == "/wait" {
				b.seen <- struct{}{}
				select {
				case <-b.gate:
				case <-r.Context().Done():
				}
			}
			_, _ = io.WriteString(w, b.name)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.conns.Add(1)
			}
		},
	}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

// twoBackends starts backends A on 127.0.0.1:P and B on 127.0.0.2:P (the
// same port), returning them and P.
func twoBackends(t *testing.T) (*namedBackend, *namedBackend, string) {
	t.Helper()
	for range 20 {
		la, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(la.Addr().(*net.TCPAddr).Port)
		lb, err := net.Listen("tcp", "127.0.0.2:"+port)
		if err != nil {
			_ = la.Close()
			continue
		}
		return startNamed(t, "A", la), startNamed(t, "B", lb), port
	}
	// Some systems (macOS) have only 127.0.0.1 on loopback: skip there,
	// but never under CI, where Linux has all of 127/8.
	msg := "could not bind 127.0.0.1 and 127.0.0.2 on a common port"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return nil, nil, ""
}

// dnsTransport acquires a transport whose host names resolve through dns
// with the given refresh interval.
func dnsTransport(t *testing.T, dns *fakeDNS, refresh time.Duration) (*Transport, *logbuf.Buffer) {
	t.Helper()
	g := NewRegistry()
	g.lookup = dns.lookup
	u := baseUpstream()
	u.DNSRefresh = config.Duration(refresh)
	logger, buf := bufLogger()
	return acquireWith(t, g, "api", u, logger), buf
}

// dnsClock puts tr's resolver on a fake clock, so a test moves past the
// refresh interval instead of sleeping through it. Call it before the
// first request.
func dnsClock(tr *Transport) *fakeclock.Clock {
	clk := fakeclock.New(time.Now())
	tr.resolver.now = clk.Now
	return clk
}

// fetch sends a GET; closeConn asks for a connection that is not reused.
func fetch(t *testing.T, tr http.RoundTripper, url string, closeConn bool) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Close = closeConn
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestResolverReresolve checks that after the refresh interval a new
// connection goes to the newly resolved address while an existing
// keep-alive connection to the old one keeps serving.
func TestResolverReresolve(t *testing.T) {
	t.Parallel()
	a, b, port := twoBackends(t)
	dns := &fakeDNS{}
	dns.set(nil, "127.0.0.1")
	const ttl = 100 * time.Millisecond
	tr, _ := dnsTransport(t, dns, ttl)
	clk := dnsClock(tr)
	url := "http://backend.test:" + port

	if got := fetch(t, tr, url+"/", false); got != "A" {
		t.Fatalf("first request served by %s, want A", got)
	}
	dns.set(nil, "127.0.0.2")
	clk.Advance(2 * ttl)

	// The idle connection to A is reused; hold it busy.
	held := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, url+"/wait", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			held <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		held <- string(body)
	}()
	select {
	case <-a.seen:
	case <-time.After(5 * time.Second):
		t.Fatal("held request did not reach A over the kept-alive connection")
	}
	// A new connection is needed now and goes to the new address.
	if got := fetch(t, tr, url+"/", false); got != "B" {
		t.Fatalf("request on a new connection served by %s, want B", got)
	}
	close(a.gate)
	if got := <-held; got != "A" {
		t.Fatalf("kept-alive request answered %q, want A", got)
	}
	if n := a.conns.Load(); n != 1 {
		t.Fatalf("A saw %d connections, want 1 (kept alive)", n)
	}
	if n := b.conns.Load(); n != 1 {
		t.Fatalf("B saw %d connections, want 1", n)
	}
}

// TestResolverCachesWithinTTL checks that dials within the refresh interval
// do not resolve again.
func TestResolverCachesWithinTTL(t *testing.T) {
	t.Parallel()
	a, _, port := twoBackends(t)
	dns := &fakeDNS{}
	dns.set(nil, "127.0.0.1")
	tr, _ := dnsTransport(t, dns, time.Hour)
	for range 5 {
		if got := fetch(t, tr, "http://backend.test:"+port, true); got != "A" {
			t.Fatalf("served by %s, want A", got)
		}
	}
	if n := dns.calls.Load(); n != 1 {
		t.Fatalf("lookups = %d, want 1", n)
	}
	if n := a.conns.Load(); n != 5 {
		t.Fatalf("A saw %d connections, want 5", n)
	}
}

// TestResolverFailedRefresh checks that a failed re-resolution keeps the
// previous addresses and logs a warning.
func TestResolverFailedRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		fail func(d *fakeDNS)
	}{
		{desc: "lookup error", fail: func(d *fakeDNS) { d.set(errors.New("dns down")) }},
		{desc: "empty answer", fail: func(d *fakeDNS) { d.set(nil) }},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, _, port := twoBackends(t)
			dns := &fakeDNS{}
			dns.set(nil, "127.0.0.1")
			const ttl = 50 * time.Millisecond
			tr, logs := dnsTransport(t, dns, ttl)
			clk := dnsClock(tr)
			url := "http://backend.test:" + port
			if got := fetch(t, tr, url, true); got != "A" {
				t.Fatalf("served by %s, want A", got)
			}
			tc.fail(dns)
			clk.Advance(2 * ttl)
			if got := fetch(t, tr, url, true); got != "A" {
				t.Fatalf("after failed refresh served by %s, want A", got)
			}
			if n := dns.calls.Load(); n != 2 {
				t.Fatalf("lookups = %d, want 2", n)
			}
			l := logs.String()
			if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "upstream DNS refresh failed") ||
				!strings.Contains(l, "host=backend.test") {
				t.Fatalf("no refresh warning logged:\n%s", l)
			}
			// Recovery: the next refresh after the retry interval succeeds.
			dns.set(nil, "127.0.0.2")
			clk.Advance(2 * ttl)
			if got := fetch(t, tr, url, true); got != "B" {
				t.Fatalf("after recovery served by %s, want B", got)
			}
		})
	}
}

// TestResolverRotation checks that new connections rotate over the
// resolved addresses and skip an address that refuses connections.
func TestResolverRotation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		addrs []string
		wantA int64
		wantB int64
		dials int
	}{
		{desc: "two addresses", addrs: []string{"127.0.0.1", "127.0.0.2"}, dials: 6, wantA: 3, wantB: 3},
		{desc: "refused address is skipped", addrs: []string{"127.0.0.3", "127.0.0.1"}, dials: 4, wantA: 4},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			a, b, port := twoBackends(t)
			dns := &fakeDNS{}
			dns.set(nil, tc.addrs...)
			tr, _ := dnsTransport(t, dns, time.Hour)
			for range tc.dials {
				fetch(t, tr, "http://backend.test:"+port, true)
			}
			if a.conns.Load() != tc.wantA || b.conns.Load() != tc.wantB {
				t.Fatalf("connections A=%d B=%d, want A=%d B=%d", a.conns.Load(), b.conns.Load(), tc.wantA, tc.wantB)
			}
		})
	}
}

// TestResolverIPLiteral checks that IP literal targets are dialed without a
// lookup.
func TestResolverIPLiteral(t *testing.T) {
	t.Parallel()
	a, _, port := twoBackends(t)
	dns := &fakeDNS{}
	dns.set(errors.New("must not be called"))
	tr, _ := dnsTransport(t, dns, time.Hour)
	if got := fetch(t, tr, "http://127.0.0.1:"+port, true); got != "A" {
		t.Fatalf("served by %s, want A", got)
	}
	if n := dns.calls.Load(); n != 0 {
		t.Fatalf("lookups = %d, want 0", n)
	}
	if a.conns.Load() != 1 {
		t.Fatalf("A saw %d connections", a.conns.Load())
	}
}

// TestResolverInitialFailure checks that a host that cannot be resolved at
// all fails the dial with the lookup error.
func TestResolverInitialFailure(t *testing.T) {
	t.Parallel()
	dns := &fakeDNS{}
	dns.set(errors.New("nxdomain"))
	r := newResolver("api", time.Minute, dns.lookup, nil)
	_, err := r.DialContext(context.Background(), "tcp", "backend.test:80")
	if err == nil || !strings.Contains(err.Error(), "nxdomain") {
		t.Fatalf("error = %v, want the lookup error", err)
	}
	// The failure is not cached as an empty answer.
	dns.set(nil, "127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := r.DialContext(context.Background(), "tcp", "backend.test:"+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

// TestResolverConcurrentDials checks that concurrent dials of a stale entry
// resolve it once and all succeed.
func TestResolverConcurrentDials(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	addr := "backend.test:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	dns := &fakeDNS{}
	dns.set(nil, "127.0.0.1")
	r := newResolver("api", time.Hour, dns.lookup, nil)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			c, err := r.DialContext(context.Background(), "tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			_ = c.Close()
		})
	}
	wg.Wait()
	if n := dns.calls.Load(); n != 1 {
		t.Fatalf("lookups = %d, want 1", n)
	}
}
