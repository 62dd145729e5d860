package upstream

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// wrrUpstream builds an upstream config with one target per weight.
func wrrUpstream(weights ...int) *config.Upstream {
	u := &config.Upstream{}
	for i, w := range weights {
		u.Targets = append(u.Targets, config.Target{URL: fmt.Sprintf("http://10.0.0.%d:80", i+1), Weight: w})
	}
	return u
}

// wrrPool builds a default (weighted round-robin) pool from weights,
// failing the test on error; the pool is closed when the test ends.
func wrrPool(t testing.TB, weights ...int) *Pool {
	t.Helper()
	p, err := NewPool("test", wrrUpstream(weights...), nil, NewStateRegistry())
	if err != nil {
		t.Fatalf("NewPool(%v): %v", weights, err)
	}
	t.Cleanup(p.Close)
	return p
}

// wrrWheel returns the precomputed schedule of a weighted round-robin pool.
func wrrWheel(t testing.TB, p *Pool) []int {
	t.Helper()
	b, ok := p.balancer.(*wrr)
	if !ok {
		t.Fatalf("balancer is %T, want *wrr", p.balancer)
	}
	out := make([]int, len(b.wheel))
	for i, x := range b.wheel {
		out[i] = int(x)
	}
	return out
}

// wrrPicks returns the target indexes of the next n picks with a fresh filter
// each (every target available, none tried).
func wrrPicks(t testing.TB, p *Pool, n int) []int {
	t.Helper()
	out := make([]int, n)
	for i := range out {
		f := NewFilter(time.Now(), 0)
		tg, err := p.Pick(nil, &f)
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		out[i] = tg.Index
	}
	return out
}

// TestSmoothScheduleSequence pins the exact smooth weighted round-robin
// sequence (the one nginx produces), including GCD reduction and the
// defaulting of non-positive weights to 1.
func TestSmoothScheduleSequence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		weights []int
		want    []int
	}{
		{desc: "single target", weights: []int{1}, want: []int{0}},
		{desc: "equal weights rotate", weights: []int{1, 1, 1}, want: []int{0, 1, 2}},
		{desc: "3:1 interleaves", weights: []int{3, 1}, want: []int{0, 0, 1, 0}},
		{desc: "nginx 5,1,1 is a a b a c a a", weights: []int{5, 1, 1}, want: []int{0, 0, 1, 0, 2, 0, 0}},
		{desc: "2,4 reduces to 1,2", weights: []int{2, 4}, want: []int{1, 0, 1}},
		{desc: "100,100 reduces to 1,1", weights: []int{100, 100}, want: []int{0, 1}},
		{desc: "6,3,3 reduces to 2,1,1", weights: []int{6, 3, 3}, want: []int{0, 1, 2, 0}},
		{desc: "zero and negative weights count as 1", weights: []int{0, -5, 2}, want: []int{2, 0, 1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := wrrPool(t, tc.weights...)
			got := wrrWheel(t, p)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("wheel = %v, want %v", got, tc.want)
			}
			// Pick walks the wheel in order and wraps around.
			if seq := wrrPicks(t, p, 2*len(tc.want)); !slices.Equal(seq, append(slices.Clone(tc.want), tc.want...)) {
				t.Fatalf("picks = %v, want the wheel twice %v", seq, tc.want)
			}
		})
	}
}

// TestPickExactProportions checks that every window of len(wheel)
// consecutive picks, starting anywhere, gives each target exactly its
// (GCD-reduced) weight, and that the order is interleaved: no prefix of the
// schedule strays 2 or more picks from the ideal proportional share.
func TestPickExactProportions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		weights []int
		// reduced is the weights divided by their GCD: the exact per-window counts.
		reduced []int
	}{
		{desc: "3:1", weights: []int{3, 1}, reduced: []int{3, 1}},
		{desc: "5,1,1", weights: []int{5, 1, 1}, reduced: []int{5, 1, 1}},
		{desc: "2,4 as 1,2", weights: []int{2, 4}, reduced: []int{1, 2}},
		{desc: "uneven four", weights: []int{7, 3, 2, 1}, reduced: []int{7, 3, 2, 1}},
		{desc: "gcd 10", weights: []int{50, 30, 20}, reduced: []int{5, 3, 2}},
		{desc: "heavy vs light", weights: []int{20, 19}, reduced: []int{20, 19}},
		{desc: "many targets", weights: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, reduced: []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := wrrPool(t, tc.weights...)
			total := 0
			for _, w := range tc.reduced {
				total += w
			}
			if n := len(wrrWheel(t, p)); n != total {
				t.Fatalf("len(wheel) = %d, want %d", n, total)
			}
			seq := wrrPicks(t, p, 3*total)
			for start := 0; start+total <= len(seq); start++ {
				counts := make([]int, len(tc.weights))
				for _, x := range seq[start : start+total] {
					counts[x]++
				}
				if !slices.Equal(counts, tc.reduced) {
					t.Fatalf("window at %d: counts %v, want %v", start, counts, tc.reduced)
				}
			}
			// Smoothness: the running count of every target tracks its share.
			counts := make([]int, len(tc.weights))
			for k, x := range seq[:total] {
				counts[x]++
				for i, w := range tc.reduced {
					ideal := float64((k+1)*w) / float64(total)
					if d := math.Abs(float64(counts[i]) - ideal); d >= 2 {
						t.Fatalf("after %d picks target %d has %d, ideal %.2f: schedule is bunched: %v", k+1, i, counts[i], ideal, seq[:total])
					}
				}
			}
		})
	}
}

