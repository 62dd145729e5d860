package ratelimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/testutil"
)

// benchHandler builds the plugin from YAML around a no-op handler.
func benchHandler(b *testing.B, src string) http.Handler {
	b.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		b.Fatal(err)
	}
	in, err := plugin.New(config.PluginSpec{Name: "rate_limit", Path: "bench", Config: *doc.Content[0]}, plugin.StaticContext{RouteName: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(in.Cleanup)
	return in.Plugin.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
}

func benchRedis(b *testing.B, mode string) {
	rd := testutil.StartRedis(b)
	for _, bc := range []struct {
		name string
		keys int
	}{{"hot_key", 1}, {"many_keys", 1000}} {
		b.Run(bc.name, func(b *testing.B) {
			h := benchHandler(b, fmt.Sprintf(`{key: [header:X-Key], backend: redis, redis: {addr: %q}, redis_mode: %s, limits: [{rate: 1000000, per: 1s, burst: 1000000000}]}`, rd.Addr, mode))
			var seq atomic.Int64
			var denied atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest("GET", "/x", nil)
				w := httptest.NewRecorder()
				for pb.Next() {
					r.Header["X-Key"] = []string{fmt.Sprint(seq.Add(1) % int64(bc.keys))}
					clear(w.Header())
					w.Code = 200
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						denied.Add(1)
					}
				}
			})
			if denied.Load() > 0 {
				b.Fatalf("%d requests not allowed", denied.Load())
			}
		})
	}
}

// BenchmarkRedisExact measures one decision with one script round trip to a
// real redis-server.
func BenchmarkRedisExact(b *testing.B) { benchRedis(b, "exact") }

// BenchmarkRedisLease measures decisions served from leases.
func BenchmarkRedisLease(b *testing.B) { benchRedis(b, "lease") }
