package ratelimit_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// TestGatewayRedisPausedBoundedWait runs real gateways (exact and lease
// mode, one shared key) against a redis-server that stops answering
// (CLIENT PAUSE) while 24 clients send requests: each request is answered
// within about the Redis timeout with the failure policy (503 for
// fail_closed) and the backend receives none of the refused requests.
// Not parallel: the load would starve the package's other timing tests.
func TestGatewayRedisPausedBoundedWait(t *testing.T) {
	const timeout = 100 * time.Millisecond
	for _, mode := range []string{"exact", "lease"} {
		t.Run(mode, func(t *testing.T) {
			rd := testutil.StartRedis(t)
			up, hits := upstream(t)
			g := gatewayRoute(t, up, "paused-"+mode, fmt.Sprintf(`{key: [route], backend: redis, redis_mode: %s,
  redis: {addr: %q, timeout: 100ms}, on_redis_error: fail_closed, limits: [{rate: 1000000, per: 1s}]}`, mode, rd.Addr))
			c := testutil.Client()
			if !wait.Within(5*time.Second, func() bool { return get(t, c, g.URL+"/api/x").status == http.StatusOK }) {
				t.Fatal("no 200 with Redis up within 5s")
			}

			admin := redis.NewClient(&redis.Options{Addr: rd.Addr})
			defer admin.Close()
			if err := admin.Do(context.Background(), "CLIENT", "PAUSE", 4000, "ALL").Err(); err != nil {
				t.Fatalf("CLIENT PAUSE: %v", err)
			}
			hitsBefore := hits.Load()
			var mu sync.Mutex
			var lat []time.Duration
			codes := map[int]int{}
			var wg sync.WaitGroup
			stop := time.Now().Add(1200 * time.Millisecond)
			for range 24 {
				wg.Go(func() {
					for time.Now().Before(stop) {
						r := get(t, c, g.URL+"/api/x")
						mu.Lock()
						lat = append(lat, r.latency)
						codes[r.status]++
						mu.Unlock()
						time.Sleep(5 * time.Millisecond) // the clients' pacing, not synchronisation
					}
				})
			}
			wg.Wait()
			slices.Sort(lat)
			t.Logf("%d requests, statuses %v, slowest %v", len(lat), codes, lat[max(len(lat)-3, 0):])
			if m := lat[len(lat)-1]; m > timeout+400*time.Millisecond {
				t.Errorf("a request took %v with a %v Redis timeout", m, timeout)
			}
			if codes[http.StatusServiceUnavailable] == 0 {
				t.Errorf("statuses %v: fail_closed refused nothing", codes)
			}
			if passed := hits.Load() - hitsBefore; passed != int64(codes[http.StatusOK]) {
				t.Errorf("backend received %d requests, but %d were answered 200", passed, codes[http.StatusOK])
			}
		})
	}
}
