// Package ttlcache is the size-bounded cache of expiring entries behind the
// auth plugins' caches (basic_auth's verified and failed checks,
// oauth2_introspection's results). It is a hashicorp/golang-lru simplelru
// list under a read-write lock, with each entry's expiry kept beside its
// value and checked against the caller's clock.
//
// golang-lru's expirable.LRU is not used: it starts a goroutine per cache
// that never exits (v2 has no Close), so every config reload would leak one
// per plugin instance together with the cache and its entries; it has one
// TTL per cache where introspection results expire at the token's exp; it
// reads the wall clock, not the plugin's; and its Get takes an exclusive
// lock.
package ttlcache

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Cache holds at most its size of entries. A lookup does not reorder
// entries, so when the cache is full the entry added longest ago is
// evicted; entries already expired at that point go first.
type Cache[K comparable, V any] struct {
	mu  sync.RWMutex
	lru *simplelru.LRU[K, entry[V]]
}

type entry[V any] struct {
	v   V
	exp int64 // Unix nanoseconds
}

// New returns a cache of at most size entries; size must be positive.
func New[K comparable, V any](size int) (*Cache[K, V], error) {
	l, err := simplelru.NewLRU[K, entry[V]](size, nil)
	if err != nil {
		return nil, err
	}
	return &Cache[K, V]{lru: l}, nil
}

// Get returns the value of k if it is present and not expired at now.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.lru.Peek(k)
	c.mu.RUnlock()
	if !ok || now.UnixNano() >= e.exp {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Add stores v under k until expires, replacing an earlier value. Expired
// entries at the old end of the list are dropped first, then, if the cache
// is still full, the entry added longest ago.
func (c *Cache[K, V]) Add(k K, v V, expires, now time.Time) {
	t := now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		_, old, ok := c.lru.GetOldest()
		if !ok || old.exp > t {
			break
		}
		c.lru.RemoveOldest()
	}
	c.lru.Add(k, entry[V]{v: v, exp: expires.UnixNano()})
}

// Len is the number of entries, expired ones not yet dropped included.
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lru.Len()
}

// Keys returns the keys of every entry, oldest first.
func (c *Cache[K, V]) Keys() []K {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.lru.Keys()
}
