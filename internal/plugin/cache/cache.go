// Package cache is the `cache` plugin: a shared HTTP cache (RFC 9111, with
// the stale-while-revalidate and stale-if-error extensions of RFC 5861) in
// front of a route's upstream. The decisions, the key, the store and the
// request coalescing are internal/httpcache's; this package wires them into
// a route's chain.
//
// It runs in Phase, after every other phase: authentication,
// authorisation, rate limits, fault injection and request validation run
// first, so a client they refuse never gets a cached answer and cached
// answers still count against limits; and the transformation phase wraps
// the cache, so the stored response is the upstream's and response
// transformations (headers with per-request values such as
// ${request_id}, body_transform) run on every answer, cached or not,
// instead of being stored and replayed to other clients. The key is built
// from the request as transformations left it, as the upstream sees it.
package cache

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/reqkey"
)

// Name is the plugin's config name.
const Name = "cache"

// Phase places the cache inside the transformation phase (400), next to
// the route's action.
const Phase = plugin.PhaseTransform + 50

// Metric names; every counter is labelled with the route.
const (
	MetricLookups     = "portico_cache_lookups_total"     // result="hit|miss|stale|revalidated|coalesced|bypass"
	MetricStoredBytes = "portico_cache_stored_bytes"      // bytes held by the store now (Entry.Size)
	MetricEvictions   = "portico_cache_evictions_total"   // entries evicted to stay within max_bytes
	MetricStores      = "portico_cache_stores_total"      // responses stored
	MetricInvalidated = "portico_cache_invalidated_total" // stored responses removed by unsafe requests
)

// Bounds on the config.
const (
	MaxWaitersLimit = 100000
	MaxWait         = time.Minute
	// maxBackground bounds the background revalidations in flight per
	// plugin instance (one per key at most).
	maxBackground = 64
)

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: Phase, New: func() plugin.Plugin { return new(Cache) }})
}

