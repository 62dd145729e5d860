package upstream

import (
	"net/http"

	"github.com/portico-gw/portico/internal/config"
)

func init() {
	RegisterBalancer("random", newRandom)
}

// randomBalancer picks a target at random with probability proportional to
// its weight, from a cumulative weight table built once. When the drawn
// target is unavailable it draws again by weight among the admissible ones.
// The random source is math/rand/v2's per-thread generator: no shared lock.
type randomBalancer struct {
	w weightTable
}

func newRandom(_ *config.Upstream, ts []*Target) (Balancer, error) {
	return &randomBalancer{w: newWeightTable(ts)}, nil
}

func (b *randomBalancer) Pick(ts []*Target, _ *http.Request, f *Filter) *Target {
	for try := 0; ; try++ {
		t := b.w.pickOK(ts, f)
		if admitSlowStart(f, t, try) {
			return t
		}
	}
}

// Interface guard.
var _ Balancer = (*randomBalancer)(nil)
