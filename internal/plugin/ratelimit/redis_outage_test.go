package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// logLines parses every line of a JSON log; a line that is not a JSON
// object fails the test.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(log) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// redisWarnings returns the WARN lines about the Redis dependency.
func redisWarnings(lines []map[string]any) []map[string]any {
	var out []map[string]any
	for _, m := range lines {
		if m["level"] == "WARN" && m["dependency"] == "redis" {
			out = append(out, m)
		}
	}
	return out
}

// newLoggedPlugin provisions src like the gateway does, logging as JSON to
// the returned buffer.
func newLoggedPlugin(t *testing.T, src string) (*RateLimit, *logbuf.Buffer) {
	t.Helper()
	p := decodePlugin(t, src)
	buf := new(logbuf.Buffer)
	provisionPlugin(t, p, plugin.StaticContext{RouteName: "outage", Log: slog.New(slog.NewJSONHandler(buf, nil))})
	return p, buf
}

// outageLoad sends requests from workers goroutines for d through h, each
// worker pausing 5ms between requests, and returns each request's latency
// and the count of each status.
func outageLoad(h http.Handler, workers int, d time.Duration) (lat []time.Duration, codes map[int]int) {
	var mu sync.Mutex
	codes = map[int]int{}
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			mineCodes := map[int]int{}
			for time.Now().Before(stop) {
				r := httptest.NewRequest(http.MethodGet, "/api/x", nil)
				r = withRecord(r, ipRecord("192.0.2.1"))
				w := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(w, r)
				mine = append(mine, time.Since(start))
				mineCodes[w.Code]++
				time.Sleep(5 * time.Millisecond) // the clients' pacing, not synchronisation
			}
			mu.Lock()
			lat = append(lat, mine...)
			for c, n := range mineCodes {
				codes[c] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return lat, codes
}

// TestRedisOutageBoundedWait makes Redis unresponsive (paused: commands hang
// until the client times out) or kills it (connections refused) while many
// requests on one key are in flight, in exact and lease mode. No request may
// wait much longer than the Redis timeout, and the requests must not each
// pay a timeout: after the first failure the breaker sends them straight to
// the failure policy, and requests queued behind a lease refill share its
// failure. The failure is logged as one structured WARN line with
// dependency "redis", not one per request.
//
// Not parallel: the load would starve the other tests of the package.
func TestRedisOutageBoundedWait(t *testing.T) {
	const (
		timeout = 100 * time.Millisecond
		workers = 32
		load    = 1500 * time.Millisecond
		// margin absorbs scheduling on a loaded 2-core test machine; the
		// failure being tested added k × timeout (0.8 s to 2.5 s).
		margin = 350 * time.Millisecond
	)
	for _, mode := range []string{"exact", "lease"} {
		for _, outage := range []string{"paused", "stopped"} {
			// Sequential: the load is timing-sensitive on a small machine.
			t.Run(mode+"/"+outage, func(t *testing.T) {
				rd := testredis.Start(t)
				p, logs := newLoggedPlugin(t, fmt.Sprintf(`{key: [route], backend: redis, redis_mode: %s, lease_size: 5,
  redis: {addr: %q, timeout: 100ms}, on_redis_error: fail_closed, limits: [{rate: 1000000, per: 1s}]}`, mode, rd.Addr))
				h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))

				// Healthy: requests pass through Redis (the first call may
				// be slow on a busy machine: wait for a 200).
				for deadline := time.Now().Add(5 * time.Second); ; {
					p.downUntil.Store(0)
					if _, codes := outageLoad(h, 1, time.Millisecond); codes[http.StatusOK] == 1 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatal("no 200 from a healthy Redis within 5s")
					}
				}
				if _, codes := outageLoad(h, 4, 100*time.Millisecond); codes[http.StatusOK] == 0 || len(codes) != 1 {
					t.Fatalf("with Redis up: statuses %v, want only 200", codes)
				}
				// Start the log afresh: a slow first call may have
				// been logged (and would suppress the next line).
				logs.Reset()
				p.warner = observe.NewDependencyWarner(slog.New(slog.NewJSONHandler(logs, nil)), 0)
				errsBefore := p.errCount.Value()

				switch outage {
				case "paused":
					c := redis.NewClient(&redis.Options{Addr: rd.Addr})
					defer c.Close()
					if err := c.Do(context.Background(), "CLIENT", "PAUSE", (load + 2*time.Second).Milliseconds(), "ALL").Err(); err != nil {
						t.Fatalf("CLIENT PAUSE: %v", err)
					}
				case "stopped":
					rd.Stop()
				}
				lat, codes := outageLoad(h, workers, load)
				slices.Sort(lat)
				maxLat := lat[len(lat)-1]
				slow := len(lat) - sortIndex(lat, timeout/2)
				t.Logf("%d requests, statuses %v, slowest waits %v, p99 %v, %d waited over %v, %d Redis errors counted",
					len(lat), codes, lat[max(len(lat)-5, 0):], lat[len(lat)*99/100], slow, timeout/2, p.errCount.Value()-errsBefore)
				if maxLat > timeout+margin {
					t.Errorf("a request waited %v for a Redis with a %v timeout", maxLat, timeout)
				}
				// Only the requests in flight when Redis went away and the
				// breaker's probes (one a second) may pay the timeout.
				if limit := 2*workers + 10; slow > limit {
					t.Errorf("%d requests waited over %v, want at most %d: requests each paid a timeout", slow, timeout/2, limit)
				}
				if codes[http.StatusServiceUnavailable] == 0 {
					t.Errorf("statuses %v: fail_closed refused nothing", codes)
				}
				warns := redisWarnings(logLines(t, logs.String()))
				if len(warns) != 1 {
					t.Errorf("%d WARN lines about redis for %d failing requests, want 1 per interval:\n%s", len(warns), len(lat), logs.String())
				} else if w := warns[0]; w["error"] == nil || w["on_redis_error"] != "fail_closed" {
					t.Errorf("WARN line %v lacks the error or the policy", w)
				}
			})
		}
	}
}

