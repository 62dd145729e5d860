package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/steps"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// killable is a real backend that can be killed (listener and connections
// closed) and restarted on the same address during a test.
type killable struct {
	t       testing.TB
	addr    string
	handler http.Handler
	mu      sync.Mutex
	srv     *http.Server
	hits    atomic.Int64
}

func newKillable(t testing.TB, h http.HandlerFunc) *killable {
	k := &killable{t: t}
	k.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			k.hits.Add(1)
		}
		h(w, r)
	})
	k.start("127.0.0.1:0")
	t.Cleanup(k.kill)
	return k
}

func (k *killable) start(addr string) {
	var ln net.Listener
	var err error
	// A restart rebinds the old port, which may take a moment to free.
	if !wait.Within(time.Second, func() bool { ln, err = net.Listen("tcp", addr); return err == nil }) {
		k.t.Fatalf("listen %s: %v", addr, err)
	}
	srv := &http.Server{Handler: k.handler}
	k.mu.Lock()
	k.addr, k.srv = ln.Addr().String(), srv
	k.mu.Unlock()
	go srv.Serve(ln)
}

func (k *killable) kill() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.srv != nil {
		k.srv.Close()
		k.srv = nil
	}
}

func (k *killable) restart() { k.start(k.addr) }

func (k *killable) url() string { return "http://" + k.addr }

// slowHandler answers after 2 s, or not at all when the request is
// cancelled first.
func slowHandler(w http.ResponseWriter, r *http.Request) {
	select {
	case <-time.After(2 * time.Second):
	case <-r.Context().Done():
	}
}

func ok(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	}
}

func poolYAML(extra string, targets ...*killable) string {
	var b strings.Builder
	b.WriteString("server: {listen: [{addr: \"127.0.0.1:0\"}]}\nupstreams:\n  u:\n    targets:\n")
	for _, k := range targets {
		fmt.Fprintf(&b, "      - url: %q\n", k.url())
	}
	b.WriteString(extra)
	b.WriteString("\nroutes: [{name: r, match: {path_prefix: /}, upstream: u}]\n")
	return b.String()
}

func do(t testing.TB, c *http.Client, method, url string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestPoolSurvivesTargetDeath kills one of three targets under concurrent
// load: idempotent requests in flight on it are retried, so no request
// fails, and the dead target is ejected (issue 3).
func TestPoolSurvivesTargetDeath(t *testing.T) {
	t.Parallel()
	slow := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(2 * time.Millisecond) // slow on purpose: requests are in flight when a target dies
			io.WriteString(w, name)
		}
	}
	a, b, c := newKillable(t, slow("a")), newKillable(t, slow("b")), newKillable(t, slow("c"))
	tg := testutil.StartGateway(t, poolYAML(`    retry: {attempts: 2, on: [connect_failure, reset, 502]}
    outlier_detection: {consecutive_failures: 3, base_ejection_time: 30s}`, a, b, c))
	var okN, failN atomic.Int64
	var firstFail atomic.Value
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := testutil.Client()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, _ := do(t, cl, "GET", tg.URL+"/x", nil)
				if code == 200 {
					okN.Add(1)
				} else {
					failN.Add(1)
					firstFail.CompareAndSwap(nil, fmt.Sprint(code, " ", body))
				}
			}
		}()
	}
	// Every target serves before b dies; the survivors then serve a good
	// number of requests more. Progress, not elapsed time, decides.
	wait.For(t, 5*time.Second, "all three targets serving", func() bool {
		return a.hits.Load() > 20 && b.hits.Load() > 20 && c.hits.Load() > 20
	})
	b.kill()
	hitsAfterKill := a.hits.Load() + c.hits.Load()
	wait.For(t, 5*time.Second, "survivors serving after the kill", func() bool {
		return a.hits.Load()+c.hits.Load()-hitsAfterKill >= 200
	})
	close(stop)
	wg.Wait()
	if failN.Load() != 0 {
		t.Fatalf("%d of %d requests failed after a target died; first: %v", failN.Load(), okN.Load()+failN.Load(), firstFail.Load())
	}
	t.Logf("%d requests, 0 failed; target b died mid-run", okN.Load())
}

