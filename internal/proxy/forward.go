// Package proxy is the data-plane forwarder: it sends a request to an
// upstream pool through the standard library's httputil.ReverseProxy,
// with an attempt loop underneath that
// picks a target per attempt, retries within a budget and reports outcomes
// for passive health. It applies the route's path and Host rewrite, sets the
// forwarding headers, and maps every failure to one JSON (or gRPC) error
// through a single status table.
package proxy

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// Forwarder is the terminal handler of a route that proxies to an upstream.
type Forwarder struct {
	pool *upstream.Pool
	// rp forwards through the attempt loop and streams the response back
	// (bodies, flushes, trailers, upgrades).
	rp        *httputil.ReverseProxy
	timeout   time.Duration
	maxFields int
}

// Options configure a Forwarder.
type Options struct {
	// Rewrite is the compiled path/Host rewrite (nil: none).
	Rewrite *Rewrite
	// Timeout bounds the whole exchange; 0 means the upstream's request_timeout.
	Timeout time.Duration
	// BodyIdleTimeout bounds each wait for response body bytes; 0 means the
	// upstream's body_idle_timeout.
	BodyIdleTimeout time.Duration
	// Retry overrides the upstream's retry policy (route-level retry).
	Retry *config.Retry
	// Logger receives transport errors at debug level.
	Logger *slog.Logger
	// Stats holds the forwarder's counters (the gateway's); nil keeps
	// them in a private set.
	Stats *observe.Stats
}

// NewForwarder builds the forwarder of one route for pool.
func NewForwarder(pool *upstream.Pool, o Options) *Forwarder {
	if o.Rewrite == nil {
		o.Rewrite = &Rewrite{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Stats == nil {
		o.Stats = observe.NewStats()
	}
	if o.Timeout == 0 {
		o.Timeout = pool.Config.RequestTimeout.D()
	}
	rc := o.Retry
	if rc == nil {
		rc = pool.Config.Retry
	}
	if o.BodyIdleTimeout == 0 {
		o.BodyIdleTimeout = pool.Config.BodyIdleTimeout.D()
	}
	maxFields := pool.Config.MaxResponseHeaderCount
	if maxFields <= 0 {
		maxFields = config.DefaultMaxRespHeaderCount
	}
	at := &attempts{pool: pool, rt: pool.Transport, retry: compileRetry(rc), debugHeader: pool.Config.DebugHeader,
		maxHeaderFields: maxFields, bodyIdle: o.BodyIdleTimeout,
		stalls: o.Stats.Counter(BodyIdleTimeoutsMetric, fmt.Sprintf("upstream=%q", pool.Name))}
	return &Forwarder{pool: pool, rp: newReverseProxy(o.Rewrite, at, o.Logger), timeout: o.Timeout, maxFields: maxFields}
}

// BodyIdleTimeoutsMetric counts responses aborted because their upstream
// stalled longer than the body idle timeout, by upstream.
const BodyIdleTimeoutsMetric = "portico_upstream_body_idle_timeouts_total"

// ServeHTTP admits the request under the pool's circuit breaker and
// forwards it.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.pool.Begin() {
		WriteError(w, r, upstream.ErrOverloaded)
		return
	}
	defer f.pool.End()
	timeout := f.timeout
	if d, ok := grpcTimeout(r); ok && (timeout == 0 || d < timeout) {
		// The gateway's own deadline fires before the backend's, so an
		// expired gRPC deadline is answered as DEADLINE_EXCEEDED.
		timeout = d
	}
	if timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	if request.IsGRPC(r) {
		defer endGRPCOnAbort(w, r)
	}
	iw := interimWriters.Get().(*interimWriter)
	iw.ResponseWriter, iw.maxFields = w, f.maxFields
	f.rp.ServeHTTP(iw, r)
	// Not reached when the reverse proxy aborts the response (a panic): the
	// writer is then left to the garbage collector.
	*iw = interimWriter{}
	interimWriters.Put(iw)
}

// grpcTimeout parses the grpc-timeout header of a gRPC call: up to 8 digits
// and a unit (H, M, S, m, u, n).
func grpcTimeout(r *http.Request) (time.Duration, bool) {
	v := r.Header["Grpc-Timeout"]
	if len(v) != 1 || len(v[0]) < 2 || len(v[0]) > 9 {
		return 0, false
	}
	s := v[0]
	var n int64
	for i := 0; i < len(s)-1; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	var unit time.Duration
	switch s[len(s)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// newReverseProxy returns the reverse proxy of one route: rt performs the
// attempts (target choice, retries); rw prepares the outbound request.
func newReverseProxy(rw *Rewrite, rt http.RoundTripper, logger *slog.Logger) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The query goes out byte for byte, as the router saw it:
			// ReverseProxy re-encodes one holding ";" or a malformed escape
			// and drops one with more parameters than url.ParseQuery takes.
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			rec := request.RecordOf(pr.In)
			rw.apply(pr, rec)
			dropH2CUpgrade(pr.Out.Header)
			setForwarded(pr, rec)
			if rec != nil {
				rec.UpstreamStart = time.Now()
			}
		},
		Transport: rt,
		ModifyResponse: func(resp *http.Response) error {
			if rec := request.RecordOf(resp.Request); rec != nil && !rec.UpstreamStart.IsZero() {
				rec.UpstreamDuration = time.Since(rec.UpstreamStart)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if rec := request.RecordOf(r); rec != nil && !rec.UpstreamStart.IsZero() {
				rec.UpstreamDuration = time.Since(rec.UpstreamStart)
			}
			logger.Debug("upstream error", "error", err)
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
	_ io.Writer    = slogWriter{}
)
