package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// healthWait bounds every wait for a health verdict.
const healthWait = 3 * time.Second

// healthPoolFor builds a pool over urls whose states live in states; the
// pool is closed when the test ends.
func healthPoolFor(t testing.TB, name string, states *StateRegistry, upstream *config.Upstream, urls ...string) *Pool {
	t.Helper()
	u := &config.Upstream{}
	if upstream != nil {
		c := *upstream
		u = &c
	}
	u.Targets = nil
	for _, s := range urls {
		u.Targets = append(u.Targets, config.Target{URL: s})
	}
	p, err := NewPool(name, u, nil, states)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// fastHealth is a check configuration with short periods for tests.
func fastHealth(typ string) config.HealthCheck {
	return config.HealthCheck{
		Type:               typ,
		Interval:           config.Duration(30 * time.Millisecond),
		Timeout:            config.Duration(20 * time.Millisecond),
		Jitter:             config.Duration(5 * time.Millisecond),
		HealthyThreshold:   2,
		UnhealthyThreshold: 3,
	}
}

// startHealth creates and starts a checker that is stopped when the test ends.
func startHealth(t testing.TB, p *Pool, hc config.HealthCheck, logger *slog.Logger) *HealthChecker {
	t.Helper()
	h, err := NewHealthChecker(p, &hc, nil, logger)
	if err != nil {
		t.Fatalf("NewHealthChecker: %v", err)
	}
	h.Start()
	t.Cleanup(h.Stop)
	return h
}

// healthRecv waits for ch to deliver or be closed.
func healthRecv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(healthWait):
		t.Fatalf("timed out after %s waiting for: %s", healthWait, what)
	}
	var zero T
	return zero
}

// probeBackend is an HTTP backend that numbers the probes it receives and
// answers them with respond.
type probeBackend struct {
	*httptest.Server
	probes  atomic.Int64
	respond func(n int64, w http.ResponseWriter, r *http.Request)

	mu       sync.Mutex
	lastReq  *http.Request
	lastPath string
}

func newProbeBackend(t testing.TB, respond func(n int64, w http.ResponseWriter, r *http.Request)) *probeBackend {
	t.Helper()
	b := &probeBackend{respond: respond}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := b.probes.Add(1)
		b.mu.Lock()
		b.lastReq = r.Clone(r.Context())
		b.lastPath = r.URL.RequestURI()
		b.mu.Unlock()
		b.respond(n, w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *probeBackend) last() (*http.Request, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastReq, b.lastPath
}

// statusBackend answers every probe with status.
func statusBackend(t testing.TB, status int) *probeBackend {
	return newProbeBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
	})
}

func TestHealthHTTPHealthyStaysHealthy(t *testing.T) {
	t.Parallel()
	b := newProbeBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte("ok"), 100<<10)) // more than the body limit
	})
	p := healthPoolFor(t, "web", NewStateRegistry(), nil, b.URL+"/base/")
	hc := fastHealth("http")
	hc.Path = "/status?full=1"
	// Probes of a healthy backend must never fail: a timeout generous
	// enough for a loaded machine, so only a real failure would mark it.
	hc.Interval, hc.Timeout = config.Duration(200*time.Millisecond), config.Duration(190*time.Millisecond)
	startHealth(t, p, hc, nil)

	st := p.Targets[0].State
	wait.For(t, healthWait, "six probes", func() bool {
		if !st.Healthy() {
			t.Fatalf("healthy backend marked unhealthy after %d probes", b.probes.Load())
		}
		return b.probes.Load() >= 6
	})
	r, uri := b.last()
	if uri != "/status?full=1" {
		t.Errorf("probe path = %q, want /status?full=1 (no base path)", uri)
	}
	if ua := r.Header.Get("User-Agent"); ua != "portico-health-check" {
		t.Errorf("User-Agent = %q", ua)
	}
	if r.Method != http.MethodGet {
		t.Errorf("method = %s", r.Method)
	}
	if r.Host != b.Listener.Addr().String() {
		t.Errorf("Host = %q, want the target's %q", r.Host, b.Listener.Addr())
	}
}

