package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// Runtime serves requests from the current Snapshot and replaces it on
// Apply. It is the http.Handler of every client listener.
type Runtime struct {
	cur     atomic.Pointer[Snapshot]
	builder *Builder
	logger  *slog.Logger

	applyMu sync.Mutex
	// maxDrain is how long a retired snapshot may keep serving before a
	// warning names the requests that still hold it. It never cuts them:
	// the snapshot is released when its last request ends.
	maxDrain time.Duration
	// retiring counts retired snapshots not yet released.
	retiring sync.WaitGroup
	// listeners, when attached by NewServer, are reconciled with each new
	// snapshot before it is published.
	listeners *Server
	// upgrades tracks hijacked (upgraded) client connections, which
	// http.Server.Shutdown does not see.
	upgrades upgradeSet
	// history holds the last applied revisions, oldest first (applyMu).
	history []revision

	// metrics and stats are the runtime's own (served by its admin API):
	// two runtimes in one process never share them.
	metrics *observe.Metrics
	stats   *observe.Stats

	// Prepare, if set, is called with every config before it is built, at
	// start and on each reload or admin change: the CLI applies its
	// --listen/--admin overrides here. An error rejects the config.
	Prepare func(*config.Config) error
}

// NewRuntime returns a runtime with no snapshot; Apply publishes the first.
func NewRuntime(logger *slog.Logger) *Runtime {
	if logger == nil {
		logger = slog.Default()
	}
	stats := observe.NewStats()
	rt := &Runtime{logger: logger, maxDrain: 60 * time.Second, stats: stats, metrics: observe.NewMetrics(stats)}
	rt.metrics.Registry.MustRegister(upstreamCollector{rt}, buildInfoGauge())
	rt.builder = &Builder{Registry: upstream.NewRegistry(), States: upstream.NewStateRegistry(), Logger: logger, Outputs: NewOutputs(),
		Shared: plugin.NewSharedPool(), Metrics: rt.metrics, Stats: stats}
	return rt
}

// Metrics is the runtime's Prometheus registry and request metrics (with
// its upstream and build-info collectors), served at its admin /metrics.
func (rt *Runtime) Metrics() *observe.Metrics { return rt.metrics }

// Stats are the runtime's counters (plugins, proxy), served at its admin
// /stats and in /metrics.
func (rt *Runtime) Stats() *observe.Stats { return rt.stats }

// Current returns the snapshot in force, or nil before the first Apply.
func (rt *Runtime) Current() *Snapshot { return rt.cur.Load() }

// Registry exposes the shared transport registry (for tests and status).
func (rt *Runtime) Registry() *upstream.Registry { return rt.builder.Registry }

// Validate builds cfg without publishing it, reporting every error.
func (rt *Runtime) Validate(cfg *config.Config) error {
	s, err := rt.builder.Build(cfg)
	if err != nil {
		return err
	}
	s.release()
	return nil
}

// Apply builds a snapshot from cfg and, when it builds, reconciles the
// listeners and publishes it atomically. On any error the current snapshot
// keeps serving and the error is returned.
func (rt *Runtime) Apply(cfg *config.Config) error {
	rt.applyMu.Lock()
	defer rt.applyMu.Unlock()
	if rt.Prepare != nil {
		if err := rt.Prepare(cfg); err != nil {
			rt.metrics.Reload(false, "")
			return err
		}
	}
	s, err := rt.builder.Build(cfg)
	if err != nil {
		rt.metrics.Reload(false, "")
		return err
	}
	if rt.listeners != nil {
		if err := rt.listeners.reconcile(s); err != nil {
			s.release()
			rt.metrics.Reload(false, "")
			return err
		}
	}
	rt.metrics.Reload(true, cfg.Hash)
	rt.record(cfg)
	s.start()
	s.refs.Store(1)
	old := rt.cur.Swap(s)
	if rt.listeners != nil {
		rt.listeners.closeRemoved(s)
	}
	if old != nil {
		rt.retire(old)
	}
	return nil
}

// A snapshot is reference counted: the runtime holds one reference while
// the snapshot is current and every request holds one while it runs. When
// the count reaches zero after retirement, the last holder releases the
// snapshot (pools, transports, plugins, tracer). No timer or polling loop
// decides it, so a stream that outlives any drain period still ends on a
// complete snapshot, and its pool and target counters are decremented on
// the same shared state they were incremented on.

