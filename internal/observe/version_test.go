package observe

import (
	"testing"
)

// TestVersionMetrics: requests are counted per route, version and status
// class; an out-of-range status counts as 5xx.
func TestVersionMetrics(t *testing.T) {
	m := NewMetrics(nil)
	v1 := m.Version("orders", "v1")
	for _, s := range []int{200, 204, 404, 503, 999} {
		v1.Count(s)
	}
	m.Version("orders", "").Count(400)
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != APIVersionRequestsMetric {
			continue
		}
		for _, mt := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range mt.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["route"]+"/"+l["version"]+"/"+l["status"]] = mt.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"orders/v1/2xx": 2, "orders/v1/4xx": 1, "orders/v1/5xx": 2, "orders//4xx": 1}
	if len(got) != len(want) {
		t.Errorf("series = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
