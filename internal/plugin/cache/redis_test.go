package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

func TestRedisConfigErrors(t *testing.T) {
	plugintest.ExpectErrors(t, Name, []plugintest.ConfigError{
		{Desc: "redis without settings", Config: "{store: redis}", Want: []string{"store redis needs redis"}},
		{Desc: "redis settings on memory", Config: "{redis: {addr: '127.0.0.1:6379'}}", Want: []string{"redis is set but store is memory"}},
		{Desc: "front on memory", Config: "{memory_front: {max_ttl: 1s}}", Want: []string{"memory_front is only for store: redis"}},
		{Desc: "bad redis addr", Config: "{store: redis, redis: {addr: 'nohost'}}", Want: []string{"redis.addr"}},
		{Desc: "two redis kinds", Config: "{store: redis, redis: {addr: '127.0.0.1:1', cluster: ['127.0.0.1:2']}}", Want: []string{"exactly one of addr, cluster, sentinel"}},
		{Desc: "max_bytes with redis", Config: "{store: redis, redis: {addr: '127.0.0.1:1'}, max_bytes: 1MiB}", Want: []string{"max_bytes", "maxmemory"}},
		{Desc: "huge max_entry", Config: "{store: redis, redis: {addr: '127.0.0.1:1'}, max_entry: 1GiB}", Want: []string{"max_entry", "64MiB"}},
		{Desc: "tiny front", Config: "{store: redis, redis: {addr: '127.0.0.1:1'}, memory_front: {max_bytes: 100}}", Want: []string{"memory_front.max_bytes", "4KiB"}},
		{Desc: "front ttl", Config: "{store: redis, redis: {addr: '127.0.0.1:1'}, memory_front: {max_ttl: 2h}}", Want: []string{"memory_front.max_ttl"}},
		{Desc: "front unknown field", Config: "{store: redis, redis: {addr: '127.0.0.1:1'}, memory_front: {size: 1MiB}}", Want: []string{"size"}},
	})
}

// counting is an upstream that counts its requests and allows caching.
func counting(hits *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "v%d", n)
	})
}

func getVia(h http.Handler, url string) (string, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", url, nil))
	return w.Header().Get("X-Cache"), w.Body.String()
}

// TestRedisStoreSharedByInstances: two instances with separate shared
// pools (two gateways) and the same settings share entries through Redis;
// a different setting is a different namespace.
func TestRedisStoreSharedByInstances(t *testing.T) {
	rd := testredis.Start(t)
	cfg := fmt.Sprintf("{store: redis, redis: {addr: %q}}", rd.Addr)
	var hits atomic.Int32
	a := plugintest.MustBuild[*Cache](t, Name, cfg, plugintest.WithPool(plugin.NewSharedPool())).Wrap(counting(&hits))
	b := plugintest.MustBuild[*Cache](t, Name, cfg, plugintest.WithPool(plugin.NewSharedPool())).Wrap(counting(&hits))
	other := plugintest.MustBuild[*Cache](t, Name, fmt.Sprintf("{store: redis, redis: {addr: %q}, ttl: 5s}", rd.Addr),
		plugintest.WithPool(plugin.NewSharedPool())).Wrap(counting(&hits))
	if s, body := getVia(a, "http://api.example/x"); s != "MISS" || body != "v1" {
		t.Fatalf("first request on a: %s %s", s, body)
	}
	if s, body := getVia(b, "http://api.example/x"); s != "HIT" || body != "v1" {
		t.Fatalf("b after a stored: %s %s", s, body)
	}
	if s, _ := getVia(other, "http://api.example/x"); s != "MISS" {
		t.Fatalf("other settings: %s, want a miss", s)
	}
}

// TestRedisStoreSharedAcrossReload: instances built from the same pool
// with the same settings share one store (the reload case).
func TestRedisStoreSharedAcrossReload(t *testing.T) {
	rd := testredis.Start(t)
	pool := plugin.NewSharedPool()
	cfg := fmt.Sprintf("{store: redis, redis: {addr: %q}, memory_front: {max_ttl: 1m}}", rd.Addr)
	a := plugintest.MustBuild[*Cache](t, Name, cfg, plugintest.WithPool(pool))
	b := plugintest.MustBuild[*Cache](t, Name, cfg, plugintest.WithPool(pool))
	if a.store != b.store {
		t.Fatal("same settings, two stores")
	}
	var hits atomic.Int32
	getVia(a.Wrap(counting(&hits)), "http://api.example/x")
	if st := b.StoreStats(); st.Entries != 1 || st.Bytes == 0 {
		t.Fatalf("front stats %+v, want one entry", st)
	}
}

// TestRedisDownIsAMiss: with Redis gone, requests go upstream (MISS), the
// errors are counted, and none waits for the timeout once the store backs
// off.
func TestRedisDownIsAMiss(t *testing.T) {
	rd := testredis.Start(t)
	stats := observe.NewStats()
	c := plugintest.MustBuild[*Cache](t, Name, fmt.Sprintf("{store: redis, redis: {addr: %q, timeout: 200ms}}", rd.Addr),
		plugintest.WithStats(stats), plugintest.WithRoute("r"))
	var hits atomic.Int32
	h := c.Wrap(counting(&hits))
	getVia(h, "http://api.example/x")
	if s, _ := getVia(h, "http://api.example/x"); s != "HIT" {
		t.Fatalf("%s, want HIT", s)
	}
	rd.Stop()
	start := time.Now()
	for i := range 20 {
		if s, body := getVia(h, "http://api.example/x"); s != "MISS" || body != fmt.Sprintf("v%d", i+2) {
			t.Fatalf("request %d with Redis down: %s %s", i, s, body)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("20 requests with Redis down took %v", d)
	}
	if n := stats.Counter(MetricRedisErrors, `route="r"`).Value(); n < 1 {
		t.Fatalf("%s = %d", MetricRedisErrors, n)
	}
	rd.Restart()
	wait.For(t, 5*time.Second, "a hit after Redis came back", func() bool {
		s, _ := getVia(h, "http://api.example/x")
		return s == "HIT"
	})
	if _, err := c.store.Purge(context.Background(), httpcache.Purge{All: true}); err != nil {
		t.Fatal(err)
	}
}
