package gateway_test

import (
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/interop/grpc_testing"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/steps"
)

// e2eFaultConfig has one route per fault_injection behaviour, all on one
// recording backend.
const e2eFaultConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "{{LOG}}"}}
consumers:
  - {name: alice, credentials: {key_auth: [{key: fault-test-alice-key}]}}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
  short: {request_timeout: 100ms, targets: [{url: "{{BE}}"}]}
  grpc: {protocol: h2c, targets: [{url: "{{GRPC}}"}]}
routes:
  - name: slow-upstream
    match: {path_prefix: /upstream-timeout}
    upstream: short
    plugins:
      - {name: fault_injection, config: {delay: {duration: 1h, percent: 100}}}
  - name: abort
    match: {path_prefix: /abort}
    upstream: be
    plugins:
      - {name: fault_injection, config: {abort: {status: 503, percent: 25}}}
  - name: delay
    match: {path_prefix: /delay}
    upstream: be
    plugins:
      - {name: fault_injection, config: {delay: {duration: 150ms, percent: 100}}}
  - name: slow
    match: {path_prefix: /slow}
    upstream: be
    timeout: 100ms
    plugins:
      - {name: fault_injection, config: {delay: {duration: 1h, percent: 100}}}
  - name: header
    match: {path_prefix: /header}
    upstream: be
    plugins:
      - {name: fault_injection, config: {abort: {status: 418, percent: 100}, when_header: X-Fault-Test}}
  - name: authed
    match: {path_prefix: /authed}
    upstream: be
    plugins:
      - {name: fault_injection, config: {abort: {status: 503, percent: 100}}}
      - {name: key_auth}
  - name: grpc
    match: {path_prefix: /grpc.testing.TestService/}
    upstream: grpc
    plugins:
      - {name: fault_injection, config: {abort: {status: 503, percent: 100, grpc_status: 8}}}
