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

// debounceApplied is one reload result seen by TestWatchDebounceDoesNotStarve:
// when, the version then running, and the reload's error.
type debounceApplied struct {
	at      time.Time
	version int
	err     error
}

// debounceBurst is what debounceWrite wrote: the times of its first and
// last writes and the last version.
type debounceBurst struct {
	first, end time.Time
	last       int
}

// debounceWatch starts rl watching file changes with a 200 ms debounce and
// waits until it does. The returned function stops it.
func debounceWatch(t *testing.T, rl *gateway.Reloader) (stop func()) {
	t.Helper()
	watching := make(chan struct{})
	gateway.OnWatching(rl, func() { close(watching) })
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if err := rl.Watch(ctx, 200*time.Millisecond); err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-watching:
	case <-time.After(10 * time.Second):
		cancel()
		<-stopped
		t.Fatal("the watcher did not start")
	}
	return func() { cancel(); <-stopped }
}

// debounceWrite replaces file atomically (temporary file, rename) every
// 50 ms with a new valid versionConfig, so no reload reads half a file,
// for 3 s; then it sends what it wrote. The returned function stops it
// early.
func debounceWrite(t *testing.T, file, addr, backendURL string) (<-chan debounceBurst, func()) {
	done := make(chan debounceBurst, 1)
	quit := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		var b debounceBurst
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for v := 1; ; v++ {
			tmp := file + ".tmp"
			if err := os.WriteFile(tmp, []byte(versionConfig(addr, backendURL, v)), 0o644); err != nil {
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
	return done, func() { close(quit); <-writerDone }
}

// debounceCheckBurst checks the reloads of got applied during the burst b:
// at least two, the first within 1.5 s of the first write, in order.
func debounceCheckBurst(t *testing.T, got []debounceApplied, b debounceBurst) {
	t.Helper()
	var during []debounceApplied
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

	results := make(chan debounceApplied, 1000)
	rl := &gateway.Reloader{Path: file, Runtime: g.Runtime, Logger: testutil.Logger(t),
		OnResult: func(err error) {
			select {
			case results <- debounceApplied{time.Now(), runningVersion(g), err}:
			default:
			}
		}}
	if rl.MaxDelay != 0 || gateway.DefaultMaxDelay != time.Second {
		t.Fatalf("MaxDelay %v, default %v; this test assumes 1s", rl.MaxDelay, gateway.DefaultMaxDelay)
	}
	stopWatch := debounceWatch(t, rl)
	defer stopWatch()

	done, stopWrite := debounceWrite(t, file, addr, backend.URL)
	defer stopWrite()

	var got []debounceApplied
	var b debounceBurst
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
	debounceCheckBurst(t, got, b)
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
