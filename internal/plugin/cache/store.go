package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/httpcache/rediscache"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/redisclient"
)

// MetricRedisErrors counts failed Redis calls (and corrupt values read) of
// the redis store; each is a miss or a skipped store, never an error for
// the client.
const MetricRedisErrors = "portico_cache_redis_errors_total"

// Bounds of the store settings.
const (
	// maxRedisEntry bounds max_entry with store: redis.
	maxRedisEntry = 64 << 20
	// maxFrontTTL bounds memory_front.max_ttl.
	maxFrontTTL = time.Hour
)

// MemoryFront is a per-node memory store in front of the Redis store.
type MemoryFront struct {
	// MaxBytes bounds the memory the front takes on each node, e.g.
	// 16MiB. Default 16MiB.
	MaxBytes config.Size `yaml:"max_bytes"`
	// MaxTTL bounds how long the front keeps an entry, e.g. 10s (default
	// 10s, at most 1h). Deletes and purges reach every node's front at
	// once through Redis pub/sub; max_ttl bounds how long a front may
	// still serve an entry another node removed when that message was
	// lost (a broken connection to Redis).
	MaxTTL config.Duration `yaml:"max_ttl"`
}

// cacheStore is what the plugin needs of its store: the httpcache.Store
// contract plus counters for the metrics (for the Redis store, those of
// its memory front, or zeros without one).
type cacheStore interface {
	httpcache.Store
	Stats() httpcache.MemoryStats
	CleanUp()
}

// sharedStore lets a route's store outlive a reload: the instances of the
// old and the new config share it when the route and every setting that
// shapes stored entries or keys are unchanged.
type sharedStore struct {
	cacheStore
	close func()
}

// Close stops the store's background work and releases what it holds.
func (s *sharedStore) Close() error {
	s.close()
	return nil
}

// storeDefaults fills the store-specific defaults before check.
func (c *Cache) storeDefaults() {
	if c.Store == "redis" {
		if c.MaxEntry == 0 {
			c.MaxEntry = 1 << 20
		}
		if f := c.MemoryFront; f != nil {
			if f.MaxBytes == 0 {
				f.MaxBytes = 16 << 20
			}
			if f.MaxTTL == 0 {
				f.MaxTTL = config.Duration(10 * time.Second)
			}
		}
		return
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 64 << 20
	}
	if c.MaxEntry == 0 {
		c.MaxEntry = min(1<<20, c.MaxBytes)
	}
}

