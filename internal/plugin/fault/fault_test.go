package fault

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/testutil/fakeclock"
)

// build provisions a fault_injection instance whose sampling is driven by
// a PCG source with a fixed seed, so rates are the same on every run.
func build(t testing.TB, src string, opts ...plugintest.Option) *Fault {
	t.Helper()
	f := plugintest.MustBuild[*Fault](t, "fault_injection", src, opts...)
	f.rnd = rand.New(rand.NewPCG(1, 2)).Uint64
	return f
}

// ok is the next handler: it answers 200 and counts its calls.
type ok struct {
	n   int
	ctx context.Context
}

func (h *ok) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.n++
	h.ctx = r.Context()
	w.WriteHeader(http.StatusOK)
}

// TestFaultConfigErrors: every invalid config is refused with a message
// naming the field.
func TestFaultConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, "fault_injection", []plugintest.ConfigError{
		{Desc: "empty", Config: "{}", Want: []string{"at least one of delay and abort"}},
		{Desc: "unknown field", Config: "{abort: {status: 503, percent: 5}, delya: {}}", Want: []string{"delya"}},
		{Desc: "abort percent missing", Config: "{abort: {status: 503}}", Want: []string{"abort.percent is required"}},
		{Desc: "abort percent high", Config: "{abort: {status: 503, percent: 100.5}}", Want: []string{"abort.percent must be between 0 and 100"}},
		{Desc: "abort percent negative", Config: "{abort: {status: 503, percent: -1}}", Want: []string{"abort.percent"}},
		{Desc: "abort percent nan", Config: "{abort: {status: 503, percent: .nan}}", Want: []string{"abort.percent"}},
		{Desc: "abort percent text", Config: "{abort: {status: 503, percent: lots}}", Want: []string{"percent"}},
		{Desc: "abort status missing", Config: "{abort: {percent: 5}}", Want: []string{"abort.status must be an HTTP status 200–599"}},
		{Desc: "abort status 600", Config: "{abort: {status: 600, percent: 5}}", Want: []string{"abort.status", "600"}},
		{Desc: "abort status 199", Config: "{abort: {status: 199, percent: 5}}", Want: []string{"abort.status"}},
		{Desc: "grpc status 17", Config: "{abort: {status: 503, percent: 5, grpc_status: 17}}", Want: []string{"abort.grpc_status must be a gRPC status code 0–16"}},
		{Desc: "grpc status negative", Config: "{abort: {status: 503, percent: 5, grpc_status: -1}}", Want: []string{"abort.grpc_status"}},
		{Desc: "delay percent missing", Config: "{delay: {duration: 1s}}", Want: []string{"delay.percent is required"}},
		{Desc: "delay duration missing", Config: "{delay: {percent: 5}}", Want: []string{"delay.duration must be between"}},
		{Desc: "delay too long", Config: "{delay: {duration: 61m, percent: 5}}", Want: []string{"delay.duration", "1h0m0s"}},
		{Desc: "delay duration text", Config: "{delay: {duration: soon, percent: 5}}", Want: []string{"duration"}},
		{Desc: "bad header", Config: "{abort: {status: 503, percent: 5}, when_header: 'X Fault'}", Want: []string{`when_header "X Fault" is not a valid header name`}},
		{Desc: "reserved header", Config: "{abort: {status: 503, percent: 5}, when_header: x-portico-fault}", Want: []string{"X-Portico-* namespace", "X-Fault-Test"}},
		{Desc: "several at once", Config: "{abort: {status: 1, percent: 101}}", Want: []string{"abort.status", "abort.percent"}},
	})
	for _, src := range []string{
		"{abort: {status: 503, percent: 0}}",
		"{abort: {status: 200, percent: 100, grpc_status: 0}}",
		"{delay: {duration: 1h, percent: 0.001}, when_header: X-Fault-Test}",
		"{delay: {duration: 1ms, percent: 50}, abort: {status: 599, percent: 12.5, grpc_status: 16}}",
	} {
		if _, _, err := plugintest.Build[*Fault](t, "fault_injection", src); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

// TestFaultAbortRate: with a fixed random source the abort rate over many
// requests matches the configured percent, the counter matches the
// aborts, and 0 and 100 mean never and always.
func TestFaultAbortRate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		percent  string
		min, max int
	}{{"0", 0, 0}, {"0.5", 30, 70}, {"5", 450, 550}, {"37.5", 3600, 3900}, {"100", 10000, 10000}} {
		stats := observe.NewStats()
		f := build(t, "{abort: {status: 503, percent: "+tc.percent+"}}", plugintest.WithStats(stats))
		next := &ok{}
		h := f.Wrap(next)
		aborted := 0
		for range 10000 {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
			if w.Code == http.StatusServiceUnavailable {
				aborted++
			}
		}
		if aborted < tc.min || aborted > tc.max || aborted+next.n != 10000 {
			t.Errorf("percent %s: %d of 10000 aborted (next ran %d), want %d–%d", tc.percent, aborted, next.n, tc.min, tc.max)
		}
		c := stats.Counter(InjectedMetric, `route="test",kind="abort"`).Value()
		if c != int64(aborted) {
			t.Errorf("percent %s: counter %d, aborted %d", tc.percent, c, aborted)
		}
	}
}