// TestEjectedTargetReturnsAfterHealthChecks: active health checks take a dead
// target out, and put it back once it answers again.
func TestEjectedTargetReturnsAfterHealthChecks(t *testing.T) {
	t.Parallel()
	a, b := newKillable(t, ok("a")), newKillable(t, ok("b"))
	tg := testutil.StartGateway(t, poolYAML(`    balancer: round_robin
    health_check: {path: /healthz, interval: 50ms, timeout: 40ms, healthy_threshold: 1, unhealthy_threshold: 1}`, a, b))
	cl := testutil.Client()
	seen := func(n int) map[string]int {
		m := map[string]int{}
		for i := 0; i < n; i++ {
			_, body, _ := do(t, cl, "GET", tg.URL+"/", nil)
			m[body]++
		}
		return m
	}
	if m := seen(20); m["a"] == 0 || m["b"] == 0 {
		t.Fatalf("both targets should serve: %v", m)
	}
	b.kill()
	// Health checks take b out (watched without traffic, so no request
	// fails on b and passive ejection stays out of it); then every
	// request lands on a.
	wait.For(t, 5*time.Second, "b marked unhealthy", func() bool { return !tg.TargetStatus("u", b.url()).Healthy })
	if m := seen(20); m["a"] != 20 {
		t.Fatalf("after b died, want all on a: %v", m)
	}
	b.restart()
	wait.For(t, 5*time.Second, "b back in rotation", func() bool { return seen(4)["b"] > 0 })
}

// TestAllTargetsDownFailsFast: when health checks have marked every target
// down, requests get 503 JSON at once instead of waiting on connects.
func TestAllTargetsDownFailsFast(t *testing.T) {
	t.Parallel()
	a := newKillable(t, ok("a"))
	tg := testutil.StartGateway(t, poolYAML(`    health_check: {type: tcp, interval: 50ms, timeout: 40ms, unhealthy_threshold: 1}`, a))
	a.kill()
	wait.For(t, 5*time.Second, "a marked unhealthy", func() bool { return !tg.TargetStatus("u", a.url()).Healthy })
	start := time.Now()
	code, body, _ := do(t, testutil.Client(), "GET", tg.URL+"/", nil)
	if code != 503 || !strings.Contains(body, "no upstream target available") {
		t.Fatalf("got %d %s", code, body)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("503 took %v", d)
	}
}

// TestCircuitBreakerLimits: over max_requests (pool) or max_connections +
// max_pending (per target), requests get 503 at once.
func TestCircuitBreakerLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		limits string
		allow  int
	}{
		{desc: "max_requests", limits: "{max_requests: 2}", allow: 2},
		{desc: "max_connections plus max_pending", limits: "{max_connections: 1, max_pending: 1}", allow: 2},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			var inside atomic.Int64
			a := newKillable(t, func(w http.ResponseWriter, r *http.Request) {
				inside.Add(1)
				<-release
				io.WriteString(w, "done")
			})
			tg := testutil.StartGateway(t, poolYAML("    limits: "+tc.limits, a))
			results := make(chan int, tc.allow)
			for i := 0; i < tc.allow; i++ {
				go func() {
					code, _, _ := do(t, testutil.Client(), "GET", tg.URL+"/", nil)
					results <- code
				}()
			}
			wait.For(t, 5*time.Second, "requests admitted", func() bool { return inside.Load() >= 1 })
			// The target counts admitted requests, queued ones included.
			wait.For(t, 5*time.Second, "the limit reached", func() bool { return tg.TargetStatus("u", a.url()).InFlight >= int64(tc.allow) })
			start := time.Now()
			code, body, _ := do(t, testutil.Client(), "GET", tg.URL+"/", nil)
			if code != 503 || !strings.Contains(body, "upstream overloaded") {
				t.Errorf("over the limit: %d %s", code, body)
			}
			if time.Since(start) > 200*time.Millisecond {
				t.Errorf("refusal was not immediate")
			}
			close(release)
			for i := 0; i < tc.allow; i++ {
				if c := <-results; c != 200 {
					t.Errorf("admitted request got %d", c)
				}
			}
		})
	}
}

