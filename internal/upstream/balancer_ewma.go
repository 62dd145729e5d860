package upstream

import (
	"net/http"

	"github.com/portico-gw/portico/internal/config"
)

func init() {
	RegisterBalancer("ewma", newEWMA)
}

// unprobedPenalty is the latency (ns) assumed for a target that has not
// answered yet but already has requests in flight: it keeps a new target
// that hangs from drawing every request while its first ones are pending.
const unprobedPenalty = float64(1e9)

// peakEWMA is Finagle's and Linkerd's peak-EWMA balancer: the power of two
// choices over admissible targets (drawn by weight), keeping the one with
// the lower cost latency × (in-flight + 1) / weight, where latency is the
// target's peak-EWMA response time. A target with no latency sample and
// nothing in flight costs 0, so new targets are probed at once. On a tie the
// first draw wins, so an idle, unprobed pool is spread by weight.
type peakEWMA struct {
	w weightTable
}

func newEWMA(_ *config.Upstream, ts []*Target) (Balancer, error) {
	return &peakEWMA{w: newWeightTable(ts)}, nil
}

func (b *peakEWMA) Pick(ts []*Target, _ *http.Request, f *Filter) *Target {
	for try := 0; ; try++ {
		t := b.pickOnce(ts, f)
		if admitSlowStart(f, t, try) {
			return t
		}
	}
}

func (b *peakEWMA) pickOnce(ts []*Target, f *Filter) *Target {
	x, y := b.w.pair(ts, f)
	if y == nil || ewmaCost(x) <= ewmaCost(y) {
		return x
	}
	return y
}

// ewmaCost is t's expected cost of one more request.
func ewmaCost(t *Target) float64 {
	lat := t.State.Latency()
	in := t.State.Inflight()
	if lat == 0 {
		if in <= 0 {
			return 0
		}
		lat = unprobedPenalty
	}
	if in < 0 {
		in = 0
	}
	return lat * float64(in+1) / float64(weightOf(t))
}

// Interface guard.
var _ Balancer = (*peakEWMA)(nil)
