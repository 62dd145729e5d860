package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

// fakeClock is a settable clock for the limiter's now.
type fakeClock struct{ ns atomic.Int64 }

var clockBase = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func (c *fakeClock) now() time.Time          { return clockBase.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) set(d time.Duration)     { c.ns.Store(int64(d)) }
func (c *fakeClock) elapsed() time.Duration  { return time.Duration(c.ns.Load()) }
func newFakeClock() *fakeClock               { return &fakeClock{} }
func at(ms int64) time.Duration              { return time.Duration(ms) * time.Millisecond }
func req(rec *request.Record) *http.Request {
	return withRecord(httptest.NewRequest("GET", "/x", nil), rec)
}
func withRecord(r *http.Request, rec *request.Record) *http.Request {
	if rec == nil {
		return r
	}
	return r.WithContext(request.WithRecord(r.Context(), rec))
}

// newPlugin decodes src strictly, injects clock (nil: real time) and
// provisions the instance the way the gateway does.
func newPlugin(t testing.TB, src string, clock *fakeClock) *RateLimit {
	t.Helper()
	p := decodePlugin(t, src)
	if clock != nil {
		p.now = clock.now
	}
	provisionPlugin(t, p, plugin.StaticContext{RouteName: "test"})
	if err := p.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	return p
}

// decodePlugin decodes src strictly into a new plugin.
func decodePlugin(t testing.TB, src string) *RateLimit {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	p := new(RateLimit)
	if err := config.DecodeStrict(doc.Content[0], p, "config"); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return p
}

// provisionPlugin provisions p with ctx and cleans it up when the test
// ends.
func provisionPlugin(t testing.TB, p *RateLimit, ctx plugin.StaticContext) {
	t.Helper()
	if err := p.Provision(ctx); err != nil {
		_ = p.Cleanup()
		t.Fatalf("provision: %v", err)
	}
	t.Cleanup(func() { _ = p.Cleanup() })
}

func ipRecord(ip string) *request.Record {
	return &request.Record{ClientIP: netip.MustParseAddr(ip), Route: "test", Path: "/x"}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, src, err string
	}{
		{"no limits", `{key: [ip]}`, "at least one limit"},
		{"bad key", `{key: [user], limits: [{rate: 1, per: 1s}]}`, "unknown key part"},
		{"cookie without a name", `{key: [cookie], limits: [{rate: 1, per: 1s}]}`, "cookie name missing"},
		{"empty header", `{key: ["header:"], limits: [{rate: 1, per: 1s}]}`, "header name"},
		{"zero rate", `{limits: [{rate: 0, per: 1s}]}`, "rate must be at least 1"},
		{"no per", `{limits: [{rate: 1}]}`, "per must be"},
		{"burst on sliding", `{limits: [{rate: 1, per: 1s, burst: 3, algorithm: sliding_window}]}`, "burst applies"},
		{"bad algorithm", `{limits: [{rate: 1, per: 1s, algorithm: leaky}]}`, "not gcra or sliding_window"},
		{"redis without config", `{backend: redis, limits: [{rate: 1, per: 1s}]}`, "needs redis"},
		{"redis config on local", `{redis: {addr: "127.0.0.1:1"}, limits: [{rate: 1, per: 1s}]}`, "backend is local"},
		{"bad backend", `{backend: memcached, limits: [{rate: 1, per: 1s}]}`, "not local or redis"},
		{"bad mode", `{backend: redis, redis: {addr: "127.0.0.1:1"}, redis_mode: fast, limits: [{rate: 1, per: 1s}]}`, "redis_mode"},
		{"bad policy", `{on_redis_error: retry, limits: [{rate: 1, per: 1s}]}`, "on_redis_error"},
		{"bad headers", `{headers: all, limits: [{rate: 1, per: 1s}]}`, "headers"},
		{"rate too high", `{limits: [{rate: 2000, per: 1ms}]}`, "too high"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.src), &doc); err != nil {
				t.Fatal(err)
			}
			_, err := plugin.New(config.PluginSpec{Name: "rate_limit", Path: "p", Config: *doc.Content[0]}, plugin.StaticContext{})
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	p := newPlugin(t, `{backend: redis, redis: {addr: "127.0.0.1:1"}, redis_mode: lease, limits: [{rate: 500, per: 1m}, {rate: 5000, per: 1h}]}`, nil)
	if !slices.Equal(p.Key, []string{"consumer"}) || p.OnRedisError != "fail_open" || p.Headers != "ietf" || p.MaxKeys != 100000 {
		t.Fatalf("defaults: key %v, on_redis_error %q, headers %q, max_keys %d", p.Key, p.OnRedisError, p.Headers, p.MaxKeys)
	}
	if p.leaseSize != 50 || p.leaseTTL != time.Second {
		t.Fatalf("lease size %d ttl %v, want 50 and 1s", p.leaseSize, p.leaseTTL)
	}
	if p.specs[0].burst != 500 {
		t.Fatalf("burst default %d, want the rate", p.specs[0].burst)
	}
	q := newPlugin(t, `{backend: redis, redis: {addr: "127.0.0.1:1"}, redis_mode: lease, limits: [{rate: 5, per: 200ms}]}`, nil)
	if q.leaseSize != 1 || q.leaseTTL != 200*time.Millisecond {
		t.Fatalf("lease size %d ttl %v, want 1 and 200ms", q.leaseSize, q.leaseTTL)
	}
}