// checkStore checks store, max_bytes, max_entry, redis and memory_front.
func (c *Cache) checkStore() []error {
	var errs []error
	switch c.Store {
	case "", "memory":
		if c.Redis != nil {
			errs = append(errs, errors.New("redis is set but store is memory (set store: redis)"))
		}
		if c.MemoryFront != nil {
			errs = append(errs, errors.New("memory_front is only for store: redis"))
		}
		if c.MaxBytes < 4096 {
			errs = append(errs, fmt.Errorf("max_bytes must be at least 4KiB, e.g. 64MiB; got %d", c.MaxBytes))
		}
		if c.MaxEntry <= 0 || c.MaxEntry > c.MaxBytes {
			errs = append(errs, fmt.Errorf("max_entry must be between 1 and max_bytes (%d), e.g. 1MiB; got %d", c.MaxBytes, c.MaxEntry))
		}
	case "redis":
		if c.Redis == nil {
			errs = append(errs, errors.New("store redis needs redis: {addr: ...} (or cluster or sentinel)"))
		} else if err := c.Redis.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.MaxBytes != 0 {
			errs = append(errs, errors.New("max_bytes bounds the memory store: with store redis, Redis's maxmemory bounds the cache (and memory_front.max_bytes the front)"))
		}
		if c.MaxEntry <= 0 || c.MaxEntry > maxRedisEntry {
			errs = append(errs, fmt.Errorf("max_entry must be between 1 and 64MiB with store redis, e.g. 1MiB; got %d", c.MaxEntry))
		}
		if f := c.MemoryFront; f != nil {
			if f.MaxBytes < 4096 {
				errs = append(errs, fmt.Errorf("memory_front.max_bytes must be at least 4KiB, e.g. 16MiB; got %d", f.MaxBytes))
			}
			if d := f.MaxTTL.D(); d <= 0 || d > maxFrontTTL {
				errs = append(errs, fmt.Errorf("memory_front.max_ttl must be between 1ns and %s, e.g. 10s; got %s", maxFrontTTL, d))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("store must be memory or redis, got %q", c.Store))
	}
	return errs
}

// openStore gets the route's store from the shared pool, building it when
// no instance holds it.
func (c *Cache) openStore(ctx plugin.Context) error {
	entryLimit := c.maxEntry + maxHeaderAllowance
	if c.Store != "redis" {
		opts := httpcache.MemoryOptions{MaxBytes: int64(c.MaxBytes), MaxEntryBytes: min(entryLimit, int64(c.MaxBytes))}
		key := fmt.Sprintf("cache/memory/%d/%s", c.MaxBytes, c.entrySettings(ctx.Route()))
		shared, release, err := plugin.SharedAs(ctx, key, func() (*sharedStore, error) {
			s, err := httpcache.NewMemoryStore(opts)
			if err != nil {
				return nil, err
			}
			return &sharedStore{cacheStore: s, close: s.Close}, nil
		})
		if err != nil {
			return err
		}
		c.store, c.release = shared.cacheStore, release
		return nil
	}
	ns := c.namespace(ctx.Route())
	shared, release, err := plugin.SharedAs(ctx, c.redisStoreKey(ns), func() (*sharedStore, error) {
		return c.newRedisStore(ctx, ns, entryLimit)
	})
	if err != nil {
		return err
	}
	c.store, c.release = shared.cacheStore, release
	return nil
}

// newRedisStore builds the Redis store (and its memory front) on the
// gateway's shared Redis client for the config.
func (c *Cache) newRedisStore(ctx plugin.Context, ns string, entryLimit int64) (*sharedStore, error) {
	var front *httpcache.MemoryStore
	if f := c.MemoryFront; f != nil {
		var err error
		front, err = httpcache.NewMemoryStore(httpcache.MemoryOptions{MaxBytes: int64(f.MaxBytes),
			MaxEntryBytes: min(entryLimit, int64(f.MaxBytes))})
		if err != nil {
			return nil, fmt.Errorf("memory_front: %w", err)
		}
	}
	cl, release, err := redisclient.Shared(ctx.Shared, c.Redis)
	if err != nil {
		if front != nil {
			front.Close()
		}
		return nil, err
	}
	errs := ctx.Stats().Counter(MetricRedisErrors, fmt.Sprintf("route=%q", ctx.Route()))
	warner := observe.NewDependencyWarner(ctx.Logger(), 0)
	s, err := rediscache.New(rediscache.Options{Client: cl, Namespace: ns, Timeout: c.Redis.Timeout.D(),
		MaxEntryBytes: entryLimit, Front: front, FrontMaxTTL: c.frontTTL(), Release: release,
		OnError: func(err error) {
			errs.Inc()
			warner.Warn("redis", "cache: redis store failed; serving from the upstream", err)
		}})
	if err != nil {
		release()
		if front != nil {
			front.Close()
		}
		return nil, err
	}
	return &sharedStore{cacheStore: s, close: func() { _ = s.Close() }}, nil
}

func (c *Cache) frontTTL() time.Duration {
	if c.MemoryFront == nil {
		return 0
	}
	return c.MemoryFront.MaxTTL.D()
}

// entrySettings are the route and the settings that decide what entries
// and keys look like: a store holds entries of one such set.
func (c *Cache) entrySettings(route string) string {
	return fmt.Sprintf("%q/%d/%d/%q/%q/%q/%t/%t/%t/%t/%d/%q/%d/%q", route, c.MaxEntry, c.TTL, c.TTLMode,
		c.Key.IgnoreQuery, c.Key.Extra, c.AllowAuthorized, c.AllowSetCookie, c.ShareBetweenConsumers, c.Heuristic, c.HeuristicMax,
		c.policy.Targeted, c.StaleIfError, c.Tags.names)
}

// namespace names the route's entries in Redis: a short hash of the
// settings that shape them (but not max_entry, which only decides what is
// stored), so every node with the same route and cache settings shares
// them and a settings change starts afresh.
func (c *Cache) namespace(route string) string {
	s := fmt.Sprintf("%q/%d/%q/%q/%q/%t/%t/%t/%t/%d/%q/%d/%q", route, c.TTL, c.TTLMode,
		c.Key.IgnoreQuery, c.Key.Extra, c.AllowAuthorized, c.AllowSetCookie, c.ShareBetweenConsumers, c.Heuristic, c.HeuristicMax,
		c.policy.Targeted, c.StaleIfError, c.Tags.names)
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}

// redisStoreKey names a Redis store in the shared pool: the namespace,
// the Redis connection settings (hashed: they hold the password), the key
// prefix, max_entry and the memory front.
func (c *Cache) redisStoreKey(ns string) string {
	r := c.Redis
	conn := fmt.Sprintf("%q|%q|%q|%q|%d|%t|%d|%d|%q", r.Addr, r.Cluster, r.Username, r.Password, r.DB, r.TLS,
		r.Timeout, r.PoolSize, r.KeyPrefix)
	if r.Sentinel != nil {
		conn += fmt.Sprintf("|%q|%q|%q", r.Sentinel.MasterName, r.Sentinel.Addrs, r.Sentinel.Password)
	}
	h := sha256.Sum256([]byte(conn))
	front := "none"
	if f := c.MemoryFront; f != nil {
		front = fmt.Sprintf("%d/%d", f.MaxBytes, f.MaxTTL)
	}
	return fmt.Sprintf("cache/redis/%s/%s/%d/%s", ns, hex.EncodeToString(h[:16]), c.MaxEntry, front)
}
