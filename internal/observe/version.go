package observe

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// APIVersionRequestsMetric counts the requests of routes with versions.
const APIVersionRequestsMetric = "portico_api_version_requests_total"

func newVersionCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: APIVersionRequestsMetric,
		Help: "Requests of routes with API versions, by route, version (empty when none was chosen) and status class."},
		[]string{"route", "version", "status"})
}

// VersionMetrics count one API version's requests by status class,
// resolved once per config so counting takes no lock and allocates nothing.
type VersionMetrics struct {
	m              *Metrics
	route, version string
	byClass        [len(statusClasses)]atomic.Pointer[prometheus.Counter]
}

// Version returns the counters of version on route; version "" counts the
// requests refused before a version was chosen.
func (m *Metrics) Version(route, version string) *VersionMetrics {
	return &VersionMetrics{m: m, route: route, version: version}
}

// Count records one finished request with the given status.
func (vm *VersionMetrics) Count(status int) {
	class := status/100 - 1
	if class < 0 || class >= len(statusClasses) {
		class = len(statusClasses) - 1
	}
	slot := &vm.byClass[class]
	c := slot.Load()
	if c == nil {
		nc := vm.m.apiVersions.WithLabelValues(vm.route, vm.version, statusClasses[class])
		slot.CompareAndSwap(nil, &nc)
		c = slot.Load()
	}
	(*c).Inc()
}
