package upstream

import (
	"net/http"

	"github.com/portico-gw/portico/internal/config"
)

func init() {
	RegisterBalancer("weighted_round_robin", newWRR)
}

// maxWheel bounds the precomputed weighted schedule.
const maxWheel = 4096

// wrr is smooth weighted round-robin (nginx's algorithm) with the schedule
// precomputed at build time, so a pick is one atomic add and an index.
// Unavailable targets are taken out of the schedule (see rotation): the
// survivors share their slots in proportion to their weights.
type wrr struct {
	rotation
}

func newWRR(_ *config.Upstream, ts []*Target) (Balancer, error) {
	weights := make([]int, len(ts))
	for i, t := range ts {
		weights[i] = t.Weight
	}
	return &wrr{rotation{wheel: smoothSchedule(weights)}}, nil
}

func (b *wrr) Pick(ts []*Target, _ *http.Request, f *Filter) *Target {
	return b.pickSlowStart(ts, f, true)
}

// smoothSchedule returns nginx's smooth weighted round-robin sequence for
// weights, reduced by their GCD and capped at maxWheel entries.
func smoothSchedule(weights []int) []uint16 {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	for i := range weights {
		weights[i] /= g
		total += weights[i]
	}
	for total > maxWheel && total > len(weights) {
		total = 0
		for i := range weights {
			weights[i] = (weights[i] + 1) / 2
			total += weights[i]
		}
	}
	cur := make([]int, len(weights))
	out := make([]uint16, 0, total)
	for len(out) < total {
		best := 0
		for i, w := range weights {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, uint16(best))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Interface guard.
var _ Balancer = (*wrr)(nil)
