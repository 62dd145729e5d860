package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// leaseStore holds this node's leases, one per key.
//
// A lease is a batch of tokens taken from Redis with one script call (from
// every limit of the request at once). Requests are served from it locally
// until it is spent or its TTL passes; then the next request returns the
// unused tokens and takes a new lease in the same round trip. Leases left
// unused are returned by a background sweep, so idle keys do not lose
// tokens for longer than about two TTLs.
type leaseStore struct {
	shards   [numShards]leaseShard
	perShard int
}

type leaseShard struct {
	mu sync.Mutex
	m  map[uint64]*lease
	_  [40]byte
}

type lease struct {
	mu   sync.Mutex
	keys []string
	// tokens left in the current lease, valid until expires.
	tokens  int64
	expires int64
	// wins are the sliding window indexes the lease was taken in.
	wins [maxLimits]int64
	// taken is when the lease was granted; remaining, reset and idx are
	// the most restrictive limit's values Redis reported then.
	taken     int64
	remaining int64
	reset     int64
	idx       int
	// deniedUntil caches a denial: until then requests are refused
	// without asking Redis.
	deniedUntil int64
	lastUse     int64
	// refilling is the refill in flight (nil when none is): one refill per
	// key at a time, shared by every request that needs it.
	refilling *refill
}

// refill is one lease refill in flight. Requests that need it wait for
// done, each bounded by its own deadline; err is set before done is closed.
type refill struct {
	done chan struct{}
	err  error
}

func newLeaseStore(maxKeys int) *leaseStore {
	s := &leaseStore{perShard: max(maxKeys/numShards, 1)}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*lease)
	}
	return s
}

// get returns the lease entry of key, creating it with mkKeys when absent.
func (s *leaseStore) get(h uint64, mkKeys func() []string) *lease {
	sh := &s.shards[h%numShards]
	sh.mu.Lock()
	l, ok := sh.m[h]
	if !ok {
		if len(sh.m) >= s.perShard {
			for k, o := range sh.m {
				if len(sh.m) < s.perShard {
					break
				}
				o.mu.Lock()
				busy := o.tokens > 0 || o.refilling != nil
				o.mu.Unlock()
				if !busy {
					delete(sh.m, k)
				}
			}
			for k := range sh.m {
				if len(sh.m) < s.perShard {
					break
				}
				delete(sh.m, k)
			}
		}
		l = &lease{keys: mkKeys(), idx: -1}
		sh.m[h] = l
	}
	sh.mu.Unlock()
	return l
}

// redisLease decides one request from the key's lease, refilling it from
// Redis when it is spent or expired.
//
// No request waits for Redis longer than the Redis timeout: one refill per
// key is in flight at a time and the requests that arrive meanwhile wait for
// it, each until its own deadline (arrival + timeout); when the refill
// fails they all take the failure policy at once instead of each retrying
// Redis in turn. While the breaker is open (see mayCallRedis) tokens already
// leased are still served, and a spent lease takes the failure policy
// without asking Redis.
func (p *RateLimit) redisLease(ctx context.Context, h uint64, mkKeys func() []string) (decision, error) {
	l := p.leases.get(h, mkKeys)
	var w leaseWait
	defer w.stop()
	for {
		now := p.clock()
		l.mu.Lock()
		l.lastUse = now
		if d, ok := l.take(now); ok {
			l.mu.Unlock()
			return d, nil
		}
		rf := l.refilling
		if rf == nil {
			if w.expired {
				l.mu.Unlock()
				return decision{}, errLeaseWait
			}
			if !p.mayCallRedis(now) {
				l.mu.Unlock()
				return decision{}, errRedisDown
			}
			rf = &refill{done: make(chan struct{})}
			l.refilling = rf
			ret, wins := l.tokens, l.wins
			l.tokens = 0
			l.mu.Unlock()
			if w.budget.IsZero() {
				// First round: the refill's own timeout is this request's
				// budget, so it runs here and keeps one token for it.
				return p.refillLease(ctx, l, rf, ret, wins, true)
			}
			// This request has already waited: the refill runs on its own
			// and the request waits for it only until its deadline.
			p.refills.Go(func() { _, _ = p.refillLease(ctx, l, rf, ret, wins, false) })
		} else {
			l.mu.Unlock()
			if p.downUntil.Load() != 0 {
				// The refill in flight is the breaker's probe: do not
				// queue behind it.
				return decision{}, errRedisDown
			}
		}
		if w.expired {
			return decision{}, errLeaseWait
		}
		if err := w.wait(ctx, rf, p.timeout); err != nil {
			return decision{}, err
		}
	}
}

// take serves a request from the lease: a leased token, or the denial in
// force. It reports false when the lease can do neither. l.mu is held.
func (l *lease) take(now int64) (decision, bool) {
	if l.tokens > 0 && now < l.expires {
		l.tokens--
		return l.view(now), true
	}
	if now < l.deniedUntil {
		d := decision{idx: max(l.idx, 0), retry: time.Duration(l.deniedUntil - now)}
		d.reset = d.retry
		return d, true
	}
	return decision{}, false
}

