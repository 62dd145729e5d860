package concurrency

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// build decodes src the way the gateway does and builds an instance on a
// route named after the test; opts adjust the context (a shared pool).
func build(t testing.TB, src string, opts ...plugintest.Option) (*Concurrency, error) {
	t.Helper()
	p, _, err := plugintest.Build[*Concurrency](t, Name, src, append([]plugintest.Option{plugintest.WithRoute(t.Name())}, opts...)...)
	return p, err
}

func mustBuild(t testing.TB, src string, opts ...plugintest.Option) *Concurrency {
	t.Helper()
	return plugintest.MustBuild[*Concurrency](t, Name, src, append([]plugintest.Option{plugintest.WithRoute(t.Name())}, opts...)...)
}

// checkNoKeys reports an error when p's limiter still holds keys; when
// ends the message ("" or, say, " after the load").
func checkNoKeys(t testing.TB, p *Concurrency, when string) {
	t.Helper()
	if n := p.lim.keys(); n != 0 {
		t.Errorf("%d keys left%s", n, when)
	}
}

// newRequest returns a request from ip, optionally authenticated as consumer
// id, carrying a gateway record.
func newRequest(ctx context.Context, ip, id string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	rec := &request.Record{ClientIP: netip.MustParseAddr(ip), Route: "r", RequestID: "req-1"}
	if id != "" {
		rec.Consumer = &consumer.Consumer{Name: id, ID: id}
	}
	return r.WithContext(request.WithRecord(ctx, rec))
}

// gate is a terminal handler that blocks every request until released.
type gate struct {
	in      atomic.Int32
	release chan struct{}
}

func newGate() *gate { return &gate{release: make(chan struct{})} }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.in.Add(1)
	<-g.release
	w.WriteHeader(http.StatusOK)
}

// serve runs h for r in the background and returns the recorder once done.
func serve(h http.Handler, r *http.Request) <-chan *httptest.ResponseRecorder {
	ch := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, r)
		ch <- rr
	}()
	return ch
}

func recv(t *testing.T, ch <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
	t.Helper()
	select {
	case rr := <-ch:
		return rr
	case <-time.After(10 * time.Second):
		t.Fatal("request did not finish")
		return nil
	}
}

// refuse sends h a request from ip as consumer id, checks that it is
// refused with check429 and returns how long the refusal took.
func refuse(t *testing.T, h http.Handler, ip, id string) time.Duration {
	t.Helper()
	start := time.Now()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, newRequest(context.Background(), ip, id))
	d := time.Since(start)
	check429(t, rr)
	return d
}

func check429(t *testing.T, rr *httptest.ResponseRecorder) {
	t.Helper()
	if rr.Code != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", rr.Code)
	}
	if got := rr.Header().Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	var body struct{ Error, RequestID string }
	if err := json.Unmarshal(rr.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Errorf("body %q is not the JSON error shape: %v", rr.Body.String(), err)
	}
	if ct := rr.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src, wantErr string
	}{
		{`{}`, "max"},
		{`{max: 0}`, "max"},
		{`{max: 1, key: user}`, "key"},
		{`{max: 1, key: "header:"}`, "header name"},
		{`{max: 1, key: "header:Bad Name"}`, "header name"},
		{`{max: 1, queue_timeout: -1s}`, "queue_timeout"},
		{`{max: 1, max_queue: -1}`, "max_queue"},
		{`{max: 1, bogus: 1}`, "unknown field"},
		{`{max: 1}`, ""},
		{`{max: 3, key: ip, queue_timeout: 2s, max_queue: 0}`, ""},
		{`{max: 3, key: route}`, ""},
		{`{max: 3, key: "header:x-user"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.src, func(t *testing.T) {
			p, err := build(t, tc.src)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if *p.MaxQueue < 0 || p.key.Len() == 0 {
					t.Errorf("defaults not filled: %+v", p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
	p := mustBuild(t, `{max: 2}`)
	if p.key.String() != "[consumer]" || *p.MaxQueue != DefaultMaxQueue || p.QueueTimeout != 0 {
		t.Errorf("defaults: key %s max_queue %d queue_timeout %v", p.key, *p.MaxQueue, p.QueueTimeout)
	}
	if p := mustBuild(t, `{max: 2, key: "header:x-user"}`); p.key.String() != "[header:X-User]" {
		t.Errorf("key %s, want canonical [header:X-User]", p.key)
	}
}

// TestBound drives 50 concurrent requests through max 5 with a queue long
// enough for all of them and checks the peak seen by the terminal handler.
func TestBound(t *testing.T) {
	t.Parallel()
	const max, n = 5, 50
	p := mustBuild(t, `{max: 5, key: ip, queue_timeout: 30s}`)
	var cur, peak atomic.Int32
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := cur.Add(1)
		for {
			old := peak.Load()
			if c <= old || peak.CompareAndSwap(old, c) {
				break
			}
		}
		// Hold the slot until max requests are inside at once, so the
		// peak does not depend on the machine's speed.
		wait.Within(10*time.Second, func() bool { return peak.Load() >= max })
		cur.Add(-1)
	}))
	var wg sync.WaitGroup
	codes := make([]int, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, newRequest(context.Background(), "192.0.2.1", ""))
			codes[i] = rr.Code
		}()
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if got := peak.Load(); got != max {
		t.Errorf("peak concurrency %d, want exactly %d", got, max)
	}
	checkNoKeys(t, p, " after the load")
}

// TestBoundRejecting checks the bound without a queue: the excess is refused
// and no more than max requests are ever inside.
func TestBoundRejecting(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 3}`)
	var cur, peak, ok, refused atomic.Int32
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := cur.Add(1)
		for {
			old := peak.Load()
			if c <= old || peak.CompareAndSwap(old, c) {
				break
			}
		}
		time.Sleep(time.Millisecond) // holds the slot so requests overlap
		cur.Add(-1)
	}))
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, newRequest(context.Background(), "192.0.2.1", "alice"))
				switch rr.Code {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
				default:
					t.Errorf("status %d", rr.Code)
				}
			}
		}()
	}
	wg.Wait()
	if got := peak.Load(); got > 3 || got < 1 {
		t.Errorf("peak concurrency %d, want 1..3", got)
	}
	if ok.Load() == 0 || ok.Load()+refused.Load() != 1000 {
		t.Errorf("ok %d refused %d", ok.Load(), refused.Load())
	}
	checkNoKeys(t, p, " after the load")
}

