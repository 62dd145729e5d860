package upstream

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// balPolicies are the registered selection policies under test.
var balPolicies = []string{"round_robin", "weighted_round_robin", "random", "least_request", "consistent_hash", "ewma"}

// balPicks is the number of picks of the distribution tests: with 100,000
// draws a ±5% band around a 20% share is about eight standard deviations
// wide, so the random policies do not flake.
const balPicks = 100_000

// balTargets builds targets with the given weights and fresh (healthy)
// state; target i is http://10.1.0.<i+1>:8080.
func balTargets(weights ...int) []*Target {
	urls := make([]string, len(weights))
	for i := range weights {
		urls[i] = fmt.Sprintf("http://10.1.0.%d:8080", i+1)
	}
	return balTargetsAt(urls, weights)
}

// balTargetsAt builds targets for urls with the given weights.
func balTargetsAt(urls []string, weights []int) []*Target {
	ts := make([]*Target, len(urls))
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			panic(err)
		}
		ts[i] = &Target{URL: u, Weight: weights[i], Index: i, State: &TargetState{}}
	}
	return ts
}

// balOnes returns n weights of 1.
func balOnes(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// balNew builds policy over ts; consistent_hash hashes on hash (the path
// when nil).
func balNew(t testing.TB, policy string, ts []*Target, hash *config.HashOn) Balancer {
	t.Helper()
	u := &config.Upstream{Balancer: policy}
	if policy == "consistent_hash" {
		if hash == nil {
			hash = &config.HashOn{Path: true}
		}
		u.HashOn = hash
	}
	b, err := newBalancer(u, ts)
	if err != nil {
		t.Fatalf("newBalancer(%s): %v", policy, err)
	}
	return b
}

// balCount picks n times with filter f and counts picks per target index;
// request i has path /k/<i>, so consistent_hash sees n distinct keys.
func balCount(t testing.TB, b Balancer, ts []*Target, f Filter, n int) []int {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	counts := make([]int, len(ts))
	for i := range n {
		r.URL.Path = "/k/" + strconv.Itoa(i)
		ff := f
		tg := b.Pick(ts, r, &ff)
		if tg == nil {
			t.Fatalf("pick %d = nil", i)
		}
		counts[tg.Index]++
	}
	return counts
}

// balCheckShares fails unless every counts[i]/n is within ±tol (relative)
// of want[i].
func balCheckShares(t testing.TB, counts []int, want []float64, tol float64) {
	t.Helper()
	n := 0
	for _, c := range counts {
		n += c
	}
	for i, c := range counts {
		got := float64(c) / float64(n)
		if math.Abs(got-want[i]) > tol*want[i] {
			t.Fatalf("target %d share = %.4f, want %.4f ±%.0f%% (counts %v)", i, got, want[i], tol*100, counts)
		}
	}
}

// balWeightShares returns the expected shares for weights.
func balWeightShares(weights []int) []float64 {
	total := 0
	for _, w := range weights {
		total += w
	}
	out := make([]float64, len(weights))
	for i, w := range weights {
		out[i] = float64(w) / float64(total)
	}
	return out
}

// TestBalancerRegistered checks that every policy is registered.
func TestBalancerRegistered(t *testing.T) {
	t.Parallel()
	names := BalancerNames()
	for _, p := range balPolicies {
		if !slices.Contains(names, p) {
			t.Errorf("balancer %q not registered (have %v)", p, names)
		}
	}
}

// TestBalancerDistribution checks each policy's long-run shares: by weight
// for the weighted policies (least_request and ewma while idle,
// consistent_hash over distinct keys), equal for round_robin.
func TestBalancerDistribution(t *testing.T) {
	t.Parallel()
	type tc struct {
		desc    string
		policy  string
		weights []int
		want    []float64
	}
	var tests []tc
	for _, p := range balPolicies {
		for _, w := range [][]int{{1, 1, 1}, {5, 3, 2}} {
			want := balWeightShares(w)
			if p == "round_robin" {
				want = balWeightShares(balOnes(len(w)))
			}
			tests = append(tests, tc{desc: fmt.Sprintf("%s/%v", p, w), policy: p, weights: w, want: want})
		}
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(tc.weights...)
			b := balNew(t, tc.policy, ts, nil)
			counts := balCount(t, b, ts, NewFilter(time.Now(), 0), balPicks)
			balCheckShares(t, counts, tc.want, 0.05)
		})
	}
}

