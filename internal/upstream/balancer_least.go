package upstream

import (
	"net/http"

	"github.com/portico-gw/portico/internal/config"
)

func init() {
	RegisterBalancer("least_request", newLeastRequest)
}

// leastRequest is the power of two choices on in-flight requests: it draws
// two distinct admissible targets by weight and sends the request to the one
// with fewer in-flight requests per unit of weight. On a tie the first draw
// wins, so an idle pool is spread exactly by weight.
type leastRequest struct {
	w weightTable
}

func newLeastRequest(_ *config.Upstream, ts []*Target) (Balancer, error) {
	return &leastRequest{w: newWeightTable(ts)}, nil
}

func (b *leastRequest) Pick(ts []*Target, _ *http.Request, f *Filter) *Target {
	for try := 0; ; try++ {
		t := b.pickOnce(ts, f)
		if admitSlowStart(f, t, try) {
			return t
		}
	}
}

func (b *leastRequest) pickOnce(ts []*Target, f *Filter) *Target {
	x, y := b.w.pair(ts, f)
	if y == nil {
		return x
	}
	// inflight(x)/weight(x) <= inflight(y)/weight(y), without division.
	if x.State.Inflight()*int64(weightOf(y)) <= y.State.Inflight()*int64(weightOf(x)) {
		return x
	}
	return y
}

// Interface guard.
var _ Balancer = (*leastRequest)(nil)