func TestRejectAtOnce(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1}`)
	g := newGate()
	h := p.Wrap(g)
	first := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "first request inside", func() bool { return g.in.Load() == 1 })
	if d := refuse(t, h, "192.0.2.1", "alice"); d > time.Second {
		t.Errorf("refusal took %v", d)
	}
	close(g.release)
	if rr := recv(t, first); rr.Code != http.StatusOK {
		t.Errorf("first: %d", rr.Code)
	}
}

func TestQueueProceeds(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1, queue_timeout: 30s}`)
	g := newGate()
	h := p.Wrap(g)
	k := consumerKey(p, "alice")
	first := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "first request inside", func() bool { return g.in.Load() == 1 })
	second := serve(h, newRequest(context.Background(), "192.0.2.2", "alice"))
	wait.For(t, 10*time.Second, "second request queued", func() bool { _, w := p.lim.stateOf(k); return w == 1 })
	if g.in.Load() != 1 {
		t.Fatal("queued request reached the handler")
	}
	g.release <- struct{}{} // lets exactly one request finish
	if rr := recv(t, first); rr.Code != http.StatusOK {
		t.Fatalf("first: %d", rr.Code)
	}
	wait.For(t, 10*time.Second, "second request inside", func() bool { return g.in.Load() == 2 })
	if in, w := p.lim.stateOf(k); in != 1 || w != 0 {
		t.Errorf("state inflight %d waiting %d, want 1 0", in, w)
	}
	close(g.release)
	if rr := recv(t, second); rr.Code != http.StatusOK {
		t.Fatalf("second: %d", rr.Code)
	}
	checkNoKeys(t, p, "")
}