// TestBalancerHealth checks that no policy returns a target the filter
// refuses (down, ejected, already tried) and that each returns nil when
// none is admissible.
func TestBalancerHealth(t *testing.T) {
	t.Parallel()
	now := time.Now()
	scenarios := []struct {
		desc    string
		weights []int
		// prepare makes targets inadmissible.
		prepare func(ts []*Target, f *Filter)
		// want are the indexes that may be picked; nil means none.
		want []int
	}{
		{desc: "unhealthy", weights: []int{1, 1, 1}, prepare: func(ts []*Target, f *Filter) {
			ts[1].State.SetHealthy(false, now)
		}, want: []int{0, 2}},
		{desc: "heavy target unhealthy", weights: []int{5, 3, 2}, prepare: func(ts []*Target, f *Filter) {
			ts[0].State.SetHealthy(false, now)
		}, want: []int{1, 2}},
		{desc: "ejected", weights: []int{1, 1, 1}, prepare: func(ts []*Target, f *Filter) {
			ts[2].State.Eject(now, time.Minute, 0)
		}, want: []int{0, 1}},
		{desc: "retry excludes tried target", weights: []int{1, 1, 1}, prepare: func(ts []*Target, f *Filter) {
			f.MarkTried(ts[0])
		}, want: []int{1, 2}},
		{desc: "one left", weights: []int{3, 2, 1}, prepare: func(ts []*Target, f *Filter) {
			ts[0].State.SetHealthy(false, now)
			ts[1].State.Eject(now, time.Minute, 0)
		}, want: []int{2}},
		{desc: "one left after retry", weights: []int{1, 1}, prepare: func(ts []*Target, f *Filter) {
			f.MarkTried(ts[1])
		}, want: []int{0}},
		{desc: "all unavailable", weights: []int{1, 1, 1}, prepare: func(ts []*Target, f *Filter) {
			ts[0].State.SetHealthy(false, now)
			ts[1].State.SetHealthy(false, now)
			ts[2].State.Eject(now, time.Minute, 0)
		}, want: nil},
		{desc: "all tried", weights: []int{2, 1}, prepare: func(ts []*Target, f *Filter) {
			f.MarkTried(ts[0])
			f.MarkTried(ts[1])
		}, want: nil},
	}
	for _, p := range balPolicies {
		for _, sc := range scenarios {
			t.Run(p+"/"+sc.desc, func(t *testing.T) {
				t.Parallel()
				ts := balTargets(sc.weights...)
				b := balNew(t, p, ts, nil)
				f := NewFilter(now, 0)
				sc.prepare(ts, &f)
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				seen := map[int]bool{}
				for i := range 3000 {
					r.URL.Path = "/k/" + strconv.Itoa(i)
					ff := f
					tg := b.Pick(ts, r, &ff)
					if sc.want == nil {
						if tg != nil {
							t.Fatalf("pick %d = target %d, want nil", i, tg.Index)
						}
						continue
					}
					if tg == nil || !slices.Contains(sc.want, tg.Index) {
						t.Fatalf("pick %d = %v, want one of %v", i, tg, sc.want)
					}
					seen[tg.Index] = true
				}
				if len(seen) != len(sc.want) {
					t.Fatalf("picked %v, want every one of %v", seen, sc.want)
				}
			})
		}
	}
}

// TestLeastRequestBusy checks that least_request steers away from targets
// with more in-flight requests per unit of weight.
func TestLeastRequestBusy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		weights  []int
		inflight []int
		// busy gets far fewer picks than each of the others.
		busy int
	}{
		{desc: "one busy target", weights: []int{1, 1, 1}, inflight: []int{100, 0, 0}, busy: 0},
		{desc: "busy among loaded peers", weights: []int{1, 1, 1, 1}, inflight: []int{3, 2, 100, 3}, busy: 2},
		{desc: "per unit of weight", weights: []int{10, 1}, inflight: []int{10, 5}, busy: 1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(tc.weights...)
			for i, n := range tc.inflight {
				for range n {
					ts[i].State.Begin()
				}
			}
			b := balNew(t, "least_request", ts, nil)
			counts := balCount(t, b, ts, NewFilter(time.Now(), 0), 10_000)
			for i, c := range counts {
				if i != tc.busy && counts[tc.busy]*10 >= c {
					t.Fatalf("busy target %d got %d picks, target %d got %d (counts %v)", tc.busy, counts[tc.busy], i, c, counts)
				}
			}
		})
	}
}