// TestRetryBudget: against an upstream that always fails, retries are capped
// by the budget so they cannot multiply the load of an outage.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	run := func(budget string) int64 {
		a := newKillable(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(50 * time.Millisecond) // slow on purpose: the 20 requests overlap, so their retries compete for the budget
			w.WriteHeader(503)
		})
		tg := testutil.StartGateway(t, poolYAML(`    outlier_detection: {disabled: true}
    retry: {attempts: 3, on: [503], `+budget+`}`, a))
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if code, _, _ := do(t, testutil.Client(), "GET", tg.URL+"/", nil); code != 503 {
					t.Errorf("status %d, want the upstream's 503", code)
				}
			}()
		}
		wg.Wait()
		return a.hits.Load()
	}
	unlimited := run("budget_percent: 100, min_retry_concurrency: 100")
	budgeted := run("budget_percent: 20, min_retry_concurrency: 1")
	t.Logf("upstream hits for 20 requests: %d without budget, %d with a 20%% budget", unlimited, budgeted)
	if unlimited != 80 {
		t.Errorf("without a budget each request should try 4 times: %d hits", unlimited)
	}
	if budgeted > 40 {
		t.Errorf("budget let through %d hits for 20 requests", budgeted)
	}
}

// TestRetryBehaviour covers the retry conditions: statuses, Retry-After,
// per-try timeouts, idempotency and body replay.
func TestRetryBehaviour(t *testing.T) {
	t.Parallel()
	steps.Parallel(t,
		steps.Step{Name: "503 with Retry-After goes to another target and the first rests", Run: retryRestsAfter503},
		steps.Step{Name: "per-try timeout moves on to a fast target", Run: retryPerTryTimeout},
		steps.Step{Name: "per-try timeout on the last attempt is a 504", Run: retryLastAttemptTimeout},
		steps.Step{Name: "POST is not retried on a status unless the route opts in", Run: retryPOSTOptIn},
		steps.Step{Name: "request body is replayed in full on retry", Run: retryReplaysBody},
	)
}

// retryRestsAfter503 checks that a 503 with Retry-After goes to another
// target and that the first rests.
func retryRestsAfter503(t *testing.T) {
	a := newKillable(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(503)
	})
	b := newKillable(t, ok("b"))
	tg := testutil.StartGateway(t, poolYAML("    balancer: round_robin\n    retry: {on: [503]}\n    debug_header: true", a, b))
	for i := 0; i < 6; i++ {
		code, body, h := do(t, testutil.Client(), "GET", tg.URL+"/", nil)
		if code != 200 || body != "b" || h.Get("X-Portico-Upstream") != strings.TrimPrefix(b.url(), "http://") {
			t.Fatalf("request %d: %d %q upstream %q", i, code, body, h.Get("X-Portico-Upstream"))
		}
	}
	if n := a.hits.Load(); n != 1 {
		t.Fatalf("target with Retry-After got %d requests within its rest, want 1", n)
	}
}

// retryPerTryTimeout checks that a per-try timeout moves on to a fast target.
func retryPerTryTimeout(t *testing.T) {
	slow := newKillable(t, slowHandler)
	fast := newKillable(t, ok("fast"))
	tg := testutil.StartGateway(t, poolYAML("    balancer: round_robin\n    retry: {on: [timeout], per_try_timeout: 100ms}", slow, fast))
	for i := 0; i < 4; i++ {
		start := time.Now()
		code, body, _ := do(t, testutil.Client(), "GET", tg.URL+"/", nil)
		if code != 200 || body != "fast" || time.Since(start) > time.Second {
			t.Fatalf("got %d %q after %v", code, body, time.Since(start))
		}
	}
}

// retryLastAttemptTimeout checks that a per-try timeout on the last attempt is a
// 504.
func retryLastAttemptTimeout(t *testing.T) {
	slow := newKillable(t, slowHandler)
	tg := testutil.StartGateway(t, poolYAML("    retry: {attempts: 1, on: [timeout], per_try_timeout: 100ms}", slow))
	if code, _, _ := do(t, testutil.Client(), "GET", tg.URL+"/", nil); code != 504 {
		t.Fatalf("got %d, want 504", code)
	}
}

