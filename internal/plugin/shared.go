package plugin

import (
	"io"
	"sync"
)

// SharedPool holds long-lived values that plugin instances share across
// routes and across reloads, reference-counted by key (Caddy's UsagePool
// idea): the first Shared call for a key creates the value, later calls
// get the same value, and the value is closed when the last holder
// releases it. Because a reload builds the new snapshot (acquiring) before
// the old one is cleaned up (releasing), a value in use by both lives on.
//
// The gateway owns one pool and hands it to plugins through
// Context.Shared; plugins never keep package-global registries.
type SharedPool struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

type sharedEntry struct {
	v    io.Closer
	refs int
}

// NewSharedPool returns an empty pool.
func NewSharedPool() *SharedPool { return &SharedPool{m: map[string]*sharedEntry{}} }

// Shared returns the value held under key, creating it with create when
// nobody holds one. Every successful call must be matched by one call of
// release (idempotent), normally from the plugin's Cleanup; the last
// release closes the value. create runs with the pool locked, so it must
// be quick (allocate, do not dial). Keys are namespaced by convention as
// "<plugin name>/<what>".
func (p *SharedPool) Shared(key string, create func() (io.Closer, error)) (value any, release func(), err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.m[key]
	if !ok {
		v, err := create()
		if err != nil {
			return nil, nil, err
		}
		e = &sharedEntry{v: v}
		p.m[key] = e
	}
	e.refs++
	var once sync.Once
	return e.v, func() { once.Do(func() { p.release(key, e) }) }, nil
}

func (p *SharedPool) release(key string, e *sharedEntry) {
	p.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last && p.m[key] == e {
		delete(p.m, key)
	}
	p.mu.Unlock()
	if last {
		_ = e.v.Close()
	}
}

// Len is the number of values held.
func (p *SharedPool) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
