// Package usage provides Pool, the one reference-counted registry of
// long-lived values that outlive a config snapshot: upstream transports and
// target state, Redis clients, remote key sets, concurrency limiters and
// other values plugins share (Caddy's UsagePool idea, typed).
//
// A Pool belongs to whoever owns the values' lifetime — the gateway's
// Runtime — never to a package variable, so two gateways in one process
// share nothing. Because a reload builds the new snapshot (acquiring)
// before it cleans up the old one (releasing), a value both use survives
// the reload with its state.
//
// Only construction and clean-up touch a Pool; the request path keeps the
// value it acquired and never locks the pool.
package usage

import (
	"fmt"
	"io"
	"sync"
)

// Pool holds values of type V by key, counting their users.
//
// Contract:
//   - Acquire returns the value held under key, creating it with create
//     when nobody holds one. create runs without the pool's lock: it may
//     block (dial, fetch) and may acquire other keys of the same pool, but
//     never the key it is creating (that deadlocks). Concurrent Acquires of
//     a key under construction wait for it and get its value or its error;
//     other keys do not wait.
//   - Every successful Acquire returns a release func that must be called
//     once; further calls do nothing. The last release removes the value
//     and closes it, outside the lock: with the Pool's close func, else
//     with its Close method when V is an io.Closer, else nothing.
//   - A failed create leaves nothing behind, so a later Acquire tries anew.
//
// The zero Pool is ready to use and closes io.Closer values.
type Pool[V any] struct {
	mu    sync.Mutex
	m     map[string]*entry[V]
	close func(V) error
}

type entry[V any] struct {
	v    V
	err  error
	refs int
	// ready is closed once create has returned.
	ready chan struct{}
}

// New returns an empty pool whose last release of a value calls close (nil:
// io.Closer values are closed, others dropped).
func New[V any](close func(V) error) *Pool[V] {
	return &Pool[V]{close: close}
}

// Acquire returns the value under key and its release func; see Pool.
func (p *Pool[V]) Acquire(key string, create func() (V, error)) (V, func(), error) {
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]*entry[V]{}
	}
	e, ok := p.m[key]
	if ok {
		e.refs++
		p.mu.Unlock()
		<-e.ready
		if e.err != nil {
			var zero V
			return zero, nil, e.err
		}
		return e.v, p.releaser(key, e), nil
	}
	e = &entry[V]{refs: 1, ready: make(chan struct{})}
	p.m[key] = e
	p.mu.Unlock()
	p.build(key, e, create)
	if e.err != nil {
		var zero V
		return zero, nil, e.err
	}
	return e.v, p.releaser(key, e), nil
}

// build runs create for e and publishes the outcome. A failure (an error
// or a panic, which is re-raised) removes e so that later Acquires retry.
func (p *Pool[V]) build(key string, e *entry[V], create func() (V, error)) {
	ok := false
	defer func() {
		if !ok {
			if r := recover(); r != nil {
				e.err = fmt.Errorf("usage: creating %q panicked: %v", key, r)
				defer panic(r)
			}
			p.mu.Lock()
			if p.m[key] == e {
				delete(p.m, key)
			}
			p.mu.Unlock()
		}
		close(e.ready)
	}()
	e.v, e.err = create()
	ok = e.err == nil
}

// releaser returns the idempotent release func of one Acquire of e.
func (p *Pool[V]) releaser(key string, e *entry[V]) func() {
	var once sync.Once
	return func() { once.Do(func() { p.release(key, e) }) }
}

func (p *Pool[V]) release(key string, e *entry[V]) {
	p.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && p.m[key] == e {
		delete(p.m, key)
	}
	p.mu.Unlock()
	if last {
		_ = p.closeValue(e.v)
	}
}

func (p *Pool[V]) closeValue(v V) error {
	if p.close != nil {
		return p.close(v)
	}
	if c, ok := any(v).(io.Closer); ok && c != nil {
		return c.Close()
	}
	return nil
}

// Len is the number of values held (including one under construction).
func (p *Pool[V]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
