package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/observe/tracing"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// attempts is the RoundTripper under a route's reverse proxy: it picks a
// target for each attempt, retries failed attempts on a different target
// within the retry budget, replays the request body from a bounded buffer,
// and reports every outcome to the pool's passive health checks.
type attempts struct {
	pool        *upstream.Pool
	rt          http.RoundTripper
	retry       retryPolicy
	debugHeader bool
	// maxHeaderFields bounds the header fields of a response (502 beyond).
	maxHeaderFields int
	// bodyIdle bounds each wait for response body bytes (0: none).
	bodyIdle time.Duration
	// stalls counts responses aborted by bodyIdle.
	stalls *observe.Counter
}

// RoundTrip runs the attempt loop for one outbound request: pick a target,
// run one attempt, and either retry or return. Every attempt that does not
// return a response releases its target and context in try.release; a
// returned response hands them to its body.
func (a *attempts) RoundTrip(req *http.Request) (*http.Response, error) {
	// The filter lives in a pool: passed to the balancer interface it
	// would otherwise escape to the heap on every request.
	f := filters.Get().(*upstream.Filter)
	defer filters.Put(f)
	x := a.newExchange(req, f)
	defer x.releaseRetry()
	for n := 0; ; n++ {
		t, err := x.pick(n)
		if err != nil {
			a.pool.Refused(err)
			return nil, err
		}
		at := x.attempt(n, t)
		x.releaseRetry()
		if wait, ok := x.retry(n, &at); ok {
			at.release()
			if wait > 0 && !a.otherTargetAvailable(x.req, f) && !sleepCtx(x.req.Context(), wait) {
				return nil, x.req.Context().Err()
			}
			continue
		}
		return x.finish(&at)
	}
}

var filters = sync.Pool{New: func() any { return new(upstream.Filter) }}

// exchange is the state one RoundTrip keeps across its attempts.
type exchange struct {
	a       *attempts
	req     *http.Request
	rec     *request.Record
	f       *upstream.Filter
	body    *replayBody // nil: the body (if any) is not replayable
	retries int
	// mayResend allows retrying a request that may have reached a backend.
	mayResend     bool
	path, rawPath string
	// heldRetry is set while a retry holds a slot of the retry budget.
	heldRetry bool
}

// try is one attempt: its target, its outcome and what it holds.
type try struct {
	t           *upstream.Target
	resp        *http.Response
	err         error
	kind        failure
	perTryFired bool
	now         time.Time
	// cancel releases the per-try context (nil without per_try_timeout).
	cancel context.CancelCauseFunc
}

func (a *attempts) newExchange(req *http.Request, f *upstream.Filter) exchange {
	pol := &a.retry
	x := exchange{a: a, rec: request.RecordOf(req), f: f, retries: pol.attempts,
		mayResend: pol.nonIdempotent || idempotent(req.Method),
		path:      req.URL.Path, rawPath: req.URL.RawPath}
	if x.retries > 0 && req.Body != nil && req.Body != http.NoBody {
		if req.ContentLength > pol.buffer || pol.buffer == 0 {
			x.retries = 0
		} else {
			x.body = &replayBody{src: req.Body, limit: pol.buffer}
		}
	}
	*f = a.pool.NewFilter(time.Now())
	// Every exchange tells its upstream connection that a response starts,
	// so the connection can check that response's framing. The hook is set
	// on the reverse proxy's own trace of this request when it has one (no
	// allocation), otherwise added with a trace of its own.
	if tr := httptrace.ContextClientTrace(req.Context()); tr != nil && tr.GotConn == nil {
		tr.GotConn = upstream.GotConn
	} else {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: upstream.GotConn}))
	}
	x.req = req
	return x
}

// pick chooses the target of attempt n (0-based). Once every target has been
// tried, a retry goes to one already tried.
func (x *exchange) pick(n int) (*upstream.Target, error) {
	pool := x.a.pool
	t, err := pool.Pick(x.req, x.f)
	if err != nil && n > 0 {
		*x.f = pool.NewFilter(time.Now())
		t, err = pool.Pick(x.req, x.f)
	}
	if err == nil {
		x.f.MarkTried(t)
	}
	return t, err
}

// attempt sends the request to t once and reports the outcome.
func (x *exchange) attempt(n int, t *upstream.Target) try {
	a := x.a
	out, cancel, timer := x.outbound(n, t)
	at := try{t: t, cancel: cancel}
	// Each attempt is a client span under the request's server span;
	// the backend receives the attempt span's traceparent.
	traced := x.rec != nil && x.rec.Trace.On()
	var span tracing.Attempt
	if traced {
		span = x.rec.Trace.StartAttempt(x.req.Context(), a.pool.Name, t.URL.Host, n+1, out.Header)
	}
	t.State.Begin()
	start := time.Now()
	at.resp, at.err = a.rt.RoundTrip(out)
	at.now = time.Now()
	if at.err == nil && headerFields(at.resp.Header) > a.maxHeaderFields {
		at.resp.Body.Close()
		at.resp, at.err = nil, errTooManyHeaders
	}
	// The per-try timeout bounds the attempt up to its response headers:
	// a timer that has not fired yet is stopped here.
	if timer != nil && !timer.Stop() {
		at.perTryFired = true
		if at.err == nil {
			// The timer fired just as the headers arrived: the attempt's
			// context is cancelled, so its body cannot be read.
			at.resp.Body.Close()
			at.resp, at.err = nil, errPerTryTimeout
		}
	}
	if traced {
		endAttemptSpan(span, at.resp, at.err, at.perTryFired)
	}
	if x.rec != nil {
		x.rec.Upstream, x.rec.UpstreamAddr, x.rec.Attempts = a.pool.Name, t.URL.Host, n+1
	}
	x.report(&at, start)
	return at
}