// TestPickRunLength checks that with a 3:1 split the heavy target is never
// picked more than 3 times in a row, even across the wheel's wrap-around, and
// the light one never twice in a row.
func TestPickRunLength(t *testing.T) {
	t.Parallel()
	p := wrrPool(t, 3, 1)
	seq := wrrPicks(t, p, 40)
	run, last := 0, -1
	for _, x := range seq {
		if x == last {
			run++
		} else {
			run, last = 1, x
		}
		if limit := map[int]int{0: 3, 1: 1}[x]; run > limit {
			t.Fatalf("target %d picked %d times in a row (limit %d): %v", x, run, limit, seq)
		}
	}
}

// TestSmoothScheduleCap checks that weights summing past maxWheel are scaled
// down to at most maxWheel entries while each target's share stays within
// one percentage point of its configured share and every target stays in.
func TestSmoothScheduleCap(t *testing.T) {
	t.Parallel()
	seq := make([]int, 100)
	for i := range seq {
		seq[i] = 1000 + i
	}
	tests := []struct {
		desc    string
		weights []int
	}{
		{desc: "two coprime large weights", weights: []int{7001, 2999}},
		{desc: "one huge one tiny", weights: []int{100000, 1}},
		{desc: "three large", weights: []int{9973, 5003, 20}},
		{desc: "just over the cap", weights: []int{maxWheel, 1}},
		{desc: "hundred targets", weights: seq},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			wheel := wrrWheel(t, wrrPool(t, tc.weights...))
			if n := len(wheel); n == 0 || n > maxWheel {
				t.Fatalf("len(wheel) = %d, want 1..%d", n, maxWheel)
			}
			counts := make([]int, len(tc.weights))
			for _, x := range wheel {
				counts[x]++
			}
			sum := 0
			for _, w := range tc.weights {
				sum += w
			}
			for i, w := range tc.weights {
				if counts[i] == 0 {
					t.Errorf("target %d (weight %d) dropped from the wheel", i, w)
				}
				want := float64(w) / float64(sum)
				got := float64(counts[i]) / float64(len(wheel))
				if math.Abs(got-want) > 0.01 {
					t.Errorf("target %d share = %.4f, want %.4f ±0.01", i, got, want)
				}
			}
		})
	}
}

