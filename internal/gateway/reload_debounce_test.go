package gateway_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
)

// runningVersion is the body of the "version" route of a versionConfig.
func runningVersion(g *gateway.Gateway) int {
	for _, r := range g.RunningConfig().Routes {
		if r.Name == "version" && r.Respond != nil {
			v, _ := strconv.Atoi(r.Respond.Body)
			return v
		}
	}
	return -1
}

// TestWatchDebounceDoesNotStarve rewrites the config file every 50 ms for
// 3 s: the debounce (200 ms of quiet) never elapses, yet the running config
// must follow within about MaxDelay of the first write, again and again
// during the burst, and end on the last content written.
func TestWatchDebounceDoesNotStarve(t *testing.T) {
	t.Parallel()
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := freeAddr(t)
	file := filepath.Join(t.TempDir(), "portico.yaml")
	g := startFromFile(t, file, versionConfig(addr, backend.URL, 0))
	defer g.Shutdown(context.Background())

	type applied struct {
		at      time.Time
		version int
		err     error
	}
	results := make(chan applied, 1000)
	rl := &gateway.Reloader{Path: file, Runtime: g.Runtime, Logger: testutil.Logger(t),
		OnResult: func(err error) {
			select {
			case results <- applied{time.Now(), runningVersion(g), err}:
			default:
			}
		}}
	if rl.MaxDelay != 0 || gateway.DefaultMaxDelay != time.Second {
		t.Fatalf("MaxDelay %v, default %v; this test assumes 1s", rl.MaxDelay, gateway.DefaultMaxDelay)
	}
	watching := make(chan struct{})
	gateway.OnWatching(rl, func() { close(watching) })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	defer func() { cancel(); <-stopped }()
	go func() {
		defer close(stopped)
		if err := rl.Watch(ctx, 200*time.Millisecond); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-watching:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not start")
	}

	// The writer replaces the file atomically (temporary file, rename)
	// every 50 ms with a new valid version, so no reload reads half a file.
	type burst struct {
		first, end time.Time
		last       int
	}
	done := make(chan burst, 1)
	quit := make(chan struct{})
	writerDone := make(chan struct{})
	defer func() { close(quit); <-writerDone }()
	go func() {
		defer close(writerDone)
		var b burst
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for v := 1; ; v++ {
			tmp := file + ".tmp"
			if err := os.WriteFile(tmp, []byte(versionConfig(addr, backend.URL, v)), 0o644); err != nil {
				t.Error(err)
			}
			if err := os.Rename(tmp, file); err != nil {
				t.Error(err)
			}
			now := time.Now()
			if v == 1 {
				b.first = now
			}
			b.last = v
			if now.Sub(b.first) >= 3*time.Second {
				b.end = now
				done <- b
				return
			}
			select {
			case <-tick.C:
			case <-quit:
				return
			}
		}
	}()

	var got []applied
	var b burst
	timeout := time.After(15 * time.Second)
wait:
	for {
		select {
		case a := <-results:
			if a.err != nil {
				t.Fatalf("reload failed: %v", a.err)
			}
			got = append(got, a)
		case b = <-done:
			break wait
		case <-timeout:
			t.Fatal("the writer did not finish")
		}
	}
	var during []applied
	for _, a := range got {
		if !a.at.After(b.end) {
			during = append(during, a)
		}
	}
	if len(during) == 0 {
		t.Fatalf("no reload during a 3s burst of writes (debounce starved)")
	}
	if d := during[0].at.Sub(b.first); d > 1500*time.Millisecond {
		t.Errorf("first reload %v after the first write, want ≤ 1.5s", d)
	}
	if len(during) < 2 {
		t.Errorf("%d reloads during the 3s burst, want at least 2", len(during))
	}
	for i := 1; i < len(during); i++ {
		if during[i].version <= during[i-1].version {
			t.Errorf("reload %d applied version %d after %d", i, during[i].version, during[i-1].version)
		}
	}
	// After the burst the last content is applied, a debounce later.
	for runningVersion(g) != b.last {
		select {
		case a := <-results:
			if a.err != nil {
				t.Fatalf("reload failed: %v", a.err)
			}
			got = append(got, a)
		case <-time.After(5 * time.Second):
			t.Fatalf("running version %d, want the last written %d", runningVersion(g), b.last)
		}
	}
	for _, a := range got {
		t.Logf("+%v: version %d", a.at.Sub(b.first).Round(time.Millisecond), a.version)
	}
	t.Logf("burst: %d writes over %v", b.last, b.end.Sub(b.first).Round(time.Millisecond))
}
