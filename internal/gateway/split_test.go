package gateway

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

func TestSplitCumulative(t *testing.T) {
	cases := []struct {
		weights []float64
		want    []float64
	}{
		{[]float64{95, 5}, []float64{0.95, 1}},
		{[]float64{1, 1, 2}, []float64{0.25, 0.5, 1}},
		{[]float64{0, 3, 1}, []float64{0, 0.75, 1}},
		{[]float64{1, 0, 0}, []float64{1, 1, 1}},
		{[]float64{0.1, 0.2, 0.7}, []float64{0.1 / 1.0, 0.3 / 1.0, 1}},
	}
	for _, tc := range cases {
		got := cumulative(tc.weights)
		for i := range got {
			if d := got[i] - tc.want[i]; d > 1e-12 || d < -1e-12 {
				t.Errorf("cumulative(%v) = %v, want %v", tc.weights, got, tc.want)
				break
			}
		}
	}
	// Zero-weight variants are never drawn, at either end of [0, 1).
	cum := cumulative([]float64{0, 1, 0})
	for _, u := range []float64{0, 0.5, 0.9999999999} {
		if i := pickCumulative(cum, u); i != 1 {
			t.Errorf("pick(%v, %v) = %d, want 1", cum, u, i)
		}
	}
}

// testSplitHandler is a 95/5 split with a header, a cookie, a query, a
// claim, a group and an IP-range rule, all to the second variant, and no
// forwarders.
func testSplitHandler() *splitHandler {
	return &splitHandler{cum: cumulative([]float64{95, 5}), rules: []splitRule{
		{key: reqkey.MustParse("header:X-Beta"), hasKey: true, value: "1", to: 1},
		{key: reqkey.MustParse("cookie:variant"), hasKey: true, value: "b", to: 1},
		{key: reqkey.MustParse("query:variant"), hasKey: true, value: "b", to: 1},
		{key: reqkey.MustParse("claim:beta"), hasKey: true, value: "true", to: 1},
		{names: []string{"beta"}, groups: true, to: 1},
		{nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, to: 1},
	}}
}

// testSplitRequest is a request for target with the cookie line and the
// header X-User: alice.
func testSplitRequest(target, cookie string) (*http.Request, *request.Record) {
	r := httptest.NewRequest("GET", target, nil)
	r.Header.Set("Cookie", cookie)
	r.Header.Set("X-User", "alice")
	return r, &request.Record{ClientIP: netip.MustParseAddr("10.0.0.1"),
		Consumer: &consumer.Consumer{Name: "alice", Groups: []string{"staff"}}, Claims: map[string]any{"beta": false}}
}

// TestSplitChooseNoAllocs: choosing a variant by rules, sticky key or at
// random allocates nothing.
func TestSplitChooseNoAllocs(t *testing.T) {
	h := testSplitHandler()
	r, rec := testSplitRequest("/x?a=1&variant=a", "theme=dark; variant=a")
	if n := testing.AllocsPerRun(100, func() { h.choose(r, rec) }); n != 0 {
		t.Errorf("random choice: %v allocations", n)
	}
	h.sticky, h.hasSticky = reqkey.MustParse("header:X-User"), true
	if n := testing.AllocsPerRun(100, func() { h.choose(r, rec) }); n != 0 {
		t.Errorf("sticky choice: %v allocations", n)
	}
	r.Header.Set("X-Beta", "1")
	if n := testing.AllocsPerRun(100, func() {
		if i, _ := h.choose(r, rec); i != 1 {
			panic("rule did not match")
		}
	}); n != 0 {
		t.Errorf("rule choice: %v allocations", n)
	}
	var _ http.Handler = h
}

// BenchmarkSplitChoose measures the split's own decision: three rules that
// do not match, then a sticky or a random draw.
func BenchmarkSplitChoose(b *testing.B) {
	h := testSplitHandler()
	r, rec := testSplitRequest("/x?a=1", "theme=dark")
	b.Run("random", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.choose(r, rec)
		}
	})
	h.sticky, h.hasSticky = reqkey.MustParse("header:X-User"), true
	b.Run("sticky", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.choose(r, rec)
		}
	})
}
