package upstream

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/usage"
)

// TargetState is the long-lived runtime state of one target: in-flight
// requests, health, ejection and latency. It lives in a StateRegistry keyed
// by pool name and target URL, so a reload that keeps a target keeps its
// state. Every field is atomic: the request path takes no lock.
type TargetState struct {
	inflight atomic.Int64
	// activeDown is set by the active health checker.
	activeDown atomic.Bool
	// ejectedUntil (unix nanos) is set by passive outlier detection.
	ejectedUntil atomic.Int64
	// ejections counts consecutive ejections, for the growing back-off.
	ejections atomic.Int32
	// ejectionsTotal counts every ejection, for metrics.
	ejectionsTotal atomic.Int64
	// consecFailures counts consecutive failed requests (connect errors, 5xx).
	consecFailures atomic.Int32
	// notBefore (unix nanos) is set from an upstream's Retry-After.
	notBefore atomic.Int64
	// upSince (unix nanos) is when the target last became available; slow
	// start ramps its share up from there.
	upSince atomic.Int64
	// ewmaBits and ewmaStamp hold the peak-EWMA latency (float64 nanos).
	ewmaBits  atomic.Uint64
	ewmaStamp atomic.Int64
}

// EjectionsTotal is how many times the target has been ejected.
func (s *TargetState) EjectionsTotal() int64 { return s.ejectionsTotal.Load() }

// Inflight is the number of requests currently sent to the target.
func (s *TargetState) Inflight() int64 { return s.inflight.Load() }

// Begin records a request starting on the target.
func (s *TargetState) Begin() { s.inflight.Add(1) }

// End records a request finishing on the target.
func (s *TargetState) End() { s.inflight.Add(-1) }

// Healthy reports the active health checker's verdict.
func (s *TargetState) Healthy() bool { return !s.activeDown.Load() }

// SetHealthy records the active health checker's verdict; a transition to
// healthy starts the slow-start ramp.
func (s *TargetState) SetHealthy(ok bool, now time.Time) {
	if s.activeDown.Swap(!ok) && ok {
		s.upSince.Store(now.UnixNano())
	}
}

// Ejected reports whether passive outlier detection has ejected the target.
func (s *TargetState) Ejected(now int64) bool { return s.ejectedUntil.Load() > now }

// Available reports whether the target may receive a new request now.
func (s *TargetState) Available(now int64) bool {
	return !s.activeDown.Load() && s.ejectedUntil.Load() <= now && s.notBefore.Load() <= now
}

// Eject takes the target out of rotation until now + backoff(ejections).
func (s *TargetState) Eject(now time.Time, base, max time.Duration) time.Duration {
	n := s.ejections.Add(1)
	s.ejectionsTotal.Add(1)
	d := base * time.Duration(n)
	if max > 0 && d > max {
		d = max
	}
	s.ejectedUntil.Store(now.Add(d).UnixNano())
	s.upSince.Store(now.Add(d).UnixNano())
	s.consecFailures.Store(0)
	return d
}

// DelayUntil keeps new requests away from the target until t (Retry-After).
func (s *TargetState) DelayUntil(t time.Time) { s.notBefore.Store(t.UnixNano()) }

// RecordSuccess resets the failure streak and, once a target has served
// successfully after an ejection, the ejection back-off; it reports whether
// this success ended an ejection (true for one caller only).
func (s *TargetState) RecordSuccess(now int64) (recovered bool) {
	if s.consecFailures.Load() != 0 {
		s.consecFailures.Store(0)
	}
	if n := s.ejections.Load(); n != 0 && s.ejectedUntil.Load() <= now {
		return s.ejections.CompareAndSwap(n, 0)
	}
	return false
}

// RecordFailure counts a failure and reports the failure streak.
func (s *TargetState) RecordFailure() int32 { return s.consecFailures.Add(1) }

// SlowStartFactor is the share (0..1] of its normal traffic the target should
// receive, ramping linearly over window after it became available.
func (s *TargetState) SlowStartFactor(now int64, window time.Duration) float64 {
	if window <= 0 {
		return 1
	}
	since := s.upSince.Load()
	if since == 0 || now-since >= int64(window) {
		return 1
	}
	if now <= since {
		return 0.05
	}
	f := float64(now-since) / float64(window)
	if f < 0.05 {
		f = 0.05
	}
	return f
}

// ewmaDecay is the time constant of the peak-EWMA latency.
const ewmaDecay = 10 * time.Second

// ObserveLatency folds a response latency into the peak-EWMA: a slower
// sample replaces the average at once (peak), faster ones decay into it.
func (s *TargetState) ObserveLatency(d time.Duration, now int64) {
	for {
		oldBits := s.ewmaBits.Load()
		old := math.Float64frombits(oldBits)
		stamp := s.ewmaStamp.Load()
		v := float64(d)
		var next float64
		if old == 0 || v > old {
			next = v
		} else {
			w := math.Exp(-float64(now-stamp) / float64(ewmaDecay))
			next = old*w + v*(1-w)
		}
		if s.ewmaBits.CompareAndSwap(oldBits, math.Float64bits(next)) {
			s.ewmaStamp.Store(now)
			return
		}
	}
}

// Latency is the current peak-EWMA latency in nanoseconds (0 before any sample).
func (s *TargetState) Latency() float64 { return math.Float64frombits(s.ewmaBits.Load()) }

// StateRegistry keeps TargetStates and PoolStates alive across snapshots,
// ref-counted by the pools that use them (two usage.Pools). The gateway's
// Runtime owns one.
type StateRegistry struct {
	targets usage.Pool[*TargetState]
	pools   usage.Pool[*PoolState]
}

// NewStateRegistry returns an empty registry.
func NewStateRegistry() *StateRegistry { return &StateRegistry{} }

// Acquire returns the state for key (pool name + target URL), creating it,
// and the func that releases it (once); the state is forgotten with the
// last release.
func (g *StateRegistry) Acquire(key string) (*TargetState, func()) {
	return acquireState(&g.targets, key)
}

// AcquirePool returns the pool-wide state for name, creating it, and the
// func that releases it.
func (g *StateRegistry) AcquirePool(name string) (*PoolState, func()) {
	return acquireState(&g.pools, name)
}

// acquireState acquires the *S under key from p, creating a zero one.
func acquireState[S any](p *usage.Pool[*S], key string) (*S, func()) {
	s, release, _ := p.Acquire(key, func() (*S, error) { return new(S), nil })
	return s, release
}

// Len reports how many target states are alive (for leak tests).
func (g *StateRegistry) Len() int { return g.targets.Len() }

// PoolState is the long-lived, pool-wide runtime state: requests and
// retries in flight, for circuit breaking and the retry budget. Like
// TargetState it survives reloads of an unchanged upstream name.
type PoolState struct {
	active  atomic.Int64
	retries atomic.Int64
	// retriesTotal counts every retry made, for metrics.
	retriesTotal atomic.Int64
	overload     atomic.Int64
	budgetHit    atomic.Int64
}

// Active is the number of requests in flight to the pool.
func (s *PoolState) Active() int64 { return s.active.Load() }

// Retries is the number of retries in flight.
func (s *PoolState) Retries() int64 { return s.retries.Load() }

// RetriesTotal counts every retry made.
func (s *PoolState) RetriesTotal() int64 { return s.retriesTotal.Load() }

// Overloaded counts requests refused by the circuit breaker.
func (s *PoolState) Overloaded() int64 { return s.overload.Load() }

// BudgetExhausted counts retries refused by the retry budget.
func (s *PoolState) BudgetExhausted() int64 { return s.budgetHit.Load() }
