package upstream

import (
	"math/rand/v2"
	"sync/atomic"
)

// rotateCASTries bounds how often rotateOK retries its compare-and-swap
// under contention before it takes the target it found anyway.
const rotateCASTries = 8

// rotation is the schedule shared by round_robin and weighted_round_robin:
// a cursor over a cyclic sequence of target indexes (wheel, or 0..len(ts)-1
// when wheel is nil).
//
// A pick is one atomic add on the fast path. When the scheduled target is
// not admissible, the pick moves the cursor past every inadmissible slot up
// to the next admissible one with one compare-and-swap, so the slots of an
// unavailable target are consumed rather than handed to the target that
// follows it: the picks form the schedule with the unavailable targets
// removed, and the survivors share the missing target's traffic in
// proportion to their own share of the schedule. (A slot skipped because
// this request already tried that target, or because it is full, is
// consumed the same way; retries are rare enough for that not to matter.)
type rotation struct {
	next  atomic.Uint64
	wheel []uint16
}

// at returns the target of slot i.
func (r *rotation) at(ts []*Target, i uint64) *Target {
	if r.wheel == nil {
		return ts[i%uint64(len(ts))]
	}
	return ts[r.wheel[i%uint64(len(r.wheel))]]
}

// size is the length of one cycle of the schedule.
func (r *rotation) size(ts []*Target) uint64 {
	if r.wheel == nil {
		return uint64(len(ts))
	}
	return uint64(len(r.wheel))
}

// pick returns the next admissible target in schedule order, or nil when
// there is none.
func (r *rotation) pick(ts []*Target, f *Filter) *Target {
	n := r.size(ts)
	if n == 0 {
		return nil
	}
	if t := r.at(ts, r.next.Add(1)-1); f.OK(t) {
		return t
	}
	return r.skipTo(ts, n, f)
}

// skipTo is the slow path of pick: it scans from the cursor for the first
// admissible slot and moves the cursor just past it.
func (r *rotation) skipTo(ts []*Target, n uint64, f *Filter) *Target {
	for try := 0; ; try++ {
		c := r.next.Load()
		var found *Target
		var i uint64
		for ; i < n; i++ {
			if t := r.at(ts, c+i); f.OK(t) {
				found = t
				break
			}
		}
		if found == nil {
			return nil
		}
		if r.next.CompareAndSwap(c, c+i+1) || try >= rotateCASTries {
			return found
		}
	}
}

// pickSlowStart is Pick for the rotating policies: the scheduled target,
// kept with its slow-start probability. A refused target's turn goes to a
// random other admissible target (by weight when weighted), not to the next
// one in the schedule, so the refused share is spread over the pool instead
// of landing on one neighbour.
func (r *rotation) pickSlowStart(ts []*Target, f *Filter, weighted bool) *Target {
	t := r.pick(ts, f)
	for try := 0; !admitSlowStart(f, t, try); try++ {
		t = randomOK(ts, f, t, weighted)
	}
	return t
}

// randomOK returns an admissible target other than skip at random, by
// weight when weighted and uniformly otherwise; skip itself when it is the
// only admissible one; nil when there is none.
func randomOK(ts []*Target, f *Filter, skip *Target, weighted bool) *Target {
	if weighted {
		if t := weightedOK(ts, f, skip); t != nil {
			return t
		}
	} else {
		n := 0
		for _, t := range ts {
			if t != skip && f.OK(t) {
				n++
			}
		}
		if n > 0 {
			k := rand.IntN(n)
			var last *Target
			for _, t := range ts {
				if t == skip || !f.OK(t) {
					continue
				}
				if k == 0 {
					return t
				}
				k--
				last = t
			}
			// A target became unavailable between the two scans.
			return last
		}
	}
	if skip != nil && f.OK(skip) {
		return skip
	}
	return nil
}
