package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/testutil"
)

// servicesStats reads a gateway's admin /stats counters.
func servicesStats(t *testing.T, adminURL string) []observe.CounterValue {
	t.Helper()
	resp, err := http.Get(adminURL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Counters []observe.CounterValue `json:"counters"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Counters
}

// servicesCounter returns the value of one counter in a /stats answer, or
// -1 when it is absent.
func servicesCounter(cs []observe.CounterValue, name, labels string) int64 {
	for _, c := range cs {
		if c.Name == name && c.Labels == labels {
			return c.Value
		}
	}
	return -1
}

// TestServicesTwoGatewaysIsolated starts two gateways with the same config
// in one process and checks that a request on one moves only that one's
// counters, /metrics (requests, upstream targets) and /stats.
func TestServicesTwoGatewaysIsolated(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", nil)
	const yaml = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {api: {targets: [{url: "{{BE}}"}]}}
routes:
  - name: shared-name
    match: {path_prefix: /}
    upstream: api
    plugins: [{name: key_auth}]
`
	vars := map[string]string{"BE": be.URL}
	one, two := e2eStart(t, yaml, vars), e2eStart(t, yaml, vars)
	if one.Metrics() == two.Metrics() || one.Stats() == two.Stats() {
		t.Fatal("two gateways share their metrics or counters")
	}
	for range 3 {
		resp, err := testutil.Client().Get(one.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	const failures, missing = "portico_auth_failures_total", `plugin="key_auth",reason="missing"`
	if n := servicesCounter(servicesStats(t, one.AdminURL), failures, missing); n != 3 {
		t.Errorf("gateway one /stats %s{%s} = %d, want 3", failures, missing, n)
	}
	if n := servicesCounter(servicesStats(t, two.AdminURL), failures, missing); n != 0 {
		t.Errorf("gateway two /stats %s{%s} = %d, want 0 (registered, never moved)", failures, missing, n)
	}
	if n := one.Stats().Counter(failures, missing).Value(); n != 3 {
		t.Errorf("gateway one Stats() = %d, want 3", n)
	}
	m1, m2 := scrape(t, one.AdminURL), scrape(t, two.AdminURL)
	if v := value(m1, "portico_requests_total", "route", "shared-name", "status", "4xx"); v != 3 {
		t.Errorf("gateway one portico_requests_total{route=shared-name,status=4xx} = %v, want 3", v)
	}
	if v := value(m2, "portico_requests_total", "route", "shared-name"); v != -1 {
		t.Errorf("gateway two portico_requests_total{route=shared-name} = %v, want absent", v)
	}
	if v := value(m1, "portico_auth_failures_total", "plugin", "key_auth", "reason", "missing"); v != 3 {
		t.Errorf("gateway one /metrics auth failures = %v, want 3", v)
	}
	if v := value(m2, "portico_auth_failures_total", "plugin", "key_auth", "reason", "missing"); v != 0 {
		t.Errorf("gateway two /metrics auth failures = %v, want 0", v)
	}
	// Each registry reports its own gateway's upstream targets, once.
	for name, ms := range map[string]map[string][]*dtoMetric{"one": m1, "two": m2} {
		if n := len(ms["portico_upstream_target_up"]); n != 1 {
			t.Errorf("gateway %s reports %d upstream targets, want 1", name, n)
		}
		if len(ms["portico_build_info"]) != 1 {
			t.Errorf("gateway %s: portico_build_info missing", name)
		}
	}
}