// leaseWait is one request's waiting for lease refills: its deadline is set
// when it first waits, and once that has passed it may not wait again.
type leaseWait struct {
	timer  *time.Timer
	budget time.Time // this request's deadline, set when it first waits
	// expired: the budget is spent; the request may not wait again.
	expired bool
}

func (w *leaseWait) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// wait waits for the refill rf until the request's deadline (arrival +
// timeout). It returns nil when the lease should be looked at again, or
// the error the request ends with.
func (w *leaseWait) wait(ctx context.Context, rf *refill, timeout time.Duration) error {
	if w.budget.IsZero() {
		w.budget = time.Now().Add(timeout)
	}
	if w.timer == nil {
		w.timer = time.NewTimer(time.Until(w.budget))
	}
	select {
	case <-rf.done:
		if rf.err != nil {
			// Counted and logged once, by the refill.
			return errRedisDown
		}
	case <-w.timer.C:
		// Out of time: one last look at the lease (the refill may
		// have just finished), but no more waiting.
		w.expired = true
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Errors of redisLease that need no recording: the failure was recorded by
// whoever called Redis.
var (
	// errRedisDown: Redis failed recently (the breaker is open) or the
	// refill this request waited for failed.
	errRedisDown = errors.New("rate_limit: redis unavailable")
	// errLeaseWait: the refill did not finish within the request's budget.
	errLeaseWait = errors.New("rate_limit: redis refill still in flight after the redis timeout")
)

// refillLease runs refill rf of lease l: it returns ret unused tokens and
// takes a new lease in one script call, bounded by the Redis timeout and
// not by the request that started it (the other waiters share its result).
// With keep, the first granted token is this caller's: its decision is
// returned.
func (p *RateLimit) refillLease(ctx context.Context, l *lease, rf *refill, ret int64, wins [maxLimits]int64, keep bool) (decision, error) {
	res, err := p.callRedis(context.WithoutCancel(ctx), l.keys, p.scriptArgs(p.leaseSize, true, ret, &wins))

	now := p.clock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refilling = nil
	rf.err = err
	close(rf.done)
	if err != nil {
		// The returned tokens are lost: Redis keeps counting them
		// until they recover (under-admission, never over-admission).
		return decision{}, errRedisDown
	}
	if res.granted == 0 {
		d := summarize(res.v[:len(p.specs)], false)
		l.deniedUntil = now + min(int64(d.retry), int64(p.leaseTTL))
		l.idx = d.idx
		return d, nil
	}
	s := summarize(res.v[:len(p.specs)], true)
	l.tokens = res.granted
	if keep {
		l.tokens--
	}
	l.expires = now + int64(p.leaseTTL)
	l.wins = res.win
	l.taken, l.remaining, l.reset, l.idx = now, s.remaining, int64(s.reset), s.idx
	return l.view(now), nil
}

// view is the decision for a request served from the lease: remaining is
// what Redis reported at grant time plus the tokens still held here.
func (l *lease) view(now int64) decision {
	return decision{
		allowed:   true,
		idx:       l.idx,
		remaining: l.remaining + l.tokens,
		reset:     time.Duration(max(l.reset-(now-l.taken), 0)),
	}
}

// returnIdle gives back the unused tokens of expired leases and forgets
// leases unused for a while. It runs in the background.
func (p *RateLimit) returnIdle(ctx context.Context, all bool) {
	now := p.clock()
	type ret struct {
		keys []string
		n    int64
		wins [maxLimits]int64
	}
	var rets []ret
	for i := range p.leases.shards {
		sh := &p.leases.shards[i]
		sh.mu.Lock()
		for k, l := range sh.m {
			l.mu.Lock()
			if l.refilling == nil && l.tokens > 0 && (all || now >= l.expires) {
				rets = append(rets, ret{keys: l.keys, n: l.tokens, wins: l.wins})
				l.tokens = 0
			}
			if l.refilling == nil && l.tokens == 0 && now-l.lastUse > 2*int64(p.leaseTTL) && now >= l.deniedUntil {
				delete(sh.m, k)
			}
			l.mu.Unlock()
		}
		sh.mu.Unlock()
	}
	// The tokens are given back only while Redis answers: after a failure
	// (or while the breaker is open) they are dropped, which only
	// under-admits until they recover in Redis.
	for _, r := range rets {
		if ctx.Err() != nil || p.downUntil.Load() != 0 {
			return
		}
		if _, err := p.callRedis(ctx, r.keys, p.scriptArgs(0, true, r.n, &r.wins)); err != nil {
			return
		}
	}
}

// leaseSweeper runs returnIdle every lease TTL until stop is closed, then
// returns every outstanding token.
func (p *RateLimit) leaseSweeper(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(p.leaseTTL)
	defer t.Stop()
	for {
		select {
		case <-stop:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			p.returnIdle(ctx, true)
			cancel()
			return
		case <-t.C:
			p.returnIdle(context.Background(), false)
		}
	}
}