// TestFaultThreshold: the comparison bound is exact at the ends.
func TestFaultThreshold(t *testing.T) {
	t.Parallel()
	if at, all := threshold(0); at != 0 || all {
		t.Errorf("0%%: %d %v", at, all)
	}
	if _, all := threshold(100); !all {
		t.Error("100% is not all")
	}
	if at, all := threshold(50); at != 1<<63 || all {
		t.Errorf("50%%: %d %v", at, all)
	}
	if at, all := threshold(math.Nextafter(100, 0)); all || at == 0 {
		t.Errorf("just under 100%%: %d %v", at, all)
	}
}

// TestFaultAbortAnswer: an abort is the gateway's JSON error with the
// configured status, recorded for the access log; a gRPC call gets the
// configured grpc-status (or the one the HTTP status maps to).
func TestFaultAbortAnswer(t *testing.T) {
	t.Parallel()
	f := build(t, "{abort: {status: 503, percent: 100}}")
	h := f.Wrap(&ok{})
	rec := &request.Record{RequestID: "rid-1"}
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body struct{ Error, RequestID string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 503 || body.Error != abortMsg ||
		w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("abort: %d %q %v", w.Code, w.Body, err)
	}
	if rec.ErrorMsg != abortMsg {
		t.Errorf("access log error %q", rec.ErrorMsg)
	}

	for src, want := range map[string]string{
		"{abort: {status: 503, percent: 100}}":                 "14",
		"{abort: {status: 429, percent: 100, grpc_status: 4}}": "4",
		"{abort: {status: 500, percent: 100, grpc_status: 0}}": "0",
		"{abort: {status: 403, percent: 100}}":                 "7",
	} {
		h := build(t, src).Wrap(&ok{})
		r := httptest.NewRequest("POST", "/pkg.Svc/Call", nil)
		r.Header.Set("Content-Type", "application/grpc")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || w.Header().Get("Grpc-Status") != want || !strings.Contains(w.Header().Get("Grpc-Message"), "fault injected") {
			t.Errorf("%s: gRPC answer %d %v, want grpc-status %s", src, w.Code, w.Header(), want)
		}
	}
}

// TestFaultWhenHeader: with when_header, only requests carrying the
// header are faulted.
func TestFaultWhenHeader(t *testing.T) {
	t.Parallel()
	f := build(t, "{abort: {status: 503, percent: 100}, when_header: x-fault-test}")
	next := &ok{}
	h := f.Wrap(next)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 200 || next.n != 1 {
		t.Fatalf("without header: %d", w.Code)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Fault-Test", "")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 503 || next.n != 1 {
		t.Fatalf("with header: %d", w.Code)
	}
}

// sleeper records the waits asked for and advances a fake clock instead
// of sleeping.
type sleeper struct {
	clock *fakeclock.Clock
	waits []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.waits = append(s.waits, d)
	if err := ctx.Err(); err != nil {
		return err
	}
	s.clock.Advance(d)
	return nil
}

