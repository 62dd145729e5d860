package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/portico-gw/portico/internal/config"
)

// Defaults of active health checks.
const (
	defaultHealthType               = "http"
	defaultHealthPath               = "/healthz"
	defaultHealthHealthyThreshold   = 2
	defaultHealthUnhealthyThreshold = 3
	// healthBodyLimit is how much of an HTTP check's response body is read
	// (and discarded) before the connection is closed.
	healthBodyLimit = 64 << 10
	// healthUserAgent identifies the gateway's probes to backends.
	healthUserAgent = "portico-health-check"
)

// HealthChecker actively probes every target of one pool and records the
// verdict in the target's State.
type HealthChecker struct {
	pool   *Pool
	cfg    config.HealthCheck
	client *http.Client
	// ownTransport is the transport of a client the checker built itself;
	// Stop closes its idle connections.
	ownTransport *http.Transport
	logger       *slog.Logger
	expected     map[int]bool
	// grpcCreds are the transport credentials of gRPC checks to https://
	// targets (nil for other check types).
	grpcCreds credentials.TransportCredentials

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewHealthChecker validates hc, fills in its defaults on a private copy and
// returns a checker for the targets of p. client is the pool's HTTP client
// (carrying its TLS and HTTP/2 settings) used by HTTP checks; when nil the
// checker builds its own. Probing begins with Start.
func NewHealthChecker(p *Pool, hc *config.HealthCheck, client *http.Client, logger *slog.Logger) (*HealthChecker, error) {
	if p == nil {
		return nil, errors.New("health check: nil pool")
	}
	if hc == nil {
		return nil, fmt.Errorf("upstream %q: health check: no configuration", p.Name)
	}
	cfg := *hc
	cfg.ExpectedStatuses = append([]int(nil), hc.ExpectedStatuses...)
	if err := defaultHealthCheck(&cfg); err != nil {
		return nil, fmt.Errorf("upstream %q: health check: %w", p.Name, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &HealthChecker{pool: p, cfg: cfg, logger: logger}

	switch cfg.Type {
	case "http":
		if _, err := url.ParseRequestURI(cfg.Path); err != nil {
			return nil, fmt.Errorf("upstream %q: health check: path %q: %w", p.Name, cfg.Path, err)
		}
		h.expected = make(map[int]bool, len(cfg.ExpectedStatuses))
		for _, s := range cfg.ExpectedStatuses {
			h.expected[s] = true
		}
		tlsCfg, err := healthTLSConfig(p.Config)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: health check: %w", p.Name, err)
		}
		h.client = healthHTTPClient(client, tlsCfg, cfg.Timeout.D())
		if client == nil {
			h.ownTransport = h.client.Transport.(*http.Transport)
		}
	case "grpc":
		tlsCfg, err := healthTLSConfig(p.Config)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: health check: %w", p.Name, err)
		}
		h.grpcCreds = credentials.NewTLS(tlsCfg)
	}
	return h, nil
}

// defaultHealthCheck fills in the defaults of cfg and rejects invalid values.
func defaultHealthCheck(cfg *config.HealthCheck) error {
	if cfg.Type == "" {
		cfg.Type = defaultHealthType
	}
	switch cfg.Type {
	case "http", "tcp", "grpc":
	default:
		return fmt.Errorf("unknown type %q (want http, tcp or grpc)", cfg.Type)
	}
	if cfg.Path == "" {
		cfg.Path = defaultHealthPath
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		return fmt.Errorf("path %q must start with /", cfg.Path)
	}
	if cfg.Interval < 0 || cfg.Timeout < 0 || cfg.Jitter < 0 {
		return errors.New("interval, timeout and jitter must not be negative")
	}
	// Unset, interval and timeout are derived from each other so that
	// defaults never contradict a value that is set.
	cfg.Interval, cfg.Timeout = cfg.Times()
	if cfg.Timeout >= cfg.Interval {
		return fmt.Errorf("timeout %s must be shorter than interval %s: lower timeout or raise interval", cfg.Timeout.D(), cfg.Interval.D())
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = cfg.Interval / 10
	}
	if len(cfg.ExpectedStatuses) == 0 {
		for s := 200; s <= 399; s++ {
			cfg.ExpectedStatuses = append(cfg.ExpectedStatuses, s)
		}
	}
	for _, s := range cfg.ExpectedStatuses {
		if s < 100 || s > 599 {
			return fmt.Errorf("expected status %d is not an HTTP status", s)
		}
	}
	if cfg.HealthyThreshold < 0 || cfg.UnhealthyThreshold < 0 {
		return errors.New("thresholds must not be negative")
	}
	if cfg.HealthyThreshold == 0 {
		cfg.HealthyThreshold = defaultHealthHealthyThreshold
	}
	if cfg.UnhealthyThreshold == 0 {
		cfg.UnhealthyThreshold = defaultHealthUnhealthyThreshold
	}
	return nil
}

// healthTLSConfig is the client TLS configuration of checks to https://
// targets, following the upstream's TLS settings.
func healthTLSConfig(u *config.Upstream) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if u == nil || u.TLS == nil {
		return c, nil
	}
	t := u.TLS
	c.ServerName = t.ServerName
	c.InsecureSkipVerify = t.InsecureSkipVerify
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca_file %q: no certificates", t.CAFile)
		}
		c.RootCAs = roots
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// healthHTTPClient returns the client of HTTP checks: a copy of the pool's
// client (sharing its transport) or, without one, a dedicated client. Either
// way redirects are not followed (a 3xx is judged as the check's status) and
// no cookies are kept.
func healthHTTPClient(pool *http.Client, tlsCfg *tls.Config, timeout time.Duration) *http.Client {
	var c http.Client
	if pool != nil {
		c = *pool
	} else {
		d := &net.Dialer{Timeout: timeout}
		c.Transport = &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSClientConfig:       tlsCfg,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   1,
			IdleConnTimeout:       90 * time.Second,
			DisableCompression:    true,
		}
	}
	c.Jar = nil
	c.Timeout = timeout
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// Start launches one probing goroutine per target. The first probe runs at
// once; the next ones every Interval plus a random jitter. Start is a no-op
// when the checker already runs or was stopped.
func (h *HealthChecker) Start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.stopped {
		return
	}
	h.started = true
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	for _, t := range h.pool.Targets {
		tc := &targetCheck{h: h, t: t, state: t.State}
		if tc.state == nil {
			continue
		}
		h.wg.Go(func() { tc.run(ctx) })
	}
}

