package upstream

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrOverloaded is returned when a circuit-breaker limit refuses a request.
var ErrOverloaded = errors.New("upstream overloaded")

// Outcome is what one attempt told us about a target's health.
type Outcome int

// Attempt outcomes, reported to the pool for passive outlier detection.
const (
	// Success is any response below 500 (and 501/505, which say nothing
	// about the target's health).
	Success Outcome = iota
	// ConnectFailure: the target could not be reached.
	ConnectFailure
	// Failure: reset, timeout or a 5xx response.
	Failure
)

// outlier is a pool's compiled passive health policy.
type outlier struct {
	enabled     bool
	consecutive int32
	base, max   time.Duration
	maxPercent  int
}

// limits is a pool's compiled circuit-breaker policy.
type limits struct {
	maxRequests  int64
	maxPerTarget int64
}

// NewFilter returns the pick filter for one request to this pool: slow
// start and the per-target in-flight cap (max_connections + max_pending).
func (p *Pool) NewFilter(now time.Time) Filter {
	f := NewFilter(now, p.Config.SlowStart.D())
	f.MaxInflight = p.limits.maxPerTarget
	return f
}

// Begin admits a request to the pool under max_requests; false means the
// breaker is open and the caller must answer 503 at once. Every true must be
// matched by End.
func (p *Pool) Begin() bool {
	n := p.state.active.Add(1)
	if p.limits.maxRequests > 0 && n > p.limits.maxRequests {
		p.state.active.Add(-1)
		p.state.overload.Add(1)
		p.Refused(ErrOverloaded)
		return false
	}
	return true
}

// Refused logs, at WARN and at most once per pool and cause every 10s, that
// the pool refused a request with err (ErrOverloaded: a circuit-breaker
// limit; ErrNoTarget: every target is unhealthy or ejected). Call it with
// the final refusal of a request only.
func (p *Pool) Refused(err error) {
	if p.warn == nil {
		return
	}
	msg := "upstream refused a request: no target available (all unhealthy, ejected or delayed)"
	if errors.Is(err, ErrOverloaded) {
		msg = "upstream circuit breaker open: requests refused at max_requests or max_connections + max_pending"
	}
	p.warn.Warn("upstream", msg, nil, slog.String("pool", p.Name))
}

// End finishes a request admitted by Begin.
func (p *Pool) End() { p.state.active.Add(-1) }

// State is the pool-wide runtime state.
func (p *Pool) State() *PoolState { return p.state }

// AcquireRetry reserves a retry under the retry budget: retries in flight
// may not exceed max(minConcurrency, percent% of requests in flight).
// Every true must be matched by ReleaseRetry.
func (p *Pool) AcquireRetry(percent, minConcurrency int) bool {
	allowed := p.state.active.Load() * int64(percent) / 100
	if allowed < int64(minConcurrency) {
		allowed = int64(minConcurrency)
	}
	if p.state.retries.Add(1) > allowed {
		p.state.retries.Add(-1)
		p.state.budgetHit.Add(1)
		return false
	}
	p.state.retriesTotal.Add(1)
	return true
}

// CountRetry records a retry made outside the budget (after a connect
// failure).
func (p *Pool) CountRetry() { p.state.retriesTotal.Add(1) }

// ReleaseRetry returns a retry reserved by AcquireRetry.
func (p *Pool) ReleaseRetry() { p.state.retries.Add(-1) }

// Report feeds one attempt's outcome to passive outlier detection: after
// the configured number of consecutive failures the target is ejected for a
// back-off that grows with each ejection, unless that would eject more than
// max_ejection_percent of the pool.
func (p *Pool) Report(t *Target, o Outcome, now time.Time) {
	if o == Success {
		if t.State.RecordSuccess(now.UnixNano()) && p.log != nil {
			p.log.Info("target back in rotation after outlier ejection", "pool", p.Name, "target", t.URL.Redacted())
		}
		return
	}
	if !p.outlier.enabled {
		return
	}
	if t.State.RecordFailure() < p.outlier.consecutive {
		return
	}
	nowNs := now.UnixNano()
	if t.State.Ejected(nowNs) {
		return
	}
	ejected := 0
	for _, o := range p.Targets {
		if o.State.Ejected(nowNs) {
			ejected++
		}
	}
	if (ejected+1)*100 > p.outlier.maxPercent*len(p.Targets) {
		if p.warn != nil {
			p.warn.Warn("upstream", "outlier detection did not eject a failing target: max_ejection_percent of the pool is already ejected", nil,
				slog.String("pool", p.Name), slog.String("target", t.URL.Redacted()))
		}
		return
	}
	d := t.State.Eject(now, p.outlier.base, p.outlier.max)
	if p.log != nil {
		// Logged once per ejection; the back-off bounds how often.
		p.log.Warn("target ejected by outlier detection", "dependency", "upstream",
			"pool", p.Name, "target", t.URL.Redacted(),
			"reason", fmt.Sprintf("%d consecutive failures", p.outlier.consecutive),
			"ejected_for", d.String(), "ejections", t.State.EjectionsTotal())
	}
}
