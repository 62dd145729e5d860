package rediscache

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// startCluster starts a Redis Cluster of three primaries on loopback and
// returns their addresses once the cluster is up.
func startCluster(t *testing.T) []string {
	t.Helper()
	var addrs []string
	for range 3 {
		addrs = append(addrs, testredis.StartWith(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf").Addr)
	}
	ctx := context.Background()
	slots := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	for i, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		defer c.Close()
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", slots[i][0], slots[i][1]).Err(); err != nil {
			t.Fatalf("ADDSLOTSRANGE on %s: %v", a, err)
		}
		if i > 0 {
			host, port, _ := net.SplitHostPort(addrs[0])
			if err := c.Do(ctx, "CLUSTER", "MEET", host, port).Err(); err != nil {
				t.Fatalf("MEET: %v", err)
			}
		}
	}
	wait.For(t, 20*time.Second, "the cluster to be up", func() bool {
		for _, a := range addrs {
			c := redis.NewClient(&redis.Options{Addr: a})
			info, err := c.ClusterInfo(ctx).Result()
			c.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return false
			}
		}
		return true
	})
	return addrs
}

// TestCluster runs the store on a three-node Redis Cluster: entries,
// URL and tag indexes land in different slots (and nodes), so Set, Get,
// Delete and every purge kind work through pipelines of one-key commands,
// and events reach a front subscribed through another node.
func TestCluster(t *testing.T) {
	addrs := startCluster(t)
	open := func() *Store {
		cl, err := redisclient.New(&redisclient.Config{Cluster: addrs})
		if err != nil {
			t.Fatal(err)
		}
		f, err := httpcache.NewMemoryStore(httpcache.MemoryOptions{MaxBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Options{Client: cl, Namespace: "cl", Timeout: time.Second, Front: f, FrontMaxTTL: time.Minute,
			Release: func() { _ = cl.Close() }, OnError: func(err error) { t.Errorf("redis error: %v", err) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(), open()
	names := []string{"v1/a", "v1/b", "v2/a", "v2/b", "x/1", "x/2", "x/3", "x/4"}
	fill := func() {
		for _, n := range names {
			if err := a.Set(bg, entry(n, "tag-"+n[:2])); err != nil {
				t.Fatalf("set %s: %v", n, err)
			}
			if e, err := b.Get(bg, keyOf(n)); e == nil || err != nil {
				t.Fatalf("get %s on b: %v, %v", n, e, err)
			}
		}
	}
	for _, c := range []struct {
		p    httpcache.Purge
		n    int
		gone string
	}{
		{httpcache.Purge{Tag: "tag-v1"}, 2, "v1/a"},
		{httpcache.Purge{URL: "a.example/v2/b"}, 1, "v2/b"},
		{httpcache.Purge{Prefix: "a.example/x/"}, 4, "x/3"},
		{httpcache.Purge{All: true}, len(names), "v2/a"},
	} {
		fill()
		n, err := a.Purge(bg, c.p)
		if err != nil || n != c.n {
			t.Fatalf("purge %+v: %d, %v; want %d", c.p, n, err, c.n)
		}
		wait.For(t, 5*time.Second, fmt.Sprintf("b's front to drop %s after %+v", c.gone, c.p), func() bool {
			e, _ := b.front.Get(bg, keyOf(c.gone))
			return e == nil
		})
		if e, _ := b.Get(bg, keyOf(c.gone)); e != nil {
			t.Fatalf("%s still stored after %+v", c.gone, c.p)
		}
	}
	fill()
	if err := a.Delete(bg, keyOf("x/1")); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "b's front to drop a deleted entry", func() bool {
		e, _ := b.front.Get(bg, keyOf("x/1"))
		return e == nil
	})
}
