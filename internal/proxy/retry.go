package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/portico-gw/portico/internal/config"
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
	if perTryFired || request.IsTimeout(err) {
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

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
