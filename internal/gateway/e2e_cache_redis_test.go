package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/httpcache/rediscache"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// e2eCacheRedisConfig is one gateway node of a cache shared through Redis.
const e2eCacheRedisConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "127.0.0.1:0", token: redis-purge-token}
upstreams: {be: {targets: [{url: "{{BE}}"}]}}
routes:
  - name: items
    match: {path_prefix: /}
    upstream: be
    plugins:
      - {name: cache, config: {store: redis, redis: {addr: "{{REDIS}}", timeout: 100ms}{{FRONT}}}}
`

// e2eCacheRedisNode starts a gateway node on the shared Redis.
func e2eCacheRedisNode(t *testing.T, be, rd string, front bool) *testutil.Gateway {
	t.Helper()
	vars := map[string]string{"BE": be, "REDIS": rd, "FRONT": ""}
	if front {
		vars["FRONT"] = ", memory_front: {max_bytes: 1MiB, max_ttl: 1m}"
	}
	return e2eStart(t, e2eCacheRedisConfig, vars)
}

// e2eCacheRedisBackend is an upstream that allows caching for 10 minutes and
// counts its requests.
func e2eCacheRedisBackend(t *testing.T) (string, *atomic.Int64) {
	var hits atomic.Int64
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "%s %s #%d", r.Method, r.URL.Path, n)
	}))
	return be.URL, &hits
}

// e2eCacheDo sends method path to a node with the Host both nodes share
// and returns the status and X-Cache.
func e2eCacheDo(t *testing.T, g *testutil.Gateway, method, path string) (int, string) {
	t.Helper()
	req := e2eReq(t, method, g.URL+path, nil)
	req.Host = "api.example"
	resp, _ := e2eDo(t, req)
	return resp.StatusCode, resp.Header.Get("X-Cache")
}

// TestCacheRedisSharedByTwoGateways: two gateways on one Redis share their
// cache: a miss on one is a hit on the other, an invalidating POST on one
// removes the entry for the other (with memory fronts: through the pub/sub
// fan-out), and a purge through one node's admin API reaches both.
func TestCacheRedisSharedByTwoGateways(t *testing.T) {
	rd := testutil.StartRedis(t)
	for _, front := range []bool{false, true} {
		t.Run(fmt.Sprintf("memory_front=%t", front), func(t *testing.T) {
			be, hits := e2eCacheRedisBackend(t)
			a := e2eCacheRedisNode(t, be, rd.Addr, front)
			b := e2eCacheRedisNode(t, be, rd.Addr, front)
			path := fmt.Sprintf("/items/front-%t", front)
			if _, s := e2eCacheDo(t, a, "GET", path); s != "MISS" {
				t.Fatalf("first GET on A: %s", s)
			}
			if _, s := e2eCacheDo(t, b, "GET", path); s != "HIT" {
				t.Fatalf("GET on B after A stored: %s, want HIT", s)
			}
			if _, s := e2eCacheDo(t, a, "GET", path); s != "HIT" {
				t.Fatalf("second GET on A: %s", s)
			}
			if n := hits.Load(); n != 1 {
				t.Fatalf("%d upstream requests, want 1", n)
			}

			if st, _ := e2eCacheDo(t, a, "POST", path); st != http.StatusOK {
				t.Fatalf("POST: %d", st)
			}
			// B's front, when it has one, learns of the delete
			// asynchronously; without a front the next GET misses.
			wait.For(t, 5*time.Second, "B to miss after the POST on A", func() bool {
				_, s := e2eCacheDo(t, b, "GET", path)
				return s == "MISS"
			})
			if _, s := e2eCacheDo(t, a, "GET", path); s != "HIT" {
				t.Fatalf("A after B stored anew: %s, want HIT", s)
			}

			// A purge through A's admin API empties both nodes: entries
			// cached on A and read through B (filling B's front).
			for _, p := range []string{"/p/a", "/p/b"} {
				e2eCacheDo(t, a, "GET", p+path)
				if _, s := e2eCacheDo(t, b, "GET", p+path); s != "HIT" {
					t.Fatalf("%s on B: %s, want HIT", p, s)
				}
			}
			status, v := e2ePurge(t, a.AdminURL, "redis-purge-token", `{"prefix": "api.example/p/"}`)
			if status != http.StatusOK || v["purged"] != float64(2) {
				t.Fatalf("purge through A's admin API: %d %v; want 2 entries", status, v)
			}
			for _, c := range []struct {
				g    *testutil.Gateway
				name string
				p    string
			}{{a, "A", "/p/a"}, {b, "B", "/p/b"}} {
				wait.For(t, 5*time.Second, c.name+" to miss after the purge", func() bool {
					_, s := e2eCacheDo(t, c.g, "GET", c.p+path)
					return s == "MISS"
				})
			}
			// Leave Redis empty for the other subtest.
			if _, err := e2eCacheRedisThirdStore(t, rd.Addr).Purge(context.Background(), httpcache.Purge{All: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// e2eCacheRedisThirdStore opens the route's Redis store as another node
// would, finding its namespace from the index key in Redis.
func e2eCacheRedisThirdStore(t *testing.T, addr string) *rediscache.Store {
	t.Helper()
	cl, err := redisclient.New(&redisclient.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := cl.Keys(context.Background(), "portico:cache:*:idx").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("index keys %q, %v; want one", keys, err)
	}
	ns := strings.TrimSuffix(strings.TrimPrefix(keys[0], "portico:cache:"), ":idx")
	s, err := rediscache.New(rediscache.Options{Client: cl, Namespace: ns, Release: func() { _ = cl.Close() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestCacheRedisOutage: with Redis killed, every request is still answered
// 200 from the upstream (MISS), never a 5xx; with Redis not answering
// (paused), requests do not each wait for the Redis timeout; when Redis is
// back, responses are cached and hit again.
func TestCacheRedisOutage(t *testing.T) {
	rd := testutil.StartRedis(t)
	be, hits := e2eCacheRedisBackend(t)
	g := e2eCacheRedisNode(t, be, rd.Addr, false)
	e2eCacheDo(t, g, "GET", "/o")
	if _, s := e2eCacheDo(t, g, "GET", "/o"); s != "HIT" {
		t.Fatalf("with Redis up: %s, want HIT", s)
	}

	rd.Stop()
	before := hits.Load()
	for i := range 30 {
		if st, s := e2eCacheDo(t, g, "GET", "/o"); st != http.StatusOK || s != "MISS" {
			t.Fatalf("request %d with Redis killed: %d %s, want 200 MISS", i, st, s)
		}
	}
	if n := hits.Load() - before; n != 30 {
		t.Fatalf("%d upstream requests for 30 misses", n)
	}

	rd.Restart()
	wait.For(t, 5*time.Second, "a hit after Redis came back", func() bool {
		_, s := e2eCacheDo(t, g, "GET", "/o")
		return s == "HIT"
	})

	admin := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer admin.Close()
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 1500, "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	var lat []time.Duration
	stop := time.Now().Add(time.Second)
	for time.Now().Before(stop) {
		start := time.Now()
		if st, _ := e2eCacheDo(t, g, "GET", "/paused"); st != http.StatusOK {
			t.Fatalf("request with Redis paused: %d", st)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	slow := 0
	for _, l := range lat {
		if l >= 90*time.Millisecond {
			slow++
		}
	}
	t.Logf("Redis paused: %d requests, median %v, slowest %v, %d at the timeout", len(lat), lat[len(lat)/2], lat[len(lat)-1], slow)
	if lat[len(lat)-1] > 500*time.Millisecond {
		t.Errorf("a request took %v with a 100ms Redis timeout", lat[len(lat)-1])
	}
	if slow > len(lat)/4 {
		t.Errorf("%d of %d requests waited for the Redis timeout", slow, len(lat))
	}
}
