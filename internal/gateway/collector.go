package gateway

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/internal/buildinfo"
)

var (
	descTargetUp = prometheus.NewDesc("portico_upstream_target_up",
		"1 when the target is available (healthy, not ejected), else 0.", []string{"upstream", "target"}, nil)
	descTargetInflight = prometheus.NewDesc("portico_upstream_target_requests_in_flight",
		"Requests in flight to the target.", []string{"upstream", "target"}, nil)
	descTargetEjections = prometheus.NewDesc("portico_upstream_target_ejections_total",
		"Passive-health ejections of the target.", []string{"upstream", "target"}, nil)
	descRetries = prometheus.NewDesc("portico_upstream_retries_total",
		"Retries made to the upstream.", []string{"upstream"}, nil)
	descOverload = prometheus.NewDesc("portico_upstream_overloaded_total",
		"Requests refused by the upstream's circuit breaker.", []string{"upstream"}, nil)
	descBudget = prometheus.NewDesc("portico_upstream_retry_budget_exhausted_total",
		"Retries refused by the retry budget.", []string{"upstream"}, nil)
)

// upstreamCollector reports the upstreams of its runtime's current snapshot
// at scrape time, reading the targets' runtime state: nothing is recorded
// on the request path for these metrics. Each runtime registers its own on
// its own registry.
type upstreamCollector struct{ rt *Runtime }

// buildInfoGauge is portico_build_info: always 1, labelled with the build
// that runs (the same version string as `portico version` and /version).
func buildInfoGauge() prometheus.Collector {
	in := buildinfo.Get()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "portico_build_info",
		Help: "Always 1; the labels describe the running build."}, []string{"version", "commit", "go_version"})
	g.WithLabelValues(in.Version, in.Commit, in.GoVersion).Set(1)
	return g
}

func (c upstreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTargetUp, descTargetInflight, descTargetEjections, descRetries, descOverload, descBudget} {
		ch <- d
	}
}

func (c upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	rt := c.rt
	// A reference keeps the snapshot's pools from being released while
	// they are read (a reload may retire it meanwhile).
	s := rt.acquire()
	if s == nil {
		return
	}
	defer rt.unref(s)
	names := make([]string, 0, len(s.pools))
	for n := range s.pools {
		names = append(names, n)
	}
	sort.Strings(names)
	now := time.Now().UnixNano()
	for _, name := range names {
		p := s.pools[name]
		for _, t := range p.Targets {
			if t.State == nil {
				continue
			}
			up := 0.0
			if t.State.Available(now) {
				up = 1
			}
			target := t.URL.Host
			ch <- prometheus.MustNewConstMetric(descTargetUp, prometheus.GaugeValue, up, name, target)
			ch <- prometheus.MustNewConstMetric(descTargetInflight, prometheus.GaugeValue, float64(t.State.Inflight()), name, target)
			ch <- prometheus.MustNewConstMetric(descTargetEjections, prometheus.CounterValue, float64(t.State.EjectionsTotal()), name, target)
		}
		if ps := p.State(); ps != nil {
			ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(ps.RetriesTotal()), name)
			ch <- prometheus.MustNewConstMetric(descOverload, prometheus.CounterValue, float64(ps.Overloaded()), name)
			ch <- prometheus.MustNewConstMetric(descBudget, prometheus.CounterValue, float64(ps.BudgetExhausted()), name)
		}
	}
}
