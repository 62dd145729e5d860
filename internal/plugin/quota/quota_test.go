package quota

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/testutil/fakeclock"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// clock is a settable time source.
type clock = fakeclock.Clock

// build decodes src the way the gateway does and builds an instance on route
// "api" that reads its time from clk.
func build(t testing.TB, src string, clk *clock, opts ...plugintest.Option) (*Quota, error) {
	t.Helper()
	p, _, err := plugintest.Build[*Quota](t, Name, src, append(opts, plugintest.WithRoute("api"))...)
	if err != nil {
		return nil, err
	}
	if clk != nil {
		p.now = clk.Now
	}
	return p, nil
}

func mustBuild(t testing.TB, src string, clk *clock, opts ...plugintest.Option) http.Handler {
	t.Helper()
	p, err := build(t, src, clk, opts...)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
}

// do sends one request as consumer c (nil: unauthenticated).
func do(h http.Handler, c *consumer.Consumer) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := &request.Record{RequestID: "req-1", Route: "api", Consumer: c}
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr
}

func cons(id string, meta map[string]string) *consumer.Consumer {
	return &consumer.Consumer{Name: id, ID: id, Metadata: meta}
}

// expect checks the status and the quota headers ("" means absent).
func expect(t *testing.T, rr *httptest.ResponseRecorder, status int, limit, remaining, reset, retryAfter string) {
	t.Helper()
	if rr.Code != status {
		t.Fatalf("status %d, want %d (body %q)", rr.Code, status, rr.Body.String())
	}
	for _, h := range []struct{ name, want string }{
		{HeaderLimit, limit}, {HeaderRemaining, remaining}, {HeaderReset, reset}, {"Retry-After", retryAfter},
	} {
		if got := rr.Header().Get(h.name); got != h.want {
			t.Errorf("%s = %q, want %q", h.name, got, h.want)
		}
	}
}

func redisCfg(addr string) string { return fmt.Sprintf("{addr: %q}", addr) }

