package upstream

import (
	"net/http"
	"sync/atomic"

	"github.com/portico-gw/portico/internal/config"
)

func init() {
	RegisterBalancer("round_robin", newRoundRobin)
}

// roundRobin hands requests to the targets in turn, ignoring weights. A
// pick is one atomic add; when the scheduled target is unavailable it scans
// forward to the next admissible one.
type roundRobin struct {
	next atomic.Uint64
}

func newRoundRobin(_ *config.Upstream, _ []*Target) (Balancer, error) {
	return &roundRobin{}, nil
}

func (b *roundRobin) Pick(ts []*Target, _ *http.Request, f *Filter) *Target {
	n := uint64(len(ts))
	if n == 0 {
		return nil
	}
	for try := 0; ; try++ {
		t := firstOK(ts, int((b.next.Add(1)-1)%n), f)
		if admitSlowStart(f, t, try) {
			return t
		}
	}
}
