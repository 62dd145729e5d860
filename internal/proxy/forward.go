// Package proxy is the data-plane forwarder: it sends a request to one target
// of an upstream pool through a swappable Engine (by default the standard
// library's httputil.ReverseProxy), applies the route's path and Host
// rewrite, sets the forwarding headers, and maps every failure to one JSON
// error through a single status table.
package proxy

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/upstream"
)

// Engine forwards one request to the target it was built for and streams the
// response back. It is the seam where a specialised HTTP/1.1 engine can
// replace httputil.ReverseProxy.
type Engine interface {
	http.Handler
}

// EngineFactory builds the engine for one target of a route.
type EngineFactory func(t *upstream.Target, tr http.RoundTripper, rw *Rewrite, logger *slog.Logger) Engine

// Forwarder is the terminal handler of a route that proxies to an upstream.
type Forwarder struct {
	pool    *upstream.Pool
	engines []Engine
	timeout time.Duration
}

// Options configure a Forwarder.
type Options struct {
	// Rewrite is the compiled path/Host rewrite (nil: none).
	Rewrite *Rewrite
	// Timeout bounds the whole upstream exchange; 0 means none.
	Timeout time.Duration
	// Logger receives transport errors at debug level.
	Logger *slog.Logger
	// Engine builds per-target engines; nil selects the httputil engine.
	Engine EngineFactory
}

// NewForwarder builds the forwarder of one route for pool.
func NewForwarder(pool *upstream.Pool, o Options) *Forwarder {
	if o.Engine == nil {
		o.Engine = NewReverseProxyEngine
	}
	if o.Rewrite == nil {
		o.Rewrite = &Rewrite{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f := &Forwarder{pool: pool, timeout: o.Timeout}
	for _, t := range pool.Targets {
		f.engines = append(f.engines, o.Engine(t, pool.Transport, o.Rewrite, o.Logger))
	}
	return f
}

// ServeHTTP picks a target and forwards the request to it.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	flt := upstream.NewFilter(time.Now(), 0)
	t, err := f.pool.Pick(r, &flt)
	if err != nil {
		WriteError(w, r, err)
		return
	}
	if rec := observe.RecordOf(r); rec != nil {
		rec.Upstream = t.URL.Host
	}
	if f.timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), f.timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	f.engines[t.Index].ServeHTTP(w, r)
}

// NewReverseProxyEngine returns the standard-library engine for target t.
func NewReverseProxyEngine(t *upstream.Target, tr http.RoundTripper, rw *Rewrite, logger *slog.Logger) Engine {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			rec := observe.RecordOf(pr.In)
			rw.apply(pr, t, rec)
			setForwarded(pr, rec)
			if rec != nil {
				rec.UpstreamStart = time.Now()
			}
		},
		Transport: tr,
		ModifyResponse: func(resp *http.Response) error {
			if rec := observe.RecordOf(resp.Request); rec != nil && !rec.UpstreamStart.IsZero() {
				rec.UpstreamDuration = time.Since(rec.UpstreamStart)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if rec := observe.RecordOf(r); rec != nil && !rec.UpstreamStart.IsZero() {
				rec.UpstreamDuration = time.Since(rec.UpstreamStart)
			}
			logger.Debug("upstream error", "target", t.URL.Host, "error", err)
			WriteError(w, r, err)
		},
		BufferPool: bufferPool{},
		ErrorLog:   log.New(slogWriter{logger}, "", 0),
	}
}

// slogWriter sends the ReverseProxy's own log lines to slog at debug level.
type slogWriter struct{ l *slog.Logger }

func (s slogWriter) Write(p []byte) (int, error) {
	s.l.Debug(string(p))
	return len(p), nil
}

// Interface guards.
var (
	_ http.Handler = (*Forwarder)(nil)
	_ Engine       = (*httputil.ReverseProxy)(nil)
)
