// Package rediscache is an httpcache.Store kept in Redis, so that every
// gateway node with the same route and cache settings shares one cache:
// a response one node stored is a hit on the others, and a delete or purge
// on one reaches all.
//
// Layout, under "<prefix>cache:<ns>:" where ns names the route's cache
// settings (a settings change starts afresh):
//
//	e:<hex key>      the entry (a versioned binary encoding, see encode.go),
//	                 expiring with the entry's TTL (PX)
//	idx              ZSET of "<path>\x00<hex key>" scored by expiry (unix
//	                 ms): purge all, by URL and by prefix walk it
//	t:<hex hash>     ZSET per tag of "<hex key>" scored by expiry
//	events           pub/sub channel of deletes and purges, for the
//	                 memory fronts of every node
//
// Every command touches one key, and multi-key work goes through
// pipelines, never MULTI or multi-key scripts, so a Redis Cluster works.
// Expired index members are trimmed on a fraction of Sets, and the index
// keys themselves expire with their longest-lived member (EXPIRE NX and
// GT: Redis 7.0 or later), so the indexes stay bounded by live entries.
//
// Redis failures fail open: a Get that fails is a miss, a Set or Delete
// that fails does nothing; the error is returned and reported to
// Options.OnError. After a failure the store leaves Redis alone for a
// short backoff (100ms, doubling up to 1s while probes fail), so an outage
// does not add the Redis timeout to every request.
package rediscache

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/redisclient"
)

// Options configure a Store.
type Options struct {
	// Client is the Redis client; its Prefix starts every key. Required.
	Client *redisclient.Client
	// Namespace separates caches in one Redis (required; a short name,
	// e.g. a hash of the route and its cache settings).
	Namespace string
	// Timeout bounds each Redis round trip (default 100ms).
	Timeout time.Duration
	// MaxEntryBytes is the largest entry stored, by Entry.Size (default
	// 1MiB). Larger ones are refused with httpcache.ErrTooLarge.
	MaxEntryBytes int64
	// Front, when set, is a per-node memory store in front of Redis: Get
	// reads it first and fills it from Redis; Set, Delete and Purge reach
	// both. The Store closes it.
	Front *httpcache.MemoryStore
	// FrontMaxTTL bounds how long the front keeps an entry (default 10s):
	// it is how long a front may serve an entry another node deleted or
	// purged when the message saying so was lost.
	FrontMaxTTL time.Duration
	// OnError is told of every failed Redis call and every corrupt value
	// read (metrics and logging); it may be nil. It must not block.
	OnError func(err error)
	// Release, when set, is called by Close after the store stopped using
	// Client (the release of a shared client).
	Release func()
}

// Backoff after a failure: the first failure keeps requests off Redis for
// retryMin, each failed probe doubles it, up to retryMax; a success resets
// it.
const (
	retryMin = 100 * time.Millisecond
	retryMax = time.Second
)

// trimEvery is how often (one Set in trimEvery) a Set also removes the
// expired members of the index keys it touches.
const trimEvery = 16

// purgeBatch is the members one ZSCAN round reads during a purge.
const purgeBatch = 512

// ErrUnavailable is returned, without calling Redis, while the store backs
// off after a failure.
var ErrUnavailable = errors.New("rediscache: redis unavailable (backing off after a failure)")

// Store is an httpcache.Store in Redis, with an optional memory front.
type Store struct {
	rdb      redis.UniversalClient
	base     string // "<prefix>cache:<ns>:"
	idx      string
	channel  string
	timeout  time.Duration
	maxEntry int64
	front    *httpcache.MemoryStore
	frontTTL time.Duration
	onError  func(error)
	release  func()
	node     [8]byte // this store's id in pub/sub messages

	epoch     time.Time
	downUntil atomic.Int64 // ns since epoch before which Redis is skipped; 0: up
	backoff   atomic.Int64
	probing   atomic.Bool
	sets      atomic.Uint64

	sub       *redis.PubSub
	subDone   chan struct{}
	closeOnce sync.Once
}

var _ httpcache.Store = (*Store)(nil)