func TestHealthHTTPThresholds(t *testing.T) {
	t.Parallel()
	// Probes 1-3 fail, 4 on succeed. Probe 3 and probe 5 are held until the
	// test has looked at the state, so the verdict after threshold-1 results
	// is observed deterministically.
	entered := map[int64]chan struct{}{3: make(chan struct{}), 5: make(chan struct{})}
	release := map[int64]chan struct{}{3: make(chan struct{}), 5: make(chan struct{})}
	b := newProbeBackend(t, func(n int64, w http.ResponseWriter, r *http.Request) {
		if ch, ok := entered[n]; ok {
			close(ch)
			select {
			case <-release[n]:
			case <-r.Context().Done():
			}
		}
		if n <= 3 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var logs logbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p := healthPoolFor(t, "api", NewStateRegistry(), nil, b.URL)
	hc := fastHealth("http")
	// The timeout leaves ample room for the test to look at the state while
	// a probe is held.
	hc.Interval = config.Duration(250 * time.Millisecond)
	hc.Timeout = config.Duration(200 * time.Millisecond)
	hc.Jitter = config.Duration(time.Millisecond)
	startHealth(t, p, hc, logger)
	st := p.Targets[0].State

	healthRecv(t, "probe 3", entered[3])
	if !st.Healthy() {
		t.Fatal("unhealthy after 2 failures, threshold is 3")
	}
	close(release[3])
	wait.For(t, healthWait, "unhealthy after 3 failures", func() bool { return !st.Healthy() })

	healthRecv(t, "probe 5", entered[5])
	if st.Healthy() {
		t.Fatal("healthy after 1 success, threshold is 2")
	}
	close(release[5])
	wait.For(t, healthWait, "healthy after 2 successes", func() bool { return st.Healthy() })

	out := logs.String()
	for _, want := range []string{`msg="target unhealthy"`, `msg="target healthy"`, "pool=api", "target=" + b.URL, "unexpected status 500"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

func TestHealthHTTPExpectedStatuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		expected []int
		status   int
		healthy  bool
	}{
		{"default 200", nil, http.StatusOK, true},
		{"default redirect not followed", nil, http.StatusMovedPermanently, true},
		{"default 404", nil, http.StatusNotFound, false},
		{"default 503", nil, http.StatusServiceUnavailable, false},
		{"204 only, got 204", []int{204}, http.StatusNoContent, true},
		{"204 only, got 200", []int{204}, http.StatusOK, false},
		{"list accepts 418", []int{200, 418}, http.StatusTeapot, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newProbeBackend(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
				if tc.status >= 300 && tc.status < 400 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			p := healthPoolFor(t, "s", NewStateRegistry(), nil, b.URL)
			hc := fastHealth("http")
			hc.ExpectedStatuses = tc.expected
			startHealth(t, p, hc, nil)
			st := p.Targets[0].State
			if !tc.healthy {
				wait.For(t, healthWait, "unhealthy", func() bool { return !st.Healthy() })
				return
			}
			wait.For(t, healthWait, "five probes", func() bool {
				if !st.Healthy() {
					t.Fatalf("status %d marked unhealthy", tc.status)
				}
				return b.probes.Load() >= 5
			})
			if _, uri := b.last(); uri != "/healthz" {
				t.Errorf("probe path = %q, want /healthz (redirects are not followed)", uri)
			}
		})
	}
}

func TestHealthHTTPHostOverride(t *testing.T) {
	t.Parallel()
	b := newProbeBackend(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		if r.Host != "health.internal" {
			w.WriteHeader(http.StatusMisdirectedRequest)
		}
	})
	p := healthPoolFor(t, "s", NewStateRegistry(), nil, b.URL)
	hc := fastHealth("http")
	hc.Host = "health.internal"
	startHealth(t, p, hc, nil)
	wait.For(t, healthWait, "five probes", func() bool {
		if !p.Targets[0].State.Healthy() {
			t.Fatal("Host override did not reach the backend")
		}
		return b.probes.Load() >= 5
	})
	if r, _ := b.last(); r.Host != "health.internal" {
		t.Errorf("Host = %q, want health.internal", r.Host)
	}
}

func TestHealthHTTPTimeout(t *testing.T) {
	t.Parallel()
	b := newProbeBackend(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	})
	p := healthPoolFor(t, "s", NewStateRegistry(), nil, b.URL)
	logger, logs := bufLogger()
	startHealth(t, p, fastHealth("http"), logger)
	wait.For(t, healthWait, "unhealthy after slow probes", func() bool { return !p.Targets[0].State.Healthy() })
	// The checker's own count: a probe that times out before the backend
	// has accepted it fails without reaching the handler.
	wait.For(t, healthWait, "the unhealthy line", func() bool { return strings.Contains(logs.String(), "target unhealthy") })
	if l := logs.String(); !strings.Contains(l, "3 consecutive failed http checks") {
		t.Errorf("unhealthy after other than 3 failed probes (threshold 3):\n%s", l)
	}
}