// TestNewPoolManyTargets checks that a pool with more equally weighted
// targets than maxWheel is built promptly and still gives every target a turn
// in each cycle of the wheel.
func TestNewPoolManyTargets(t *testing.T) {
	t.Parallel()
	const n = maxWheel + 1
	u := &config.Upstream{}
	for i := range n {
		u.Targets = append(u.Targets, config.Target{URL: fmt.Sprintf("http://10.%d.%d.1:80", i/256, i%256), Weight: 1})
	}
	type result struct {
		p   *Pool
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := NewPool("many", u, nil, NewStateRegistry())
		done <- result{p, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("NewPool: %v", res.err)
		}
		defer res.p.Close()
		wheel := wrrWheel(t, res.p)
		seen := make([]bool, n)
		for _, x := range wheel {
			seen[x] = true
		}
		for i, ok := range seen {
			if !ok {
				t.Fatalf("target %d never scheduled (wheel length %d)", i, len(wheel))
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("NewPool with %d targets of weight 1 did not return within 5s (schedule scaling never terminates)", n)
	}
}

// TestPickConcurrent checks that concurrent Picks from many goroutines hand
// out exactly the weighted totals: no pick is lost or duplicated.
func TestPickConcurrent(t *testing.T) {
	t.Parallel()
	p := wrrPool(t, 3, 1, 2)
	const goroutines, perG = 32, 600 // 19200 picks = 3200 full wheels of 6
	counts := make([][3]int, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perG {
				f := NewFilter(time.Now(), 0)
				tg, err := p.Pick(nil, &f)
				if err != nil {
					t.Error(err)
					return
				}
				counts[g][tg.Index]++
			}
		}()
	}
	wg.Wait()
	var total [3]int
	for _, c := range counts {
		for i := range c {
			total[i] += c[i]
		}
	}
	wheels := goroutines * perG / 6
	if want := [3]int{3 * wheels, 1 * wheels, 2 * wheels}; total != want {
		t.Fatalf("totals = %v, want %v", total, want)
	}
}

// TestPickAllocs checks that a pick does not allocate with a reused filter,
// as the request path does (it keeps its filters in a sync.Pool, since a
// filter passed to the Balancer interface escapes to the heap).
func TestPickAllocs(t *testing.T) {
	p := wrrPool(t, 5, 1, 1)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	shared := NewFilter(time.Now(), 0)
	tests := []struct {
		desc string
		pick func() (*Target, error)
	}{
		{desc: "reused filter", pick: func() (*Target, error) { return p.Pick(r, &shared) }},
		{desc: "filter reset per pick", pick: func() (*Target, error) {
			shared = NewFilter(time.Now(), 0)
			return p.Pick(r, &shared)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			if a := testing.AllocsPerRun(1000, func() {
				if _, err := tc.pick(); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Fatalf("Pick allocates %.1f times per call, want 0", a)
			}
		})
	}
}

// TestPickFilter checks that Pick skips targets the filter refuses (down,
// ejected, delayed, already tried), falling through to the next admissible
// target in schedule order, and reports ErrNoTarget when none is left.
func TestPickFilter(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		desc    string
		weights []int
		// prepare makes some targets unavailable and may adjust the filter.
		prepare func(p *Pool, f *Filter)
		// want is the set of target indexes that may be returned; nil
		// means ErrNoTarget.
		want []int
	}{
		{desc: "heavy target down", weights: []int{3, 1}, prepare: func(p *Pool, f *Filter) {
			p.Targets[0].State.SetHealthy(false, now)
		}, want: []int{1}},
		{desc: "light target ejected", weights: []int{3, 1}, prepare: func(p *Pool, f *Filter) {
			p.Targets[1].State.Eject(now, time.Minute, time.Minute)
		}, want: []int{0}},
		{desc: "retry-after delay", weights: []int{1, 1, 1}, prepare: func(p *Pool, f *Filter) {
			p.Targets[0].State.DelayUntil(now.Add(time.Hour))
			p.Targets[2].State.DelayUntil(now.Add(time.Hour))
		}, want: []int{1}},
		{desc: "already tried", weights: []int{5, 1, 1}, prepare: func(p *Pool, f *Filter) {
			f.MarkTried(p.Targets[0])
			f.MarkTried(p.Targets[2])
		}, want: []int{1}},
		{desc: "all down", weights: []int{2, 1}, prepare: func(p *Pool, f *Filter) {
			p.Targets[0].State.SetHealthy(false, now)
			p.Targets[1].State.SetHealthy(false, now)
		}, want: nil},
		{desc: "all tried", weights: []int{1, 1}, prepare: func(p *Pool, f *Filter) {
			f.MarkTried(p.Targets[0])
			f.MarkTried(p.Targets[1])
		}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := wrrPool(t, tc.weights...)
			for i := range 20 {
				f := NewFilter(now, 0)
				tc.prepare(p, &f)
				tg, err := p.Pick(nil, &f)
				if tc.want == nil {
					if !errors.Is(err, ErrNoTarget) || tg != nil {
						t.Fatalf("pick %d = %v, %v; want ErrNoTarget", i, tg, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("pick %d: %v", i, err)
				}
				if !slices.Contains(tc.want, tg.Index) {
					t.Fatalf("pick %d = target %d, want one of %v", i, tg.Index, tc.want)
				}
			}
		})
	}
}

// TestNewPoolTargets checks the parsed targets: URL, BasePath without a
// trailing slash, weight defaulting and index.
func TestNewPoolTargets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		url      string
		weight   int
		wantHost string
		wantBase string
		wantW    int
	}{
		{desc: "no path", url: "http://10.0.0.1:8080", weight: 2, wantHost: "10.0.0.1:8080", wantBase: "", wantW: 2},
		{desc: "root path", url: "http://10.0.0.1/", weight: 1, wantHost: "10.0.0.1", wantBase: "", wantW: 1},
		{desc: "base path", url: "https://api.internal/v1", weight: 0, wantHost: "api.internal", wantBase: "/v1", wantW: 1},
		{desc: "base path trailing slash", url: "http://h:81/api/v2/", weight: -1, wantHost: "h:81", wantBase: "/api/v2", wantW: 1},
		{desc: "escaped base path stays escaped", url: "http://h/a%20b/c%2Fd/", weight: 3, wantHost: "h", wantBase: "/a%20b/c%2Fd", wantW: 3},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			u := &config.Upstream{Targets: []config.Target{{URL: "http://first:1"}, {URL: tc.url, Weight: tc.weight}}}
			p, err := NewPool("svc", u, nil, NewStateRegistry())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Name != "svc" || len(p.Targets) != 2 {
				t.Fatalf("pool %q with %d targets", p.Name, len(p.Targets))
			}
			tg := p.Targets[1]
			if tg.URL.Host != tc.wantHost || tg.BasePath != tc.wantBase || tg.Weight != tc.wantW || tg.Index != 1 {
				t.Fatalf("target = {host %q base %q weight %d index %d}, want {host %q base %q weight %d index 1}",
					tg.URL.Host, tg.BasePath, tg.Weight, tg.Index, tc.wantHost, tc.wantBase, tc.wantW)
			}
		})
	}
}

