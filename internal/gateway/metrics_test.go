package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// scrape fetches and parses the admin /metrics page.
func scrape(t *testing.T, adminURL string) map[string][]*dtoMetric {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	out := map[string][]*dtoMetric{}
	for name, f := range fams {
		for _, m := range f.Metric {
			dm := &dtoMetric{labels: map[string]string{}}
			for _, l := range m.Label {
				dm.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				dm.value = m.Counter.GetValue()
			case m.Gauge != nil:
				dm.value = m.Gauge.GetValue()
			case m.Histogram != nil:
				dm.value = float64(m.Histogram.GetSampleCount())
			}
			out[name] = append(out[name], dm)
		}
	}
	return out
}

type dtoMetric struct {
	labels map[string]string
	value  float64
}

// value returns the metric with all the given labels, or -1.
func value(ms map[string][]*dtoMetric, name string, labels ...string) float64 {
	for _, m := range ms[name] {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if m.labels[labels[i]] != labels[i+1] {
				ok = false
				break
			}
		}
		if ok {
			return m.value
		}
	}
	return -1
}

// TestMetricsAfterKnownTraffic scrapes /metrics after a known mix of
// requests and checks the counts exactly (the gateway's metrics are its
// own; see TestServicesTwoGatewaysIsolated).
func TestMetricsAfterKnownTraffic(t *testing.T) {
	up := newSeenBackend(t)
	dead := e2eFreePort(t)
	tg := testutil.StartGateway(t, fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  mu: {targets: [{url: %q}]}
  mdead: {targets: [{url: "http://%s"}], retry: {attempts: 1, on: [connect_failure]}}
routes:
  - {name: m-ok, match: {path_prefix: /ok}, upstream: mu}
  - {name: m-dead, match: {path_prefix: /dead}, upstream: mdead}
  - {name: m-hello, match: {path: /hello}, respond: {body: hi}}
  - name: m-limited
    match: {path: /limited}
    respond: {body: ok}
    plugins: [{name: rate_limit, config: {key: [route], limits: [{rate: 1, per: 1h}]}}]
  - name: m-keyed
    match: {path: /keyed}
    respond: {body: ok}
    plugins: [{name: key_auth}]
`, up.url, dead))
	before := scrape(t, tg.AdminURL)
	c := testutil.Client()
	send := func(method, path string, n int) {
		for i := 0; i < n; i++ {
			req, _ := http.NewRequest(method, tg.URL+path, strings.NewReader("12345"))
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	send("GET", "/ok/a", 3)
	send("POST", "/ok/b", 2)
	send("GET", "/dead/x", 2)
	send("GET", "/hello", 4)
	send("BREW", "/hello", 1)
	send("GET", "/limited", 3)
	send("GET", "/keyed", 2)

	ms := scrape(t, tg.AdminURL)
	checks := []struct {
		desc   string
		name   string
		labels []string
		want   float64
	}{
		{"GET 2xx on m-ok", "portico_requests_total", []string{"route", "m-ok", "method", "GET", "status", "2xx", "upstream", "mu"}, 3},
		{"POST 2xx on m-ok", "portico_requests_total", []string{"route", "m-ok", "method", "POST", "status", "2xx"}, 2},
		{"5xx on m-dead", "portico_requests_total", []string{"route", "m-dead", "method", "GET", "status", "5xx", "upstream", "mdead"}, 2},
		{"direct responses", "portico_requests_total", []string{"route", "m-hello", "method", "GET", "status", "2xx", "upstream", ""}, 4},
		{"unknown method folded", "portico_requests_total", []string{"route", "m-hello", "method", "OTHER"}, 1},
		{"latency histogram count", "portico_request_duration_seconds", []string{"route", "m-ok"}, 5},
		{"upstream latency count", "portico_upstream_duration_seconds", []string{"route", "m-ok", "upstream", "mu"}, 5},
		{"request bytes", "portico_request_bytes_total", []string{"route", "m-ok"}, 25},
		{"response bytes", "portico_response_bytes_total", []string{"route", "m-hello"}, 10},
		{"target up", "portico_upstream_target_up", []string{"upstream", "mu"}, 1},
		{"connect-failure retries", "portico_upstream_retries_total", []string{"upstream", "mdead"}, 2},
		{"in flight (the scrape itself is not proxied)", "portico_requests_in_flight", nil, 0},
	}
	// Counters are process-wide (and -count may run this test again), so
	// they are checked as the change over this test; gauges as values.
	for _, tc := range checks {
		got := value(ms, tc.name, tc.labels...)
		if b := value(before, tc.name, tc.labels...); b > 0 && !strings.HasSuffix(tc.name, "_up") && !strings.HasSuffix(tc.name, "_in_flight") {
			got -= b
		}
		if got != tc.want {
			t.Errorf("%s: %s%v = %v, want %v", tc.desc, tc.name, tc.labels, got, tc.want)
		}
	}
	delta := func(name string, labels ...string) float64 {
		b := value(before, name, labels...)
		if b < 0 {
			b = 0
		}
		return value(ms, name, labels...) - b
	}
	if d := delta("portico_ratelimit_rejected_total", "route", "m-limited", "reason", "limit"); d != 2 {
		t.Errorf("rate-limit rejections = %v, want 2", d)
	}
	if d := delta("portico_auth_failures_total", "plugin", "key_auth", "reason", "missing"); d != 2 {
		t.Errorf("key_auth failures (missing) = %v, want 2", d)
	}
	if value(ms, "portico_config_reloads_total", "result", "success") < 1 || len(ms["portico_config_info"]) != 1 {
		t.Errorf("config reload metrics missing: %v %v", ms["portico_config_reloads_total"], ms["portico_config_info"])
	}
	if len(ms["go_goroutines"]) == 0 || len(ms["process_resident_memory_bytes"]) == 0 {
		t.Error("Go runtime and process metrics missing")
	}
}

// TestAbortedStreamIsCounted: a client that goes away in the middle of a
// streamed response still leaves the in-flight gauge at zero and the
// request counted.
func TestAbortedStreamIsCounted(t *testing.T) {
	stream := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; i < 200; i++ {
			if _, err := fmt.Fprintf(w, "data: %d\n\n", i); err != nil {
				return
			}
			rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	tg := testutil.StartGateway(t, fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {s: {targets: [{url: %q}]}}
routes: [{name: m-stream, match: {path: /s}, upstream: s}]
`, stream.URL))
	before := value(scrape(t, tg.AdminURL), "portico_requests_total", "route", "m-stream")
	if before < 0 {
		before = 0
	}
	resp, err := http.Get(tg.URL + "/s")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // the client goes away mid-stream
	var ms map[string][]*dtoMetric
	if !wait.Within(5*time.Second, func() bool {
		ms = scrape(t, tg.AdminURL)
		return value(ms, "portico_requests_in_flight") == 0 && value(ms, "portico_requests_total", "route", "m-stream") == before+1
	}) {
		t.Fatalf("in flight %v, requests %v after the client left", value(ms, "portico_requests_in_flight"), value(ms, "portico_requests_total", "route", "m-stream"))
	}
}