// Cache stores GET and HEAD responses the upstream allows to be shared and
// answers later requests from the store: each route (and each route a
// global cache is on) has its own, kept across reloads that leave the
// route's cache settings unchanged. The memory store is each node's own;
// the redis store is shared by every node using the same Redis.
type Cache struct {
	// Store is where responses are kept: memory (the default: each
	// gateway node keeps its own, bounded by max_bytes) or redis (shared
	// by every node using the same Redis, see redis and memory_front).
	Store string `yaml:"store"`
	// Redis is the Redis deployment of store: redis (required with it,
	// refused otherwise), as rate_limit's: addr, cluster or sentinel,
	// timeout (default 100ms) bounding every call, key_prefix (default
	// "portico:"). A Redis failure or timeout is a miss, never an error;
	// Redis is then left alone for 100ms to 1s before one request tries it
	// again.
	Redis *redisclient.Config `yaml:"redis"`
	// MemoryFront puts a per-node memory store in front of Redis (store:
	// redis only): hits on it skip the round trip to Redis.
	MemoryFront *MemoryFront `yaml:"memory_front"`
	// MaxBytes bounds the memory the route's stored responses take
	// (body, header and bookkeeping), e.g. 64MiB; the least valuable
	// entries are evicted beyond it. Default 64MiB. Memory store only:
	// Redis's maxmemory bounds the redis store.
	MaxBytes config.Size `yaml:"max_bytes"`
	// MaxEntry is the largest response stored, e.g. 1MiB; larger ones are
	// streamed to the client and not kept. Default 1MiB, at most
	// max_bytes (64MiB with store redis).
	MaxEntry config.Size `yaml:"max_entry"`
	// TTL, when positive, bounds (ttl_mode cap) or replaces (ttl_mode
	// override) the freshness lifetime the upstream gives, e.g. 30s.
	TTL config.Duration `yaml:"ttl"`
	// TTLMode is cap (the default: the lifetime is the smaller of the
	// upstream's and ttl) or override (ttl is the lifetime of every
	// storable response, even one without freshness information, for
	// the statuses cacheable by default such as 200, 301 and 404; other
	// statuses need explicit freshness; no-store, private, Authorization
	// and Set-Cookie still prevent storing).
	TTLMode string `yaml:"ttl_mode"`
	// Key adds to the cache key (method, scheme, host, normalised path and
	// sorted query).
	Key Key `yaml:"key"`
	// AllowAuthorized stores responses to requests that carry
	// Authorization when the response says public, s-maxage or
	// must-revalidate. Off by default: such requests bypass the cache.
	AllowAuthorized bool `yaml:"allow_authorized"`
	// AllowSetCookie stores responses that carry Set-Cookie (the cookie is
	// then served to every client). Off by default.
	AllowSetCookie bool `yaml:"allow_set_cookie"`
	// Heuristic gives a response without explicit freshness (no max-age,
	// s-maxage or Expires) but with Last-Modified a lifetime of a tenth of
	// its age at the time it was stored (RFC 9111 §4.2.2), at most
	// heuristic_max. Off by default: such responses are stored and
	// revalidated on every use.
	Heuristic bool `yaml:"heuristic"`
	// HeuristicMax bounds a heuristic lifetime. Default 24h.
	HeuristicMax config.Duration `yaml:"heuristic_max"`
	// StaleIfError, when positive, lets a stored response that gives no
	// stale-if-error of its own be served this long past its freshness
	// when the upstream fails (unreachable, closes the connection, times
	// out, or answers 500, 502, 503 or 504), as RFC 5861's stale-if-error
	// would, e.g. 5m. A response with no-cache, must-revalidate,
	// proxy-revalidate or s-maxage is never served stale. Default 0: off.
	StaleIfError config.Duration `yaml:"stale_if_error"`
	// TargetedFields lists the targeted cache-control response fields
	// (RFC 9213) the cache obeys, in order of precedence: the first one a
	// response has with a valid value replaces Cache-Control and Expires
	// for the cache's decisions (clients still receive every field).
	// Default [CDN-Cache-Control]; [] obeys Cache-Control alone.
	TargetedFields []string `yaml:"targeted_fields"`
	// ShareBetweenConsumers lets consumers share stored responses. Off by
	// default: the authenticated consumer (when an auth plugin found one;
	// not an anonymous fallback) is part of the key, so one consumer's
	// answer is never served to another even when the upstream forgets
	// Cache-Control: private. Requests without a consumer share one copy.
	ShareBetweenConsumers bool `yaml:"share_between_consumers"`
	// StatusHeader names the response header that reports what the cache
	// did: HIT, MISS, STALE, REVALIDATED or BYPASS. Default X-Cache.
	StatusHeader string `yaml:"status_header"`
	// Coalesce bounds the requests that wait for one upstream fetch of the
	// same key.
	Coalesce Coalesce `yaml:"coalesce"`
	// Tags reads tags (surrogate keys) from upstream response headers
	// when a response is stored, for purging by tag.
	Tags Tags `yaml:"tags"`

	policy     httpcache.Policy
	keyOpts    httpcache.KeyOptions
	extra      reqkey.Key
	hasExtra   bool
	header     string
	store      cacheStore
	release    func()
	group      *httpcache.Group[*httpcache.Entry]
	rgroup     *httpcache.Group[revalResult]
	passes     *otter.Cache[httpcache.Key, struct{}] // keys whose last fetched response was not stored (pass.go)
	maxEntry   int64
	now        func() time.Time
	timeout    time.Duration
	background sync.Map // httpcache.Key → struct{}: revalidations in flight
	bgSlots    chan struct{}
	syncMu     sync.Mutex // TryLock only: one goroutine copies store stats at a time
	c          counters
	purged     purgeCounters
}