// retryPOSTOptIn checks that POST is not retried on a status unless the route
// opts in.
func retryPOSTOptIn(t *testing.T) {
	a := newKillable(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) })
	b := newKillable(t, ok("b"))
	yaml := poolYAML("    balancer: round_robin\n    outlier_detection: {disabled: true}\n    retry: {on: [502]}", a, b)
	yaml = strings.Replace(yaml, "routes: [{name: r, match: {path_prefix: /}, upstream: u}]",
		"routes: [{name: r, match: {path_prefix: /}, upstream: u}, {name: opt, match: {path_prefix: /opt}, upstream: u, retry: {on: [502], non_idempotent: true}}]", 1)
	tg := testutil.StartGateway(t, yaml)
	got502 := false
	for i := 0; i < 4; i++ {
		if code, _, _ := do(t, testutil.Client(), "POST", tg.URL+"/", strings.NewReader("x")); code == 502 {
			got502 = true
		}
	}
	if !got502 {
		t.Fatal("a POST was retried without opting in")
	}
	for i := 0; i < 4; i++ {
		if code, body, _ := do(t, testutil.Client(), "POST", tg.URL+"/opt", strings.NewReader("x")); code != 200 || body != "b" {
			t.Fatalf("opted-in POST: %d %q", code, body)
		}
	}
}

// retryReplaysBody checks that the request body is replayed in full on retry.
func retryReplaysBody(t *testing.T) {
	var got atomic.Value
	// a reads the whole body and then drops the connection.
	a := newKillable(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	b := newKillable(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		io.Copy(h, r.Body)
		got.Store(hex.EncodeToString(h.Sum(nil)))
		io.WriteString(w, "b")
	})
	tg := testutil.StartGateway(t, poolYAML("    balancer: round_robin\n    outlier_detection: {disabled: true}\n    retry: {on: [reset], non_idempotent: true, buffer_bytes: 64KiB}", a, b))
	body := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	sum := sha256.Sum256(body)
	for i := 0; i < 2; i++ {
		code, resp, _ := do(t, testutil.Client(), "POST", tg.URL+"/", bytes.NewReader(body))
		if code != 200 || resp != "b" {
			t.Fatalf("POST %d: %d %q", i, code, resp)
		}
		if got.Load() != hex.EncodeToString(sum[:]) {
			t.Fatal("replayed body differs from the original")
		}
	}
	// A body larger than the buffer is not retried.
	big := bytes.Repeat([]byte("x"), 128<<10)
	codes := map[int]int{}
	for i := 0; i < 2; i++ {
		code, _, _ := do(t, testutil.Client(), "POST", tg.URL+"/", bytes.NewReader(big))
		codes[code]++
	}
	if codes[502] != 1 || codes[200] != 1 {
		t.Fatalf("oversized bodies: %v, want one 502 (from a, not retried) and one 200", codes)
	}
}

// TestHealthSurvivesReload: a target marked down stays down across a reload
// that keeps it, instead of receiving traffic until re-checked.
func TestHealthSurvivesReload(t *testing.T) {
	t.Parallel()
	a, b := newKillable(t, ok("a")), newKillable(t, ok("b"))
	yaml := poolYAML(`    balancer: round_robin
    health_check: {path: /healthz, interval: 1s, timeout: 500ms, unhealthy_threshold: 1}`, a, b)
	b.kill()
	tg := testutil.StartGateway(t, yaml)
	cl := testutil.Client()
	// Requests alone cannot show it (a connect failure is retried on a):
	// wait for the health checker's verdict itself.
	wait.For(t, 5*time.Second, "b marked down", func() bool { return !tg.TargetStatus("u", b.url()).Healthy })
	b.restart() // b answers again, but checks run only every second
	cfg := testutil.ParseConfig(t, strings.Replace(yaml, "routes: [", "routes: [{name: extra, match: {path: /extra}, respond: {}}, ", 1))
	if err := tg.Runtime.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, body, _ := do(t, cl, "GET", tg.URL+"/", nil); body != "a" {
			t.Fatalf("request %d after reload went to %q; b's down state was lost", i, body)
		}
	}
}
