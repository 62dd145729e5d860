package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/observe/tracing"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// retryPolicy is a compiled config.Retry.
type retryPolicy struct {
	attempts       int
	perTry         time.Duration
	onConnect      bool
	onReset        bool
	onTimeout      bool
	statuses       [200]bool // 400..599
	nonIdempotent  bool
	buffer         int64
	budgetPercent  int
	minConcurrency int
	maxRetryAfter  time.Duration
}

func compileRetry(c *config.Retry) retryPolicy {
	var p retryPolicy
	if c == nil {
		return p
	}
	if c.Attempts != nil {
		p.attempts = *c.Attempts
	}
	p.perTry = c.PerTryTimeout.D()
	for _, on := range c.On {
		switch on {
		case "connect_failure":
			p.onConnect = true
		case "reset":
			p.onReset = true
		case "timeout":
			p.onTimeout = true
		default:
			if code, err := strconv.Atoi(on); err == nil && code >= 400 && code <= 599 {
				p.statuses[code-400] = true
			}
		}
	}
	p.nonIdempotent = c.NonIdempotent
	p.buffer = int64(c.BufferBytes)
	p.budgetPercent = c.BudgetPercent
	p.minConcurrency = c.MinRetryConcurrency
	p.maxRetryAfter = c.MaxRetryAfter.D()
	return p
}

func (p *retryPolicy) retryStatus(code int) bool {
	return code >= 400 && code <= 599 && p.statuses[code-400]
}

// failure kinds of one attempt.
type failure int

const (
	failNone failure = iota
	failConnect
	failReset
	failTimeout
	failOther
)

// classifyErr sorts a transport error into the retry conditions.
func classifyErr(err error, perTryFired bool) failure {
	if perTryFired || isTimeout(err) {
		return failTimeout
	}
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial") {
		return failConnect
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) {
		return failReset
	}
	return failOther
}

// attempts is the RoundTripper under a route's engine: it picks a target
// for each attempt, retries failed attempts on a different target within
// the retry budget, replays the request body from a bounded buffer, and
// reports every outcome to the pool's passive health checks.
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

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// RoundTrip runs the attempt loop for one outbound request.
func (a *attempts) RoundTrip(req *http.Request) (*http.Response, error) {
	pol := &a.retry
	rec := request.RecordOf(req)
	retries := pol.attempts
	var body *replayBody
	if retries > 0 && req.Body != nil && req.Body != http.NoBody {
		if req.ContentLength > pol.buffer || pol.buffer == 0 {
			retries = 0
		} else {
			body = &replayBody{src: req.Body, limit: pol.buffer}
		}
	}
	mayResend := pol.nonIdempotent || idempotent(req.Method)
	path, rawPath := req.URL.Path, req.URL.RawPath
	// The filter lives in a pool: passed to the balancer interface it
	// would otherwise escape to the heap on every request.
	fp := filters.Get().(*upstream.Filter)
	defer filters.Put(fp)
	f := fp
	*f = a.pool.NewFilter(time.Now())
	// Every exchange tells its upstream connection that a response starts,
	// so the connection can check that response's framing. The hook is set
	// on the engine's own trace of this request when it has one (no
	// allocation), otherwise added with a trace of its own.
	if tr := httptrace.ContextClientTrace(req.Context()); tr != nil && tr.GotConn == nil {
		tr.GotConn = upstream.GotConn
	} else {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: upstream.GotConn}))
	}
	heldRetry := false
	defer func() {
		if heldRetry {
			a.pool.ReleaseRetry()
		}
	}()
	for attempt := 0; ; attempt++ {
		t, err := a.pool.Pick(req, f)
		if err != nil && attempt > 0 {
			// Every target has been tried: retry on one already tried.
			*f = a.pool.NewFilter(time.Now())
			t, err = a.pool.Pick(req, f)
		}
		if err != nil {
			a.pool.Refused(err)
			return nil, err
		}
		f.MarkTried(t)
		out := req
		if attempt > 0 {
			out = req.Clone(req.Context())
		}
		if body != nil {
			out.Body = body.reader()
		}
		out.URL.Scheme, out.URL.Host = t.URL.Scheme, t.URL.Host
		out.URL.Path = t.BasePath + path
		if rawPath != "" {
			out.URL.RawPath = t.BasePath + rawPath
		}
		var cancel context.CancelFunc
		var timer *time.Timer
		var fired bool
		var firedMu sync.Mutex
		if pol.perTry > 0 {
			var ctx context.Context
			ctx, cancel = context.WithCancel(req.Context())
			out = out.WithContext(ctx)
			timer = time.AfterFunc(pol.perTry, func() {
				firedMu.Lock()
				fired = true
				firedMu.Unlock()
				cancel()
			})
		}
		// Each attempt is a client span under the request's server span;
		// the backend receives the attempt span's traceparent.
		traced := rec != nil && rec.Trace.On()
		var span tracing.Attempt
		if traced {
			span = rec.Trace.StartAttempt(req.Context(), a.pool.Name, t.URL.Host, attempt+1, out.Header)
		}
		t.State.Begin()
		start := time.Now()
		resp, err := a.rt.RoundTrip(out)
		now := time.Now()
		if err == nil && headerFields(resp.Header) > a.maxHeaderFields {
			resp.Body.Close()
			resp, err = nil, errTooManyHeaders
		}
		perTryFired := false
		if timer != nil {
			timer.Stop()
			firedMu.Lock()
			perTryFired = fired
			firedMu.Unlock()
			if perTryFired && err == nil {
				// The timer fired just as the headers arrived: the attempt's
				// context is cancelled, so its body cannot be read.
				resp.Body.Close()
				resp, err = nil, errPerTryTimeout
			}
		}
		if traced {
			endAttemptSpan(span, resp, err, perTryFired)
		}
		if rec != nil {
			rec.Upstream, rec.UpstreamAddr, rec.Attempts = a.pool.Name, t.URL.Host, attempt+1
		}
		kind := failNone
		outcome := upstream.Success
		if err != nil {
			kind = classifyErr(err, perTryFired)
			if kind == failConnect {
				outcome = upstream.ConnectFailure
			} else if req.Context().Err() == nil && !deadlinePassed(req.Context()) {
				// A failure caused by the request's own deadline (the
				// backend resetting the stream as its copy of the deadline
				// fires) says nothing about the target's health.
				outcome = upstream.Failure
			}
		} else {
			t.State.ObserveLatency(now.Sub(start), now.UnixNano())
			if resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented && resp.StatusCode != http.StatusHTTPVersionNotSupported {
				outcome = upstream.Failure
			}
		}
		if outcome != upstream.Success || err == nil {
			a.pool.Report(t, outcome, now)
		}
		if heldRetry {
			a.pool.ReleaseRetry()
			heldRetry = false
		}
		if attempt < retries && req.Context().Err() == nil && a.shouldRetry(kind, resp, mayResend) && (body == nil || body.rewindable()) {
			// A retry after a connect failure is outside the budget: the
			// failed attempt never reached a backend, so the retry adds no
			// load to the pool.
			if wait, ok := a.retryAfter(t, resp, now); ok && (kind == failConnect || a.pool.AcquireRetry(pol.budgetPercent, pol.minConcurrency)) {
				heldRetry = kind != failConnect
				if kind == failConnect {
					a.pool.CountRetry()
				}
				if resp != nil {
					_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
					resp.Body.Close()
				}
				t.State.End()
				if cancel != nil {
					cancel()
				}
				if wait > 0 && !a.otherTargetAvailable(req, f) {
					if !sleepCtx(req.Context(), wait) {
						return nil, req.Context().Err()
					}
				}
				continue
			}
		}
		if err != nil {
			t.State.End()
			if cancel != nil {
				cancel()
			}
			if perTryFired {
				return nil, errPerTryTimeout
			}
			return nil, err
		}
		if a.debugHeader {
			resp.Header.Set("X-Portico-Upstream", t.URL.Host)
		}
		idle := a.bodyIdle
		if resp.StatusCode == http.StatusSwitchingProtocols {
			idle = 0
		}
		resp.Body = wrapBody(resp.Body, t.State, cancel, idle, rec, a.stalls)
		return resp, nil
	}
}