// New builds a Store; with a front it subscribes to the events channel in
// the background (Close ends the subscription).
func New(o Options) (*Store, error) {
	if o.Client == nil || o.Namespace == "" {
		return nil, errors.New("rediscache: a client and a namespace are required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 100 * time.Millisecond
	}
	if o.MaxEntryBytes <= 0 {
		o.MaxEntryBytes = 1 << 20
	}
	if o.FrontMaxTTL <= 0 {
		o.FrontMaxTTL = 10 * time.Second
	}
	base := o.Client.Prefix + "cache:" + o.Namespace + ":"
	s := &Store{rdb: o.Client.UniversalClient, base: base, idx: base + "idx", channel: base + "events",
		timeout: o.Timeout, maxEntry: o.MaxEntryBytes, front: o.Front, frontTTL: o.FrontMaxTTL,
		onError: o.OnError, release: o.Release, epoch: time.Now()}
	_, _ = rand.Read(s.node[:])
	if s.front != nil {
		s.subscribe()
	}
	return s, nil
}

// entryKey is the Redis key of the entry stored under k.
func (s *Store) entryKey(k httpcache.Key) string {
	var h [64]byte
	hex.Encode(h[:], k[:])
	var b strings.Builder
	b.Grow(len(s.base) + 2 + len(h))
	b.WriteString(s.base)
	b.WriteString("e:")
	b.Write(h[:])
	return b.String()
}

// tagKey is the Redis key of tag's index: a hash, so a tag's bytes never
// reach a key name.
func (s *Store) tagKey(tag string) string {
	h := sha256.Sum256([]byte(tag))
	return s.base + "t:" + hex.EncodeToString(h[:16])
}

// Get returns the entry stored under key: from the front when it holds
// it, else from Redis (filling the front). A Redis failure is a miss with
// the error.
func (s *Store) Get(ctx context.Context, key httpcache.Key) (*httpcache.Entry, error) {
	if s.front != nil {
		if e, _ := s.front.Get(ctx, key); e != nil {
			return e, nil
		}
	}
	if !s.mayCall() {
		return nil, ErrUnavailable
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	v, err := s.rdb.Get(cctx, s.entryKey(key)).Result()
	cancel()
	if err == redis.Nil {
		s.ok()
		return nil, nil
	}
	if err != nil {
		return nil, s.failed(ctx, err)
	}
	s.ok()
	e, storedAt, err := decodeEntry(v)
	if err == nil && e.Key != key {
		err = ErrCorrupt
	}
	if err != nil {
		s.report(err)
		return nil, err
	}
	if s.front != nil {
		s.fill(ctx, e, storedAt)
	}
	return e, nil
}

// fill copies e into the front for what is left of its TTL, at most the
// front's max TTL.
func (s *Store) fill(ctx context.Context, e *httpcache.Entry, storedAt time.Time) {
	left := e.TTL - time.Since(storedAt)
	if left <= 0 {
		return
	}
	fe := *e
	fe.TTL = min(left, s.frontTTL)
	_ = s.front.Set(ctx, &fe)
}

// Set stores e in Redis (and the front) for e.TTL.
func (s *Store) Set(ctx context.Context, e *httpcache.Entry) error {
	switch {
	case int64(e.Size()) > s.maxEntry:
		return httpcache.ErrTooLarge
	case !validTags(e.Tags):
		return httpcache.ErrBadTags
	case e.TTL <= 0:
		return httpcache.ErrNoTTL
	}
	if s.front != nil {
		fe := *e
		fe.TTL = min(e.TTL, s.frontTTL)
		_ = s.front.Set(ctx, &fe)
	}
	if !s.mayCall() {
		return ErrUnavailable
	}
	now := time.Now()
	data := appendEntry(make([]byte, 0, e.Size()+64), e, now)
	hk := hex.EncodeToString(e.Key[:])
	expiry := float64(now.Add(e.TTL).UnixMilli())
	trim := s.sets.Add(1)%trimEvery == 0
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
		p.Set(cctx, s.base+"e:"+hk, data, e.TTL)
		s.index(cctx, p, s.idx, e.Path+"\x00"+hk, expiry, e.TTL, now, trim)
		for _, t := range e.Tags {
			s.index(cctx, p, s.tagKey(t), hk, expiry, e.TTL, now, trim)
		}
		return nil
	})
	if err != nil {
		return s.failed(ctx, err)
	}
	s.ok()
	return nil
}

// index adds member to the index key with its expiry as score, makes the
// key live at least as long as the member, and on trim removes expired
// members.
func (s *Store) index(ctx context.Context, p redis.Pipeliner, key, member string, expiry float64, ttl time.Duration, now time.Time, trim bool) {
	p.ZAdd(ctx, key, redis.Z{Score: expiry, Member: member})
	// EXPIRE takes whole seconds (truncated): one more keeps the key
	// at least as long as the member.
	p.ExpireNX(ctx, key, ttl+time.Second)
	p.ExpireGT(ctx, key, ttl+time.Second)
	if trim {
		p.ZRemRangeByScore(ctx, key, "-inf", "("+formatMs(now))
	}
}

// Delete removes the entry stored under key from Redis and from every
// node's front.
func (s *Store) Delete(ctx context.Context, key httpcache.Key) error {
	if s.front != nil {
		_ = s.front.Delete(ctx, key)
	}
	if !s.mayCall() {
		return ErrUnavailable
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	_, err := s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
		p.Del(cctx, s.entryKey(key))
		p.Publish(cctx, s.channel, s.message(kindDelete, string(key[:])))
		return nil
	})
	if err != nil {
		return s.failed(ctx, err)
	}
	s.ok()
	return nil
}