// Stop cancels the probes and waits for their goroutines to end, closing the
// checker's connections. It is idempotent and safe without Start.
func (h *HealthChecker) Stop() {
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		h.wg.Wait()
		return
	}
	h.stopped = true
	cancel := h.cancel
	h.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	h.wg.Wait()
	if h.ownTransport != nil {
		h.ownTransport.CloseIdleConnections()
	}
}

// targetCheck is the probing loop of one target: its consecutive success and
// failure counters and, for gRPC checks, its connection.
type targetCheck struct {
	h     *HealthChecker
	t     *Target
	state *TargetState

	successes int
	failures  int
	conn      *grpc.ClientConn
}

// run probes the target until ctx is cancelled.
func (c *targetCheck) run(ctx context.Context) {
	defer func() {
		if c.conn != nil {
			_ = c.conn.Close()
		}
	}()
	cfg := &c.h.cfg
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := c.probe(ctx)
		if ctx.Err() != nil {
			// A probe cut short by Stop says nothing about the target.
			return
		}
		c.record(err)
		d := cfg.Interval.D()
		if j := cfg.Jitter.D(); j > 0 {
			d += rand.N(j + 1)
		}
		timer.Reset(d)
	}
}

// record folds one probe result into the counters and flips the target's
// state once a threshold is reached.
func (c *targetCheck) record(err error) {
	cfg := &c.h.cfg
	if err == nil {
		c.successes++
		c.failures = 0
		if !c.state.Healthy() && c.successes >= cfg.HealthyThreshold {
			c.state.SetHealthy(true, time.Now())
			c.h.logger.Info("target healthy",
				"pool", c.h.pool.Name,
				"target", c.t.URL.Redacted(),
				"reason", fmt.Sprintf("%d consecutive successful %s checks", c.successes, cfg.Type))
		}
		return
	}
	c.failures++
	c.successes = 0
	if c.state.Healthy() && c.failures >= cfg.UnhealthyThreshold {
		c.state.SetHealthy(false, time.Now())
		// A backend going down is a dependency failure: WARN (logged once
		// per transition, so it cannot flood).
		c.h.logger.Warn("target unhealthy",
			"dependency", "upstream",
			"pool", c.h.pool.Name,
			"target", c.t.URL.Redacted(),
			"reason", fmt.Sprintf("%d consecutive failed %s checks, last: %v", c.failures, cfg.Type, err))
	}
}

// probe runs one check of the configured type within the timeout.
func (c *targetCheck) probe(parent context.Context) error {
	ctx, cancel := context.WithTimeout(parent, c.h.cfg.Timeout.D())
	defer cancel()
	switch c.h.cfg.Type {
	case "tcp":
		return c.probeTCP(ctx)
	case "grpc":
		return c.probeGRPC(ctx)
	default:
		return c.probeHTTP(ctx)
	}
}

// probeHTTP GETs the check path on the target's scheme and host; the
// target's base path is not prefixed.
func (c *targetCheck) probeHTTP(ctx context.Context) error {
	target := c.t.URL.Scheme + "://" + c.t.URL.Host + c.h.cfg.Path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	if c.h.cfg.Host != "" {
		req.Host = c.h.cfg.Host
	}
	req.Header.Set("User-Agent", healthUserAgent)
	resp, err := c.h.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, healthBodyLimit))
	_ = resp.Body.Close()
	if !c.h.expected[resp.StatusCode] {
		return fmt.Errorf("unexpected status %d", resp.StatusCode)
	}
	return nil
}

// probeTCP opens (and closes) a TCP connection to the target.
func (c *targetCheck) probeTCP(ctx context.Context) error {
	d := &net.Dialer{Timeout: c.h.cfg.Timeout.D()}
	conn, err := d.DialContext(ctx, "tcp", healthAddr(c.t.URL))
	if err != nil {
		return err
	}
	return conn.Close()
}

// probeGRPC asks the target's grpc.health.v1 service for the configured
// service's status, which must be SERVING. The connection is kept for the
// checker's lifetime.
func (c *targetCheck) probeGRPC(ctx context.Context) error {
	if c.conn == nil {
		creds := insecure.NewCredentials()
		if c.t.URL.Scheme == "https" {
			creds = c.h.grpcCreds
		}
		interval := c.h.cfg.Interval.D()
		bo := backoff.DefaultConfig
		bo.BaseDelay = min(bo.BaseDelay, interval)
		bo.MaxDelay = interval
		conn, err := grpc.NewClient(healthAddr(c.t.URL),
			grpc.WithTransportCredentials(creds),
			grpc.WithUserAgent(healthUserAgent),
			grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: c.h.cfg.Timeout.D()}),
		)
		if err != nil {
			return err
		}
		c.conn = conn
	}
	resp, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: c.h.cfg.Service})
	if err != nil {
		return err
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("grpc health status %s", s)
	}
	return nil
}

// healthAddr is the target's host:port, the port defaulting by scheme.
func healthAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}