func TestQueueFIFO(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1, key: ip, queue_timeout: 30s}`)
	var order []string
	var mu sync.Mutex
	hold := make(chan struct{})
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-N")
		if id == "0" {
			<-hold
		}
		mu.Lock()
		order = append(order, id)
		mu.Unlock()
	}))
	k := consumerKey(p, "")
	var done []<-chan *httptest.ResponseRecorder
	for i, id := range []string{"0", "1", "2", "3"} {
		r := newRequest(context.Background(), "192.0.2.1", "")
		r.Header.Set("X-N", id)
		done = append(done, serve(h, r))
		if i == 0 {
			wait.For(t, 10*time.Second, "first inside", func() bool { in, _ := p.lim.stateOf(k); return in == 1 })
		} else {
			wait.For(t, 10*time.Second, "queued", func() bool { _, w := p.lim.stateOf(k); return w == i })
		}
	}
	close(hold)
	for _, ch := range done {
		recv(t, ch)
	}
	if got := strings.Join(order, ","); got != "0,1,2,3" {
		t.Errorf("order %s, want 0,1,2,3", got)
	}
}

func TestQueueTimeout(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1, queue_timeout: 150ms}`)
	g := newGate()
	h := p.Wrap(g)
	first := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "first request inside", func() bool { return g.in.Load() == 1 })
	d := refuse(t, h, "192.0.2.1", "alice")
	if d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("timed out after %v, want about 150ms", d)
	}
	if in, w := p.lim.stateOf(consumerKey(p, "alice")); in != 1 || w != 0 {
		t.Errorf("state inflight %d waiting %d, want 1 0", in, w)
	}
	close(g.release)
	recv(t, first)
	checkNoKeys(t, p, "")
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1, queue_timeout: 30s, max_queue: 1}`)
	g := newGate()
	h := p.Wrap(g)
	k := consumerKey(p, "alice")
	first := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "first inside", func() bool { return g.in.Load() == 1 })
	second := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "second queued", func() bool { _, w := p.lim.stateOf(k); return w == 1 })
	if d := refuse(t, h, "192.0.2.1", "alice"); d > time.Second {
		t.Errorf("a full queue refused after %v, want at once", d)
	}
	close(g.release)
	recv(t, first)
	recv(t, second)
}

func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1, queue_timeout: 30s, max_queue: 1}`)
	g := newGate()
	h := p.Wrap(g)
	k := consumerKey(p, "alice")
	first := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "first inside", func() bool { return g.in.Load() == 1 })

	ctx, cancel := context.WithCancel(context.Background())
	r := newRequest(ctx, "192.0.2.1", "alice")
	second := serve(h, r)
	wait.For(t, 10*time.Second, "second queued", func() bool { _, w := p.lim.stateOf(k); return w == 1 })
	cancel()
	rr := recv(t, second)
	if rec := request.RecordOf(r); rec.Status != 499 {
		t.Errorf("record status %d, want 499", rec.Status)
	}
	if rr.Body.Len() != 0 {
		t.Errorf("a departed client got a body: %q", rr.Body.String())
	}
	if in, w := p.lim.stateOf(k); in != 1 || w != 0 {
		t.Fatalf("after cancel: inflight %d waiting %d, want 1 0", in, w)
	}
	// The freed queue position is usable: the next request waits instead of
	// being refused, and gets the slot when the first finishes.
	third := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "third queued", func() bool { _, w := p.lim.stateOf(k); return w == 1 })
	g.release <- struct{}{}
	recv(t, first)
	wait.For(t, 10*time.Second, "third inside", func() bool { return g.in.Load() == 2 })
	close(g.release)
	if rr := recv(t, third); rr.Code != http.StatusOK {
		t.Errorf("third: %d", rr.Code)
	}
	if g.in.Load() != 2 {
		t.Errorf("%d requests reached the handler, want 2", g.in.Load())
	}
	checkNoKeys(t, p, "")
}

// keyedRequest describes one request of TestKeysIsolated: client IP,
// consumer ("" for unauthenticated) and X-Tenant header ("" for none).
type keyedRequest struct{ ip, consumer, tenant string }

func (k keyedRequest) build() *http.Request {
	r := newRequest(context.Background(), k.ip, k.consumer)
	if k.tenant != "" {
		r.Header.Set("X-Tenant", k.tenant)
	}
	return r
}

func TestKeysIsolated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key          string
		same, others []keyedRequest
	}{
		{
			key:  "consumer",
			same: []keyedRequest{{"192.0.2.9", "alice", ""}},
			others: []keyedRequest{
				{"192.0.2.1", "bob", ""},
				// Unauthenticated: counted by client IP.
				{"192.0.2.1", "", ""},
			},
		},
		{
			key:    "ip",
			same:   []keyedRequest{{"192.0.2.1", "bob", ""}},
			others: []keyedRequest{{"192.0.2.2", "alice", ""}, {"2001:db8::1", "alice", ""}},
		},
		{
			key:  "header:X-Tenant",
			same: []keyedRequest{{"192.0.2.7", "bob", "t1"}},
			others: []keyedRequest{
				{"192.0.2.1", "alice", "t2"},
				// No header: counted by client IP.
				{"192.0.2.1", "alice", ""},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			p := mustBuild(t, `{max: 1, key: "`+tc.key+`"}`)
			g := newGate()
			h := p.Wrap(g)
			r := newRequest(context.Background(), "192.0.2.1", "alice")
			r.Header.Set("X-Tenant", "t1")
			held := serve(h, r)
			wait.For(t, 10*time.Second, "first inside", func() bool { return g.in.Load() == 1 })
			for i, kr := range tc.same {
				rr := httptest.NewRecorder()
				h.ServeHTTP(rr, kr.build())
				if rr.Code != http.StatusTooManyRequests {
					t.Errorf("same key %d: status %d, want 429", i, rr.Code)
				}
			}
			var others []<-chan *httptest.ResponseRecorder
			for i, kr := range tc.others {
				others = append(others, serve(h, kr.build()))
				wait.For(t, 10*time.Second, "other key inside", func() bool { return g.in.Load() == int32(i+2) })
			}
			close(g.release)
			recv(t, held)
			for _, ch := range others {
				if rr := recv(t, ch); rr.Code != http.StatusOK {
					t.Errorf("other key: %d", rr.Code)
				}
			}
			checkNoKeys(t, p, "")
		})
	}
}

