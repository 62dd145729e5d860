package gateway_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
)

// TestCacheHeuristicFreshness: a response with Last-Modified and no
// explicit freshness goes back to the upstream on every use by default,
// and is served fresh from the cache with heuristic: true.
func TestCacheHeuristicFreshness(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	lastModified := time.Now().Add(-10 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Last-Modified", lastModified)
		_, _ = w.Write([]byte("doc"))
	}))
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {be: {targets: [{url: "{{BE}}"}]}}
routes:
  - {name: strict, match: {path_prefix: /strict}, upstream: be, plugins: [{name: cache}]}
  - {name: heuristic, match: {path_prefix: /heuristic}, upstream: be, plugins: [{name: cache, config: {heuristic: true, heuristic_max: 1h}}]}
`, map[string]string{"BE": be.URL})
	for _, tc := range []struct {
		path   string
		second string
		hits   int64
	}{
		{"/strict/a", "MISS", 2}, // revalidated: this backend answers 200, not 304
		{"/heuristic/a", "HIT", 1},
	} {
		before := hits.Load()
		r1, _ := e2eGet(t, tg.URL+tc.path)
		r2, body := e2eGet(t, tg.URL+tc.path)
		if r1.Header.Get("X-Cache") != "MISS" || r2.Header.Get("X-Cache") != tc.second || string(body) != "doc" {
			t.Errorf("%s: X-Cache %q then %q (body %q), want MISS then %s", tc.path, r1.Header.Get("X-Cache"), r2.Header.Get("X-Cache"), body, tc.second)
		}
		if n := hits.Load() - before; n != tc.hits {
			t.Errorf("%s: %d upstream requests, want %d", tc.path, n, tc.hits)
		}
	}
}