// TestGCRA checks exact admissions, remaining, reset and retry on a
// controlled clock.
func TestGCRA(t *testing.T) {
	t.Parallel()
	type step struct {
		at        time.Duration
		n         int // requests sent at this instant
		allowed   int // how many of them pass
		remaining int64
		// reset after the last request of the step: time to full recovery,
		// or the retry delay when that request is denied.
		reset time.Duration
		retry time.Duration // of the last request when it is denied
	}
	tests := []struct {
		desc  string
		limit string
		steps []step
	}{
		{
			desc:  "burst 20 at 10/s",
			limit: `{rate: 10, per: 1s, burst: 20}`,
			steps: []step{
				{at: 0, n: 1, allowed: 1, remaining: 19, reset: at(100)},
				{at: 0, n: 20, allowed: 19, remaining: 0, reset: at(100), retry: at(100)},
				{at: at(250), n: 3, allowed: 2, remaining: 0, reset: at(50), retry: at(50)},
				{at: at(300), n: 1, allowed: 1, remaining: 0, reset: at(2000)},
				{at: at(2300), n: 1, allowed: 1, remaining: 19, reset: at(100)},
				{at: at(10000), n: 25, allowed: 20, remaining: 0, reset: at(100), retry: at(100)},
			},
		},
		{
			desc:  "burst 1: one request per interval",
			limit: `{rate: 2, per: 1s, burst: 1}`,
			steps: []step{
				{at: 0, n: 2, allowed: 1, remaining: 0, reset: at(500), retry: at(500)},
				{at: at(499), n: 1, allowed: 0, remaining: 0, reset: at(1), retry: at(1)},
				{at: at(500), n: 2, allowed: 1, remaining: 0, reset: at(500), retry: at(500)},
			},
		},
		{
			desc:  "one per hour",
			limit: `{rate: 1, per: 1h}`,
			steps: []step{
				{at: 0, n: 2, allowed: 1, remaining: 0, reset: time.Hour, retry: time.Hour},
				{at: 59 * time.Minute, n: 1, allowed: 0, remaining: 0, reset: time.Minute, retry: time.Minute},
				{at: time.Hour, n: 1, allowed: 1, remaining: 0, reset: time.Hour},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			p := newPlugin(t, `{key: [ip], limits: [`+tc.limit+`]}`, clk)
			r := req(ipRecord("192.0.2.1"))
			for i, s := range tc.steps {
				clk.set(s.at)
				allowed := 0
				var d decision
				for range s.n {
					d, _ = p.decide(r, request.RecordOf(r))
					if d.allowed {
						allowed++
					}
				}
				if allowed != s.allowed || d.remaining != s.remaining || d.reset != s.reset || d.retry != s.retry {
					t.Fatalf("step %d at %v: allowed %d remaining %d reset %v retry %v, want %d %d %v %v",
						i, s.at, allowed, d.remaining, d.reset, d.retry, s.allowed, s.remaining, s.reset, s.retry)
				}
			}
		})
	}
	t.Run("saturated long run admits burst + elapsed/T", func(t *testing.T) {
		t.Parallel()
		clk := newFakeClock()
		p := newPlugin(t, `{key: [ip], limits: [{rate: 10, per: 1s, burst: 20}]}`, clk)
		r := req(ipRecord("192.0.2.1"))
		allowed := 0
		for ms := int64(0); ms < 10000; ms += 10 {
			clk.set(at(ms))
			if d, _ := p.decide(r, request.RecordOf(r)); d.allowed {
				allowed++
			}
		}
		// Last request at 9990ms: 20 + floor(9990/100) = 119.
		if allowed != 119 {
			t.Fatalf("allowed %d, want 119", allowed)
		}
	})
}

