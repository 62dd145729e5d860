package hmacauth

import (
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// replayKey identifies one accepted signature of one credential: SHA-256
// over the key ID and the decoded signature.
func replayKey(keyID string, signature []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(keyID))
	h.Write([]byte{0})
	h.Write(signature)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// redisCheck records the signature in Redis with SET NX for ttl. It
// returns reasonReplay when another node (or an earlier request) already
// recorded it, and reasonUnavailable with 503 when Redis cannot answer and
// on_redis_error is fail_closed.
func (p *HMACAuth) redisCheck(ctx context.Context, key [sha256.Size]byte, ttl time.Duration) (string, int) {
	if ttl < time.Second {
		ttl = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, p.redisTTO)
	defer cancel()
	var b [len("hmac_replay:") + 2*sha256.Size]byte
	n := copy(b[:], "hmac_replay:")
	hex.Encode(b[n:], key[:])
	fresh, err := p.client.SetNX(ctx, p.client.Prefix+string(b[:]), 1, ttl).Result()
	if err != nil {
		p.warn.Warn("redis", "hmac_auth replay check failed", err, slog.String("plugin", Name), slog.String("on_redis_error", p.OnRedisError))
		if p.OnRedisError == "local" {
			return "", 0
		}
		return reasonUnavailable, http.StatusServiceUnavailable
	}
	if !fresh {
		return reasonReplay, 0
	}
	return "", 0
}

// replayShards spreads the replay cache over independently locked maps.
const replayShards = 64

// replayCache remembers accepted (key ID, signature) pairs, by their
// replayKey, until they expire. Each shard holds at most its share of the
// configured size; when a shard is full, expired entries are dropped and
// then the entries that expire soonest (the oldest dates) are evicted
// first. One cache serves every instance (see Provision); it grows to the
// largest size and the widest clock-skew window any of them configures.
//
// It is not an LRU (golang-lru): an entry's life is its signed date plus
// the skew window, not a fixed time from insertion, and evicting an entry
// whose window is still open lets that signature be replayed. Insertion or
// use order would evict a pair stored early but dated late while pairs
// whose window closes sooner stay; the expiry heap evicts the pairs closest
// to expiring, which keeps the replay window opened by a full cache as
// small as it can be.
type replayCache struct {
	seed   maphash.Seed
	max    atomic.Int64 // per shard
	skew   atomic.Int64 // widest clock skew, nanoseconds
	shards [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]int64 // expiry, Unix nanoseconds
	order   expiryHeap
}

func newReplayCache(size int) *replayCache {
	c := &replayCache{seed: maphash.MakeSeed()}
	c.grow(size)
	for i := range c.shards {
		c.shards[i].entries = map[[sha256.Size]byte]int64{}
	}
	return c
}

// Close lets the cache live in the shared pool; it holds nothing to free.
func (c *replayCache) Close() error { return nil }

// grow raises the bound to at least size entries.
func (c *replayCache) grow(size int) {
	per := int64(max(1, (size+replayShards-1)/replayShards))
	for {
		cur := c.max.Load()
		if per <= cur || c.max.CompareAndSwap(cur, per) {
			return
		}
	}
}

// widen raises the remembered window to at least skew.
func (c *replayCache) widen(skew time.Duration) {
	for {
		cur := c.skew.Load()
		if int64(skew) <= cur || c.skew.CompareAndSwap(cur, int64(skew)) {
			return
		}
	}
}

// window is the widest clock skew of the instances sharing the cache.
func (c *replayCache) window() time.Duration { return time.Duration(c.skew.Load()) }

// add records the pair until expires and reports whether it was new (not
// seen before, or seen but expired).
func (c *replayCache) add(keyID string, signature []byte, expires, now time.Time) bool {
	return c.addKey(replayKey(keyID, signature), expires, now)
}

// addKey is add for a precomputed replayKey.
func (c *replayCache) addKey(k [sha256.Size]byte, expires, now time.Time) bool {
	s := &c.shards[maphash.Comparable(c.seed, k)%replayShards]
	t, exp := now.UnixNano(), expires.UnixNano()
	limit := int(c.max.Load())
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[k]; ok && e >= t {
		return false
	}
	for len(s.order) > 0 && (s.order[0].exp < t || len(s.entries) >= limit) {
		it := heap.Pop(&s.order).(expiryItem)
		if e, ok := s.entries[it.key]; ok && e == it.exp {
			delete(s.entries, it.key)
		}
	}
	s.entries[k] = exp
	heap.Push(&s.order, expiryItem{key: k, exp: exp})
	return true
}

// len is the number of remembered pairs.
func (c *replayCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].entries)
		c.shards[i].mu.Unlock()
	}
	return n
}

type expiryItem struct {
	key [sha256.Size]byte
	exp int64
}

// expiryHeap is a min-heap of entries by expiry.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