// acquire takes a reference to the current snapshot, or returns nil when
// none is loaded. A snapshot whose count already reached zero is being
// released and cannot be revived; acquire then reads the newer one.
func (rt *Runtime) acquire() *Snapshot {
	for {
		s := rt.cur.Load()
		if s == nil {
			return nil
		}
		for {
			n := s.refs.Load()
			if n <= 0 {
				break
			}
			if s.refs.CompareAndSwap(n, n+1) {
				return s
			}
		}
	}
}

// unref drops one reference; the last one releases the snapshot. The
// release runs on its own goroutine, so a request never waits for it.
func (rt *Runtime) unref(s *Snapshot) {
	if s.refs.Add(-1) == 0 {
		go rt.finalize(s)
	}
}

// retire drops the runtime's reference to a snapshot that is no longer
// current (the caller has swapped it out). Its health checkers stop at
// once: the new snapshot's checkers own the shared target health now.
func (rt *Runtime) retire(s *Snapshot) {
	rt.retiring.Add(1)
	s.drainWarn = time.AfterFunc(rt.maxDrain, func() {
		if n := s.refs.Load(); n > 0 {
			rt.logger.Warn("a retired configuration still serves long-running requests; it is released when they end",
				"config_hash", s.cfg.Hash, "requests", n, "retired_for", rt.maxDrain.String())
		}
	})
	go func() {
		s.stopCheckers()
		rt.unref(s)
	}()
}

// finalize releases a retired snapshot whose last request has ended.
func (rt *Runtime) finalize(s *Snapshot) {
	defer rt.retiring.Done()
	if s.drainWarn != nil {
		s.drainWarn.Stop()
	}
	s.release()
}

// WaitRetired blocks until every retired snapshot has been released.
func (rt *Runtime) WaitRetired() { rt.retiring.Wait() }

// waitRetired is WaitRetired bounded by ctx; it reports whether every
// retired snapshot was released.
func (rt *Runtime) waitRetired(ctx context.Context) bool {
	done := make(chan struct{})
	go func() {
		rt.retiring.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// ServeHTTP serves one request from exactly one snapshot, holding a
// reference to it until the handler returns (panics included).
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := rt.acquire()
	if s == nil {
		request.WriteError(w, r, http.StatusServiceUnavailable, "no configuration loaded")
		return
	}
	defer rt.unref(s)
	s.serve(rt.upgrades.wrap(w, r), r)
}

// Close releases the current snapshot and waits for every retired one; the
// runtime serves nothing afterwards.
func (rt *Runtime) Close() { _ = rt.CloseContext(context.Background()) }

// CloseContext is Close bounded by ctx: when ctx ends first, snapshots still
// held by running requests are left to be released by their last request,
// and an error reports how many requests were still running.
func (rt *Runtime) CloseContext(ctx context.Context) error {
	rt.applyMu.Lock()
	defer rt.applyMu.Unlock()
	var cur *Snapshot
	if s := rt.cur.Swap(nil); s != nil {
		cur = s
		rt.retire(s)
	}
	var err error
	if !rt.waitRetired(ctx) {
		n := int64(0)
		if cur != nil {
			n = max(cur.refs.Load(), 0)
		}
		err = fmt.Errorf("runtime closed with requests still running (%d on the last configuration): %w", n, ctx.Err())
	}
	// Access log outputs are flushed and closed either way; a line written
	// by a request that ends later is dropped.
	rt.builder.Outputs.Close()
	return err
}

// historySize is how many applied revisions the runtime remembers.
const historySize = 50

// revision is one applied config, for the admin history.
type revision struct {
	hash, source      string
	at                time.Time
	routes, upstreams int
}

// record remembers an applied config (called with applyMu held).
func (rt *Runtime) record(cfg *config.Config) {
	rt.history = append(rt.history, revision{hash: cfg.Hash, source: cfg.Source, at: time.Now(), routes: len(cfg.Routes), upstreams: len(cfg.Upstreams)})
	if len(rt.history) > historySize {
		rt.history = append(rt.history[:0], rt.history[len(rt.history)-historySize:]...)
	}
}
