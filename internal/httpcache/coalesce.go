package httpcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Errors of Group.Do for a waiter that did not get the leader's result. The
// caller then fetches on its own (or answers 504 for only-if-cached).
var (
	ErrTooManyWaiters = errors.New("httpcache: too many requests waiting for the same key")
	ErrWaitTimeout    = errors.New("httpcache: waited too long for the same key")
)

// Group coalesces concurrent misses for one key: the first caller (the
// leader) runs fn, later callers for the same key wait for its result.
// Unlike golang.org/x/sync/singleflight it is bounded: at most MaxWaiters
// callers wait per key (more get ErrTooManyWaiters at once), and a waiter
// waits at most WaitTimeout or until its context ends (ErrWaitTimeout or
// the context's error). A waiter that gives up does not affect the leader
// or the others. The table is split in 64 shards by key, so unrelated keys
// do not share a lock.
//
// A leader's error (or panic, re-raised in the leader and reported to the
// waiters as an error, as is a runtime.Goexit in fn) is handed to its waiters as it is; a waiter seeing
// the leader's context.Canceled should fetch on its own, since only the
// leader's client went away.
type Group[V any] struct {
	maxWaiters int
	timeout    time.Duration
	shards     [64]groupShard[V]
}

type groupShard[V any] struct {
	mu    sync.Mutex
	calls map[Key]*call[V]
}

type call[V any] struct {
	done    chan struct{}
	waiters int
	val     V
	err     error
}

// NewGroup builds a Group; maxWaiters and timeout must be positive.
func NewGroup[V any](maxWaiters int, timeout time.Duration) (*Group[V], error) {
	if maxWaiters <= 0 || timeout <= 0 {
		return nil, fmt.Errorf("httpcache: coalescing needs positive max waiters and wait timeout, got %d and %v", maxWaiters, timeout)
	}
	return &Group[V]{maxWaiters: maxWaiters, timeout: timeout}, nil
}

// Do runs fn for key once among concurrent callers. leader is true for the
// caller that ran fn. A waiter gets the leader's value and error, or
// ErrTooManyWaiters, ErrWaitTimeout or ctx.Err().
func (g *Group[V]) Do(ctx context.Context, key Key, fn func() (V, error)) (v V, leader bool, err error) {
	sh := &g.shards[key[0]&63]
	sh.mu.Lock()
	if c, ok := sh.calls[key]; ok {
		if c.waiters >= g.maxWaiters {
			sh.mu.Unlock()
			return v, false, ErrTooManyWaiters
		}
		c.waiters++
		sh.mu.Unlock()
		return g.wait(ctx, sh, c)
	}
	c := &call[V]{done: make(chan struct{})}
	if sh.calls == nil {
		sh.calls = make(map[Key]*call[V])
	}
	sh.calls[key] = c
	sh.mu.Unlock()

	finished := false
	defer func() {
		if finished {
			return
		}
		// fn panicked or called runtime.Goexit: release the waiters with
		// an error, then let the panic (or Goexit) go on.
		r := recover()
		c.err = fmt.Errorf("httpcache: coalesced fetch did not return: %v", r)
		g.finish(sh, key, c)
		if r != nil {
			panic(r)
		}
	}()
	c.val, c.err = fn()
	finished = true
	g.finish(sh, key, c)
	return c.val, true, c.err
}

func (g *Group[V]) finish(sh *groupShard[V], key Key, c *call[V]) {
	sh.mu.Lock()
	if sh.calls[key] == c {
		delete(sh.calls, key)
	}
	sh.mu.Unlock()
	close(c.done)
}

func (g *Group[V]) wait(ctx context.Context, sh *groupShard[V], c *call[V]) (v V, leader bool, err error) {
	t := time.NewTimer(g.timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return c.val, false, c.err
	case <-t.C:
		err = ErrWaitTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	sh.mu.Lock()
	c.waiters--
	sh.mu.Unlock()
	return v, false, err
}

// Waiting reports how many callers wait for key (tests, metrics).
func (g *Group[V]) Waiting(key Key) int {
	sh := &g.shards[key[0]&63]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c, ok := sh.calls[key]; ok {
		return c.waiters
	}
	return 0
}
