package gateway

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/upstream"
)

// Runtime serves requests from the current Snapshot and replaces it on
// Apply. It is the http.Handler of every client listener.
type Runtime struct {
	cur     atomic.Pointer[Snapshot]
	builder *Builder
	logger  *slog.Logger

	applyMu sync.Mutex
	// maxDrain bounds how long a retired snapshot waits for its in-flight
	// requests (long-lived streams keep running; only cleanup waits).
	maxDrain time.Duration
	retiring sync.WaitGroup
	// listeners, when attached by NewServer, are reconciled with each new
	// snapshot before it is published.
	listeners *Server
	// history holds the last applied revisions, oldest first (applyMu).
	history []revision
}

// NewRuntime returns a runtime with no snapshot; Apply publishes the first.
func NewRuntime(logger *slog.Logger) *Runtime {
	if logger == nil {
		logger = slog.Default()
	}
	rt := &Runtime{logger: logger, maxDrain: 60 * time.Second}
	rt.builder = &Builder{Registry: upstream.NewRegistry(), States: upstream.NewStateRegistry(), Logger: logger, Outputs: NewOutputs(),
		Shared: plugin.NewSharedPool()}
	return rt
}

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
	s, err := rt.builder.Build(cfg)
	if err != nil {
		observe.DefaultMetrics.Reload(false, "")
		return err
	}
	if rt.listeners != nil {
		if err := rt.listeners.reconcile(s); err != nil {
			s.release()
			observe.DefaultMetrics.Reload(false, "")
			return err
		}
	}
	observe.DefaultMetrics.Reload(true, cfg.Hash)
	rt.record(cfg)
	s.start()
	old := rt.cur.Swap(s)
	if rt.listeners != nil {
		rt.listeners.closeRemoved(s)
	}
	if old != nil {
		rt.retiring.Add(1)
		go rt.retire(old)
	}
	return nil
}

// retire waits for the old snapshot's in-flight requests (bounded by
// maxDrain), then releases its resources.
func (rt *Runtime) retire(s *Snapshot) {
	defer rt.retiring.Done()
	deadline := time.Now().Add(rt.maxDrain)
	for s.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	s.release()
}

// WaitRetired blocks until every retired snapshot has been released.
func (rt *Runtime) WaitRetired() { rt.retiring.Wait() }

// ServeHTTP serves one request from exactly one snapshot.
func (rt *Runtime) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := rt.cur.Load()
	if s == nil {
		observe.WriteError(w, r, http.StatusServiceUnavailable, "no configuration loaded")
		return
	}
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	s.serve(w, r)
}

// Close releases the current snapshot; the runtime serves nothing afterwards.
func (rt *Runtime) Close() {
	rt.applyMu.Lock()
	defer rt.applyMu.Unlock()
	if s := rt.cur.Swap(nil); s != nil {
		rt.retiring.Add(1)
		go rt.retire(s)
	}
	rt.retiring.Wait()
	rt.builder.Outputs.Close()
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