func TestHealthHTTPBackendRestart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	serve := func(ln net.Listener) *http.Server {
		srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
		go func() { _ = srv.Serve(ln) }()
		return srv
	}
	srv := serve(ln)
	t.Cleanup(func() { _ = srv.Close() })

	p := healthPoolFor(t, "s", NewStateRegistry(), nil, "http://"+addr)
	startHealth(t, p, fastHealth("http"), nil)
	st := p.Targets[0].State
	// Mark the target down first so that recovery is observable.
	st.SetHealthy(false, time.Now())
	wait.For(t, healthWait, "healthy while serving", st.Healthy)

	_ = srv.Close()
	wait.For(t, healthWait, "unhealthy once killed", func() bool { return !st.Healthy() })

	var ln2 net.Listener
	wait.For(t, healthWait, "listening again on "+addr, func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	srv2 := serve(ln2)
	t.Cleanup(func() { _ = srv2.Close() })
	wait.For(t, healthWait, "healthy once restarted", st.Healthy)
}

func TestHealthHTTPS(t *testing.T) {
	t.Parallel()
	b := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(b.Close)
	cases := []struct {
		name     string
		insecure bool
		healthy  bool
	}{
		{"unverified certificate fails", false, false},
		{"insecure_skip_verify", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := &config.Upstream{TLS: &config.UpstreamTLS{InsecureSkipVerify: tc.insecure}}
			p := healthPoolFor(t, "tls", NewStateRegistry(), u, b.URL)
			st := p.Targets[0].State
			if tc.healthy {
				st.SetHealthy(false, time.Now())
			}
			startHealth(t, p, fastHealth("http"), nil)
			wait.For(t, healthWait, "verdict", func() bool { return st.Healthy() == tc.healthy })
		})
	}
}

func TestHealthTCP(t *testing.T) {
	t.Parallel()
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = open.Close() })
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()

	cases := []struct {
		name    string
		url     string
		healthy bool
	}{
		{"open port", "http://" + open.Addr().String(), true},
		{"closed port", "http://" + closedAddr, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := healthPoolFor(t, "tcp", NewStateRegistry(), nil, tc.url)
			st := p.Targets[0].State
			if tc.healthy {
				st.SetHealthy(false, time.Now())
			}
			startHealth(t, p, fastHealth("tcp"), nil)
			wait.For(t, healthWait, "verdict", func() bool { return st.Healthy() == tc.healthy })
		})
	}
}

func TestHealthAddrDefaultPort(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"http://example.com":          "example.com:80",
		"https://example.com/base":    "example.com:443",
		"http://example.com:8080":     "example.com:8080",
		"https://[::1]":               "[::1]:443",
		"http://[::1]:9000/x":         "[::1]:9000",
		"https://user:pw@example.com": "example.com:443",
	}
	for in, want := range cases {
		p := healthPoolFor(t, "a", NewStateRegistry(), nil, in)
		if got := healthAddr(p.Targets[0].URL); got != want {
			t.Errorf("healthAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

// grpcBackend is a grpc-go server with the standard health service; calls
// counts the health checks it answered.
type grpcBackend struct {
	addr   string
	health *health.Server
	calls  atomic.Int64
}

func newGRPCBackend(t testing.TB, creds credentials.TransportCredentials) *grpcBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &grpcBackend{addr: ln.Addr().String(), health: health.NewServer()}
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		b.calls.Add(1)
		return handler(ctx, req)
	})}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s, b.health)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return b
}

