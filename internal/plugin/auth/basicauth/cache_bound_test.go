package basicauth

import (
	"fmt"
	"testing"
	"time"
)

// TestCachesBoundAndExpiry checks both caches as configured: cache_size
// bounds each (the oldest entry is evicted), and an entry expires after
// cache_ttl (successes) or failure_cache_ttl (failures).
func TestCachesBoundAndExpiry(t *testing.T) {
	t.Parallel()
	p, _ := mustBuild(t, "{cache_ttl: 10s, failure_cache_ttl: 5s, cache_size: 2}", testStore(t))
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		name string
		c    *verifiedCache
		ttl  time.Duration
	}{{"success", p.cache, 10 * time.Second}, {"failure", p.failed, 5 * time.Second}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c == nil {
				t.Fatal("cache not built")
			}
			k := func(i int) cacheKey { return p.key("u", fmt.Sprint(tc.name, i)) }
			for i := range 3 {
				tc.c.put(k(i), now)
			}
			if n := tc.c.len(); n != 2 {
				t.Fatalf("%d entries, want the bound 2", n)
			}
			if tc.c.get(k(0), now) || !tc.c.get(k(1), now) || !tc.c.get(k(2), now) {
				t.Fatal("not the oldest entry evicted at the bound")
			}
			if !tc.c.get(k(2), now.Add(tc.ttl-time.Nanosecond)) {
				t.Fatal("entry expired before its TTL")
			}
			if tc.c.get(k(2), now.Add(tc.ttl)) {
				t.Fatal("entry served after its TTL")
			}
		})
	}
}
