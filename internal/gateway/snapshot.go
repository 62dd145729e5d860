// Package gateway compiles a validated config into an immutable runtime
// Snapshot (route table, plugin chains, upstream pools, listener specs) and
// serves requests from whichever snapshot is current. Apply builds a new
// snapshot completely, swaps it in with one atomic store, and retires the old
// one once its in-flight requests have finished.
package gateway

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/observe/tracing"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/proxy"
	"github.com/portico-gw/portico/internal/router"
	"github.com/portico-gw/portico/internal/upstream"
)

// Snapshot is everything one request needs, compiled from one config. It is
// never modified after Build returns.
type Snapshot struct {
	cfg     *config.Config
	table   *router.Table
	routes  []*route
	pools   map[string]*upstream.Pool
	trusted []netip.Prefix
	// edge is the arrival header policy (see hygiene.go).
	edge      edgePolicy
	limits    config.Limits
	accessLog *slog.Logger
	// accessQuery adds the raw query to access-log lines (log.access.query).
	accessQuery bool
	certs       map[string]*certSet
	// unrouted holds the metrics of requests that matched no route.
	unrouted *observe.RouteMetrics
	// inflight is the gauge of requests being served (the runtime's).
	inflight  prometheus.Gauge
	instances []*plugin.Instance
	// transports release the upstreams' transports.
	transports []func()
	checkers   []*upstream.HealthChecker
	consumers  consumer.Store
	// tracer is the snapshot's tracer provider (nil when tracing is off).
	// Each snapshot owns its own: a reload builds a new one and release
	// flushes and shuts the old one down.
	tracer *tracing.Provider

	// pathParams is server.path_params.
	pathParams router.PathParamMode

	// refs counts the runtime's reference while the snapshot is current
	// plus one per running request (see Runtime.acquire).
	refs atomic.Int64
	// drainWarn warns when a retired snapshot outlives the drain period.
	drainWarn *time.Timer
	// probe answers plugin.Context.Covers while the snapshot is built.
	probe routeProbe
}

// route is a compiled route: its terminal wrapped in its plugin chain.
type route struct {
	name         string
	handler      http.Handler
	allowEncoded bool
	metrics      *observe.RouteMetrics
	// variants are a split route's per-variant metrics (split.go).
	variants []variantMetrics
	// apiVersions are a versioned route's per-version counters (version.go).
	apiVersions []apiVersionMetrics
	// upgrades are the lower-case Upgrade protocol names the route allows.
	upgrades []string
}

// Config returns the config the snapshot was built from.
func (s *Snapshot) Config() *config.Config { return s.cfg }

// Routes reports the number of compiled routes.
func (s *Snapshot) Routes() int { return len(s.routes) }

// pluginCtx is the plugin.Context handed to plugins during Provision.
type pluginCtx struct {
	route, path string
	logger      *slog.Logger
	snap        *Snapshot
	shared      *plugin.SharedPool
	stats       *observe.Stats
	clock       func() time.Time
	// rc is the route the instance is on.
	rc *config.Route
}

func (c pluginCtx) Route() string                  { return c.route }
func (c pluginCtx) Path() string                   { return c.path }
func (c pluginCtx) Logger() *slog.Logger           { return c.logger }
func (c pluginCtx) Consumers() consumer.Store      { return c.snap.consumers }
func (c pluginCtx) TrustedProxies() []netip.Prefix { return c.snap.trusted }
func (c pluginCtx) Stats() *observe.Stats          { return c.stats }
func (c pluginCtx) Clock() func() time.Time        { return c.clock }
func (c pluginCtx) RouteTimeout() time.Duration    { return routeTimeout(c.snap.cfg, c.rc) }
func (c pluginCtx) ConfigDir() string              { return configDir(c.snap.cfg.Source) }
func (c pluginCtx) Shared(key string, create func() (io.Closer, error)) (any, func(), error) {
	if c.shared == nil {
		return plugin.StaticContext{}.Shared(key, create)
	}
	return c.shared.Acquire(key, create)
}

