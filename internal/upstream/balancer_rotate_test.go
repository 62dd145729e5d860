package upstream

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// rotPolicies are the policies that rotate over a schedule.
var rotPolicies = []string{"round_robin", "weighted_round_robin"}

// rotCheckEven fails unless the counts of idx are within tol (relative) of
// their mean.
func rotCheckEven(t *testing.T, counts []int, idx []int, tol float64) {
	t.Helper()
	sum := 0
	for _, i := range idx {
		sum += counts[i]
	}
	mean := float64(sum) / float64(len(idx))
	for _, i := range idx {
		if math.Abs(float64(counts[i])-mean) > tol*mean {
			t.Fatalf("target %d got %d picks, want %.0f ±%.0f%% (counts %v)", i, counts[i], mean, tol*100, counts)
		}
	}
}

// TestRotationSurvivorsShareEvenly checks that when one of three equal
// targets is unavailable, its share is split evenly between the two others
// instead of landing on the target after it in the schedule.
func TestRotationSurvivorsShareEvenly(t *testing.T) {
	t.Parallel()
	for _, p := range rotPolicies {
		for down := range 3 {
			t.Run(fmt.Sprintf("%s/down=%d", p, down), func(t *testing.T) {
				t.Parallel()
				now := time.Now()
				ts := balTargets(1, 1, 1)
				b := balNew(t, p, ts, nil)
				ts[down].State.SetHealthy(false, now)
				counts := balCount(t, b, ts, NewFilter(now, 0), 3000)
				if counts[down] != 0 {
					t.Fatalf("unavailable target picked %d times", counts[down])
				}
				var up []int
				for i := range ts {
					if i != down {
						up = append(up, i)
					}
				}
				rotCheckEven(t, counts, up, 0.02)
			})
		}
	}
}

// TestRotationManyDown checks the survivors' balance with half of ten
// targets unavailable, in runs of neighbours and scattered.
func TestRotationManyDown(t *testing.T) {
	t.Parallel()
	for _, p := range rotPolicies {
		for _, down := range [][]int{{0, 1, 2, 3, 4}, {1, 3, 5, 7, 9}, {0, 1, 2, 3, 4, 5, 6, 7, 8}} {
			t.Run(fmt.Sprintf("%s/down=%v", p, down), func(t *testing.T) {
				t.Parallel()
				now := time.Now()
				ts := balTargets(balOnes(10)...)
				b := balNew(t, p, ts, nil)
				var up []int
				for i := range ts {
					if slices.Contains(down, i) {
						ts[i].State.SetHealthy(false, now)
					} else {
						up = append(up, i)
					}
				}
				counts := balCount(t, b, ts, NewFilter(now, 0), 10_000)
				for _, i := range down {
					if counts[i] != 0 {
						t.Fatalf("unavailable target %d picked (counts %v)", i, counts)
					}
				}
				rotCheckEven(t, counts, up, 0.02)
			})
		}
	}
}

// TestWRRWeightsWithOneDown checks that weighted_round_robin keeps the
// survivors' weight ratio when a target is unavailable.
func TestWRRWeightsWithOneDown(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		weights []int
		down    int
	}{
		{[]int{5, 1, 1}, 0},
		{[]int{5, 1, 1}, 1},
		{[]int{5, 1, 1}, 2},
		{[]int{5, 3, 2}, 0},
		{[]int{5, 3, 2}, 1},
		{[]int{1, 5, 1, 3}, 1},
	} {
		t.Run(fmt.Sprintf("%v/down=%d", tc.weights, tc.down), func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			ts := balTargets(tc.weights...)
			b := balNew(t, "weighted_round_robin", ts, nil)
			ts[tc.down].State.SetHealthy(false, now)
			counts := balCount(t, b, ts, NewFilter(now, 0), 7000)
			w := slices.Clone(tc.weights)
			w[tc.down] = 0
			want := balWeightShares(w)
			got := slices.Clone(counts)
			got[tc.down] = 0
			if counts[tc.down] != 0 {
				t.Fatalf("unavailable target picked (counts %v)", counts)
			}
			want = slices.Delete(want, tc.down, tc.down+1)
			got = slices.Delete(got, tc.down, tc.down+1)
			balCheckShares(t, got, want, 0.02)
		})
	}
}