// TestFaultDelay: a delay waits its duration and counts against the route
// timeout: the rest of the timeout becomes the request's deadline, and a
// delay as long as the timeout is answered 504 after the timeout. Without
// a timeout the request gets no deadline.
func TestFaultDelay(t *testing.T) {
	t.Parallel()
	clock := fakeclock.New(time.Unix(1e9, 0))
	for _, tc := range []struct {
		src      string
		timeout  time.Duration
		wait     time.Duration
		status   int
		deadline time.Duration // from the clock after the wait; 0 = none
	}{
		{"{delay: {duration: 200ms, percent: 100}}", 0, 200 * time.Millisecond, 200, 0},
		{"{delay: {duration: 200ms, percent: 100}}", time.Second, 200 * time.Millisecond, 200, 800 * time.Millisecond},
		{"{delay: {duration: 2s, percent: 100}}", time.Second, time.Second, 504, 0},
		{"{delay: {duration: 1s, percent: 100}, abort: {status: 500, percent: 100}}", 0, time.Second, 500, 0},
	} {
		stats := observe.NewStats()
		f := build(t, tc.src, plugintest.WithRouteTimeout(tc.timeout), plugintest.WithClock(clock.Now), plugintest.WithStats(stats))
		s := &sleeper{clock: clock}
		f.sleep = s.sleep
		next := &ok{}
		w := httptest.NewRecorder()
		rec := &request.Record{}
		r := httptest.NewRequest("GET", "/", nil)
		f.Wrap(next).ServeHTTP(w, r.WithContext(request.WithRecord(r.Context(), rec)))
		if w.Code != tc.status || len(s.waits) != 1 || s.waits[0] != tc.wait {
			t.Errorf("%s timeout %s: status %d, waits %v", tc.src, tc.timeout, w.Code, s.waits)
			continue
		}
		if tc.status == 504 && (rec.ErrorMsg != delayTimeoutMsg || next.n != 0) {
			t.Errorf("%s: error %q, next ran %d times", tc.src, rec.ErrorMsg, next.n)
		}
		if tc.status == 200 {
			dl, has := next.ctx.Deadline()
			if has != (tc.deadline > 0) {
				t.Errorf("%s timeout %s: deadline %v %v", tc.src, tc.timeout, dl, has)
			} else if has {
				// The deadline is on the real clock; the rest of the
				// timeout must be at most what the fake clock left.
				if rest := time.Until(dl); rest > tc.deadline || rest < tc.deadline-time.Minute {
					t.Errorf("%s: deadline in %s, want about %s", tc.src, rest, tc.deadline)
				}
			}
		}
		if c := stats.Counter(InjectedMetric, `route="test",kind="delay"`).Value(); c != 1 {
			t.Errorf("%s: delay counter %d", tc.src, c)
		}
	}
}

// TestFaultDelayClientGone: the real wait ends as soon as the client's
// context ends, the request is recorded as 499 and not passed on.
func TestFaultDelayClientGone(t *testing.T) {
	t.Parallel()
	f := build(t, "{delay: {duration: 1h, percent: 100}}")
	next := &ok{}
	ctx, cancel := context.WithCancel(context.Background())
	rec := &request.Record{}
	r := httptest.NewRequest("GET", "/", nil).WithContext(request.WithRecord(ctx, rec))
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Wrap(next).ServeHTTP(w, r)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("delay did not end when the client went away")
	}
	if next.n != 0 || rec.Status != 499 || rec.ErrorMsg != delayGoneMsg || w.Body.Len() != 0 {
		t.Fatalf("client gone: next %d, recorded status %d, error %q, body %q", next.n, rec.Status, rec.ErrorMsg, w.Body)
	}
}

// TestFaultRealDelay: the default sleep really waits.
func TestFaultRealDelay(t *testing.T) {
	t.Parallel()
	f := build(t, "{delay: {duration: 30ms, percent: 100}}")
	start := time.Now()
	w := httptest.NewRecorder()
	f.Wrap(&ok{}).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if el := time.Since(start); el < 30*time.Millisecond || w.Code != 200 {
		t.Fatalf("waited %s, status %d", el, w.Code)
	}
}

// TestFaultNoFireAllocs: a request no fault fires on, with or without
// when_header, costs no allocation.
func TestFaultNoFireAllocs(t *testing.T) {
	for _, src := range []string{
		"{delay: {duration: 1s, percent: 1}, abort: {status: 503, percent: 1}}",
		"{delay: {duration: 1s, percent: 100}, when_header: X-Fault-Test}",
	} {
		f := build(t, src)
		f.rnd = func() uint64 { return math.MaxUint64 }
		h := f.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		r := httptest.NewRequest("GET", "/", nil)
		if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(nil, r) }); n != 0 {
			t.Errorf("%s: %v allocations per request", src, n)
		}
	}
}

// BenchmarkFaultNoFire is the cost of the plugin on a request no fault
// fires on.
func BenchmarkFaultNoFire(b *testing.B) {
	f := build(b, "{delay: {duration: 1s, percent: 1}, abort: {status: 503, percent: 1}}")
	f.rnd = func() uint64 { return math.MaxUint64 }
	h := f.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(nil, r)
	}
}

// BenchmarkFaultNoFireRandom samples with the default generator.
func BenchmarkFaultNoFireRandom(b *testing.B) {
	f := plugintest.MustBuild[*Fault](b, "fault_injection", "{delay: {duration: 1s, percent: 0.0001}, abort: {status: 503, percent: 0.0001}}")
	h := f.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.ServeHTTP(httptest.NewRecorder(), r)
		}
	})
}