func TestHealthGRPC(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		statuses map[string]healthpb.HealthCheckResponse_ServingStatus
		service  string
		healthy  bool
	}{
		{"server serving", map[string]healthpb.HealthCheckResponse_ServingStatus{"": healthpb.HealthCheckResponse_SERVING}, "", true},
		{"server not serving", map[string]healthpb.HealthCheckResponse_ServingStatus{"": healthpb.HealthCheckResponse_NOT_SERVING}, "", false},
		{"service serving", map[string]healthpb.HealthCheckResponse_ServingStatus{
			"":             healthpb.HealthCheckResponse_NOT_SERVING,
			"portico.Echo": healthpb.HealthCheckResponse_SERVING,
		}, "portico.Echo", true},
		{"service not serving", map[string]healthpb.HealthCheckResponse_ServingStatus{
			"":             healthpb.HealthCheckResponse_SERVING,
			"portico.Echo": healthpb.HealthCheckResponse_NOT_SERVING,
		}, "portico.Echo", false},
		{"unknown service", map[string]healthpb.HealthCheckResponse_ServingStatus{"": healthpb.HealthCheckResponse_SERVING}, "portico.Missing", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newGRPCBackend(t, nil)
			for svc, s := range tc.statuses {
				b.health.SetServingStatus(svc, s)
			}
			p := healthPoolFor(t, "grpc", NewStateRegistry(), nil, "http://"+b.addr)
			grpcVerdict(t, p, tc.service, tc.healthy)
		})
	}
}

// grpcVerdict starts a gRPC health check of service on p's first target,
// which starts with the opposite verdict, and waits for the verdict
// healthy after one probe.
func grpcVerdict(t *testing.T, p *Pool, service string, healthy bool) {
	t.Helper()
	hc := fastHealth("grpc")
	hc.Service = service
	hc.Timeout = config.Duration(200 * time.Millisecond) // room for the first connect under -race
	hc.Interval = config.Duration(250 * time.Millisecond)
	hc.HealthyThreshold, hc.UnhealthyThreshold = 1, 1
	st := p.Targets[0].State
	if healthy {
		st.SetHealthy(false, time.Now())
	}
	startHealth(t, p, hc, nil)
	wait.For(t, healthWait, "verdict", func() bool { return st.Healthy() == healthy })
}

func TestHealthGRPCToggle(t *testing.T) {
	t.Parallel()
	b := newGRPCBackend(t, nil)
	p := healthPoolFor(t, "grpc", NewStateRegistry(), nil, "http://"+b.addr)
	hc := fastHealth("grpc")
	hc.Interval = config.Duration(50 * time.Millisecond)
	hc.Timeout = config.Duration(40 * time.Millisecond)
	startHealth(t, p, hc, nil)
	st := p.Targets[0].State
	wait.For(t, healthWait, "three checks", func() bool { return b.calls.Load() >= 3 })
	if !st.Healthy() {
		t.Fatal("SERVING backend marked unhealthy")
	}
	b.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	wait.For(t, healthWait, "unhealthy on NOT_SERVING", func() bool { return !st.Healthy() })
	b.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	wait.For(t, healthWait, "healthy on SERVING", st.Healthy)
}

func TestHealthGRPCTLS(t *testing.T) {
	t.Parallel()
	// Borrow httptest's self-signed certificate for the gRPC server.
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	ts.Close()
	b := newGRPCBackend(t, credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))
	cases := []struct {
		name     string
		scheme   string
		insecure bool
		healthy  bool
	}{
		{"verified against system roots fails", "https", false, false},
		{"insecure_skip_verify", "https", true, true},
		{"plaintext to a TLS server fails", "http", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := &config.Upstream{TLS: &config.UpstreamTLS{InsecureSkipVerify: tc.insecure}}
			p := healthPoolFor(t, "grpcs", NewStateRegistry(), u, tc.scheme+"://"+b.addr)
			grpcVerdict(t, p, "", tc.healthy)
		})
	}
}