// TestNewPoolErrors checks that an upstream without targets, with an
// unparsable target URL or an unknown balancer is rejected with a message
// naming the culprit, and that no target state stays acquired.
func TestNewPoolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc    string
		u       *config.Upstream
		wantErr string
	}{
		{desc: "no targets", u: &config.Upstream{}, wantErr: `upstream "broken"`},
		{desc: "bad url", u: &config.Upstream{Targets: []config.Target{{URL: "http://[::1"}}}, wantErr: `upstream "broken"`},
		{desc: "bad url after good ones", u: &config.Upstream{Targets: []config.Target{{URL: "http://a:1"}, {URL: "http://b:2"}, {URL: "http://%zz"}}},
			wantErr: `upstream "broken"`},
		{desc: "unknown balancer", u: &config.Upstream{Balancer: "no_such_policy", Targets: []config.Target{{URL: "http://a:1"}}},
			wantErr: `unknown balancer "no_such_policy"`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			states := NewStateRegistry()
			p, err := NewPool("broken", tc.u, nil, states)
			if err == nil || p != nil {
				t.Fatalf("NewPool = %v, %v; want error", p, err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not contain %s", err, tc.wantErr)
			}
			if states.Len() != 0 {
				t.Fatalf("failed NewPool left %d target states acquired", states.Len())
			}
		})
	}
}

// BenchmarkPick measures one weighted pick.
func BenchmarkPick(b *testing.B) {
	p := wrrPool(b, 5, 3, 1, 1)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f := NewFilter(time.Now(), 0)
			if _, err := p.Pick(r, &f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestPoolStatesSharedAcrossReload checks that two pools built for the same
// upstream name share each target's runtime state, so a reload keeps health
// and in-flight counts, and that closing both forgets the states.
func TestPoolStatesSharedAcrossReload(t *testing.T) {
	t.Parallel()
	states := NewStateRegistry()
	u := wrrUpstream(1, 2)
	old, err := NewPool("api", u, nil, states)
	if err != nil {
		t.Fatal(err)
	}
	old.Targets[1].State.Begin()
	cur, err := NewPool("api", wrrUpstream(1, 2), nil, states)
	if err != nil {
		t.Fatal(err)
	}
	if cur.Targets[1].State != old.Targets[1].State || cur.Targets[1].State.Inflight() != 1 {
		t.Fatal("rebuilt pool did not keep the target's state")
	}
	other, err := NewPool("other", wrrUpstream(1, 2), nil, states)
	if err != nil {
		t.Fatal(err)
	}
	if other.Targets[1].State == cur.Targets[1].State {
		t.Fatal("different upstreams share a target state")
	}
	if states.Len() != 4 {
		t.Fatalf("Len = %d, want 4", states.Len())
	}
	old.Close()
	if states.Len() != 4 {
		t.Fatalf("Len after closing the old pool = %d, want 4", states.Len())
	}
	cur.Close()
	other.Close()
	if states.Len() != 0 {
		t.Fatalf("Len after closing all pools = %d, want 0", states.Len())
	}
}