// pluginContext is the context the instance of ps on route rc (nil for a
// global plugin built on no route) is provisioned with.
func (b *Builder) pluginContext(s *Snapshot, rc *config.Route, ps config.PluginSpec, logger *slog.Logger) pluginCtx {
	clock := b.Clock
	if clock == nil {
		clock = time.Now
	}
	c := pluginCtx{path: ps.Path, logger: logger.With("plugin", ps.Name), snap: s, shared: b.Shared, stats: b.Stats, clock: clock, rc: rc}
	if rc != nil {
		c.route = rc.Name
	}
	return c
}

// Builder turns configs into snapshots; it owns the long-lived state that
// snapshots share (transports, log outputs).
type Builder struct {
	Registry *upstream.Registry
	States   *upstream.StateRegistry
	Logger   *slog.Logger
	Outputs  *Outputs
	// Shared holds the values plugins share across routes and reloads
	// (plugin.Context.Shared).
	Shared *plugin.SharedPool
	// Metrics and Stats are the runtime's, which snapshots record into
	// and plugins resolve their counters in.
	Metrics *observe.Metrics
	Stats   *observe.Stats
	// Clock is what plugins read the time with (plugin.Context.Clock);
	// nil means time.Now.
	Clock func() time.Time
}

// Build compiles cfg. On error nothing it acquired stays acquired, and the
// error lists every problem with its YAML path and line: cfg's own problems
// (a config from config.ParseAll) together with every build error (plugins,
// certificates, transports, health checks, route table) of the parts of cfg
// that have none, each once and sorted by line (config.Config.Merge). A part
// that already failed is skipped, so it yields no follow-on errors.
func (b *Builder) Build(cfg *config.Config) (snap *Snapshot, err error) {
	s := &Snapshot{cfg: cfg, limits: cfg.Server.Limits, pools: map[string]*upstream.Pool{},
		unrouted: b.Metrics.Route("", ""), inflight: b.Metrics.InFlight()}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	errs := &located{cfg: cfg}
	b.buildServer(s, errs)
	b.buildOutputs(s, errs)
	b.buildPools(s, errs)
	specs, specPaths := b.buildRoutes(s, errs)
	s.edge = newEdgePolicy(cfg.Server, s.instances, b.Logger)
	tableErrs := &located{cfg: cfg}
	s.table = buildTable(specs, specPaths, tableErrs.add)
	all, _ := cfg.Merge(errs.errs).(config.Errors)
	if all = append(all, tableErrs.errs...).Tidy(); len(all) > 0 {
		return nil, all
	}
	return s, nil
}

// located gathers the build errors of one config, each located at the
// line of its YAML path.
type located struct {
	cfg  *config.Config
	errs config.Errors
}

func (l *located) add(path string, err error) {
	l.errs = append(l.errs, l.cfg.LocatedError(path, err)...)
}

// buildServer compiles the server-wide settings: path parameter mode,
// trusted proxies, consumers and listener certificates.
func (b *Builder) buildServer(s *Snapshot, errs *located) {
	cfg := s.cfg
	if mode, err := router.ParsePathParamMode(cfg.Server.PathParams); err != nil {
		errs.add("server.path_params", err)
	} else {
		s.pathParams = mode
	}
	for _, tp := range cfg.Server.TrustedProxies {
		if p, err := config.ParsePrefix(tp); err == nil {
			s.trusted = append(s.trusted, p)
		}
	}
	cs, err := consumer.NewStore(cfg.Consumers)
	if err != nil {
		errs.add("consumers", err)
		cs, _ = consumer.NewStore(nil)
	}
	s.consumers = cs
	s.certs = map[string]*certSet{}
	for i, ln := range cfg.Server.Listen {
		base := fmt.Sprintf("server.listen[%d]", i)
		if ln.TLS == nil || cfg.Covered(base) {
			continue
		}
		certs, err := loadCerts(ln.TLS, base+".tls")
		if err != nil {
			errs.add(base+".tls", err)
			continue
		}
		s.certs[ln.Addr] = certs
	}
}

// buildOutputs opens the access log and the tracer.
func (b *Builder) buildOutputs(s *Snapshot, errs *located) {
	cfg := s.cfg
	if cfg.Log.Access.Output != "off" && !cfg.Covered("log.access") {
		lg, err := b.Outputs.AccessLogger(cfg.Log.Access)
		if err != nil {
			errs.add("log.access.output", err)
		}
		s.accessLog = lg
		s.accessQuery = cfg.Log.Access.Query
	}
	if !cfg.Covered("tracing") {
		tp, err := tracing.New(cfg.Tracing, b.Logger)
		if err != nil {
			errs.add("tracing", err)
		}
		s.tracer = tp
	}
}

