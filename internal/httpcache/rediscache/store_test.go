package rediscache

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

var bg = context.Background()

func keyOf(s string) httpcache.Key { return httpcache.VariantKey(httpcache.Key{}, s) }

func entry(name string, tags ...string) *httpcache.Entry {
	return &httpcache.Entry{Key: keyOf(name), Status: 200, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: []byte("body of " + name), Path: "a.example/" + name, Tags: tags, TTL: time.Hour}
}

type testStore struct {
	*Store
	errs atomic.Int64
}

// newStore opens a Store on the Redis at addr in namespace ns; front > 0
// puts a memory front with that max TTL in front.
func newStore(t testing.TB, addr, ns string, front time.Duration) *testStore {
	t.Helper()
	cl, err := redisclient.New(&redisclient.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testStore{}
	o := Options{Client: cl, Namespace: ns, Timeout: time.Second, OnError: func(error) { ts.errs.Add(1) },
		Release: func() { _ = cl.Close() }}
	if front > 0 {
		f, err := httpcache.NewMemoryStore(httpcache.MemoryOptions{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		o.Front, o.FrontMaxTTL = f, front
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ts.Store = s
	t.Cleanup(func() { _ = s.Close() })
	return ts
}

func mustGet(t *testing.T, s *testStore, name string) *httpcache.Entry {
	t.Helper()
	e, err := s.Get(bg, keyOf(name))
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return e
}

func TestRoundTripEveryField(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "rt", 0)
	now := time.Now()
	in := &httpcache.Entry{Key: keyOf("full"), Status: 203,
		Header: http.Header{"Content-Type": {"application/json"}, "Vary": {"Accept", "Accept-Language"}, "X-Empty": {""}},
		Body:   []byte("{\"a\":1}\x00\xff"),
		Meta: httpcache.Meta{ResponseTime: now, RequestTime: now.Add(-time.Second), Lifetime: time.Minute,
			InitialAge: 3 * time.Second, NoCache: true, MustRevalidate: true, StaleWhileRevalidate: 7 * time.Second,
			StaleIfError: 11 * time.Second},
		Vary: []string{"accept", "accept-language"}, Path: "api.example/v1/items?page=2",
		Tags: []string{"items", "page-2"}, TTL: 90 * time.Second}
	if err := s.Set(bg, in); err != nil {
		t.Fatal(err)
	}
	out := mustGet(t, s, "full")
	if out == nil {
		t.Fatal("miss after set")
	}
	if !out.Meta.ResponseTime.Equal(in.Meta.ResponseTime) || !out.Meta.RequestTime.Equal(in.Meta.RequestTime) {
		t.Fatalf("times %v %v, want %v %v", out.Meta.ResponseTime, out.Meta.RequestTime, in.Meta.ResponseTime, in.Meta.RequestTime)
	}
	out.Meta.ResponseTime, out.Meta.RequestTime = in.Meta.ResponseTime, in.Meta.RequestTime
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
	// A marker entry: no status, no header, no body, zero times.
	marker := &httpcache.Entry{Key: keyOf("marker"), Vary: []string{"accept"}, Path: "api.example/m", TTL: time.Hour}
	if err := s.Set(bg, marker); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "marker"); !reflect.DeepEqual(got, marker) {
		t.Fatalf("marker:\n got %+v\nwant %+v", got, marker)
	}
	if e := mustGet(t, s, "absent"); e != nil {
		t.Fatalf("absent key: %+v", e)
	}
	if s.errs.Load() != 0 {
		t.Fatalf("%d errors reported", s.errs.Load())
	}
}

func TestSetRefusals(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "ref", 0)
	s.maxEntry = 1024
	big := entry("big")
	big.Body = make([]byte, 2048)
	noTTL := entry("nottl")
	noTTL.TTL = 0
	manyTags := entry("tags")
	for range httpcache.MaxTags + 1 {
		manyTags.Tags = append(manyTags.Tags, "t")
	}
	for _, c := range []struct {
		e    *httpcache.Entry
		want error
	}{{big, httpcache.ErrTooLarge}, {noTTL, httpcache.ErrNoTTL}, {manyTags, httpcache.ErrBadTags}} {
		if err := s.Set(bg, c.e); !errors.Is(err, c.want) {
			t.Errorf("set %s: %v, want %v", c.e.Path, err, c.want)
		}
	}
}

func TestTTLExpiryAndDelete(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "ttl", 0)
	short := entry("short")
	short.TTL = 50 * time.Millisecond
	if err := s.Set(bg, short); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(bg, entry("long")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "the short entry to expire", func() bool { return mustGet(t, s, "short") == nil })
	if mustGet(t, s, "long") == nil {
		t.Fatal("long entry gone")
	}
	if err := s.Delete(bg, keyOf("long")); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, s, "long") != nil {
		t.Fatal("deleted entry still there")
	}
}

