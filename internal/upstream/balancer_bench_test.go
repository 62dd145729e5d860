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

// BenchmarkBalancerPick measures one pick per policy from one goroutine.
func BenchmarkBalancerPick(b *testing.B) {
	for _, p := range balPolicies {
		b.Run(p, func(b *testing.B) {
			bal, ts, reqs := balBenchSetup(b, p)
			f := NewFilter(time.Now(), 0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if bal.Pick(ts, reqs[i%balBenchKeys], &f) == nil {
					b.Fatal("no target")
				}
				i++
			}
		})
	}
}

// BenchmarkBalancerPickParallel measures picks from all Ps at once: a
// policy whose Pick took a lock or shared a contended cache line would stop
// scaling here.
func BenchmarkBalancerPickParallel(b *testing.B) {
	for _, p := range balPolicies {
		b.Run(p, func(b *testing.B) {
			bal, ts, reqs := balBenchSetup(b, p)
			now := time.Now()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				f := NewFilter(now, 0)
				i := 0
				for pb.Next() {
					if bal.Pick(ts, reqs[i%balBenchKeys], &f) == nil {
						b.Fatal("no target")
					}
					i++
				}
			})
		})
	}
}
