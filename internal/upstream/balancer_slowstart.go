package upstream

import (
	"math/rand/v2"
)

// slowStartRetries bounds how many picks slow start may refuse for one
// request; the pick after that is accepted whatever its factor, so a pool
// whose targets all just recovered still answers.
const slowStartRetries = 4

// admitSlowStart reports whether a balancer should return t, picked on its
// try-th attempt (counting from 0), or pick again. Under slow start a target
// is kept with probability f.SlowStartFactor(t); a nil pick, slow start off,
// or the retry bound reached always admit. Balancers use it as
//
//	for try := 0; ; try++ {
//		t := pickOnce(...)
//		if admitSlowStart(f, t, try) {
//			return t
//		}
//	}
func admitSlowStart(f *Filter, t *Target, try int) bool {
	if t == nil || f.SlowStart <= 0 || try >= slowStartRetries {
		return true
	}
	p := f.SlowStartFactor(t)
	return p >= 1 || rand.Float64() < p
}

// admitSlowStartAt is admitSlowStart with the random draw supplied: u in
// [0, 1). Consistent hashing derives u from the key so that, as a target's
// factor grows, the keys it has accepted stay with it.
func admitSlowStartAt(f *Filter, t *Target, try int, u float64) bool {
	if t == nil || f.SlowStart <= 0 || try >= slowStartRetries {
		return true
	}
	return u < f.SlowStartFactor(t)
}

// weightOf is t's weight, at least 1.
func weightOf(t *Target) uint64 {
	if t.Weight <= 0 {
		return 1
	}
	return uint64(t.Weight)
}

// weightTable is the cumulative weight table of a pool's targets, for
// weighted random draws in O(log n) without allocating.
type weightTable struct {
	// cum[i] is the sum of the weights of targets 0..i.
	cum   []uint64
	total uint64
}

func newWeightTable(ts []*Target) weightTable {
	cum := make([]uint64, len(ts))
	var total uint64
	for i, t := range ts {
		total += weightOf(t)
		cum[i] = total
	}
	return weightTable{cum: cum, total: total}
}

// search returns the index of the target whose weight interval holds x
// (x < total).
func (w *weightTable) search(x uint64) int {
	lo, hi := 0, len(w.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x < w.cum[m] {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return lo
}

// draw returns a target index with probability proportional to its weight.
func (w *weightTable) draw() int { return w.search(rand.Uint64N(w.total)) }

// drawExcept returns a target index other than i, with probability
// proportional to its weight. There must be at least two targets.
func (w *weightTable) drawExcept(i int) int {
	wi := w.cum[i]
	lo := uint64(0)
	if i > 0 {
		lo = w.cum[i-1]
	}
	wi -= lo
	x := rand.Uint64N(w.total - wi)
	if x >= lo {
		x += wi
	}
	return w.search(x)
}

// matches reports whether the table was built for ts (same length); a
// mismatch sends balancers to their scanning paths instead of indexing out
// of range.
func (w *weightTable) matches(ts []*Target) bool { return len(w.cum) == len(ts) && w.total > 0 }

// weightedOK returns a target f admits, other than skip, with probability
// proportional to its weight among those; nil when there is none. It scans
// ts twice and is the slow path of the weighted policies.
func weightedOK(ts []*Target, f *Filter, skip *Target) *Target {
	var sum uint64
	for _, t := range ts {
		if t != skip && f.OK(t) {
			sum += weightOf(t)
		}
	}
	if sum == 0 {
		return nil
	}
	x := rand.Uint64N(sum)
	var last *Target
	for _, t := range ts {
		if t == skip || !f.OK(t) {
			continue
		}
		w := weightOf(t)
		if x < w {
			return t
		}
		x -= w
		last = t
	}
	// A target became unavailable between the two scans.
	return last
}

// pickOK draws a target by weight; when the drawn one is unavailable it
// draws again by weight among the admissible ones.
func (w *weightTable) pickOK(ts []*Target, f *Filter) *Target {
	if w.matches(ts) {
		if t := ts[w.draw()]; f.OK(t) {
			return t
		}
	}
	return weightedOK(ts, f, nil)
}

// pair draws two distinct admissible targets for a power-of-two-choices
// pick: a with probability proportional to its weight among admissible
// targets, b (nil when a is the only one) weighted among the rest. A policy
// that keeps a on a tie therefore spreads an idle pool exactly by weight.
func (w *weightTable) pair(ts []*Target, f *Filter) (a, b *Target) {
	if !w.matches(ts) {
		if a = weightedOK(ts, f, nil); a == nil {
			return nil, nil
		}
		return a, weightedOK(ts, f, a)
	}
	i := w.draw()
	if a = ts[i]; !f.OK(a) {
		if a = weightedOK(ts, f, nil); a == nil {
			return nil, nil
		}
	} else if len(ts) > 1 {
		if b = ts[w.drawExcept(i)]; f.OK(b) {
			return a, b
		}
	}
	return a, weightedOK(ts, f, a)
}