// TestDenialConsumesNothing: a request denied by one limit takes no token
// from the others.
func TestDenialConsumesNothing(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := newPlugin(t, `{key: [ip], limits: [{rate: 2, per: 1h}, {rate: 10, per: 1h, algorithm: sliding_window}]}`, clk)
	r := req(ipRecord("192.0.2.1"))
	for range 50 {
		p.decide(r, request.RecordOf(r))
	}
	var st []state
	for i := range p.local.shards {
		for _, en := range p.local.shards[i].m {
			st = en.states
		}
	}
	if st[1].b != 2 {
		t.Fatalf("sliding window counted %d requests, want the 2 admitted ones", st[1].b)
	}
}

// TestSlidingWindow checks the sliding-window-counter against the
// documented accuracy.
func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	const rate, per = 100, time.Second
	run := func(t *testing.T, arrivals func(i int) time.Duration, n int) []time.Duration {
		clk := newFakeClock()
		p := newPlugin(t, `{key: [ip], limits: [{rate: 100, per: 1s, algorithm: sliding_window}]}`, clk)
		r := req(ipRecord("192.0.2.1"))
		var admitted []time.Duration
		for i := range n {
			clk.set(arrivals(i))
			if d, _ := p.decide(r, request.RecordOf(r)); d.allowed {
				admitted = append(admitted, clk.elapsed())
			}
		}
		return admitted
	}
	// maxIn is the most admissions in any interval (x−per, x].
	maxIn := func(ts []time.Duration) int {
		best, j := 0, 0
		for i := range ts {
			for ts[i]-ts[j] >= per {
				j++
			}
			best = max(best, i-j+1)
		}
		return best
	}
	perWindow := func(ts []time.Duration) map[int64]int {
		m := map[int64]int{}
		for _, x := range ts {
			m[int64(x/per)]++
		}
		return m
	}
	t.Run("steady overload", func(t *testing.T) {
		t.Parallel()
		// 3× the rate, evenly spaced, for 20 windows.
		ts := run(t, func(i int) time.Duration { return time.Duration(i) * per / (3 * rate) }, 20*3*rate)
		for w, c := range perWindow(ts) {
			if c > rate {
				t.Fatalf("window %d admitted %d > %d", w, c, rate)
			}
		}
		// Even traffic: every sliding interval within 5% of the rate, and
		// the long-run total within 2%.
		if m := maxIn(ts); m > rate*105/100 {
			t.Fatalf("a sliding interval admitted %d, want ≤ %d", m, rate*105/100)
		}
		if total := len(ts); total < 20*rate*98/100 || total > 20*rate {
			t.Fatalf("admitted %d over 20 windows, want about %d", total, 20*rate)
		}
	})
	t.Run("adversarial worst case stays under 2x", func(t *testing.T) {
		t.Parallel()
		// The whole previous window's quota at its very end, then steady
		// overload through the current window.
		arr := func(i int) time.Duration {
			if i < rate {
				return per - time.Millisecond
			}
			return per + time.Duration(i-rate)*per/(10*rate)
		}
		ts := run(t, arr, rate+10*rate)
		for w, c := range perWindow(ts) {
			if c > rate {
				t.Fatalf("window %d admitted %d > %d", w, c, rate)
			}
		}
		if m := maxIn(ts); m >= 2*rate {
			t.Fatalf("a sliding interval admitted %d, want < %d", m, 2*rate)
		}
	})
	t.Run("retry and reset", func(t *testing.T) {
		t.Parallel()
		clk := newFakeClock()
		p := newPlugin(t, `{key: [ip], limits: [{rate: 10, per: 10s, algorithm: sliding_window}]}`, clk)
		r := req(ipRecord("192.0.2.1"))
		clk.set(4 * time.Second)
		for range 10 {
			if d, _ := p.decide(r, request.RecordOf(r)); !d.allowed {
				t.Fatal("denied within the rate")
			}
		}
		d, _ := p.decide(r, request.RecordOf(r))
		// Window full: wait for the next window (6s) plus until 10×(1−e/10)
		// + 1 ≤ 10, i.e. e = 1s.
		if d.allowed || d.retry != 7*time.Second {
			t.Fatalf("allowed %v retry %v, want denial with 7s", d.allowed, d.retry)
		}
		clk.set(11 * time.Second)
		if d, _ := p.decide(r, request.RecordOf(r)); !d.allowed || d.remaining != 0 || d.reset != 9*time.Second {
			t.Fatalf("at 11s: %+v, want allowed, remaining 0, reset 9s", d)
		}
	})
}