// TestEWMALatency checks that ewma steers away from slow targets, probes
// targets without a latency sample and does not flood an unprobed target
// that already has requests pending.
func TestEWMALatency(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		desc     string
		latency  []time.Duration // 0: no sample
		inflight []int
		// low gets far fewer picks than each other target; high, when
		// set, gets at least half of all picks.
		low, high int
	}{
		{desc: "slow target", latency: []time.Duration{50 * ms, ms, ms}, low: 0, high: -1},
		{desc: "slow target under load", latency: []time.Duration{ms, 50 * ms, ms}, inflight: []int{3, 0, 3}, low: 1, high: -1},
		{desc: "unprobed target is probed", latency: []time.Duration{ms, ms, 0}, low: -1, high: 2},
		{desc: "unprobed target with pending requests", latency: []time.Duration{0, 50 * ms, 50 * ms}, inflight: []int{5, 0, 0}, low: 0, high: -1},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			ts := balTargets(balOnes(len(tc.latency))...)
			for i, d := range tc.latency {
				if d > 0 {
					ts[i].State.ObserveLatency(d, now.UnixNano())
				}
				if tc.inflight != nil {
					for range tc.inflight[i] {
						ts[i].State.Begin()
					}
				}
			}
			b := balNew(t, "ewma", ts, nil)
			counts := balCount(t, b, ts, NewFilter(now, 0), 10_000)
			for i, c := range counts {
				if tc.low >= 0 && i != tc.low && counts[tc.low]*10 >= c {
					t.Fatalf("target %d got %d picks, target %d got %d (counts %v)", tc.low, counts[tc.low], i, c, counts)
				}
			}
			if tc.high >= 0 && counts[tc.high] < 5_000 {
				t.Fatalf("target %d got %d of 10000 picks, want at least half (counts %v)", tc.high, counts[tc.high], counts)
			}
		})
	}
}

// balRecovering returns three equal targets, the first back to healthy at
// now after a minute down, and a balancer of policy p over them.
func balRecovering(t *testing.T, p string, now time.Time) ([]*Target, Balancer) {
	t.Helper()
	ts := balTargets(1, 1, 1)
	ts[0].State.SetHealthy(false, now.Add(-time.Minute))
	ts[0].State.SetHealthy(true, now)
	return ts, balNew(t, p, ts, nil)
}

// TestBalancerSlowStart checks that a target that has just recovered gets a
// clearly smaller share under slow start, and a normal one once the window
// has passed.
func TestBalancerSlowStart(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	for _, p := range []string{"round_robin", "random", "least_request", "consistent_hash", "ewma"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			ts, b := balRecovering(t, p, now)

			counts := balCount(t, b, ts, NewFilter(now, window), 30_000)
			if share := float64(counts[0]) / 30_000; share > 1.0/3/2 {
				t.Fatalf("recovering target share = %.3f, want well under 1/3 (counts %v)", share, counts)
			}
			mid := balCount(t, b, ts, NewFilter(now.Add(window/2), window), 30_000)
			if mid[0] <= counts[0] || mid[0] >= mid[1] {
				t.Fatalf("half-way counts %v, want the recovering target between %v and its peers", mid, counts[0])
			}
			after := balCount(t, b, ts, NewFilter(now.Add(window+time.Second), window), balPicks)
			t.Logf("counts at start %v, half-way %v, after %v", counts, mid, after)
			balCheckShares(t, after, balWeightShares(balOnes(3)), 0.05)
		})
	}
}

