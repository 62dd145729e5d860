package ratelimit_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/portico-gw/portico/internal/plugin/ratelimit"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// upstream is a real backend that counts the requests it serves.
func upstream(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	return s.URL, &hits
}

// gateway starts a gateway with one route "api" on /api using the plugin
// config pluginCfg (a YAML flow mapping).
func gateway(t *testing.T, up, pluginCfg string) *testutil.Gateway {
	t.Helper()
	return gatewayRoute(t, up, "api", pluginCfg)
}

func gatewayRoute(t *testing.T, up, route, pluginCfg string) *testutil.Gateway {
	t.Helper()
	return testutil.StartGateway(t, fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {u: {targets: [{url: %q}]}}
routes:
  - name: %s
    match: {path_prefix: /api}
    upstream: u
    plugins: [{name: rate_limit, config: %s}]
`, up, route, pluginCfg))
}

type result struct {
	status  int
	header  http.Header
	latency time.Duration
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) result {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return result{status: resp.StatusCode, header: resp.Header, latency: time.Since(start)}
}

// TestGatewayKeys exercises the gateway's client IP and path
// normalisation: a spoofed X-Forwarded-For from an untrusted peer does not
// change the IP key, and /api//x and /api/x share a path key.
func TestGatewayKeys(t *testing.T) {
	t.Parallel()
	up, hits := upstream(t)
	c := testutil.Client()
	t.Run("rotating X-Forwarded-For cannot bypass an IP limit", func(t *testing.T) {
		t.Parallel()
		g := gateway(t, up, `{key: [ip], limits: [{rate: 5, per: 1h}]}`)
		allowed := 0
		for i := range 20 {
			r := get(t, c, g.URL+"/api/x", "X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
			if r.status == 200 {
				allowed++
			} else if r.status != 429 {
				t.Fatalf("status %d", r.status)
			}
		}
		if allowed != 5 {
			t.Fatalf("allowed %d, want 5", allowed)
		}
	})
	t.Run("path key uses the normalised path", func(t *testing.T) {
		t.Parallel()
		g := gateway(t, up, `{key: [path], limits: [{rate: 1, per: 1h}]}`)
		for _, tc := range []struct {
			path   string
			status int
		}{{"/api/x", 200}, {"/api//x", 429}, {"/api/./x", 429}, {"/api/y", 200}, {"/api/y/", 200}} {
			if r := get(t, c, g.URL+tc.path); r.status != tc.status {
				t.Fatalf("%s: status %d, want %d", tc.path, r.status, tc.status)
			}
		}
	})
	// Not parallel: it counts every request the shared upstream sees.
	t.Run("denial is a JSON 429 with Retry-After and never reaches the upstream", func(t *testing.T) {
		g := gateway(t, up, `{key: [header:X-Client], headers: both, limits: [{rate: 2, per: 1m}]}`)
		for range 2 {
			if r := get(t, c, g.URL+"/api/z", "X-Client", "deny-test"); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
		}
		before := hits.Load()
		req, _ := http.NewRequest("GET", g.URL+"/api/z", nil)
		req.Header.Set("X-Client", "deny-test")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Retry-After") != "30" {
			t.Fatalf("status %d, content type %q, Retry-After %q, body %s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)
		}
		if got := resp.Header.Get("RateLimit"); got != `"2-per-1m";r=0;t=30` {
			t.Fatalf("RateLimit %q", got)
		}
		if resp.Header.Get("X-RateLimit-Remaining") != "0" || resp.Header.Get("X-RateLimit-Limit") != "2" {
			t.Fatalf("X headers %v", resp.Header)
		}
		if hits.Load() != before {
			t.Fatal("the denied request reached the upstream")
		}
	})
}

// load sends requests from workers goroutines per gateway until each
// gateway has served perGateway requests, and counts 200s.
func load(t *testing.T, gws []*testutil.Gateway, workers, perGateway int, hdr ...string) (allowed int64, maxLatency time.Duration) {
	t.Helper()
	var ok atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	c := testutil.Client()
	for _, g := range gws {
		var left atomic.Int64
		left.Store(int64(perGateway))
		for range workers {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					r := get(t, c, g.URL+"/api/x", hdr...)
					switch r.status {
					case 200:
						ok.Add(1)
					case 429:
					default:
						t.Errorf("status %d", r.status)
						return
					}
					mu.Lock()
					maxLatency = max(maxLatency, r.latency)
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	return ok.Load(), maxLatency
}

// TestRedisExact: one script round trip per decision enforces the limit
// across three gateway instances sharing one Redis.
func TestRedisExact(t *testing.T) {
	t.Parallel()
	rd := testutil.StartRedis(t)
	up, _ := upstream(t)
	t.Run("single instance", func(t *testing.T) {
		t.Parallel()
		g := gatewayRoute(t, up, "single", fmt.Sprintf(`{key: [ip], backend: redis, redis: {addr: %q}, headers: both, limits: [{rate: 5, per: 1h}, {rate: 100, per: 1m, algorithm: sliding_window}]}`, rd.Addr))
		c := testutil.Client()
		for i := range 5 {
			r := get(t, c, g.URL+"/api/x")
			if r.status != 200 {
				t.Fatalf("request %d: status %d", i, r.status)
			}
			if got, want := r.header.Get("RateLimit"), fmt.Sprintf(`"5-per-1h";r=%d;t=%d`, 4-i, (i+1)*720); got != want {
				t.Fatalf("request %d: RateLimit %q, want %q", i, got, want)
			}
		}
		r := get(t, c, g.URL+"/api/x")
		if r.status != 429 || r.header.Get("Retry-After") != "720" || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Fatalf("6th request: status %d, headers %v", r.status, r.header)
		}
		if got := r.header.Get("RateLimit-Policy"); got != `"5-per-1h";q=5;w=3600, "100-per-1m";q=100;w=60` {
			t.Fatalf("RateLimit-Policy %q", got)
		}
	})
	// A window of an hour holds the whole load however slow the machine:
	// Redis decides on its own clock, which the test cannot move, and a
	// sliding window just past a boundary still counts the previous one.
	t.Run("three instances share 300 per hour", func(t *testing.T) {
		t.Parallel()
		cfg := fmt.Sprintf(`{key: [header:X-Client], backend: redis, redis: {addr: %q, timeout: 2s}, limits: [{rate: 300, per: 1h, algorithm: sliding_window}]}`, rd.Addr)
		gws := []*testutil.Gateway{gatewayRoute(t, up, "shared", cfg), gatewayRoute(t, up, "shared", cfg), gatewayRoute(t, up, "shared", cfg)}
		allowed, _ := load(t, gws, 8, 200, "X-Client", "exact-three")
		if allowed < 285 || allowed > 315 {
			t.Fatalf("allowed %d across three instances, want 300 ± 5%%", allowed)
		}
		t.Logf("allowed %d of 600 (limit 300)", allowed)
	})
}

// TestRedisLease: leases keep Redis off the per-request path; the
// over-admission stays within nodes × lease_size per window and does not
// accumulate.
func TestRedisLease(t *testing.T) {
	t.Parallel()
	rd := testutil.StartRedis(t)
	up, _ := upstream(t)
	t.Run("three instances, one window", func(t *testing.T) {
		t.Parallel()
		const rate, lease, nodes = 300, 30, 3
		// An hour holds the whole load (see TestRedisExact).
		cfg := fmt.Sprintf(`{key: [header:X-Client], backend: redis, redis: {addr: %q, timeout: 2s}, redis_mode: lease, limits: [{rate: %d, per: 1h, algorithm: sliding_window}]}`, rd.Addr, rate)
		var gws []*testutil.Gateway
		for range nodes {
			gws = append(gws, gatewayRoute(t, up, "lease", cfg))
		}
		allowed, _ := load(t, gws, 8, 200, "X-Client", "lease-three")
		t.Logf("allowed %d of 600 (limit %d, bound ±%d)", allowed, rate, nodes*lease)
		if allowed < rate-nodes*lease || allowed > rate+nodes*lease {
			t.Fatalf("allowed %d, want within %d ± %d", allowed, rate, nodes*lease)
		}
	})
	t.Run("overshoot does not accumulate over windows", func(t *testing.T) {
		t.Parallel()
		const rate, lease, nodes = 100, 10, 3
		cfg := fmt.Sprintf(`{key: [header:X-Client], backend: redis, redis: {addr: %q, timeout: 2s}, redis_mode: lease, lease_size: %d, limits: [{rate: %d, per: 1s, algorithm: sliding_window}]}`, rd.Addr, lease, rate)
		var gws []*testutil.Gateway
		for range nodes {
			gws = append(gws, gatewayRoute(t, up, "lease-long", cfg))
		}
		c := testutil.Client()
		var ok atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		deadline := start.Add(4 * time.Second)
		for _, g := range gws {
			for range 4 {
				wg.Go(func() {
					for time.Now().Before(deadline) {
						if r := get(t, c, g.URL+"/api/x", "X-Client", "lease-long"); r.status == 200 {
							ok.Add(1)
						}
					}
				})
			}
		}
		wg.Wait()
		end := time.Now()
		// Fixed 1s windows touched by the run, each admitting at most rate
		// in Redis; leases move at most nodes × lease_size admissions
		// across a window boundary, once, not per window.
		windows := int64(end.Truncate(time.Second).Sub(start.Truncate(time.Second))/time.Second) + 1
		bound := windows*rate + nodes*lease
		t.Logf("allowed %d over %v (%d windows, bound %d)", ok.Load(), end.Sub(start), windows, bound)
		if ok.Load() > bound {
			t.Fatalf("allowed %d, over the bound %d", ok.Load(), bound)
		}
		if ok.Load() < rate {
			t.Fatalf("allowed only %d", ok.Load())
		}
	})
}

// TestRedisFailure kills Redis mid-test: each policy answers within the
// timeout, and enforcement resumes after Redis comes back.
func TestRedisFailure(t *testing.T) {
	t.Parallel()
	rd := testutil.StartRedis(t)
	up, _ := upstream(t)
	c := testutil.Client()
	cfg := func(policy, mode string) string {
		// 150ms: short enough to bound requests while Redis is down, long
		// enough that a loaded machine does not time out a call Redis has
		// already counted (which would spend the fresh quota unseen).
		return fmt.Sprintf(`{key: [ip], backend: redis, redis: {addr: %q, timeout: 150ms}, redis_mode: %s, on_redis_error: %s, limits: [{rate: 3, per: 1h}]}`, rd.Addr, mode, policy)
	}
	type gw struct {
		policy, mode string
		g            *testutil.Gateway
	}
	var gws []gw
	for _, mode := range []string{"exact", "lease"} {
		for _, policy := range []string{"fail_open", "fail_closed", "local"} {
			gws = append(gws, gw{policy, mode, gatewayRoute(t, up, policy+"-"+mode, cfg(policy, mode))})
		}
	}
	statuses := func(g *testutil.Gateway, n int) []int {
		var out []int
		for range n {
			r := get(t, c, g.URL+"/api/x")
			if r.latency > 500*time.Millisecond {
				t.Errorf("request took %v with a 150ms Redis timeout", r.latency)
			}
			out = append(out, r.status)
		}
		return out
	}
	want := func(what string, got []int, want ...int) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: statuses %v, want %v", what, got, want)
		}
	}
	for _, g := range gws {
		want(g.policy+"/"+g.mode+" with Redis up", statuses(g.g, 5), 200, 200, 200, 429, 429)
	}
	rd.Stop()
	// Leases and cached lease denials taken before the failure are served
	// until they expire (lease TTL 1s here). Waiting the TTL out is the
	// behaviour under test: the gateways run on the real clock.
	time.Sleep(1100 * time.Millisecond)
	for _, g := range gws {
		got := statuses(g.g, 5)
		switch g.policy {
		case "fail_open":
			want(g.policy+"/"+g.mode+" with Redis down", got, 200, 200, 200, 200, 200)
		case "fail_closed":
			want(g.policy+"/"+g.mode+" with Redis down", got, 503, 503, 503, 503, 503)
		case "local":
			want(g.policy+"/"+g.mode+" with Redis down", got, 200, 200, 200, 429, 429)
		}
	}
	rd.Restart()
	// Redis is back, empty: each gateway probes it within a second and
	// enforces the limit from a fresh state: 3 allowed, then denied.
	for _, g := range gws {
		var got []int
		resumed := wait.Within(5*time.Second, func() bool {
			got = statuses(g.g, 1)
			// Fail-open requests have already used the fresh quota.
			return got[0] == 429 && g.policy == "fail_open" || got[0] == 200 && g.policy != "fail_open"
		})
		if !resumed {
			t.Fatalf("%s/%s: enforcement did not resume within 5s (last status %d)", g.policy, g.mode, got[0])
		}
		if g.policy != "fail_open" {
			want(g.policy+"/"+g.mode+" after restart", statuses(g.g, 3), 200, 200, 429)
		}
	}
}
