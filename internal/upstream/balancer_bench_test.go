package upstream

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// balBenchKeys is the number of distinct request keys (paths) the
// benchmarks cycle through.
const balBenchKeys = 1024

// balBenchSetup builds policy over 10 weighted targets and requests with
// distinct path keys.
func balBenchSetup(b *testing.B, policy string) (Balancer, []*Target, []*http.Request) {
	ts := balTargets(5, 3, 2, 1, 1, 1, 1, 1, 1, 1)
	bal := balNew(b, policy, ts, nil)
	reqs := make([]*http.Request, balBenchKeys)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/k/"+strconv.Itoa(i), nil)
	}
	return bal, ts, reqs
}

// balBenchPicks measures picks of policy over balBenchSetup's targets,
// from one goroutine or from all Ps at once (parallel); down makes target 1
// unavailable.
func balBenchPicks(b *testing.B, policy string, down, parallel bool) {
	bal, ts, reqs := balBenchSetup(b, policy)
	now := time.Now()
	if down {
		ts[1].State.SetHealthy(false, now)
	}
	b.ReportAllocs()
	if !parallel {
		f := NewFilter(now, 0)
		for i := 0; b.Loop(); i++ {
			if bal.Pick(ts, reqs[i%balBenchKeys], &f) == nil {
				b.Fatal("no target")
			}
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		f := NewFilter(now, 0)
		for i := 0; pb.Next(); i++ {
			if bal.Pick(ts, reqs[i%balBenchKeys], &f) == nil {
				b.Fatal("no target")
			}
		}
	})
}

// BenchmarkBalancerPick measures one pick per policy from one goroutine.
func BenchmarkBalancerPick(b *testing.B) {
	for _, p := range balPolicies {
		b.Run(p, func(b *testing.B) { balBenchPicks(b, p, false, false) })
	}
}

// BenchmarkBalancerPickParallel measures picks from all Ps at once: a
// policy whose Pick took a lock or shared a contended cache line would stop
// scaling here.
func BenchmarkBalancerPickParallel(b *testing.B) {
	for _, p := range balPolicies {
		b.Run(p, func(b *testing.B) { balBenchPicks(b, p, false, true) })
	}
}