// TestBalancerPickConcurrent runs picks from many goroutines while request
// state changes, for the race detector.
func TestBalancerPickConcurrent(t *testing.T) {
	t.Parallel()
	for _, p := range balPolicies {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(5, 3, 2, 1)
			b := balNew(t, p, ts, nil)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					r := httptest.NewRequest(http.MethodGet, "/", nil)
					for i := range 500 {
						r.URL.Path = "/k/" + strconv.Itoa(g*1000+i)
						f := NewFilter(time.Now(), time.Second)
						tg := b.Pick(ts, r, &f)
						if tg == nil {
							t.Error("no target")
							return
						}
						tg.State.Begin()
						tg.State.ObserveLatency(time.Duration(i%7+1)*time.Millisecond, f.Now)
						if i%50 == 0 {
							ts[i%len(ts)].State.SetHealthy(i%100 != 0, time.Now())
						}
						tg.State.End()
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestBalancerPickAllocs checks that Pick does not allocate, on the fast
// path and on the fallback paths (target down, slow start, missing key).
func TestBalancerPickAllocs(t *testing.T) {
	now := time.Now()
	keyed := httptest.NewRequest(http.MethodGet, "/users/42", nil)
	keyed.Header.Set("X-User", "u-42")
	keyed.Header["Cookie"] = []string{"a=1", "theme=dark; sid=\"abc\""}
	keyed.RemoteAddr = "[2001:db8::7]:4444"
	recorded := keyed.WithContext(request.WithRecord(context.Background(), &request.Record{ClientIP: netip.MustParseAddr("198.51.100.9")}))
	bare := httptest.NewRequest(http.MethodGet, "/", nil)
	type tc struct {
		desc   string
		policy string
		hash   *config.HashOn
		r      *http.Request
	}
	var tests []tc
	for _, p := range balPolicies {
		tests = append(tests, tc{desc: p, policy: p, r: keyed})
	}
	tests = append(tests,
		tc{desc: "consistent_hash/header", policy: "consistent_hash", hash: &config.HashOn{Header: "x-user"}, r: keyed},
		tc{desc: "consistent_hash/cookie", policy: "consistent_hash", hash: &config.HashOn{Cookie: "sid"}, r: keyed},
		tc{desc: "consistent_hash/client ip", policy: "consistent_hash", hash: &config.HashOn{ClientIP: true}, r: keyed},
		tc{desc: "consistent_hash/client ip from record", policy: "consistent_hash", hash: &config.HashOn{ClientIP: true}, r: recorded},
		tc{desc: "consistent_hash/missing header", policy: "consistent_hash", hash: &config.HashOn{Header: "x-user"}, r: bare},
		tc{desc: "consistent_hash/missing cookie", policy: "consistent_hash", hash: &config.HashOn{Cookie: "sid"}, r: bare},
	)
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			ts := balTargets(5, 3, 2, 1, 1, 1, 1, 1, 1, 1)
			b := balNew(t, tc.policy, ts, tc.hash)
			ts[3].State.SetHealthy(false, now.Add(-time.Minute))
			ts[3].State.SetHealthy(true, now)
			for _, variant := range []struct {
				desc string
				prep func()
				ss   time.Duration
			}{
				{desc: "all up", prep: func() {}},
				{desc: "slow start", prep: func() {}, ss: time.Minute},
				{desc: "half down", prep: func() {
					for _, tg := range ts[:5] {
						tg.State.SetHealthy(false, now)
					}
				}},
			} {
				variant.prep()
				f := NewFilter(now, variant.ss)
				if a := testing.AllocsPerRun(1000, func() {
					if b.Pick(ts, tc.r, &f) == nil {
						t.Fatal("no target")
					}
				}); a != 0 {
					t.Fatalf("%s: Pick allocates %.1f times per call, want 0", variant.desc, a)
				}
			}
		})
	}
}

// TestBalancerNewPool checks that pools build each policy from config and
// that a consistent_hash pool without hash_on is refused.
func TestBalancerNewPool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		balancer string
		hash     *config.HashOn
		wantErr  string
	}{
		{desc: "round_robin", balancer: "round_robin"},
		{desc: "random", balancer: "random"},
		{desc: "least_request", balancer: "least_request"},
		{desc: "ewma", balancer: "ewma"},
		{desc: "consistent_hash", balancer: "consistent_hash", hash: &config.HashOn{Header: "X-Tenant"}},
		{desc: "consistent_hash without hash_on", balancer: "consistent_hash", wantErr: "needs hash_on"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			u := &config.Upstream{Balancer: tc.balancer, HashOn: tc.hash, Targets: []config.Target{
				{URL: "http://10.3.0.1:80", Weight: 2}, {URL: "http://10.3.0.2:80"}, {URL: "http://10.3.0.3:80"},
			}}
			p, err := NewPool("svc", u, nil, NewStateRegistry())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewPool error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("X-Tenant", "acme")
			for range 100 {
				f := NewFilter(time.Now(), 0)
				if _, err := p.Pick(r, &f); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