`

// TestFaultInjection drives the fault_injection plugin through a gateway
// with real backends.
func TestFaultInjection(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", nil)
	gbe := e2eGRPCStartBackend(t, "grpc")
	logPath := filepath.Join(t.TempDir(), "access.log")
	env := &e2eFaultEnv{
		tg:      e2eStart(t, e2eFaultConfig, map[string]string{"BE": be.URL, "GRPC": gbe.url(), "LOG": logPath}),
		logPath: logPath,
	}
	steps.Parallel(t,
		steps.Step{Name: "abort rate over 2000 requests", Run: env.abortRate},
		steps.Step{Name: "abort body and access log", Run: env.abortAnswer},
		steps.Step{Name: "when_header leaves other requests alone", Run: env.headerCondition},
		steps.Step{Name: "delay is observed", Run: env.delayObserved},
		steps.Step{Name: "delay counts against the route timeout", Run: env.routeTimeout},
		steps.Step{Name: "delay counts against the upstream request_timeout", Run: env.upstreamTimeout},
		steps.Step{Name: "authentication runs before the fault", Run: env.authFirst},
		steps.Step{Name: "gRPC abort has the configured status", Run: env.grpcAbort},
	)
}

// e2eFaultEnv is the gateway TestFaultInjection's steps share.
type e2eFaultEnv struct {
	tg      *testutil.Gateway
	logPath string
}

// abortRate: abort rate over 2000 requests.
func (env *e2eFaultEnv) abortRate(t *testing.T) {
	const n, workers = 2000, 8
	var aborted, passed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range n / workers {
				resp, _ := e2eDo(t, e2eReq(t, http.MethodGet, env.tg.URL+"/abort", nil))
				switch resp.StatusCode {
				case http.StatusServiceUnavailable:
					aborted.Add(1)
				case http.StatusOK:
					passed.Add(1)
				default:
					t.Errorf("worker %d: status %d", w, resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	// 25% of 2000 is 500, standard deviation about 19: ±100 is
	// over five of them.
	if a := aborted.Load(); a < 400 || a > 600 || a+passed.Load() != n {
		t.Errorf("%d of %d aborted (%d passed), want 500±100", a, n, passed.Load())
	}
	c := env.tg.Runtime.Stats().Counter("portico_fault_injected_total", `route="abort",kind="abort"`).Value()
	if c != aborted.Load() {
		t.Errorf("counter %d, aborted %d", c, aborted.Load())
	}
}

// abortAnswer: abort body and access log.
func (env *e2eFaultEnv) abortAnswer(t *testing.T) {
	req := e2eReq(t, http.MethodGet, env.tg.URL+"/header", nil)
	req.Header.Set("X-Fault-Test", "1")
	req.Header.Set("X-Request-Id", "req-fault-abort")
	resp, body := e2eDo(t, req)
	e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusTeapot)
	if m := e2eAccessLine(t, env.logPath, "req-fault-abort"); m["error"] != "fault injected: abort" || m["status"] != float64(418) {
		t.Errorf("access log %v", m)
	}
}

// headerCondition: when_header leaves other requests alone.
func (env *e2eFaultEnv) headerCondition(t *testing.T) {
	for range 20 {
		if resp, _ := e2eDo(t, e2eReq(t, http.MethodGet, env.tg.URL+"/header", nil)); resp.StatusCode != http.StatusOK {
			t.Fatalf("without the header: status %d", resp.StatusCode)
		}
	}
}

// delayObserved: delay is observed.
func (env *e2eFaultEnv) delayObserved(t *testing.T) {
	start := time.Now()
	resp, _ := e2eDo(t, e2eReq(t, http.MethodGet, env.tg.URL+"/delay", nil))
	if el := time.Since(start); resp.StatusCode != http.StatusOK || el < 150*time.Millisecond {
		t.Errorf("status %d after %s, want 200 after at least 150ms", resp.StatusCode, el)
	}
}

// routeTimeout: delay counts against the route timeout.
func (env *e2eFaultEnv) routeTimeout(t *testing.T) {
	start := time.Now()
	req := e2eReq(t, http.MethodGet, env.tg.URL+"/slow", nil)
	req.Header.Set("X-Request-Id", "req-fault-slow")
	resp, body := e2eDo(t, req)
	e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusGatewayTimeout)
	if el := time.Since(start); el < 100*time.Millisecond || el > time.Minute {
		t.Errorf("answered after %s", el)
	}
	if m := e2eAccessLine(t, env.logPath, "req-fault-slow"); m["error"] != "fault injected: delay exceeded the route timeout" {
		t.Errorf("access log %v", m)
	}
}

// upstreamTimeout: delay counts against the upstream request_timeout.
func (env *e2eFaultEnv) upstreamTimeout(t *testing.T) {
	resp, body := e2eDo(t, e2eReq(t, http.MethodGet, env.tg.URL+"/upstream-timeout", nil))
	e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusGatewayTimeout)
}

// authFirst: authentication runs before the fault.
func (env *e2eFaultEnv) authFirst(t *testing.T) {
	if resp, _ := e2eDo(t, e2eReq(t, http.MethodGet, env.tg.URL+"/authed", nil)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no key: status %d, want 401", resp.StatusCode)
	}
	req := e2eReq(t, http.MethodGet, env.tg.URL+"/authed", nil)
	req.Header.Set("X-API-Key", "fault-test-alice-key")
	if resp, _ := e2eDo(t, req); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("good key: status %d, want 503", resp.StatusCode)
	}
}

// grpcAbort: gRPC abort has the configured status.
func (env *e2eFaultEnv) grpcAbort(t *testing.T) {
	cc := e2eGRPCDial(t, e2eHostPort(env.tg.URL), nil)
	_, err := grpc_testing.NewTestServiceClient(cc).EmptyCall(e2eGRPCCtx(t, 10*time.Second), &grpc_testing.Empty{})
	st := e2eGRPCWantCode(t, err, codes.ResourceExhausted)
	if st.Message() != "fault injected: abort" {
		t.Errorf("message %q", st.Message())
	}
}
