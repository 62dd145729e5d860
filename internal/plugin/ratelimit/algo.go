package ratelimit

import (
	"math"
	"time"
)

// Algorithms.
const (
	algGCRA    = 1
	algSliding = 2
)

// limitSpec is the precomputed form of one Limit. All times are integer
// nanoseconds.
type limitSpec struct {
	alg   int
	rate  int64
	burst int64
	// per is the window length.
	per int64
	// t is the GCRA emission interval per/rate (truncated to whole
	// nanoseconds, so rate tokens refill in at most rate−1 ns less than per).
	t int64
	// name is the policy name used in the IETF headers, e.g. "10-per-1s".
	name string
	// window is the policy window in whole seconds (rounded up, at least 1).
	window int64
}

// state is the per-key state of one limit.
//
// GCRA: a is the theoretical arrival time (TAT).
// Sliding window: a is the index of the current window (now/per), b the
// count of the current window and c the count of the previous one.
type state struct {
	a, b, c int64
}

// verdict is the outcome of one limit for one request.
type verdict struct {
	// avail is the number of tokens available before this request.
	avail int64
	// remaining is what is left after the decision.
	remaining int64
	// reset is the time until the limit is fully recovered (GCRA) or the
	// current window ends (sliding window), after the decision.
	reset int64
	// retry is, for a denial, the time until n tokens are available.
	retry int64
}

// peek evaluates the limit for n tokens at now without changing st; st is
// normalised (sliding windows rolled forward) so commit can apply.
func (l *limitSpec) peek(st *state, now, n int64) verdict {
	switch l.alg {
	case algGCRA:
		tat := max(st.a, now)
		avail := (now + l.burst*l.t - tat) / l.t
		avail = max(avail, 0)
		v := verdict{avail: avail}
		if avail >= n {
			v.remaining = avail - n
			v.reset = tat + n*l.t - now
		} else {
			v.remaining = avail
			v.reset = tat - now
			v.retry = tat + n*l.t - l.burst*l.t - now
		}
		return v
	default:
		l.roll(st, now)
		elapsed := now - st.a*l.per
		est := l.estimate(st, elapsed)
		avail := int64(math.Floor(float64(l.rate) - est + 1e-9))
		avail = max(min(avail, l.rate-st.b), 0)
		v := verdict{avail: avail, reset: l.per - elapsed}
		if avail >= n {
			v.remaining = avail - n
		} else {
			v.remaining = avail
			v.retry = l.slidingRetry(st.b, st.c, elapsed, n)
		}
		return v
	}
}

// estimate is the sliding-window-counter estimate of the requests in the
// last per: the previous window's count weighted by the part of it still
// inside the sliding window, plus the current window's count.
func (l *limitSpec) estimate(st *state, elapsed int64) float64 {
	return float64(st.c)*float64(l.per-elapsed)/float64(l.per) + float64(st.b)
}

// slidingRetry is the time until n more requests fit, given the current
// and previous counts and the time elapsed in the current window.
func (l *limitSpec) slidingRetry(cur, prev, elapsed, n int64) int64 {
	per := float64(l.per)
	if n > l.rate {
		return l.per
	}
	if cur+n <= l.rate && prev > 0 {
		// The previous window's weight must decay enough.
		e := per - float64(l.rate-cur-n)*per/float64(prev)
		return max(int64(math.Ceil(e))-elapsed, 1)
	}
	// Wait for the next window, where the current count becomes the
	// previous one.
	wait := l.per - elapsed
	if cur > 0 {
		e := per - float64(l.rate-n)*per/float64(cur)
		if e > 0 {
			wait += int64(math.Ceil(e))
		}
	}
	return max(wait, 1)
}

// roll moves a sliding window state to the window containing now.
func (l *limitSpec) roll(st *state, now int64) {
	win := now / l.per
	switch {
	case st.a == win:
	case st.a == win-1:
		st.a, st.c, st.b = win, st.b, 0
	default:
		st.a, st.b, st.c = win, 0, 0
	}
}

// commit takes n tokens; peek must have been called at the same now.
func (l *limitSpec) commit(st *state, now, n int64) {
	if l.alg == algGCRA {
		st.a = max(st.a, now) + n*l.t
		return
	}
	st.b += n
}

// idleAt is the time from which st is fully recovered, so the key can be
// forgotten without changing any decision.
func (l *limitSpec) idleAt(st *state) int64 {
	if l.alg == algGCRA {
		return st.a
	}
	return (st.a + 2) * l.per
}

// decision is the combined outcome of every limit of a request.
type decision struct {
	allowed bool
	// idx is the most restrictive limit: the denying one with the longest
	// retry, or with the fewest remaining tokens when allowed.
	idx       int
	remaining int64
	reset     time.Duration
	retry     time.Duration
}

// decide checks every limit for n tokens and commits them only when all
// allow, so a denial consumes nothing. states has one entry per limit.
func decide(limits []limitSpec, states []state, now, n int64) (decision, int64) {
	var vs [maxLimits]verdict
	ok := true
	for i := range limits {
		vs[i] = limits[i].peek(&states[i], now, n)
		if vs[i].avail < n {
			ok = false
		}
	}
	var idle int64
	if ok {
		for i := range limits {
			limits[i].commit(&states[i], now, n)
		}
	}
	for i := range limits {
		idle = max(idle, limits[i].idleAt(&states[i]))
	}
	return summarize(vs[:len(limits)], ok), idle
}

// summarize picks the most restrictive verdict.
func summarize(vs []verdict, allowed bool) decision {
	d := decision{allowed: allowed, idx: -1}
	for i, v := range vs {
		switch {
		case !allowed:
			if v.retry > 0 && (d.idx < 0 || time.Duration(v.retry) > d.retry) {
				d.idx, d.retry = i, time.Duration(v.retry)
			}
		case d.idx < 0 || v.remaining < d.remaining ||
			(v.remaining == d.remaining && time.Duration(v.reset) > d.reset):
			d.idx, d.remaining, d.reset = i, v.remaining, time.Duration(v.reset)
		}
	}
	if !allowed {
		if d.idx < 0 {
			d.idx = 0
			d.retry = time.Duration(vs[0].reset)
		}
		d.remaining = 0
		// While denied, the effective window is the wait before the next
		// request can pass.
		d.reset = d.retry
	}
	return d
}