func TestPurgeKinds(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "purge", 0)
	other := newStore(t, rd.Addr, "other-ns", 0)
	fill := func() {
		for _, e := range []*httpcache.Entry{
			entry("v1/a", "red"), entry("v1/b", "red", "blue"), entry("v2/a", "blue"), entry("v2/b"),
			{Key: keyOf("v2/b HEAD"), Status: 200, Path: "a.example/v2/b", TTL: time.Hour},
			entry("x*[?]\\^"),
		} {
			if err := s.Set(bg, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := other.Set(bg, entry("v1/a", "red")); err != nil {
			t.Fatal(err)
		}
	}
	present := func(names ...string) []string {
		var got []string
		for _, n := range names {
			if mustGet(t, s, n) != nil {
				got = append(got, n)
			}
		}
		return got
	}
	all := []string{"v1/a", "v1/b", "v2/a", "v2/b", "v2/b HEAD", "x*[?]\\^"}
	for _, c := range []struct {
		p    httpcache.Purge
		n    int
		left []string
	}{
		{httpcache.Purge{Tag: "red"}, 2, []string{"v2/a", "v2/b", "v2/b HEAD", "x*[?]\\^"}},
		{httpcache.Purge{URL: "a.example/v2/b"}, 2, []string{"v1/a", "v1/b", "v2/a", "x*[?]\\^"}},
		{httpcache.Purge{Prefix: "a.example/v1/"}, 2, []string{"v2/a", "v2/b", "v2/b HEAD", "x*[?]\\^"}},
		{httpcache.Purge{URL: "a.example/x*[?]\\^"}, 1, []string{"v1/a", "v1/b", "v2/a", "v2/b", "v2/b HEAD"}},
		{httpcache.Purge{Prefix: "a.example/x*"}, 1, []string{"v1/a", "v1/b", "v2/a", "v2/b", "v2/b HEAD"}},
		{httpcache.Purge{Prefix: "a.example/*"}, 0, all},
		{httpcache.Purge{All: true}, 6, nil},
	} {
		fill()
		n, err := s.Purge(bg, c.p)
		if err != nil {
			t.Fatalf("%+v: %v", c.p, err)
		}
		if got := present(all...); n != c.n || !reflect.DeepEqual(got, c.left) {
			t.Errorf("%+v: purged %d, left %q; want %d, %q", c.p, n, got, c.n, c.left)
		}
		if e, _ := other.Get(bg, keyOf("v1/a")); e == nil {
			t.Fatalf("%+v reached another namespace", c.p)
		}
		if _, err := s.Purge(bg, httpcache.Purge{All: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Purge(bg, httpcache.Purge{Tag: "a", URL: "b"}); !errors.Is(err, httpcache.ErrBadPurge) {
		t.Fatalf("two kinds: %v", err)
	}
	if _, err := s.Purge(bg, httpcache.Purge{}); !errors.Is(err, httpcache.ErrBadPurge) {
		t.Fatalf("no kind: %v", err)
	}
}

// TestIndexTrimmed: members of expired entries leave the URL and tag
// indexes on later Sets, and the index keys expire with their entries.
func TestIndexTrimmed(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "trim", 0)
	for i := range 50 {
		e := entry("old"+string(rune('a'+i%26))+string(rune('a'+i/26)), "tag")
		e.TTL = 20 * time.Millisecond
		s.sets.Store(0) // no trimming while the old entries are set
		if err := s.Set(bg, e); err != nil {
			t.Fatal(err)
		}
	}
	card := func(key string) int64 { return s.rdb.ZCard(bg, key).Val() }
	if n := card(s.idx); n != 50 {
		t.Fatalf("index holds %d members, want 50", n)
	}
	wait.For(t, 5*time.Second, "the entries to expire", func() bool { return mustGet(t, s, "oldxb") == nil }) // the last one set
	s.sets.Store(0)                                                                                           // the last of these Sets trims
	for i := range trimEvery {
		if err := s.Set(bg, entry("new"+string(rune('a'+i)), "tag")); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := card(s.idx), card(s.tagKey("tag")); n != trimEvery || m != trimEvery {
		t.Fatalf("after trimming: index %d, tag index %d members; want %d", n, m, trimEvery)
	}
	if ttl := s.rdb.TTL(bg, s.idx).Val(); ttl <= 0 || ttl > time.Hour+2*time.Second {
		t.Fatalf("index TTL %v, want about an hour", ttl)
	}
	short := entry("short", "only-short")
	short.TTL = 30 * time.Millisecond
	if err := s.Set(bg, short); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "the tag index of an expired entry to expire", func() bool {
		return s.rdb.Exists(bg, s.tagKey("only-short")).Val() == 0
	})
}

// TestFailOpen: with Redis killed, Get is a miss and Set and Delete do
// nothing, each with an error; after the first failure the store answers
// without waiting for Redis; once Redis is back, it is used again within
// the backoff.
func TestFailOpen(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "down", 0)
	if err := s.Set(bg, entry("a")); err != nil {
		t.Fatal(err)
	}
	rd.Stop()
	if e, err := s.Get(bg, keyOf("a")); e != nil || err == nil {
		t.Fatalf("get with Redis down: %v, %v", e, err)
	}
	if s.errs.Load() != 1 {
		t.Fatalf("%d errors reported, want 1", s.errs.Load())
	}
	start := time.Now()
	for range 1000 {
		// ErrUnavailable, or (should a stalled machine let the backoff
		// end) a refused probe: a miss with an error either way.
		if e, err := s.Get(bg, keyOf("a")); e != nil || err == nil {
			t.Fatalf("get while backing off: %v, %v", e, err)
		}
	}
	if err := s.Set(bg, entry("b")); err == nil {
		t.Fatalf("set while backing off: %v", err)
	}
	if err := s.Delete(bg, keyOf("b")); err == nil {
		t.Fatalf("delete while backing off: %v", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("1000 gets while backing off took %v", d)
	}
	rd.Restart()
	if !wait.Within(3*time.Second, func() bool { return s.Set(bg, entry("c")) == nil }) {
		t.Fatal("store did not use Redis again within 3s of its return")
	}
	if mustGet(t, s, "c") == nil {
		t.Fatal("miss after recovery")
	}
}

// TestCancelledCallerDoesNotBackOff: a Get whose request was cancelled
// fails without marking Redis down.
func TestCancelledCallerDoesNotBackOff(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "cancel", 0)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := s.Get(ctx, keyOf("a")); err == nil {
		t.Fatal("cancelled get succeeded")
	}
	if s.errs.Load() != 0 || s.downUntil.Load() != 0 {
		t.Fatalf("cancelled caller counted as a Redis failure (%d errors)", s.errs.Load())
	}
}

// TestFrontFanOut: two stores with memory fronts share one namespace;
// deletes and purges on one reach the other's front through pub/sub.
func TestFrontFanOut(t *testing.T) {
	rd := testredis.Start(t)
	a := newStore(t, rd.Addr, "front", time.Minute)
	b := newStore(t, rd.Addr, "front", time.Minute)
	for _, p := range []httpcache.Purge{{}, {All: true}, {URL: "a.example/x"}, {Prefix: "a.example/"}, {Tag: "t"}} {
		if err := a.Set(bg, entry("x", "t")); err != nil {
			t.Fatal(err)
		}
		if mustGet(t, b, "x") == nil { // fills b's front
			t.Fatal("miss on b")
		}
		if e, _ := b.front.Get(bg, keyOf("x")); e == nil {
			t.Fatal("b's front not filled")
		}
		if e, _ := b.front.Get(bg, keyOf("x")); e.TTL > time.Minute {
			t.Fatalf("front TTL %v above the max", e.TTL)
		}
		if p == (httpcache.Purge{}) {
			if err := a.Delete(bg, keyOf("x")); err != nil {
				t.Fatal(err)
			}
		} else if n, err := a.Purge(bg, p); err != nil || n != 1 {
			t.Fatalf("purge %+v: %d, %v", p, n, err)
		}
		wait.For(t, 5*time.Second, "b's front to drop the entry", func() bool {
			e, _ := b.front.Get(bg, keyOf("x"))
			return e == nil
		})
		if mustGet(t, b, "x") != nil {
			t.Fatalf("%+v: entry still in Redis", p)
		}
	}
}

// TestFrontMaxTTL: the front keeps an entry at most FrontMaxTTL, so an
// entry removed from Redis behind its back (a lost message) stops being
// served after it.
func TestFrontMaxTTL(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "fttl", 100*time.Millisecond)
	if err := s.Set(bg, entry("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.Del(bg, s.entryKey(keyOf("x"))).Err(); err != nil {
		t.Fatal(err)
	}
	if mustGet(t, s, "x") == nil {
		t.Fatal("front did not serve the entry")
	}
	wait.For(t, 5*time.Second, "the front entry to expire", func() bool { return mustGet(t, s, "x") == nil })
}

func TestCorruptValueIsAMiss(t *testing.T) {
	rd := testredis.Start(t)
	s := newStore(t, rd.Addr, "corrupt", 0)
	if err := s.rdb.Set(bg, s.entryKey(keyOf("x")), "\x01garbage", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(bg, keyOf("x")); e != nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt value: %v, %v", e, err)
	}
	// An entry copied under another key is refused too.
	if err := s.Set(bg, entry("y")); err != nil {
		t.Fatal(err)
	}
	v := s.rdb.Get(bg, s.entryKey(keyOf("y"))).Val()
	if err := s.rdb.Set(bg, s.entryKey(keyOf("x")), v, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if e, err := s.Get(bg, keyOf("x")); e != nil || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("entry under another key: %v, %v", e, err)
	}
	if s.downUntil.Load() != 0 {
		t.Fatal("a corrupt value marked Redis down")
	}
}

// TestFrontResubscribes: when the subscription breaks (Redis restarted),
// the store subscribes again and empties its front, since messages sent
// meanwhile were lost; deletes reach it again afterwards.
func TestFrontResubscribes(t *testing.T) {
	rd := testredis.Start(t)
	a := newStore(t, rd.Addr, "resub", time.Minute)
	b := newStore(t, rd.Addr, "resub", time.Minute)
	if err := b.Set(bg, entry("x")); err != nil {
		t.Fatal(err)
	}
	rd.Stop()
	rd.Restart()
	wait.For(t, 10*time.Second, "b's front to be emptied after resubscribing", func() bool {
		e, _ := b.front.Get(bg, keyOf("x"))
		return e == nil
	})
	wait.For(t, 5*time.Second, "Redis to take writes again", func() bool { return b.Set(bg, entry("y")) == nil })
	if e, _ := b.front.Get(bg, keyOf("y")); e == nil {
		t.Fatal("front not filled by Set")
	}
	wait.For(t, 5*time.Second, "a delete on a to reach b's front", func() bool {
		_ = a.Delete(bg, keyOf("y"))
		e, _ := b.front.Get(bg, keyOf("y"))
		return e == nil
	})
}