// buildPools acquires each upstream's transport and builds its pool and
// active health checker.
func (b *Builder) buildPools(s *Snapshot, errs *located) {
	for name, u := range s.cfg.Upstreams {
		if u == nil || s.cfg.Covered("upstreams."+name) {
			continue
		}
		tr, release, err := b.Registry.Acquire(name, u, b.Logger)
		if err != nil {
			if fe, ok := errors.AsType[*upstream.FieldError](err); ok {
				errs.add("upstreams."+name+"."+fe.Field, fe.Err)
			} else {
				errs.add("upstreams."+name, err)
			}
			continue
		}
		s.transports = append(s.transports, release)
		p, err := upstream.NewPool(name, u, tr, b.States)
		if err != nil {
			errs.add("upstreams."+name, err)
			continue
		}
		p.SetLogger(b.Logger)
		s.pools[name] = p
		if u.HealthCheck != nil {
			hc, err := upstream.NewHealthChecker(p, u.HealthCheck, &http.Client{Transport: tr.Transport}, b.Logger.With("upstream", name))
			if err != nil {
				errs.add("upstreams."+name+".health_check", err)
				continue
			}
			s.checkers = append(s.checkers, hc)
		}
	}
}

// buildRoutes compiles every route and returns the router specs of those
// whose match compiled, with their YAML paths. Global plugins that no route
// runs are built once too, so their mistakes are found.
func (b *Builder) buildRoutes(s *Snapshot, errs *located) (specs []router.Spec, specPaths []string) {
	cfg := s.cfg
	specs = make([]router.Spec, 0, len(cfg.Routes))
	specPaths = make([]string, 0, len(cfg.Routes))
	// A global plugin that failed is reported once, at plugins[i], and not
	// built again for the next route, unless its error depends on the
	// route (plugin.RouteError).
	globals := &globalState{tried: map[string]bool{}, failed: map[string]bool{}}
	for i, rc := range cfg.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		h := b.buildRoute(s, rc, path, cfg.Plugins, globals, errs)
		// A route's match is compiled unless the match itself failed,
		// even when other settings of the route did, so route table
		// errors are found in the same run; the snapshot is discarded
		// then.
		if rc == nil || cfg.Touches(path+".match") {
			continue
		}
		s.routes = append(s.routes, &route{name: rc.Name, handler: h, allowEncoded: rc.AllowEncodedSlash,
			metrics: b.Metrics.Route(rc.Name, rc.Upstream), variants: b.splitMetrics(rc), upgrades: compileUpgrades(rc.Upgrades),
			apiVersions: b.versionMetrics(rc)})
		specs = append(specs, router.Spec{Name: rc.Name, Priority: rc.Priority, Match: rc.Match, Index: len(s.routes) - 1})
		specPaths = append(specPaths, path)
	}
	// Global plugins that no route runs (no routes, or every route replaces
	// them) are still built once.
	for _, ps := range cfg.Plugins {
		if globals.tried[ps.Path] || cfg.Covered(ps.Path) {
			continue
		}
		in, err := plugin.New(ps, b.pluginContext(s, nil, ps, b.Logger))
		if err != nil {
			errs.add(ps.Path, err)
			continue
		}
		in.Cleanup()
	}
	return specs, specPaths
}

// buildTable compiles the route table. A route the router rejects is
// reported at its own path and left out, and the table is compiled again
// without it, so every rejected route is found in one run.
func buildTable(specs []router.Spec, paths []string, collect func(string, error)) *router.Table {
	for {
		t, err := router.Build(specs)
		if err == nil {
			return t
		}
		var se *router.SpecError
		if !errors.As(err, &se) || se.Spec < 0 || se.Spec >= len(specs) {
			collect("routes", err)
			return nil
		}
		p := paths[se.Spec]
		if se.Label != "" {
			p += ".match"
		}
		collect(p, se.Err)
		specs = append(specs[:se.Spec:se.Spec], specs[se.Spec+1:]...)
		paths = append(paths[:se.Spec:se.Spec], paths[se.Spec+1:]...)
	}
}

// globalState records which global plugins Build has built and which of
// them failed.
type globalState struct {
	tried, failed map[string]bool
}