// sortIndex is the index of the first element of sorted lat that is >= d.
func sortIndex(lat []time.Duration, d time.Duration) int {
	i, _ := slices.BinarySearch(lat, d)
	return i
}

// TestRedisWarnInterval checks that a Redis that stays down is reported
// again once per warning interval, with the count of failures in between.
func TestRedisWarnInterval(t *testing.T) {
	t.Parallel()
	rd := testredis.Start(t)
	p, logs := newLoggedPlugin(t, fmt.Sprintf(`{key: [ip], backend: redis, redis: {addr: %q, timeout: 50ms},
  limits: [{rate: 10, per: 1s}]}`, rd.Addr))
	p.warner = observe.NewDependencyWarner(slog.New(slog.NewJSONHandler(logs, nil)), 300*time.Millisecond)
	rd.Stop()
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	// Failures go on until the warner's interval has passed and it logs
	// again.
	if !wait.Within(10*time.Second, func() bool {
		// The breaker lets one request a second through to Redis.
		p.downUntil.Store(0)
		for range 20 {
			h.ServeHTTP(httptest.NewRecorder(), withRecord(httptest.NewRequest(http.MethodGet, "/", nil), ipRecord("192.0.2.1")))
		}
		return len(redisWarnings(logLines(t, logs.String()))) >= 2
	}) {
		t.Fatalf("no second WARN line within 10s:\n%s", logs.String())
	}
	warns := redisWarnings(logLines(t, logs.String()))
	if warns[1]["suppressed"] == nil {
		t.Errorf("second WARN line %v does not count the suppressed failures", warns[1])
	}
}

// TestBreakerBackoff walks the breaker through an outage on a fake clock:
// open for 100ms after a failure, one probe at a time, the pause doubling
// with each failed probe up to 1s, closed by a success.
func TestBreakerBackoff(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := newPlugin(t, `{backend: redis, redis: {addr: "127.0.0.1:1", timeout: 50ms}, limits: [{rate: 10, per: 1s}]}`, clock)
	p.warner = nil // nothing to log here
	errDown := errors.New("down")
	if !p.mayCallRedis(p.clock()) {
		t.Fatal("breaker open before any failure")
	}
	p.redisFailed(errDown)
	for _, pause := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		pause *= time.Millisecond
		clock.advance(pause - time.Millisecond)
		if p.mayCallRedis(p.clock()) {
			t.Fatalf("probe allowed %v into a %v pause", pause-time.Millisecond, pause)
		}
		clock.advance(time.Millisecond)
		if !p.mayCallRedis(p.clock()) {
			t.Fatalf("no probe after a %v pause", pause)
		}
		if p.mayCallRedis(p.clock()) {
			t.Fatal("a second probe while the first is in flight")
		}
		p.redisFailed(errDown) // the probe fails
	}
	clock.advance(time.Second)
	if !p.mayCallRedis(p.clock()) {
		t.Fatal("no probe after the longest pause")
	}
	p.redisOK()
	for range 3 {
		if !p.mayCallRedis(p.clock()) {
			t.Fatal("breaker still open after a success")
		}
	}
	// A new outage starts again from the shortest pause.
	p.redisFailed(errDown)
	clock.advance(100 * time.Millisecond)
	if !p.mayCallRedis(p.clock()) {
		t.Fatal("pause after a new failure is longer than 100ms")
	}
}