func TestHealthConfigValidation(t *testing.T) {
	t.Parallel()
	d := func(v time.Duration) config.Duration { return config.Duration(v) }
	cases := []struct {
		name string
		hc   config.HealthCheck
		err  string
	}{
		{"timeout equals interval", config.HealthCheck{Interval: d(time.Second), Timeout: d(time.Second)}, "timeout"},
		{"timeout above interval", config.HealthCheck{Interval: d(time.Second), Timeout: d(2 * time.Second)}, "timeout"},
		{"unknown type", config.HealthCheck{Type: "icmp"}, "unknown type"},
		{"relative path", config.HealthCheck{Path: "healthz"}, "path"},
		{"bad status", config.HealthCheck{ExpectedStatuses: []int{42}}, "status"},
		{"negative threshold", config.HealthCheck{HealthyThreshold: -1}, "threshold"},
		{"negative interval", config.HealthCheck{Interval: d(-time.Second)}, "negative"},
	}
	p := healthPoolFor(t, "v", NewStateRegistry(), nil, "http://127.0.0.1:1")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, err := NewHealthChecker(p, &tc.hc, nil, nil)
			if err == nil {
				h.Stop()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), `"v"`) {
				t.Errorf("error %q lacks %q or the pool name", err, tc.err)
			}
		})
	}
	if _, err := NewHealthChecker(p, nil, nil, nil); err == nil {
		t.Error("nil config accepted")
	}
	// A default never contradicts the value that is set: an interval of
	// 1s alone gets a 500ms timeout, a timeout of 10s alone a 20s interval.
	for _, tc := range []struct {
		hc                config.HealthCheck
		interval, timeout time.Duration
	}{
		{config.HealthCheck{Interval: d(time.Second)}, time.Second, 500 * time.Millisecond},
		{config.HealthCheck{Timeout: d(10 * time.Second)}, 20 * time.Second, 10 * time.Second},
		{config.HealthCheck{}, 5 * time.Second, 2 * time.Second},
	} {
		h, err := NewHealthChecker(p, &tc.hc, nil, nil)
		if err != nil {
			t.Errorf("%+v: %v", tc.hc, err)
			continue
		}
		if h.cfg.Interval.D() != tc.interval || h.cfg.Timeout.D() != tc.timeout {
			t.Errorf("%+v: interval %s timeout %s, want %s and %s", tc.hc, h.cfg.Interval.D(), h.cfg.Timeout.D(), tc.interval, tc.timeout)
		}
		h.Stop()
	}
}

