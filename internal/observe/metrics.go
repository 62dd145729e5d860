package observe

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the gateway's Prometheus registry and request metrics. Label
// cardinality is bounded: routes and upstreams by configured name, methods
// folded to a fixed set, statuses to their class.
type Metrics struct {
	Registry *prometheus.Registry

	requests         *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	upstreamDuration *prometheus.HistogramVec
	bytesIn          *prometheus.CounterVec
	bytesOut         *prometheus.CounterVec
	inflight         prometheus.Gauge
	reloads          *prometheus.CounterVec
	configInfo       *prometheus.GaugeVec
	apiVersions      *prometheus.CounterVec

	mu         sync.Mutex
	configHash string
}

// latencyBuckets span sub-millisecond proxying to slow upstreams (seconds).
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics creates a registry with the request metrics, the Go runtime and
// process collectors, and the counters of stats (none when nil). Each
// gateway runtime owns one; its admin /metrics serves it.
func NewMetrics(stats *Stats) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portico_requests_total",
		Help: "Requests served, by route, method, status class and upstream."}, []string{"route", "method", "status", "upstream"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "portico_request_duration_seconds",
		Help: "Time from request arrival to the end of the response, by route.", Buckets: latencyBuckets}, []string{"route"})
	m.upstreamDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "portico_upstream_duration_seconds",
		Help: "Time from sending a request upstream to its response headers, by route and upstream.", Buckets: latencyBuckets}, []string{"route", "upstream"})
	m.bytesIn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portico_request_bytes_total",
		Help: "Request body bytes received, by route."}, []string{"route"})
	m.bytesOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portico_response_bytes_total",
		Help: "Response body bytes sent, by route."}, []string{"route"})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "portico_requests_in_flight", Help: "Requests being served."})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "portico_config_reloads_total",
		Help: "Config applications, by result (success or failure)."}, []string{"result"})
	m.configInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "portico_config_info",
		Help: "The config in force: 1 for its hash."}, []string{"hash"})
	m.apiVersions = newVersionCounter()
	m.Registry.MustRegister(m.requests, m.duration, m.upstreamDuration, m.bytesIn, m.bytesOut, m.inflight, m.reloads, m.configInfo, m.apiVersions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if stats != nil {
		m.Registry.MustRegister(statsCollector{stats})
	}
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// InFlight is the gauge of requests being served.
func (m *Metrics) InFlight() prometheus.Gauge { return m.inflight }

// Reload records a config application.
func (m *Metrics) Reload(ok bool, hash string) {
	if !ok {
		m.reloads.WithLabelValues("failure").Inc()
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.configHash != "" {
		m.configInfo.DeleteLabelValues(m.configHash)
	}
	m.configHash = hash
	m.configInfo.WithLabelValues(hash).Set(1)
}

// methods are the request methods with their own label value.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "OTHER"}

func methodIndex(m string) int {
	for i, x := range methods[:len(methods)-1] {
		if x == m {
			return i
		}
	}
	return len(methods) - 1
}

var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// RouteMetrics are one route's metric children, resolved once per route so
// recording a request takes no lock and allocates nothing.
type RouteMetrics struct {
	m                     *Metrics
	route, upstream       string
	requests              [len(methods)][len(statusClasses)]atomic.Pointer[prometheus.Counter]
	duration, upstreamDur prometheus.Observer
	bytesIn, bytesOut     prometheus.Counter
}

// Route returns the metrics of a route proxying to upstream ("" for direct
// responses and redirects).
func (m *Metrics) Route(route, upstream string) *RouteMetrics {
	return &RouteMetrics{
		m: m, route: route, upstream: upstream,
		duration:    m.duration.WithLabelValues(route),
		upstreamDur: m.upstreamDuration.WithLabelValues(route, upstream),
		bytesIn:     m.bytesIn.WithLabelValues(route),
		bytesOut:    m.bytesOut.WithLabelValues(route),
	}
}

// Sample is what the metrics record of one finished request.
type Sample struct {
	Method string
	Status int
	// Duration is the whole request's time in the gateway.
	Duration time.Duration
	// UpstreamDuration is the time to the upstream's response headers
	// (zero when the request was not proxied).
	UpstreamDuration  time.Duration
	BytesIn, BytesOut int64
}

// Observe records one finished request.
func (rm *RouteMetrics) Observe(s Sample) {
	class := s.Status/100 - 1
	if class < 0 || class >= len(statusClasses) {
		class = len(statusClasses) - 1
	}
	mi := methodIndex(s.Method)
	slot := &rm.requests[mi][class]
	c := slot.Load()
	if c == nil {
		nc := rm.m.requests.WithLabelValues(rm.route, methods[mi], statusClasses[class], rm.upstream)
		slot.CompareAndSwap(nil, &nc)
		c = slot.Load()
	}
	(*c).Inc()
	rm.duration.Observe(s.Duration.Seconds())
	if s.UpstreamDuration > 0 {
		rm.upstreamDur.Observe(s.UpstreamDuration.Seconds())
	}
	if s.BytesIn > 0 {
		rm.bytesIn.Add(float64(s.BytesIn))
	}
	if s.BytesOut > 0 {
		rm.bytesOut.Add(float64(s.BytesOut))
	}
}

// statsCollector exposes the Stats counters (auth failures, rate-limit
// rejections…) as Prometheus counters.
type statsCollector struct{ s *Stats }

func (statsCollector) Describe(chan<- *prometheus.Desc) {}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range c.s.Snapshot() {
		names, values := parseLabels(v.Labels)
		desc := prometheus.NewDesc(v.Name, "Gateway counter "+v.Name+".", names, nil)
		if m, err := prometheus.NewConstMetric(desc, prometheus.CounterValue, float64(v.Value), values...); err == nil {
			ch <- m
		}
	}
}

// parseLabels splits `a="x",b="y"` into names and values.
func parseLabels(s string) (names, values []string) {
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		name := s[:eq]
		rest := s[eq+1:]
		v, err := strconv.QuotedPrefix(rest)
		if err != nil {
			break
		}
		uq, _ := strconv.Unquote(v)
		names, values = append(names, name), append(values, uq)
		s = strings.TrimPrefix(rest[len(v):], ",")
	}
	return names, values
}