// TestWRRScheduleWithoutDownTarget checks the exact pick sequence: the
// smooth schedule with the unavailable target's slots removed.
func TestWRRScheduleWithoutDownTarget(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ts := balTargets(5, 1, 1)
	b := balNew(t, "weighted_round_robin", ts, nil)
	wheel := b.(*wrr).wheel
	ts[0].State.SetHealthy(false, now)
	var want []int
	for len(want) < 40 {
		for _, x := range wheel {
			if x != 0 {
				want = append(want, int(x))
			}
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for i, w := range want[:40] {
		f := NewFilter(now, 0)
		if got := b.Pick(ts, r, &f).Index; got != w {
			t.Fatalf("pick %d = target %d, want %d (schedule %v without target 0)", i, got, w, wheel)
		}
	}
}

// TestRotationConcurrentSurvivors checks the balance when picks race: eight
// goroutines picking while one of three targets is down.
func TestRotationConcurrentSurvivors(t *testing.T) {
	t.Parallel()
	for _, p := range rotPolicies {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			ts := balTargets(1, 1, 1)
			b := balNew(t, p, ts, nil)
			ts[1].State.SetHealthy(false, now)
			var mu sync.Mutex
			counts := make([]int, 3)
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					r := httptest.NewRequest(http.MethodGet, "/", nil)
					local := make([]int, 3)
					for range 3000 {
						f := NewFilter(now, 0)
						tg := b.Pick(ts, r, &f)
						if tg == nil {
							t.Error("no target")
							return
						}
						local[tg.Index]++
					}
					mu.Lock()
					for i, c := range local {
						counts[i] += c
					}
					mu.Unlock()
				})
			}
			wg.Wait()
			if counts[1] != 0 {
				t.Fatalf("unavailable target picked (counts %v)", counts)
			}
			rotCheckEven(t, counts, []int{0, 2}, 0.05)
		})
	}
}

// TestRotationSlowStart checks slow start under the rotating policies: the
// recovering target gets a small share, the share it does not take is
// spread evenly over its peers, and after the window all are equal again.
func TestRotationSlowStart(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	for _, p := range rotPolicies {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			ts, b := balRecovering(t, p, now)

			start := balCount(t, b, ts, NewFilter(now, window), 30_000)
			if share := float64(start[0]) / 30_000; share > 1.0/3/2 {
				t.Fatalf("recovering target share = %.3f, want well under 1/3 (counts %v)", share, start)
			}
			rotCheckEven(t, start, []int{1, 2}, 0.05)
			mid := balCount(t, b, ts, NewFilter(now.Add(window/2), window), 30_000)
			if mid[0] <= start[0] || mid[0] >= mid[1] {
				t.Fatalf("half-way counts %v, want the recovering target between %v and its peers", mid, start[0])
			}
			rotCheckEven(t, mid, []int{1, 2}, 0.05)
			after := balCount(t, b, ts, NewFilter(now.Add(window+time.Second), window), 30_000)
			rotCheckEven(t, after, []int{0, 1, 2}, 0.02)
		})
	}
}

// TestRotationRecovery checks that a target coming back (without slow
// start) takes its normal turns again at once.
func TestRotationRecovery(t *testing.T) {
	t.Parallel()
	for _, p := range rotPolicies {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			ts := balTargets(2, 1, 1)
			b := balNew(t, p, ts, nil)
			ts[2].State.SetHealthy(false, now)
			balCount(t, b, ts, NewFilter(now, 0), 1001)
			ts[2].State.SetHealthy(true, now)
			counts := balCount(t, b, ts, NewFilter(now, 0), 4000)
			want := balWeightShares([]int{2, 1, 1})
			if p == "round_robin" {
				want = balWeightShares(balOnes(3))
			}
			balCheckShares(t, counts, want, 0.02)
		})
	}
}

// BenchmarkBalancerPickOneDown measures picks of the rotating policies
// with one of ten targets unavailable (the skipping path).
func BenchmarkBalancerPickOneDown(b *testing.B) {
	for _, p := range rotPolicies {
		b.Run(p, func(b *testing.B) { balBenchPicks(b, p, true, false) })
		b.Run(p+"/parallel", func(b *testing.B) { balBenchPicks(b, p, true, true) })
	}
}
