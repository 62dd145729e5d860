package httpcache

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil/wait"
)

func TestNewGroupValidates(t *testing.T) {
	if _, err := NewGroup[int](0, time.Second); err == nil {
		t.Fatal("zero waiters accepted")
	}
	if _, err := NewGroup[int](1, 0); err == nil {
		t.Fatal("zero timeout accepted")
	}
}

func TestGroupCoalesces(t *testing.T) {
	g, _ := NewGroup[string](10, time.Minute)
	k := keyOf("k")
	release := make(chan struct{})
	var runs atomic.Int32
	fn := func() (string, error) { runs.Add(1); <-release; return "v", nil }

	leaderDone := make(chan struct{})
	go func() {
		defer close(leaderDone)
		v, leader, err := g.Do(context.Background(), k, fn)
		if v != "v" || !leader || err != nil {
			t.Errorf("leader got %q %v %v", v, leader, err)
		}
	}()
	wait.For(t, 5*time.Second, "leader to start", func() bool { return runs.Load() == 1 })
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, leader, err := g.Do(context.Background(), k, fn)
			if v != "v" || leader || err != nil {
				t.Errorf("waiter got %q %v %v", v, leader, err)
			}
		}()
	}
	wait.For(t, 5*time.Second, "5 waiters", func() bool { return g.Waiting(k) == 5 })
	close(release)
	wg.Wait()
	<-leaderDone
	if runs.Load() != 1 {
		t.Fatalf("fn ran %d times", runs.Load())
	}
	// The key is free again: the next call leads.
	if _, leader, _ := g.Do(context.Background(), k, func() (string, error) { return "w", nil }); !leader {
		t.Fatal("key not released")
	}
}

func TestGroupBounds(t *testing.T) {
	g, _ := NewGroup[int](2, 50*time.Millisecond)
	k := keyOf("k")
	release := make(chan struct{})
	started := make(chan struct{})
	go func() {
		_, _, _ = g.Do(context.Background(), k, func() (int, error) { close(started); <-release; return 1, nil })
	}()
	<-started
	defer close(release)

	// Two waiters time out; while they wait, a third is refused at once.
	errs := make(chan error, 2)
	for range 2 {
		go func() { _, _, err := g.Do(context.Background(), k, nil); errs <- err }()
	}
	wait.For(t, 5*time.Second, "2 waiters", func() bool { return g.Waiting(k) == 2 })
	if _, _, err := g.Do(context.Background(), k, nil); !errors.Is(err, ErrTooManyWaiters) {
		t.Fatalf("third waiter: %v", err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrWaitTimeout) {
			t.Fatalf("waiter: %v", err)
		}
	}
	if g.Waiting(k) != 0 {
		t.Fatalf("waiters left: %d", g.Waiting(k))
	}
	// A waiter whose context ends gets the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := g.Do(ctx, k, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
}

func TestGroupErrorsAndPanics(t *testing.T) {
	g, _ := NewGroup[int](4, time.Minute)
	k := keyOf("k")
	boom := errors.New("boom")
	if _, leader, err := g.Do(context.Background(), k, func() (int, error) { return 0, boom }); !leader || !errors.Is(err, boom) {
		t.Fatalf("error: %v", err)
	}
	release := make(chan struct{})
	started := make(chan struct{})
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		_, _, _ = g.Do(context.Background(), k, func() (int, error) { close(started); <-release; panic("bad") })
	}()
	<-started
	res := make(chan error, 1)
	go func() { _, _, err := g.Do(context.Background(), k, nil); res <- err }()
	wait.For(t, 5*time.Second, "waiter", func() bool { return g.Waiting(k) == 1 })
	close(release)
	if err := <-res; err == nil {
		t.Fatal("waiter of a panicking leader got no error")
	}
	if p := <-panicked; p == nil {
		t.Fatal("leader's panic swallowed")
	}
	if _, leader, _ := g.Do(context.Background(), k, func() (int, error) { return 1, nil }); !leader {
		t.Fatal("key not released after panic")
	}
	// runtime.Goexit in fn (t.FailNow in a test) releases the key too.
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_, _, _ = g.Do(context.Background(), k, func() (int, error) { runtime.Goexit(); return 0, nil })
	}()
	<-exited
	if _, leader, _ := g.Do(context.Background(), k, func() (int, error) { return 1, nil }); !leader {
		t.Fatal("key not released after Goexit")
	}
}
