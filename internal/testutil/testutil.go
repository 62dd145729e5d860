// Package testutil starts real components on 127.0.0.1 for tests: a whole
// in-process gateway from YAML, and small HTTP backends. Test-only.
package testutil

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/admin"
	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
)

// Gateway is a running in-process gateway for one test.
type Gateway struct {
	*gateway.Gateway
	// URL is http://host:port of the first listener.
	URL string
	// Addrs maps each configured listen address to its bound address.
	Addrs map[string]string
	// AdminURL is http://host:port of the admin listener ("" when off).
	AdminURL string
}

// ParseConfig parses YAML, failing the test on error.
func ParseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(yaml), "test", os.LookupEnv)
	if err != nil {
		if len(yaml) > 2000 {
			yaml = yaml[:2000] + "\n[…]"
		}
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return c
}

// Logger returns a logger that writes to the test log when -v is given and
// is quiet otherwise.
func Logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// StartGateway starts a gateway from YAML. Listen addresses should be
// "127.0.0.1:0"; unless the YAML sets one, the admin listener binds
// 127.0.0.1:0 and the access log is off. The gateway is shut down when the
// test ends.
func StartGateway(t testing.TB, yaml string) *Gateway {
	t.Helper()
	if !strings.Contains(yaml, "admin:") {
		yaml += "\nadmin: {listen: \"127.0.0.1:0\"}\n"
	}
	if !strings.Contains(yaml, "log:") {
		yaml += "\nlog: {access: {output: \"off\"}}\n"
	}
	cfg := ParseConfig(t, yaml)
	g := NewGateway(Logger(t))
	if err := g.Start(cfg); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
	})
	tg := &Gateway{Gateway: g, Addrs: g.Server.Addrs()}
	first := cfg.Server.Listen[0]
	scheme := "http://"
	if first.TLS != nil {
		scheme = "https://"
	}
	tg.URL = scheme + tg.Addrs[first.Addr]
	if a := g.AdminAddr(); a != "" {
		tg.AdminURL = "http://" + a
	}
	return tg
}

// NewGateway returns a gateway wired to the admin API as `portico run`
// wires it, not yet started.
func NewGateway(logger *slog.Logger) *gateway.Gateway {
	g := gateway.New(logger)
	g.Admin = admin.Handler(g)
	return g
}

// Backend starts an httptest server that is closed when the test ends.
func Backend(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// Client returns an HTTP client with a timeout and no redirect following.
func Client() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
	}
}
