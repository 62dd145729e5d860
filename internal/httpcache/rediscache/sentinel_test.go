package rediscache

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// startSentinel starts a Redis Sentinel on loopback that monitors the
// master at masterAddr as name, and returns its address once it knows the
// master.
func startSentinel(t *testing.T, masterAddr, name string) string {
	t.Helper()
	bin := testredis.RequireBinary(t, "redis-server", "redis-server")
	host, port := "127.0.0.1", 0
	if _, err := fmt.Sscanf(masterAddr, "127.0.0.1:%d", &port); err != nil {
		t.Fatalf("master address %q: %v", masterAddr, err)
	}
	for range 20 {
		sp := 20000 + int(time.Now().UnixNano()%20000)
		if !portFree(sp) {
			continue
		}
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %d 1\n", sp, dir, name, host, port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, conf, "--sentinel")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := fmt.Sprintf("127.0.0.1:%d", sp)
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr})
		defer sc.Close()
		ok := false
		wait.Within(10*time.Second, func() bool {
			a, err := sc.GetMasterAddrByName(context.Background(), name).Result()
			ok = err == nil && len(a) == 2 && a[1] == fmt.Sprint(port)
			return ok
		})
		if ok {
			return addr
		}
	}
	t.Fatal("no sentinel started")
	return ""
}

// TestSentinel runs the store through a Sentinel-managed deployment: the
// client finds the master through the sentinel, and entries, purges and
// deletes work as on a single server.
func TestSentinel(t *testing.T) {
	rd := testredis.Start(t)
	sentinel := startSentinel(t, rd.Addr, "portico-cache")
	cl, err := redisclient.New(&redisclient.Config{Sentinel: &redisclient.Sentinel{MasterName: "portico-cache", Addrs: []string{sentinel}},
		Timeout: config.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Client: cl, Namespace: "sn", Timeout: time.Second, Release: func() { _ = cl.Close() },
		OnError: func(err error) { t.Errorf("redis error: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, n := range []string{"v1/a", "v1/b", "v2/a"} {
		if err := s.Set(bg, entry(n, "tag-"+n[:2])); err != nil {
			t.Fatalf("set %s: %v", n, err)
		}
	}
	if e, err := s.Get(bg, keyOf("v1/a")); err != nil || e == nil || string(e.Body) != "body of v1/a" {
		t.Fatalf("get through the sentinel: %v, %v", e, err)
	}
	// The entry really is on the master the sentinel named.
	direct := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer direct.Close()
	if n, err := direct.Exists(bg, cl.Prefix+"cache:sn:e:"+keyOf("v2/a").String()).Result(); err != nil || n != 1 {
		t.Fatalf("entry on the master: %d, %v", n, err)
	}
	if n, err := s.Purge(bg, httpcache.Purge{Tag: "tag-v1"}); err != nil || n != 2 {
		t.Fatalf("purge by tag: %d, %v", n, err)
	}
	if err := s.Delete(bg, keyOf("v2/a")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"v1/a", "v1/b", "v2/a"} {
		if e, _ := s.Get(bg, keyOf(n)); e != nil {
			t.Fatalf("%s still stored", n)
		}
	}
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