func TestHealthConfigDefaults(t *testing.T) {
	t.Parallel()
	p := healthPoolFor(t, "d", NewStateRegistry(), nil, "http://127.0.0.1:1")
	in := config.HealthCheck{}
	h, err := NewHealthChecker(p, &in, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	c := h.cfg
	if c.Type != "http" || c.Path != "/healthz" || c.Interval.D() != 5*time.Second || c.Timeout.D() != 2*time.Second ||
		c.Jitter.D() != 500*time.Millisecond || c.HealthyThreshold != 2 || c.UnhealthyThreshold != 3 {
		t.Errorf("defaults = %+v", c)
	}
	if len(c.ExpectedStatuses) != 200 || c.ExpectedStatuses[0] != 200 || c.ExpectedStatuses[199] != 399 {
		t.Errorf("default statuses = %d entries", len(c.ExpectedStatuses))
	}
	for _, s := range []int{200, 204, 301, 399} {
		if !h.expected[s] {
			t.Errorf("status %d not expected by default", s)
		}
	}
	for _, s := range []int{199, 400, 500} {
		if h.expected[s] {
			t.Errorf("status %d expected by default", s)
		}
	}
	if in.Type != "" || in.Interval != 0 || in.ExpectedStatuses != nil {
		t.Errorf("caller's config modified: %+v", in)
	}
	if h.client == nil || h.client.Timeout != 2*time.Second {
		t.Error("no default client with the check timeout")
	}

	// A supplied client is copied, not modified, and shares its transport.
	pc := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	h2, err := NewHealthChecker(p, &config.HealthCheck{}, pc, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Stop()
	if pc.Timeout != time.Minute || pc.CheckRedirect != nil {
		t.Error("pool client modified")
	}
	if h2.client.Transport != pc.Transport {
		t.Error("pool transport not used")
	}
}

func TestHealthStateSurvivesReload(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	failing.Store(true)
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	b := newProbeBackend(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		entered <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	states := NewStateRegistry()
	p1, err := NewPool("app", &config.Upstream{Targets: []config.Target{{URL: b.URL}}}, nil, states)
	if err != nil {
		t.Fatal(err)
	}
	hc := fastHealth("http")
	hc.UnhealthyThreshold = 1
	h1, err := NewHealthChecker(p1, &hc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h1.Start()
	wait.For(t, healthWait, "unhealthy under checker 1", func() bool { return !p1.Targets[0].State.Healthy() })
	h1.Stop()
	failing.Store(false)

	// Reload: the new pool acquires the state before the old one releases it.
	p2 := healthPoolFor(t, "app", states, nil, b.URL)
	p1.Close()
	if p2.Targets[0].State.Healthy() {
		t.Fatal("new pool's target healthy before any probe")
	}
	hc2 := fastHealth("http")
	hc2.Interval = config.Duration(250 * time.Millisecond)
	hc2.Timeout = config.Duration(200 * time.Millisecond)
	h2, err := NewHealthChecker(p2, &hc2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Targets[0].State.Healthy() {
		t.Fatal("NewHealthChecker reset the target's state")
	}
	h2.Start()
	t.Cleanup(h2.Stop)
	healthRecv(t, "checker 2's first probe", entered)
	if p2.Targets[0].State.Healthy() {
		t.Fatal("target healthy before checker 2's first probe completed")
	}
	close(release)
	wait.For(t, healthWait, "healthy under checker 2", p2.Targets[0].State.Healthy)
}

// TestHealthStopNoLeak compares goroutine counts, so it does not run in
// parallel with the other tests.
func TestHealthStopNoLeak(t *testing.T) {
	// Stop without Start, twice.
	idle := healthPoolFor(t, "idle", NewStateRegistry(), nil, "http://127.0.0.1:1")
	h0, err := NewHealthChecker(idle, &config.HealthCheck{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h0.Stop()
	h0.Stop()
	h0.Start() // no-op once stopped
	h0.Stop()

	web := statusBackend(t, http.StatusOK)
	gb := newGRPCBackend(t, nil)
	tcp := statusBackend(t, http.StatusOK)
	// Count once the servers' goroutines have settled: the same count on
	// two polls in a row.
	last := -1
	wait.For(t, healthWait, "a steady goroutine count", func() bool {
		n := runtime.NumGoroutine()
		steady := n == last
		last = n
		return steady
	})
	base := runtime.NumGoroutine()

	var checkers []*HealthChecker
	for _, c := range []struct {
		typ string
		url string
	}{{"http", web.URL}, {"grpc", "http://" + gb.addr}, {"tcp", tcp.URL}} {
		p := healthPoolFor(t, c.typ, NewStateRegistry(), nil, c.url, c.url+"/second", "http://127.0.0.1:1")
		hc := fastHealth(c.typ)
		hc.Timeout = config.Duration(100 * time.Millisecond)
		hc.Interval = config.Duration(120 * time.Millisecond)
		h, err := NewHealthChecker(p, &hc, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Start()
		h.Start() // no-op while running
		checkers = append(checkers, h)
	}
	wait.For(t, healthWait, "probes running", func() bool { return web.probes.Load() >= 4 && gb.calls.Load() >= 4 })
	if runtime.NumGoroutine() <= base {
		t.Fatal("checkers started no goroutines")
	}
	for _, h := range checkers {
		h.Stop()
		h.Stop()
	}
	const tolerance = 2
	if !wait.Within(healthWait, func() bool { return runtime.NumGoroutine() <= base+tolerance }) {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after Stop, %d before:\n%s", runtime.NumGoroutine(), base, buf)
	}
	probes := web.probes.Load()
	// An absence check: nothing to wait on but time, so let more than one
	// probe interval pass and count again.
	time.Sleep(200 * time.Millisecond)
	if n := web.probes.Load(); n != probes {
		t.Errorf("%d probes after Stop", n-probes)
	}
}
