package redisclient

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/testutil/testredis"
)

// pausedClient starts a test Redis, connects a client configured by conf
// (its Addr set to that Redis) and checks it answers, then pauses the
// Redis for pauseMS milliseconds with CLIENT PAUSE.
func pausedClient(t *testing.T, conf *Config, pauseMS int) *Client {
	t.Helper()
	rd := testredis.Start(t)
	conf.Addr = rd.Addr
	cl, err := New(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	if err := cl.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer admin.Close()
	if err := admin.Do(context.Background(), "CLIENT", "PAUSE", pauseMS, "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
	return cl
}

// TestTimeoutBoundsWholeCall pauses Redis while more calls than the pool
// has connections are made, each bounded by the configured timeout as the
// plugins do. A call that first waits for a pooled connection must not get
// a fresh read timeout after the wait: none may take much more than the
// timeout (it took twice the timeout when go-redis ignored the context's
// deadline).
func TestTimeoutBoundsWholeCall(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	cl := pausedClient(t, &Config{Timeout: config.Duration(timeout), PoolSize: 4}, 5000)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			start := time.Now()
			err := cl.Ping(ctx).Err()
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, d)
			if err == nil {
				t.Error("PING answered by a paused Redis")
			}
		})
	}
	wg.Wait()
	slices.Sort(lat)
	t.Logf("latencies %v", lat)
	// Allow two stragglers for scheduling on a loaded machine.
	if slow := lat[len(lat)-3]; slow > timeout*3/2 {
		t.Errorf("calls took up to %v with a %v timeout (latencies %v)", slow, timeout, lat)
	}
}

// TestContextDeadlineBoundsCall checks that a caller's deadline shorter
// than the configured timeout ends a call to a Redis that does not answer
// (go-redis ignores context deadlines unless told otherwise, and a call
// then took the whole read timeout).
func TestContextDeadlineBoundsCall(t *testing.T) {
	t.Parallel()
	cl := pausedClient(t, &Config{Timeout: config.Duration(2 * time.Second)}, 10000)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		err := cl.Ping(ctx).Err()
		d := time.Since(start)
		cancel()
		if err == nil {
			t.Fatal("PING answered by a paused Redis")
		}
		if d > time.Second {
			t.Fatalf("call %d with a 100ms deadline took %v (timeout 2s)", i, d)
		}
	}
}
