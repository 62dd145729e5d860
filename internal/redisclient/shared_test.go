package redisclient

import (
	"io"
	"testing"

	"github.com/portico-gw/portico/internal/usage"
)

// sharedIn adapts a usage.Pool to a SharedFunc, as plugin.Context does.
func sharedIn(p *usage.Pool[io.Closer]) SharedFunc {
	return func(key string, create func() (io.Closer, error)) (any, func(), error) {
		return p.Acquire(key, create)
	}
}

// TestShared: identical settings share one connection pool (across routes
// and, because a reload acquires before it releases, across reloads), each
// caller keeps its own key prefix, other settings or another pool get a
// client of their own, and the last release closes the client.
func TestShared(t *testing.T) {
	t.Parallel()
	pool := usage.New[io.Closer](nil)
	shared := sharedIn(pool)
	a, relA, err := Shared(shared, &Config{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	b, relB, _ := Shared(shared, &Config{Addr: "127.0.0.1:1", KeyPrefix: "other:"})
	if a.UniversalClient != b.UniversalClient || pool.Len() != 1 {
		t.Fatalf("identical settings: shared=%v Len=%d", a.UniversalClient == b.UniversalClient, pool.Len())
	}
	if a.Prefix != "portico:" || b.Prefix != "other:" {
		t.Fatalf("prefixes %q, %q; want each caller's own", a.Prefix, b.Prefix)
	}
	c, relC, _ := Shared(shared, &Config{Addr: "127.0.0.1:1", DB: 2})
	if c.UniversalClient == a.UniversalClient || pool.Len() != 2 {
		t.Fatal("other settings shared the client")
	}
	d, relD, _ := Shared(sharedIn(usage.New[io.Closer](nil)), &Config{Addr: "127.0.0.1:1"})
	if d.UniversalClient == a.UniversalClient {
		t.Fatal("two pools (two gateways) shared a client")
	}
	relD()
	relC()
	relA()
	relA()
	if pool.Len() != 1 {
		t.Fatalf("Len = %d after one of two holders released, want 1", pool.Len())
	}
	relB()
	if pool.Len() != 0 {
		t.Fatalf("Len = %d after the last release, want 0", pool.Len())
	}
	if err := a.Ping(t.Context()).Err(); err == nil || err.Error() != "redis: client is closed" {
		t.Fatalf("client after the last release: %v, want closed", err)
	}
	if _, _, err := Shared(shared, &Config{}); err == nil {
		t.Fatal("invalid config accepted")
	}
}