// Key is the cache key configuration.
type Key struct {
	// IgnoreQuery lists query parameters left out of the key, e.g.
	// [utm_source, utm_medium].
	IgnoreQuery []string `yaml:"ignore_query"`
	// Extra adds request-key parts (the grammar of rate_limit's key:
	// consumer, header:<Name>, cookie:<name>, query:<name>, claim:<name>…)
	// to the key, e.g. [header:X-Tenant]. A part without a value stands
	// for the client IP, so such requests are cached per client.
	Extra []string `yaml:"extra"`
}

// Coalesce bounds request coalescing: concurrent misses (and concurrent
// revalidations of a stale response) for one key make a single upstream
// request, the others wait for its response.
type Coalesce struct {
	// MaxWaiters is the most requests waiting per key (default 100); more
	// go upstream themselves.
	MaxWaiters int `yaml:"max_waiters"`
	// Wait is the longest a request waits (default 5s) before going
	// upstream itself.
	Wait config.Duration `yaml:"wait"`
}

type counters struct {
	hit, miss, stale, revalidated, coalesced, bypass *observe.Counter
	bytes, evictions, stores, invalidated            *observe.Counter
}

// Provision applies defaults, parses the key and builds the store and the
// coalescing group.
func (c *Cache) Provision(ctx plugin.Context) error {
	c.storeDefaults()
	if c.Coalesce.MaxWaiters == 0 {
		c.Coalesce.MaxWaiters = 100
	}
	if c.Coalesce.Wait == 0 {
		c.Coalesce.Wait = config.Duration(5 * time.Second)
	}
	c.header = "X-Cache"
	if c.StatusHeader != "" {
		c.header = textproto.CanonicalMIMEHeaderKey(c.StatusHeader)
	}
	if err := c.check(); err != nil {
		return err
	}
	if err := c.provisionTags(ctx); err != nil {
		return err
	}
	c.policy = httpcache.Policy{TTL: c.TTL.D(), AllowAuthorized: c.AllowAuthorized, AllowSetCookie: c.AllowSetCookie,
		Heuristic: c.Heuristic, HeuristicMax: c.HeuristicMax.D(), Targeted: httpcache.DefaultTargeted, StaleIfError: c.StaleIfError.D()}
	if c.TargetedFields != nil {
		c.policy.Targeted = make([]string, len(c.TargetedFields))
		for i, f := range c.TargetedFields {
			c.policy.Targeted[i] = textproto.CanonicalMIMEHeaderKey(f)
		}
	}
	if c.TTLMode == "override" {
		c.policy.Mode = httpcache.TTLReplace
	}
	c.keyOpts.IgnoreQuery = c.Key.IgnoreQuery
	if len(c.Key.Extra) > 0 {
		k, err := reqkey.Parse(c.Key.Extra)
		if err != nil {
			return fmt.Errorf("key.extra: %w", err)
		}
		c.extra, c.hasExtra = k, true
	}
	c.maxEntry = int64(c.MaxEntry)
	if err := c.openStore(ctx); err != nil {
		return err
	}
	var err error
	c.group, err = httpcache.NewGroup[*httpcache.Entry](c.Coalesce.MaxWaiters, c.Coalesce.Wait.D())
	if err != nil {
		return err
	}
	c.rgroup, err = httpcache.NewGroup[revalResult](c.Coalesce.MaxWaiters, c.Coalesce.Wait.D())
	if err != nil {
		return err
	}
	c.now = ctx.Clock()
	c.timeout = ctx.RouteTimeout()
	c.bgSlots = make(chan struct{}, maxBackground)
	if c.passes, err = newPassMarks(); err != nil {
		return err
	}
	c.resolveCounters(ctx.Stats(), ctx.Route())
	return nil
}

// maxHeaderAllowance is added to max_entry for the store's entry limit:
// max_entry bounds the body, the stored header and bookkeeping come on top.
const maxHeaderAllowance = 64 << 10