// Purge removes the selected entries from Redis and from every node's
// front, and returns how many Redis held. It walks the index in batches,
// each round trip bounded by the timeout; it tries Redis even while the
// store backs off (purges are rare and their caller wants an answer).
func (s *Store) Purge(ctx context.Context, p httpcache.Purge) (int, error) {
	kind, value, ok := purgeKind(p)
	if !ok {
		return 0, httpcache.ErrBadPurge
	}
	if s.front != nil {
		_, _ = s.front.Purge(ctx, p)
	}
	var n int
	var err error
	switch kind {
	case kindTag:
		n, err = s.purgeIndex(ctx, s.tagKey(p.Tag), "*", func(m string) string { return m })
	case kindURL:
		n, err = s.purgeIndex(ctx, s.idx, globEscape(p.URL)+"\x00*", memberKey)
	case kindPrefix:
		n, err = s.purgeIndex(ctx, s.idx, globEscape(p.Prefix)+"*", memberKey)
	default:
		n, err = s.purgeIndex(ctx, s.idx, "*", memberKey)
	}
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		err = s.rdb.Publish(cctx, s.channel, s.message(kind, value)).Err()
		cancel()
	}
	if err != nil {
		return n, s.failed(ctx, err)
	}
	s.ok()
	return n, nil
}

// purgeIndex deletes the entries of the index members matching match
// (a glob) and removes those members; hexKey gives a member's hex key.
func (s *Store) purgeIndex(ctx context.Context, index, match string, hexKey func(string) string) (int, error) {
	var cursor uint64
	n := 0
	for {
		cctx, cancel := context.WithTimeout(ctx, s.timeout)
		members, next, err := s.rdb.ZScan(cctx, index, cursor, match, purgeBatch).Result()
		cancel()
		if err != nil {
			return n, err
		}
		if len(members) > 0 {
			d, err := s.deleteMembers(ctx, index, members, hexKey)
			n += d
			if err != nil {
				return n, err
			}
		}
		if next == 0 {
			return n, nil
		}
		cursor = next
	}
}

// deleteMembers deletes the entries of a ZSCAN reply (member, score pairs)
// and removes the members from index, in one pipeline.
func (s *Store) deleteMembers(ctx context.Context, index string, reply []string, hexKey func(string) string) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var dels []*redis.IntCmd
	_, err := s.rdb.Pipelined(cctx, func(p redis.Pipeliner) error {
		members := make([]any, 0, len(reply)/2)
		for i := 0; i+1 < len(reply); i += 2 {
			m := reply[i]
			if hk := hexKey(m); len(hk) == 64 {
				dels = append(dels, p.Del(cctx, s.base+"e:"+hk))
			}
			members = append(members, m)
		}
		p.ZRem(cctx, index, members...)
		return nil
	})
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	return n, err
}

// memberKey is the hex key of an "<path>\x00<hex key>" index member.
func memberKey(m string) string {
	if i := strings.LastIndexByte(m, 0); i >= 0 {
		return m[i+1:]
	}
	return ""
}

// globEscape escapes the characters Redis's MATCH glob treats specially.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\^`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\', '^':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Stats returns the front's counters (zero without a front): the bytes
// and evictions of Redis itself are Redis's business (INFO memory).
func (s *Store) Stats() httpcache.MemoryStats {
	if s.front == nil {
		return httpcache.MemoryStats{}
	}
	return s.front.Stats()
}

// CleanUp runs the front's pending maintenance.
func (s *Store) CleanUp() {
	if s.front != nil {
		s.front.CleanUp()
	}
}

// Close ends the subscription, closes the front and releases the client.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.sub != nil {
			_ = s.sub.Close()
			<-s.subDone
		}
		if s.front != nil {
			s.front.Close()
		}
		if s.release != nil {
			s.release()
		}
	})
	return nil
}

// mayCall reports whether a call may go to Redis now: always while Redis
// is up; while the store backs off, one caller at a time once the backoff
// ended (a probe).
func (s *Store) mayCall() bool {
	du := s.downUntil.Load()
	if du == 0 {
		return true
	}
	now := int64(time.Since(s.epoch))
	if now < du || !s.downUntil.CompareAndSwap(du, now+int64(s.timeout)+int64(retryMin)) {
		return false
	}
	s.probing.Store(true)
	return true
}

// ok records a successful call: Redis is up.
func (s *Store) ok() {
	if s.downUntil.Load() != 0 {
		s.downUntil.Store(0)
		s.backoff.Store(0)
		s.probing.Store(false)
	}
}

// failed records a failed call and returns err. A call the caller
// cancelled (its request ended) says nothing about Redis.
func (s *Store) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	wait := max(time.Duration(s.backoff.Load()), retryMin)
	if s.probing.Swap(false) {
		wait = min(2*wait, retryMax)
	}
	s.backoff.Store(int64(wait))
	s.downUntil.Store(int64(time.Since(s.epoch)) + int64(wait))
	s.report(err)
	return err
}

func (s *Store) report(err error) {
	if s.onError != nil {
		s.onError(err)
	}
}

func validTags(tags []string) bool {
	if len(tags) > httpcache.MaxTags {
		return false
	}
	for _, t := range tags {
		if t == "" || len(t) > httpcache.MaxTagLen {
			return false
		}
	}
	return true
}

func formatMs(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