func rdb(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// checkTTL checks that key expires in want (as seen by the test clock, the
// TTL being relative), allowing a few seconds for the test's own run time.
func checkTTL(t *testing.T, c *redis.Client, key string, want time.Duration) {
	t.Helper()
	ttl, err := c.TTL(context.Background(), key).Result()
	if err != nil || ttl > want || ttl < want-5*time.Second {
		t.Errorf("TTL of %s = %v (%v), want %v", key, ttl, err, want)
	}
}

func utc(y int, m time.Month, d, h, min, s int) time.Time {
	return time.Date(y, m, d, h, min, s, 0, time.UTC)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	const r = `redis: {addr: "127.0.0.1:1"}`
	tests := []struct{ src, wantErr string }{
		{`{limit: 5, period: day}`, "redis: required"},
		{`{period: day, ` + r + `}`, "limit"},
		{`{limit: 0, period: day, ` + r + `}`, "limit"},
		{`{limit: 5, ` + r + `}`, "period"},
		{`{limit: 5, period: week, ` + r + `}`, "period"},
		{`{limit: 5, period: day, time_zone: Mars/Olympus, ` + r + `}`, "time_zone"},
		{`{limit: 5, period: day, on_anonymous: maybe, ` + r + `}`, "on_anonymous"},
		{`{limit: 5, period: day, on_redis_error: retry, ` + r + `}`, "on_redis_error"},
		{`{limit: 5, period: day, redis: {}}`, "redis"},
		{`{limit: 5, period: day, bogus: 1, ` + r + `}`, "unknown field"},
		{`{limit: 5, period: month, time_zone: Europe/Paris, on_anonymous: allow, on_redis_error: fail_closed, ` + r + `}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			_, err := build(t, tc.src, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
	p, err := build(t, `{limit: 5, period: day, `+r+`}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.TimeZone != "UTC" || p.TimeZoneMetadataKey != "time_zone" || p.QuotaLimitMetadataKey != "quota" ||
		p.OnAnonymous != "deny" || p.OnRedisError != "fail_open" || p.timeout != 100*time.Millisecond {
		t.Errorf("defaults: %+v", p)
	}
}

func TestLimitExact(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	clk := fakeclock.New(utc(2026, 3, 10, 12, 0, 0))
	h := mustBuild(t, `{limit: 5, period: day, redis: `+redisCfg(rs.Addr)+`}`, clk)
	alice := cons("alice", nil)
	for i := 1; i <= 5; i++ {
		expect(t, do(h, alice), http.StatusOK, "5", strconv.Itoa(5-i), "43200", "")
	}
	rr := do(h, alice)
	expect(t, rr, http.StatusTooManyRequests, "5", "0", "43200", "43200")
	var body struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || body.Error != "quota exceeded" || body.RequestID != "req-1" {
		t.Errorf("body %q: %v", rr.Body.String(), err)
	}
	// Refusals are not counted, and other consumers have their own quota.
	expect(t, do(h, alice), http.StatusTooManyRequests, "5", "0", "43200", "43200")
	expect(t, do(h, cons("bob", nil)), http.StatusOK, "5", "4", "43200", "")

	// The count lives in Redis under the documented key, with an expiry one
	// day after the period ends.
	c := rdb(t, rs.Addr)
	key := "portico:quota:api:alice:2026-03-10"
	if n, err := c.Get(context.Background(), key).Int(); err != nil || n != 5 {
		t.Errorf("%s = %d (%v), want 5", key, n, err)
	}
	checkTTL(t, c, key, 36*time.Hour)

	// Seconds are rounded up, and the next day starts afresh.
	clk.Set(utc(2026, 3, 10, 23, 59, 59).Add(500 * time.Millisecond))
	expect(t, do(h, alice), http.StatusTooManyRequests, "5", "0", "1", "1")
	clk.Set(utc(2026, 3, 11, 0, 0, 0))
	expect(t, do(h, alice), http.StatusOK, "5", "4", "86400", "")
}

func TestSharedBetweenNodes(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	clk := fakeclock.New(utc(2026, 3, 10, 12, 0, 0))
	// Different pool sizes give each "node" its own Redis client.
	a := mustBuild(t, fmt.Sprintf(`{limit: 5, period: day, redis: {addr: %q, pool_size: 3}}`, rs.Addr), clk)
	b := mustBuild(t, fmt.Sprintf(`{limit: 5, period: day, redis: {addr: %q, pool_size: 4}}`, rs.Addr), clk)
	alice := cons("alice", nil)
	for i := 1; i <= 5; i++ {
		h := a
		if i%2 == 0 {
			h = b
		}
		expect(t, do(h, alice), http.StatusOK, "5", strconv.Itoa(5-i), "43200", "")
	}
	expect(t, do(a, alice), http.StatusTooManyRequests, "5", "0", "43200", "43200")
	expect(t, do(b, alice), http.StatusTooManyRequests, "5", "0", "43200", "43200")
}

func TestConcurrentExact(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	clk := fakeclock.New(utc(2026, 3, 10, 12, 0, 0))
	h := mustBuild(t, `{limit: 30, period: day, redis: {addr: "`+rs.Addr+`", timeout: 5s}}`, clk)
	alice := cons("alice", nil)
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				rr := do(h, alice)
				mu.Lock()
				codes[rr.Code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[http.StatusOK] != 30 || codes[http.StatusTooManyRequests] != 20 {
		t.Errorf("statuses %v, want 30×200 and 20×429", codes)
	}
}

func TestConsumerTimeZone(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	// 14:59:50 UTC is 23:59:50 in Tokyo (UTC+9, no DST).
	clk := fakeclock.New(utc(2026, 3, 10, 14, 59, 50))
	h := mustBuild(t, `{limit: 2, period: day, redis: `+redisCfg(rs.Addr)+`}`, clk)
	tokyo := cons("tokyo", map[string]string{"time_zone": "Asia/Tokyo"})
	london := cons("london", nil) // the plugin's zone, UTC

	expect(t, do(h, tokyo), http.StatusOK, "2", "1", "10", "")
	expect(t, do(h, tokyo), http.StatusOK, "2", "0", "10", "")
	expect(t, do(h, tokyo), http.StatusTooManyRequests, "2", "0", "10", "10")
	// 9h 0m 10s to UTC midnight.
	expect(t, do(h, london), http.StatusOK, "2", "1", "32410", "")
	expect(t, do(h, london), http.StatusOK, "2", "0", "32410", "")

	clk.Set(utc(2026, 3, 10, 14, 59, 59))
	expect(t, do(h, tokyo), http.StatusTooManyRequests, "2", "0", "1", "1")
	clk.Set(utc(2026, 3, 10, 15, 0, 0)) // Tokyo midnight: a new day there
	expect(t, do(h, tokyo), http.StatusOK, "2", "1", "86400", "")
	expect(t, do(h, london), http.StatusTooManyRequests, "2", "0", "32400", "32400")

	c := rdb(t, rs.Addr)
	ctx := context.Background()
	for key, want := range map[string]int{
		"portico:quota:api:tokyo:2026-03-10":  2,
		"portico:quota:api:tokyo:2026-03-11":  1,
		"portico:quota:api:london:2026-03-10": 2,
	} {
		if n, err := c.Get(ctx, key).Int(); err != nil || n != want {
			t.Errorf("%s = %d (%v), want %d", key, n, err, want)
		}
	}
	// Tokyo's 2026-03-11 ends 24h after the clock's 15:00 UTC; the key
	// lives a day longer.
	checkTTL(t, c, "portico:quota:api:tokyo:2026-03-11", 48*time.Hour)
}

func TestPluginTimeZoneAndMetadataKey(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	// 2026-03-29 is the day Paris moves to summer time: 23 hours long.
	clk := fakeclock.New(utc(2026, 3, 28, 23, 0, 0)) // 00:00 in Paris (UTC+1)
	h := mustBuild(t, `{limit: 3, period: day, time_zone: Europe/Paris, time_zone_metadata_key: tz,
		redis: `+redisCfg(rs.Addr)+`}`, clk)
	expect(t, do(h, cons("a", nil)), http.StatusOK, "3", "2", strconv.Itoa(23*3600), "")
	// The configured metadata key is used; the default one is not.
	expect(t, do(h, cons("b", map[string]string{"tz": "UTC"})), http.StatusOK, "3", "2", "3600", "")
	expect(t, do(h, cons("c", map[string]string{"time_zone": "UTC"})), http.StatusOK, "3", "2", strconv.Itoa(23*3600), "")
	// An unknown zone falls back to the plugin's.
	expect(t, do(h, cons("d", map[string]string{"tz": "Nowhere/Land"})), http.StatusOK, "3", "2", strconv.Itoa(23*3600), "")
}

func TestMonth(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	c := rdb(t, rs.Addr)
	ctx := context.Background()
	clk := fakeclock.New(utc(2028, 2, 29, 23, 59, 59)) // 2028 is a leap year
	h := mustBuild(t, `{limit: 2, period: month, redis: `+redisCfg(rs.Addr)+`}`, clk)
	alice := cons("alice", nil)
	expect(t, do(h, alice), http.StatusOK, "2", "1", "1", "")
	expect(t, do(h, alice), http.StatusOK, "2", "0", "1", "")
	expect(t, do(h, alice), http.StatusTooManyRequests, "2", "0", "1", "1")
	checkTTL(t, c, "portico:quota:api:alice:2028-02-01", 86400*time.Second+time.Second)

	clk.Set(utc(2028, 3, 1, 0, 0, 0))
	expect(t, do(h, alice), http.StatusOK, "2", "1", strconv.Itoa(31*86400), "")
	if n, err := c.Get(ctx, "portico:quota:api:alice:2028-03-01").Int(); err != nil || n != 1 {
		t.Errorf("March count %d (%v), want 1", n, err)
	}

	// February 2028 has 29 days; February 2027 has 28.
	clk.Set(utc(2028, 2, 1, 0, 0, 0))
	expect(t, do(h, cons("bob", nil)), http.StatusOK, "2", "1", strconv.Itoa(29*86400), "")
	clk.Set(utc(2027, 2, 1, 0, 0, 0))
	expect(t, do(h, cons("bob", nil)), http.StatusOK, "2", "1", strconv.Itoa(28*86400), "")
	clk.Set(utc(2027, 2, 28, 12, 0, 0))
	expect(t, do(h, cons("bob", nil)), http.StatusOK, "2", "0", "43200", "")
	expect(t, do(h, cons("bob", nil)), http.StatusTooManyRequests, "2", "0", "43200", "43200")
	// Across the year boundary.
	clk.Set(utc(2027, 12, 31, 23, 0, 0))
	expect(t, do(h, cons("bob", nil)), http.StatusOK, "2", "1", "3600", "")
	if n, err := c.Get(ctx, "portico:quota:api:bob:2027-12-01").Int(); err != nil || n != 1 {
		t.Errorf("December count %d (%v), want 1", n, err)
	}

	// A consumer in Tokyo: the month ends at 15:00 UTC on the last day.
	clk.Set(utc(2028, 2, 29, 14, 0, 0))
	tokyo := cons("tokyo", map[string]string{"time_zone": "Asia/Tokyo"})
	expect(t, do(h, tokyo), http.StatusOK, "2", "1", "3600", "")
	clk.Set(utc(2028, 2, 29, 15, 0, 0))
	expect(t, do(h, tokyo), http.StatusOK, "2", "1", strconv.Itoa(31*86400), "")
}

func TestLimitOverride(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	clk := fakeclock.New(utc(2026, 3, 10, 12, 0, 0))
	h := mustBuild(t, `{limit: 5, period: day, redis: `+redisCfg(rs.Addr)+`}`, clk)
	vip := cons("vip", map[string]string{"quota": "2"})
	expect(t, do(h, vip), http.StatusOK, "2", "1", "43200", "")
	expect(t, do(h, vip), http.StatusOK, "2", "0", "43200", "")
	expect(t, do(h, vip), http.StatusTooManyRequests, "2", "0", "43200", "43200")
	// Not numeric: the plugin's limit applies.
	expect(t, do(h, cons("odd", map[string]string{"quota": "lots"})), http.StatusOK, "5", "4", "43200", "")
	// Zero blocks the consumer.
	expect(t, do(h, cons("none", map[string]string{"quota": "0"})), http.StatusTooManyRequests, "0", "0", "43200", "43200")

	h2 := mustBuild(t, `{limit: 5, period: day, quota_limit_metadata_key: daily, redis: `+redisCfg(rs.Addr)+`}`, clk)
	expect(t, do(h2, cons("k", map[string]string{"daily": "1000", "quota": "1"})), http.StatusOK, "1000", "999", "43200", "")
}

func TestAnonymous(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	deny := mustBuild(t, `{limit: 5, period: day, redis: `+redisCfg(rs.Addr)+`}`, nil)
	rr := do(deny, nil)
	expect(t, rr, http.StatusForbidden, "", "", "", "")
	if !strings.Contains(rr.Body.String(), "quota requires an authenticated consumer") {
		t.Errorf("body %q", rr.Body.String())
	}
	anon := &consumer.Consumer{Name: "guest", ID: "guest", Anonymous: true}
	expect(t, do(deny, anon), http.StatusForbidden, "", "", "", "")

	allow := mustBuild(t, `{limit: 5, period: day, on_anonymous: allow, redis: `+redisCfg(rs.Addr)+`}`, nil)
	for i := 0; i < 7; i++ {
		expect(t, do(allow, nil), http.StatusOK, "", "", "", "")
		expect(t, do(allow, anon), http.StatusOK, "", "", "", "")
	}
	if n, err := rdb(t, rs.Addr).DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("anonymous requests wrote %d keys (%v)", n, err)
	}
}

func TestRedisDown(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	clk := fakeclock.New(utc(2026, 3, 10, 12, 0, 0))
	const timeout = 200 * time.Millisecond
	cfg := fmt.Sprintf(`redis: {addr: %q, timeout: 200ms}`, rs.Addr)
	stats := observe.NewStats()
	open := mustBuild(t, `{limit: 5, period: day, `+cfg+`}`, clk, plugintest.WithStats(stats))
	closed := mustBuild(t, `{limit: 5, period: day, on_redis_error: fail_closed, `+cfg+`}`, clk, plugintest.WithStats(stats))
	alice := cons("alice", nil)
	expect(t, do(open, alice), http.StatusOK, "5", "4", "43200", "")
	expect(t, do(closed, alice), http.StatusOK, "5", "3", "43200", "")

	rs.Stop()
	errs := stats.Counter("portico_quota_redis_errors_total", `route="api"`)
	before := errs.Value()
	for i := 0; i < 3; i++ {
		start := time.Now()
		expect(t, do(open, alice), http.StatusOK, "", "", "", "")
		if d := time.Since(start); d > timeout+100*time.Millisecond {
			t.Errorf("fail_open took %v", d)
		}
		start = time.Now()
		rr := do(closed, alice)
		expect(t, rr, http.StatusServiceUnavailable, "", "", "", "")
		if d := time.Since(start); d > timeout+100*time.Millisecond {
			t.Errorf("fail_closed took %v", d)
		}
		if !strings.Contains(rr.Body.String(), "quota unavailable") {
			t.Errorf("body %q", rr.Body.String())
		}
	}
	if got := errs.Value() - before; got < 6 {
		t.Errorf("redis error counter rose by %d, want at least 6", got)
	}

	// Back up (empty: no persistence in this test server), counting resumes.
	rs.Restart()
	var rr *httptest.ResponseRecorder
	if !wait.Within(5*time.Second, func() bool { rr = do(closed, alice); return rr.Code == http.StatusOK }) {
		t.Fatalf("still %d after the restart", rr.Code)
	}
	expect(t, rr, http.StatusOK, "5", "4", "43200", "")
}

// TestRedisHung checks the bound when Redis accepts connections but never
// answers.
func TestRedisHung(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	const timeout = 200 * time.Millisecond
	cfg := fmt.Sprintf(`redis: {addr: %q, timeout: 200ms}`, ln.Addr())
	closed := mustBuild(t, `{limit: 5, period: day, on_redis_error: fail_closed, `+cfg+`}`, nil)
	open := mustBuild(t, `{limit: 5, period: day, `+cfg+`}`, nil)
	for i := 0; i < 2; i++ {
		start := time.Now()
		expect(t, do(closed, cons("alice", nil)), http.StatusServiceUnavailable, "", "", "", "")
		if d := time.Since(start); d > timeout+100*time.Millisecond {
			t.Errorf("fail_closed took %v", d)
		}
		start = time.Now()
		expect(t, do(open, cons("alice", nil)), http.StatusOK, "", "", "", "")
		if d := time.Since(start); d > timeout+100*time.Millisecond {
			t.Errorf("fail_open took %v", d)
		}
	}
}

func TestPeriodBounds(t *testing.T) {
	t.Parallel()
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	ny, _ := time.LoadLocation("America/New_York")
	tests := []struct {
		month      bool
		now        time.Time
		loc        *time.Location
		start, end time.Time
	}{
		{false, utc(2026, 3, 10, 15, 0, 0), tokyo, time.Date(2026, 3, 11, 0, 0, 0, 0, tokyo), time.Date(2026, 3, 12, 0, 0, 0, 0, tokyo)},
		{false, utc(2026, 3, 10, 14, 59, 59), tokyo, time.Date(2026, 3, 10, 0, 0, 0, 0, tokyo), time.Date(2026, 3, 11, 0, 0, 0, 0, tokyo)},
		{true, utc(2024, 2, 29, 12, 0, 0), time.UTC, utc(2024, 2, 1, 0, 0, 0), utc(2024, 3, 1, 0, 0, 0)},
		{true, utc(2026, 12, 31, 23, 0, 0), time.UTC, utc(2026, 12, 1, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0)},
		{true, utc(2026, 1, 1, 3, 0, 0), ny, time.Date(2025, 12, 1, 0, 0, 0, 0, ny), time.Date(2026, 1, 1, 0, 0, 0, 0, ny)},
		// The autumn DST change makes 2026-11-01 25 hours long in New York.
		{false, utc(2026, 11, 1, 12, 0, 0), ny, time.Date(2026, 11, 1, 0, 0, 0, 0, ny), time.Date(2026, 11, 2, 0, 0, 0, 0, ny)},
	}
	for i, tc := range tests {
		p := &Quota{month: tc.month}
		s, e := p.period(tc.now, tc.loc)
		if !s.Equal(tc.start) || !e.Equal(tc.end) {
			t.Errorf("%d: period %v – %v, want %v – %v", i, s, e, tc.start, tc.end)
		}
	}
	if d := time.Date(2026, 11, 2, 0, 0, 0, 0, ny).Sub(time.Date(2026, 11, 1, 0, 0, 0, 0, ny)); d != 25*time.Hour {
		t.Errorf("test assumption: New York 2026-11-01 lasts %v", d)
	}
}