func TestRouteKey(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1, key: route}`)
	g := newGate()
	h := p.Wrap(g)
	held := serve(h, newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "first inside", func() bool { return g.in.Load() == 1 })
	refuse(t, h, "198.51.100.1", "bob")
	close(g.release)
	recv(t, held)
}

// TestNoKeyLeak sends many requests with distinct keys, some refused, some
// timed out, some cancelled, and checks that no per-key state remains.
func TestNoKeyLeak(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 2, key: "header:X-User", queue_timeout: 5ms, max_queue: 2}`)
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(len(r.Header.Get("X-User"))%3) * time.Millisecond) // varied holding times on purpose
	}))
	var wg sync.WaitGroup
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%4)*time.Millisecond)
				if i%4 == 3 {
					cancel()
					ctx, cancel = context.WithCancel(context.Background())
				}
				r := newRequest(ctx, "192.0.2.1", "")
				r.Header.Set("X-User", "user-"+string(rune('a'+(g*7+i)%26)))
				h.ServeHTTP(httptest.NewRecorder(), r)
				cancel()
			}
		}()
	}
	wg.Wait()
	checkNoKeys(t, p, " after the load")
}

// TestPanicReleases checks that a handler that panics (as the proxy does with
// http.ErrAbortHandler) gives its slot back.
func TestPanicReleases(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1}`)
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	func() {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), newRequest(context.Background(), "192.0.2.1", "alice"))
	}()
	checkNoKeys(t, p, " after a panic")
}

// TestReloadKeepsCounts checks that an instance built for the same route and
// settings with the same shared pool (a reload) shares the counts of
// requests already in flight, and that another pool (another gateway) does
// not.
func TestReloadKeepsCounts(t *testing.T) {
	t.Parallel()
	pool := plugin.NewSharedPool()
	old := mustBuild(t, `{max: 1}`, plugintest.WithPool(pool))
	g := newGate()
	held := serve(old.Wrap(g), newRequest(context.Background(), "192.0.2.1", "alice"))
	wait.For(t, 10*time.Second, "first inside", func() bool { return g.in.Load() == 1 })
	cur := mustBuild(t, `{max: 1}`, plugintest.WithPool(pool))
	_ = old.Cleanup()
	refuse(t, cur.Wrap(g), "192.0.2.1", "alice")
	changed := mustBuild(t, `{max: 2}`, plugintest.WithPool(pool))
	if changed.lim == cur.lim {
		t.Error("changed settings share the limiter")
	}
	if other := mustBuild(t, `{max: 1}`, plugintest.WithPool(plugin.NewSharedPool())); other.lim == cur.lim {
		t.Error("another pool shares the limiter")
	}
	close(g.release)
	recv(t, held)
}

func TestOutsideGateway(t *testing.T) {
	t.Parallel()
	p := mustBuild(t, `{max: 1}`)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	rr := httptest.NewRecorder()
	p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(rr, r)
	if rr.Code != http.StatusOK {
		t.Errorf("status %d", rr.Code)
	}
}

func BenchmarkAcquireRelease(b *testing.B) {
	p := mustBuild(b, `{max: 10}`)
	k := consumerKey(p, "alice")
	b.ReportAllocs()
	for b.Loop() {
		s, res := p.lim.acquire(nil, k)
		if res != granted {
			b.Fatal("not granted")
		}
		p.lim.release(s)
	}
}

func BenchmarkHandler(b *testing.B) {
	for _, key := range []string{"consumer", "ip"} {
		b.Run(key, func(b *testing.B) {
			p := mustBuild(b, `{max: 10, key: `+key+`}`)
			h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			r := newRequest(context.Background(), "192.0.2.1", "alice")
			var w http.ResponseWriter = httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkHandlerParallel spreads requests over many consumers, so shards
// are contended only as real traffic would contend them.
func BenchmarkHandlerParallel(b *testing.B) {
	p := mustBuild(b, `{max: 10}`)
	h := p.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	var next atomic.Int32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := "consumer-" + string(rune('a'+next.Add(1)%26))
		r := newRequest(context.Background(), "192.0.2.1", id)
		var w http.ResponseWriter = httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, r)
		}
	})
}