// TestLocalConcurrency: 50 goroutines on one key admit exactly the burst.
func TestLocalConcurrency(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := newPlugin(t, `{key: [ip], limits: [{rate: 100, per: 10s, burst: 100}]}`, clk)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			r := req(ipRecord("192.0.2.7"))
			rec := request.RecordOf(r)
			for range 40 {
				if d, _ := p.decide(r, rec); d.allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Fatalf("allowed %d, want exactly 100", allowed.Load())
	}
}

// TestMemoryBound: more keys than max_keys never grow the map beyond it,
// and idle keys expire.
func TestMemoryBound(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := newPlugin(t, `{key: ["header:X-Key"], max_keys: 640, limits: [{rate: 5, per: 1s}, {rate: 50, per: 10s, algorithm: sliding_window}]}`, clk)
	r := httptest.NewRequest("GET", "/", nil)
	for i := range 10_000 {
		r.Header.Set("X-Key", "k"+string(rune('a'+i%26))+strings.Repeat("x", i%7)+itoa(i))
		p.decide(r, nil)
		if i%997 == 0 {
			if n := p.local.size(); n > 640 {
				t.Fatalf("%d keys held, max 640", n)
			}
		}
	}
	if n := p.local.size(); n > 640 || n < 600 {
		t.Fatalf("%d keys held, want close to and at most 640", n)
	}
	// GCRA recovers after 1s, but the sliding window state lives two
	// windows (20s).
	clk.advance(2 * time.Second)
	p.local.sweep()
	if n := p.local.size(); n == 0 {
		t.Fatal("keys with a sliding window in progress were dropped")
	}
	clk.advance(20 * time.Second)
	p.local.sweep()
	if n := p.local.size(); n != 0 {
		t.Fatalf("%d idle keys left after the sweep", n)
	}
	// Lazy expiry: a full shard drops its idle keys on insert. Fill the
	// shard the fresh key hashes to, so the insert finds it full.
	r.Header.Set("X-Key", "fresh")
	target := p.key.Hash(p.seed, r, nil) % numShards
	sh := &p.local.shards[target]
	for i := 0; len(sh.m) < p.local.perShard && i < 1000000; i++ {
		r.Header.Set("X-Key", itoa(i))
		if p.key.Hash(p.seed, r, nil)%numShards == target {
			p.decide(r, nil)
		}
	}
	if len(sh.m) != p.local.perShard {
		t.Fatalf("could not fill the shard: %d keys", len(sh.m))
	}
	clk.advance(30 * time.Second)
	r.Header.Set("X-Key", "fresh")
	p.decide(r, nil)
	if n := len(sh.m); n != 1 {
		t.Fatalf("shard holds %d keys after inserting into it with every other key idle, want 1", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestHeaders checks exact header values for every headers mode.
func TestHeaders(t *testing.T) {
	t.Parallel()
	const policy = `"10-per-1s";q=10;w=1;portico-burst=20, "1000-per-1h";q=1000;w=3600`
	tests := []struct {
		mode  string
		first map[string]string // after the first request
		deny  map[string]string // on the denial
	}{
		{"ietf",
			map[string]string{"Ratelimit-Policy": policy, "Ratelimit": `"10-per-1s";r=19;t=1`},
			map[string]string{"Ratelimit-Policy": policy, "Ratelimit": `"10-per-1s";r=0;t=1`, "Retry-After": "1"}},
		{"x",
			map[string]string{"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "19", "X-Ratelimit-Reset": "1"},
			map[string]string{"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "1", "Retry-After": "1"}},
		{"both",
			map[string]string{"Ratelimit-Policy": policy, "Ratelimit": `"10-per-1s";r=19;t=1`,
				"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "19", "X-Ratelimit-Reset": "1"},
			map[string]string{"Ratelimit-Policy": policy, "Ratelimit": `"10-per-1s";r=0;t=1`,
				"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "1", "Retry-After": "1"}},
		{"none", map[string]string{}, map[string]string{"Retry-After": "1"}},
	}
	all := []string{"Ratelimit-Policy", "Ratelimit", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset", "Retry-After"}
	check := func(t *testing.T, what string, got http.Header, want map[string]string) {
		t.Helper()
		for _, h := range all {
			v, ok := want[h]
			if g := got.Values(h); ok != (len(g) > 0) || (ok && (len(g) != 1 || g[0] != v)) {
				t.Errorf("%s: %s = %q, want %q (present %v)", what, h, g, v, ok)
			}
		}
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			clk := newFakeClock()
			p := newPlugin(t, `{key: [ip], headers: `+tc.mode+`, limits: [{rate: 10, per: 1s, burst: 20}, {rate: 1000, per: 1h, algorithm: sliding_window}]}`, clk)
			h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
			serve := func() *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req(ipRecord("198.51.100.9")))
				return w
			}
			w := serve()
			if w.Code != 204 {
				t.Fatalf("first request: %d", w.Code)
			}
			check(t, "first", w.Header(), tc.first)
			for range 19 {
				serve()
			}
			w = serve()
			if w.Code != 429 || !strings.Contains(w.Body.String(), `"error":"rate limit exceeded"`) {
				t.Fatalf("21st request: %d %s", w.Code, w.Body)
			}
			check(t, "denied", w.Header(), tc.deny)
		})
	}
	t.Run("most restrictive is the one with fewest remaining", func(t *testing.T) {
		t.Parallel()
		clk := newFakeClock()
		p := newPlugin(t, `{key: [ip], headers: both, limits: [{rate: 100, per: 1s}, {rate: 3, per: 1m, algorithm: sliding_window}]}`, clk)
		h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		clk.set(15 * time.Second)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req(ipRecord("198.51.100.9")))
		check(t, "first", w.Header(), map[string]string{
			"Ratelimit-Policy":  `"100-per-1s";q=100;w=1, "3-per-1m";q=3;w=60`,
			"Ratelimit":         `"3-per-1m";r=2;t=45`,
			"X-Ratelimit-Limit": "3", "X-Ratelimit-Remaining": "2", "X-Ratelimit-Reset": "45",
		})
	})
}

// TestKeys checks which requests share a key.
func TestKeys(t *testing.T) {
	t.Parallel()
	alice := &consumer.Consumer{Name: "alice", ID: "alice"}
	bob := &consumer.Consumer{Name: "bob", ID: "bob"}
	anon := &consumer.Consumer{Name: "anonymous", ID: "anonymous", Anonymous: true}
	rec := func(ip string, c *consumer.Consumer, path string, params ...string) *request.Record {
		r := ipRecord(ip)
		r.Consumer, r.Path = c, path
		for i := 0; i+1 < len(params); i += 2 {
			r.Params.Add(params[i], params[i+1])
		}
		return r
	}
	hdr := func(r *http.Request, k, v string) *http.Request { r.Header.Set(k, v); return r }
	mk := func(rc *request.Record) *http.Request { return req(rc) }
	tests := []struct {
		desc   string
		key    string
		a, b   *http.Request
		shared bool
	}{
		{"ip: same address", "[ip]", mk(rec("10.0.0.1", alice, "/a")), mk(rec("10.0.0.1", bob, "/b")), true},
		{"ip: other address", "[ip]", mk(rec("10.0.0.1", nil, "/a")), mk(rec("10.0.0.2", nil, "/a")), false},
		{"consumer: same consumer, other IPs", "[consumer]", mk(rec("10.0.0.1", alice, "/")), mk(rec("10.0.0.2", alice, "/")), true},
		{"consumer: other consumers, same IP", "[consumer]", mk(rec("10.0.0.1", alice, "/")), mk(rec("10.0.0.1", bob, "/")), false},
		{"consumer: unauthenticated falls back to IP", "[consumer]", mk(rec("10.0.0.1", nil, "/")), mk(rec("10.0.0.1", nil, "/y")), true},
		{"consumer: anonymous consumer is keyed by IP", "[consumer]", mk(rec("10.0.0.1", anon, "/")), mk(rec("10.0.0.2", anon, "/")), false},
		{"consumer: IP fallback differs from a consumer", "[consumer]", mk(rec("10.0.0.1", nil, "/")), mk(rec("10.0.0.1", alice, "/")), false},
		{"default key is consumer", "null", mk(rec("10.0.0.1", alice, "/")), mk(rec("10.0.0.9", alice, "/")), true},
		{"header: same value", "[header:x-api-key]", hdr(mk(rec("10.0.0.1", nil, "/")), "X-Api-Key", "k1"), hdr(mk(rec("10.0.0.2", nil, "/")), "X-Api-Key", "k1"), true},
		{"header: other value", "[header:X-Api-Key]", hdr(mk(rec("10.0.0.1", nil, "/")), "X-Api-Key", "k1"), hdr(mk(rec("10.0.0.1", nil, "/")), "X-Api-Key", "k2"), false},
		{"header: missing falls back to the client IP", "[header:X-Api-Key]", mk(rec("10.0.0.1", nil, "/")), mk(rec("10.0.0.2", nil, "/")), false},
		{"header: missing, same client IP", "[header:X-Api-Key]", mk(rec("10.0.0.1", nil, "/")), mk(rec("10.0.0.1", nil, "/y")), true},
		{"param: same value", "[param:id]", mk(rec("10.0.0.1", nil, "/u/1", "id", "1")), mk(rec("10.0.0.2", nil, "/u/1/x", "id", "1")), true},
		{"param: other value", "[param:id]", mk(rec("10.0.0.1", nil, "/u/1", "id", "1")), mk(rec("10.0.0.1", nil, "/u/2", "id", "2")), false},
		{"path: same", "[path]", mk(rec("10.0.0.1", nil, "/a")), mk(rec("10.0.0.2", nil, "/a")), true},
		{"path: other", "[path]", mk(rec("10.0.0.1", nil, "/a")), mk(rec("10.0.0.1", nil, "/b")), false},
		{"combination: consumer and path", "[consumer, path]", mk(rec("10.0.0.1", alice, "/a")), mk(rec("10.0.0.1", alice, "/b")), false},
		{"combination: consumer and path, same", "[consumer, path]", mk(rec("10.0.0.1", alice, "/a")), mk(rec("10.0.0.2", alice, "/a")), true},
		{"combination: parts do not run into each other", "[header:A, header:B]",
			hdr(hdr(mk(rec("10.0.0.1", nil, "/")), "A", "xy"), "B", "z"), hdr(hdr(mk(rec("10.0.0.1", nil, "/")), "A", "x"), "B", "yz"), false},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p := newPlugin(t, `{key: `+tc.key+`, limits: [{rate: 1, per: 1h}]}`, newFakeClock())
			if d, _ := p.decide(tc.a, request.RecordOf(tc.a)); !d.allowed {
				t.Fatal("first request denied")
			}
			d, _ := p.decide(tc.b, request.RecordOf(tc.b))
			if d.allowed == tc.shared {
				t.Fatalf("second request allowed = %v, want shared key = %v", d.allowed, tc.shared)
			}
			ka := p.key.Render(tc.a, request.RecordOf(tc.a))
			kb := p.key.Render(tc.b, request.RecordOf(tc.b))
			if (ka == kb) != tc.shared {
				t.Fatalf("Redis keys %q and %q: equal = %v, want %v", ka, kb, ka == kb, tc.shared)
			}
		})
	}
}

func TestCleanupAfterPartialProvision(t *testing.T) {
	t.Parallel()
	p := new(RateLimit)
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
	q := &RateLimit{Limits: []Limit{{Rate: 1, Per: config.Duration(time.Second)}}}
	if err := q.Provision(plugin.StaticContext{}); err != nil {
		t.Fatal(err)
	}
	if err := q.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := q.Cleanup(); err != nil {
		t.Fatal(err)
	}
}
