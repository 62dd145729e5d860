package upstream

import (
	"net/http"

	"github.com/portico-gw/portico/internal/config"
)

func init() {
	RegisterBalancer("round_robin", newRoundRobin)
}

// roundRobin hands requests to the targets in turn, ignoring weights. A
// pick is one atomic add; unavailable targets are taken out of the rotation
// (see rotation), so the others share their turns evenly.
type roundRobin struct {
	rot rotation
}

func newRoundRobin(_ *config.Upstream, _ []*Target) (Balancer, error) {
	return &roundRobin{}, nil
}

func (b *roundRobin) Pick(ts []*Target, _ *http.Request, f *Filter) *Target {
	return b.rot.pickSlowStart(ts, f, false)
}

// Interface guard.
var _ Balancer = (*roundRobin)(nil)