func (c *Cache) resolveCounters(s *observe.Stats, route string) {
	l := fmt.Sprintf("route=%q", route)
	r := func(res string) *observe.Counter { return s.Counter(MetricLookups, l+`,result="`+res+`"`) }
	c.c = counters{
		hit: r("hit"), miss: r("miss"), stale: r("stale"), revalidated: r("revalidated"),
		coalesced: r("coalesced"), bypass: r("bypass"),
		bytes: s.Counter(MetricStoredBytes, l), evictions: s.Counter(MetricEvictions, l),
		stores: s.Counter(MetricStores, l), invalidated: s.Counter(MetricInvalidated, l),
	}
}

// check validates the config before anything is built, so that Provision
// never builds a store from a bad one.
func (c *Cache) check() error {
	errs := c.checkStore()
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("ttl must not be negative, got %s", c.TTL.D()))
	}
	if c.StaleIfError < 0 {
		errs = append(errs, fmt.Errorf("stale_if_error must not be negative, got %s", c.StaleIfError.D()))
	}
	if c.HeuristicMax < 0 {
		errs = append(errs, fmt.Errorf("heuristic_max must not be negative, got %s", c.HeuristicMax.D()))
	}
	switch c.TTLMode {
	case "", "cap":
	case "override":
		if c.TTL <= 0 {
			errs = append(errs, errors.New("ttl_mode override needs a positive ttl, e.g. 30s"))
		}
	default:
		errs = append(errs, fmt.Errorf("ttl_mode must be cap or override, got %q", c.TTLMode))
	}
	if c.StatusHeader != "" && !httpx.ValidToken(c.StatusHeader) {
		errs = append(errs, fmt.Errorf("status_header %q is not a valid header name", c.StatusHeader))
	}
	for i, f := range c.TargetedFields {
		if !httpx.ValidToken(f) {
			errs = append(errs, fmt.Errorf("targeted_fields[%d] %q is not a valid header name", i, f))
		}
	}
	for i, q := range c.Key.IgnoreQuery {
		if q == "" || strings.ContainsAny(q, "&=") {
			errs = append(errs, fmt.Errorf("key.ignore_query[%d] %q is not a query parameter name", i, q))
		}
	}
	if n := c.Coalesce.MaxWaiters; n < 1 || n > MaxWaitersLimit {
		errs = append(errs, fmt.Errorf("coalesce.max_waiters must be between 1 and %d, got %d", MaxWaitersLimit, n))
	}
	if w := c.Coalesce.Wait.D(); w <= 0 || w > MaxWait {
		errs = append(errs, fmt.Errorf("coalesce.wait must be between 1ns and %s, got %s", MaxWait, w))
	}
	return errors.Join(errs...)
}

// Validate reports problems Provision left; Provision already refused a
// bad config.
func (c *Cache) Validate() error { return nil }

// Cleanup releases the store; the last holder closes it.
func (c *Cache) Cleanup() error {
	if c.passes != nil {
		c.passes.StopAllGoroutines()
	}
	if c.release != nil {
		c.release()
		c.release = nil
	}
	return nil
}

// syncStoreStats copies the store's byte count and evictions into the
// counters (for the redis store, its memory front's; zeros without one);
// one caller at a time, others skip (never wait).
func (c *Cache) syncStoreStats() {
	if !c.syncMu.TryLock() {
		return
	}
	defer c.syncMu.Unlock()
	st := c.store.Stats()
	c.c.bytes.Add(int64(st.Bytes) - c.c.bytes.Value())
	c.c.evictions.Add(int64(st.Evictions) - c.c.evictions.Value())
}

// StoreStats returns the memory store's counters (tests, admin); for the
// redis store, those of its memory front (zeros without one).
func (c *Cache) StoreStats() httpcache.MemoryStats {
	c.store.CleanUp()
	return c.store.Stats()
}

var _ plugin.Cleaner = (*Cache)(nil)
