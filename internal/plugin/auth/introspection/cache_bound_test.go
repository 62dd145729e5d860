package introspection

import (
	"strconv"
	"testing"
	"time"
)

// TestCacheBoundAndExpiry checks the result cache as configured: at
// cache_max_entries the oldest result is evicted (its token is introspected
// again), an active result expires after cache_ttl or at the token's exp,
// whichever is first, and an inactive one after negative_cache_ttl.
func TestCacheBoundAndExpiry(t *testing.T) {
	t.Parallel()
	t.Run("bound", func(t *testing.T) {
		t.Parallel()
		srv, p, _ := setup(t, ", cache_max_entries: 2")
		for _, tok := range []string{"a", "b", "c"} {
			srv.set(tok, `{"active":true,"sub":"a"}`)
			if w := do(p, bearer(tok)); w.Code != 200 {
				t.Fatalf("%s: %d", tok, w.Code)
			}
		}
		if n := p.cache.Len(); n != 2 {
			t.Fatalf("cache holds %d entries, want the bound 2", n)
		}
		do(p, bearer("c"))
		do(p, bearer("b"))
		if n := srv.calls.Load(); n != 3 {
			t.Fatalf("calls = %d, want 3 (b and c cached)", n)
		}
		do(p, bearer("a"))
		if n := srv.calls.Load(); n != 4 {
			t.Fatalf("calls = %d, want 4 (a evicted)", n)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		t.Parallel()
		srv, p, clk := setup(t, ", cache_ttl: 60s, negative_cache_ttl: 5s")
		srv.set("long", `{"active":true,"sub":"a"}`)
		srv.set("short", `{"active":true,"sub":"a","exp":`+strconv.FormatInt(clk.Now().Add(20*time.Second).Unix(), 10)+`}`)
		calls := func() int64 { return srv.calls.Load() }
		for _, tok := range []string{"long", "short", "inactive"} {
			do(p, bearer(tok))
		}
		if calls() != 3 {
			t.Fatalf("calls = %d, want 3", calls())
		}
		step := func(d time.Duration, tok string, wantCalls int64) {
			t.Helper()
			clk.Advance(d)
			do(p, bearer(tok))
			if calls() != wantCalls {
				t.Fatalf("after %v, %s: calls = %d, want %d", d, tok, calls(), wantCalls)
			}
		}
		step(4*time.Second, "inactive", 3) // 4s: negative result cached
		step(time.Second, "inactive", 4)   // 5s: negative_cache_ttl over
		step(14*time.Second, "short", 4)   // 19s: before exp
		step(time.Second, "short", 5)      // 20s: at exp
		step(39*time.Second, "long", 5)    // 59s: before cache_ttl
		step(time.Second, "long", 6)       // 60s: cache_ttl over
	})
}