// start begins the snapshot's background work (active health checks); it
// runs once the snapshot is about to be published.
func (s *Snapshot) start() {
	for _, hc := range s.checkers {
		hc.Start()
	}
}

// buildRoute compiles one route's terminal and plugin chain. Its plugins are
// built even when its own settings failed earlier (they are parts of their
// own); it then returns a nil handler and adds only the plugins' errors.
func (b *Builder) buildRoute(s *Snapshot, rc *config.Route, path string, global []config.PluginSpec, globals *globalState, errs *located) http.Handler {
	if rc == nil {
		return nil
	}
	before := len(errs.errs)
	logger := b.Logger.With("route", rc.Name)
	terminal := b.buildTerminal(s, rc, path, logger, errs)
	terminal = b.wrapMirror(s, rc, terminal)
	var insts []*plugin.Instance
	for _, ps := range plugin.Merge(global, rc.Plugins) {
		if s.cfg.Covered(ps.Path) || globals.failed[ps.Path] {
			continue
		}
		globals.tried[ps.Path] = true
		in, err := plugin.New(ps, b.pluginContext(s, rc, ps, logger))
		if err != nil {
			if _, ok := errors.AsType[*plugin.RouteError](err); !ok {
				globals.failed[ps.Path] = true
			}
			errs.add(ps.Path, err)
			continue
		}
		insts = append(insts, in)
		s.instances = append(s.instances, in)
	}
	if len(errs.errs) > before || terminal == nil {
		return nil
	}
	return wrapVersions(terminal, plugin.Chain(insts, terminal))
}

// buildTerminal returns the handler a route ends in (respond, redirect,
// split, versions or the upstream's forwarder); nil when the route's settings failed.
func (b *Builder) buildTerminal(s *Snapshot, rc *config.Route, path string, logger *slog.Logger, errs *located) http.Handler {
	switch {
	case rc.Versions != nil:
		// Builds the versions' plugins even when the route failed.
		return b.buildVersions(s, rc, path, logger, errs)
	case s.cfg.Covered(path):
		return nil
	case rc.Respond != nil:
		return proxy.NewRespond(rc.Respond)
	case rc.Redirect != nil:
		return proxy.NewRedirect(rc.Redirect)
	case rc.Split != nil:
		return b.buildSplit(s, rc, path, logger, errs)
	}
	pool := s.pools[rc.Upstream]
	if pool == nil {
		// A defined upstream without a pool failed to build and its own
		// error is reported.
		if _, defined := s.cfg.Upstreams[rc.Upstream]; !defined {
			errs.add(path+".upstream", fmt.Errorf("upstream %q is not available", rc.Upstream))
		}
		return nil
	}
	rw, err := proxy.CompileRewrite(rc.Rewrite, rc.Match)
	if err != nil {
		errs.add(path+".rewrite", err)
		return nil
	}
	return proxy.NewForwarder(pool, forwardOptions(b, rc, rw, logger))
}

// forwardOptions are the forwarder settings of route rc.
func forwardOptions(b *Builder, rc *config.Route, rw *proxy.Rewrite, logger *slog.Logger) proxy.Options {
	return proxy.Options{Rewrite: rw, Timeout: rc.Timeout.D(), BodyIdleTimeout: rc.BodyIdleTimeout.D(),
		Retry: rc.Retry, Logger: logger, Stats: b.Stats}
}

// stopCheckers stops the snapshot's active health checks.
func (s *Snapshot) stopCheckers() {
	for _, hc := range s.checkers {
		hc.Stop()
	}
}

// release gives back everything the snapshot acquired: plugin resources and
// upstream transports. It runs once no request holds the snapshot.
func (s *Snapshot) release() {
	s.stopCheckers()
	s.checkers = nil
	for _, in := range s.instances {
		in.Cleanup()
	}
	for _, p := range s.pools {
		p.Close()
	}
	for _, release := range s.transports {
		release()
	}
	s.instances, s.pools, s.transports = nil, nil, nil
	s.tracer.Close()
	s.tracer = nil
}

// certSet selects a certificate by SNI name and holds the listener's TLS
// settings of one snapshot (client CAs included), so a reload changes them
// for new handshakes without reopening the listener.
type certSet struct {
	byName   map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate
	def      *tls.Certificate
	conf     *tls.Config
}
