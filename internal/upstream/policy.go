package upstream

import (
	"errors"
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
		return false
	}
	return true
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
		t.State.RecordSuccess(now.UnixNano())
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
		return
	}
	t.State.Eject(now, p.outlier.base, p.outlier.max)
}
