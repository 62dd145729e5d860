package plugintest

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
)

// DefaultRoute and DefaultPath are the route name and spec path Build
// gives the plugin unless an option says otherwise.
const (
	DefaultRoute = "test"
	DefaultPath  = "routes[0].plugins[0]"
)

// Option adjusts the context Build provisions the plugin with.
type Option func(*plugin.StaticContext)

// WithStore sets the consumer store (default: an empty store).
func WithStore(s consumer.Store) Option {
	return func(c *plugin.StaticContext) { c.Store = s }
}

// WithLogger sets the logger (default: one that discards everything).
func WithLogger(l *slog.Logger) Option {
	return func(c *plugin.StaticContext) { c.Log = l }
}

// WithPool sets the shared pool, so instances built with the same pool
// share their Shared values the way a gateway's routes and reloads do.
func WithPool(p *plugin.SharedPool) Option {
	return func(c *plugin.StaticContext) { c.Pool = p }
}

// WithRoute sets the route name (default DefaultRoute).
func WithRoute(name string) Option {
	return func(c *plugin.StaticContext) { c.RouteName = name }
}

// WithPath sets the YAML path of the spec used in error messages
// (default DefaultPath).
func WithPath(path string) Option {
	return func(c *plugin.StaticContext) { c.SpecPath = path }
}

// WithTrustedProxies sets the CIDRs whose forwarding headers are believed.
func WithTrustedProxies(nets ...netip.Prefix) Option {
	return func(c *plugin.StaticContext) { c.TrustedNets = nets }
}

// WithCoverage sets the answer of Context.Covers (default: every target
// is covered).
func WithCoverage(f func(host, target string) plugin.Coverage) Option {
	return func(c *plugin.StaticContext) { c.Coverage = f }
}

// WithStats sets the counters the plugin resolves its own in, so the test
// can read them (default: a private set nobody reads).
func WithStats(s *observe.Stats) Option {
	return func(c *plugin.StaticContext) { c.Counters = s }
}

// WithClock sets the clock the plugin reads the time with (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *plugin.StaticContext) { c.Now = now }
}

// WithRouteTimeout sets what Context.RouteTimeout returns (default 0, no
// timeout).
func WithRouteTimeout(d time.Duration) Option {
	return func(c *plugin.StaticContext) { c.Timeout = d }
}

// WithConfigDir sets what Context.ConfigDir returns, the directory
// relative file names are resolved against (default "", the working
// directory).
func WithConfigDir(dir string) Option {
	return func(c *plugin.StaticContext) { c.Dir = dir }
}

// Build decodes src (the plugin's YAML config) the way the gateway does,
// provisions and validates plugin name with a StaticContext adjusted by
// opts, and returns the plugin as T together with its instance. A config,
// provisioning or validation error is returned for the test to check. The
// instance is cleaned up when the test ends (plugin cleanups tolerate a
// second call, so tests may also clean up early). It fails the test when
// the plugin is not a T; use plugin.Plugin for T to skip the conversion.
func Build[T plugin.Plugin](t testing.TB, name, src string, opts ...Option) (T, *plugin.Instance, error) {
	t.Helper()
	ctx := plugin.StaticContext{RouteName: DefaultRoute, SpecPath: DefaultPath}
	for _, o := range opts {
		o(&ctx)
	}
	var zero T
	in, err := plugin.NewFromYAML(name, src, ctx)
	if err != nil {
		return zero, nil, err
	}
	t.Cleanup(in.Cleanup)
	p, ok := in.Plugin.(T)
	if !ok {
		t.Fatalf("plugin %s is a %T, want %T", name, in.Plugin, zero)
	}
	return p, in, nil
}