var filters = sync.Pool{New: func() any { return new(upstream.Filter) }}

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

// shouldRetry applies the retry conditions. A connect failure is retried for
// any method (the request never left); other failures only for idempotent
// methods unless the policy opts in.
func (a *attempts) shouldRetry(kind failure, resp *http.Response, mayResend bool) bool {
	pol := &a.retry
	switch kind {
	case failConnect:
		return pol.onConnect
	case failReset:
		return pol.onReset && mayResend
	case failTimeout:
		return pol.onTimeout && mayResend
	case failOther:
		return false
	}
	return resp != nil && mayResend && pol.retryStatus(resp.StatusCode) && resp.StatusCode != http.StatusSwitchingProtocols
}

// retryAfter honours a 503's Retry-After: the target gets no new requests
// until then, and a retry is allowed only if the wait is within
// max_retry_after. It returns how long a retry on the same target must wait.
func (a *attempts) retryAfter(t *upstream.Target, resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		return 0, true
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, true
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	} else {
		return 0, true
	}
	if d <= 0 {
		return 0, true
	}
	t.State.DelayUntil(now.Add(d))
	return d, d <= a.retry.maxRetryAfter
}

// otherTargetAvailable reports whether a not-yet-tried target is available.
func (a *attempts) otherTargetAvailable(req *http.Request, f *upstream.Filter) bool {
	for _, t := range a.pool.Targets {
		if f.OK(t) {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// replayBody keeps the first limit bytes of a request body so a failed
// attempt can be replayed. Each attempt reads through its own reader; a
// reader of an earlier attempt is detached, so a transport goroutine still
// reading it cannot steal bytes from the next attempt.
type replayBody struct {
	mu       sync.Mutex
	src      io.ReadCloser
	limit    int64
	buf      []byte
	overflow bool
	srcDone  bool
	gen      int
}

func (b *replayBody) reader() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	return &replayReader{b: b, gen: b.gen}
}

// rewindable reports whether every byte read so far is still buffered.
func (b *replayBody) rewindable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.overflow
}

type replayReader struct {
	b   *replayBody
	gen int
	pos int
}

var errDetached = errors.New("request body of a superseded attempt")

func (r *replayReader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.gen != b.gen {
		return 0, errDetached
	}
	if r.pos < len(b.buf) {
		n := copy(p, b.buf[r.pos:])
		r.pos += n
		return n, nil
	}
	if b.srcDone {
		return 0, io.EOF
	}
	if b.overflow && r.pos != len(b.buf) {
		return 0, errDetached
	}
	n, err := b.src.Read(p)
	if n > 0 {
		if !b.overflow && int64(len(b.buf)+n) <= b.limit {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.overflow = true
		}
		r.pos += n
		if b.overflow {
			b.buf = b.buf[:0]
			r.pos = 0
		}
	}
	if err == io.EOF {
		b.srcDone = true
	}
	return n, err
}

// Close is a no-op: the client's body is closed by the server when the
// handler returns, after the last attempt.
func (r *replayReader) Close() error { return nil }