// outbound prepares the request of attempt n to t: a clone for a retry, a
// fresh reader of the replay buffer, the target's address and base path,
// and the per-try timeout.
func (x *exchange) outbound(n int, t *upstream.Target) (*http.Request, context.CancelCauseFunc, *time.Timer) {
	out := x.req
	if n > 0 {
		out = x.req.Clone(x.req.Context())
	}
	if x.body != nil {
		out.Body = x.body.reader()
	}
	out.URL.Scheme, out.URL.Host = t.URL.Scheme, t.URL.Host
	out.URL.Path = t.BasePath + x.path
	if x.rawPath != "" {
		out.URL.RawPath = t.BasePath + x.rawPath
	}
	perTry := x.a.retry.perTry
	if perTry <= 0 {
		return out, nil, nil
	}
	// Not context.WithTimeoutCause: its deadline would keep running while
	// the body streams, and per_try_timeout ends at the response headers.
	ctx, cancel := context.WithCancelCause(x.req.Context())
	timer := time.AfterFunc(perTry, func() { cancel(errPerTryTimeout) })
	return out.WithContext(ctx), cancel, timer
}

// report classifies the attempt's outcome and tells the pool's passive
// health checks about it.
func (x *exchange) report(at *try, start time.Time) {
	outcome := upstream.Success
	if at.err != nil {
		at.kind = classifyErr(at.err, at.perTryFired)
		if at.kind == failConnect {
			outcome = upstream.ConnectFailure
		} else if ctx := x.req.Context(); ctx.Err() == nil && !deadlinePassed(ctx) {
			// A failure caused by the request's own deadline (the
			// backend resetting the stream as its copy of the deadline
			// fires) says nothing about the target's health.
			outcome = upstream.Failure
		}
	} else {
		at.t.State.ObserveLatency(at.now.Sub(start), at.now.UnixNano())
		if code := at.resp.StatusCode; code >= 500 && code != http.StatusNotImplemented && code != http.StatusHTTPVersionNotSupported {
			outcome = upstream.Failure
		}
	}
	if outcome != upstream.Success || at.err == nil {
		x.a.pool.Report(at.t, outcome, at.now)
	}
}

// retry decides whether attempt n is retried, taking a slot of the retry
// budget if so, and returns how long the retry must wait for a Retry-After
// on the same target.
func (x *exchange) retry(n int, at *try) (time.Duration, bool) {
	a := x.a
	if n >= x.retries || x.req.Context().Err() != nil || !a.shouldRetry(at.kind, at.resp, x.mayResend) ||
		(x.body != nil && !x.body.rewindable()) {
		return 0, false
	}
	wait, ok := a.retryAfter(at.t, at.resp, at.now)
	if !ok {
		return 0, false
	}
	if at.kind == failConnect {
		// A retry after a connect failure is outside the budget: the
		// failed attempt never reached a backend, so the retry adds no
		// load to the pool.
		a.pool.CountRetry()
		return wait, true
	}
	if !a.pool.AcquireRetry(a.retry.budgetPercent, a.retry.minConcurrency) {
		return 0, false
	}
	x.heldRetry = true
	return wait, true
}

// releaseRetry gives back the retry budget slot a retry holds.
func (x *exchange) releaseRetry() {
	if x.heldRetry {
		x.a.pool.ReleaseRetry()
		x.heldRetry = false
	}
}

// finish returns the last attempt's response or error. A response's body
// takes over the attempt's target and context and releases them on Close.
func (x *exchange) finish(at *try) (*http.Response, error) {
	if at.err != nil {
		at.release()
		if at.perTryFired {
			return nil, errPerTryTimeout
		}
		return nil, at.err
	}
	a, resp := x.a, at.resp
	if a.debugHeader {
		resp.Header.Set("X-Portico-Upstream", at.t.URL.Host)
	}
	idle := a.bodyIdle
	if resp.StatusCode == http.StatusSwitchingProtocols {
		idle = 0
	}
	resp.Body = wrapBody(resp.Body, at.t.State, at.cancel, idle, x.rec, a.stalls)
	return resp, nil
}

// release ends an attempt that returns no response: it drains and closes a
// response being retried, ends the target's in-flight count and releases
// the per-try context.
func (at *try) release() {
	if at.resp != nil {
		_, _ = io.CopyN(io.Discard, at.resp.Body, 64<<10)
		at.resp.Body.Close()
	}
	at.t.State.End()
	if at.cancel != nil {
		at.cancel(nil)
	}
}

// endAttemptSpan records an attempt's response status or transport error.
// The span covers the attempt up to the response headers.
func endAttemptSpan(span tracing.Attempt, resp *http.Response, err error, perTryFired bool) {
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	if err != nil && perTryFired {
		err = errPerTryTimeout
	}
	span.End(status, err)
}

// errPerTryTimeout is returned when the last attempt ran out of its
// per-try timeout; it maps to 504.
var errPerTryTimeout = &perTryTimeout{"upstream per-try timeout"}

type perTryTimeout struct{ msg string }

func (e *perTryTimeout) Error() string   { return e.msg }
func (e *perTryTimeout) Timeout() bool   { return true }
func (e *perTryTimeout) Temporary() bool { return true }

// Interface guards.
var (
	_ http.RoundTripper = (*attempts)(nil)
	_ net.Error         = (*perTryTimeout)(nil)
)
