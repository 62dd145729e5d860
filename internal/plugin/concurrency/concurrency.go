// Package concurrency implements the "concurrency_limit" plugin, which caps
// the number of requests in flight per request key (internal/reqkey:
// consumer, client IP, route, header… in any combination) on one gateway
// node.
//
// A request takes a slot before it is passed on and gives it back when the
// downstream handler returns, so for a streamed response the slot is held for
// the whole stream. A request that finds every slot of its key taken either
// waits in a bounded per-key queue for at most queue_timeout or, with no
// queue, is refused at once with 429 and Retry-After: 1.
//
// The counts are local to the node: N gateway nodes admit up to N×max
// requests per key in total. Per-key state lives in a sharded map and a key
// with nothing in flight and no one waiting is removed, so memory follows the
// number of keys active right now, not the number ever seen.
package concurrency

import (
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// Name is the plugin's name in configs.
const Name = "concurrency_limit"

// DefaultMaxQueue is the per-key queue length when max_queue is not set.
const DefaultMaxQueue = 100

func init() {
	plugin.Register(plugin.Spec{
		Name:  Name,
		Phase: plugin.PhaseRateLimit,
		New:   func() plugin.Plugin { return new(Concurrency) },
	})
}

// Concurrency is the configuration of one "concurrency_limit" instance.
type Concurrency struct {
	// Max is the number of requests per key allowed in flight at once.
	Max int `yaml:"max"`
	// Key selects what requests are counted by, in the request-key grammar
	// (README "Request keys"): one part such as "consumer", "ip", "route"
	// or "header:<Name>", or a list of parts. A part with no value (no
	// authenticated consumer, an absent header…) stands for the client IP.
	// Default consumer: the authenticated consumer's ID, else the client IP.
	Key config.StringList `yaml:"key"`
	// QueueTimeout is how long a request waits for a slot; 0 (the default)
	// refuses it at once.
	QueueTimeout config.Duration `yaml:"queue_timeout"`
	// MaxQueue is the number of requests per key allowed to wait; beyond it
	// requests are refused at once. Default 100.
	MaxQueue *int `yaml:"max_queue"`

	key     reqkey.Key
	route   string
	lim     *limiter
	relLim  func()
	full    *observe.Counter
	timeout *observe.Counter
}

// Provision parses the key and attaches the instance to its limiter.
func (p *Concurrency) Provision(ctx plugin.Context) error {
	if err := p.parseKey(); err != nil {
		return err
	}
	if p.MaxQueue == nil {
		n := DefaultMaxQueue
		p.MaxQueue = &n
	}
	if p.Max < 1 {
		return errors.New("max: must be at least 1")
	}
	if p.QueueTimeout < 0 {
		return errors.New("queue_timeout: must not be negative")
	}
	if *p.MaxQueue < 0 {
		return errors.New("max_queue: must not be negative")
	}
	p.route = ctx.Route()
	lim, release, err := acquireLimiter(ctx, p.route, p.key.String(), p.Max, *p.MaxQueue, p.QueueTimeout.D())
	if err != nil {
		return err
	}
	p.lim, p.relLim = lim, release
	labels := fmt.Sprintf("route=%q,reason=", p.route)
	p.full = ctx.Stats().Counter("portico_concurrency_rejected_total", labels+`"queue_full"`)
	p.timeout = ctx.Stats().Counter("portico_concurrency_rejected_total", labels+`"queue_timeout"`)
	return nil
}

func (p *Concurrency) parseKey() error {
	if len(p.Key) == 0 {
		p.Key = config.StringList{"consumer"}
	}
	k, err := reqkey.Parse(p.Key)
	if err != nil {
		return err
	}
	p.key = k
	return nil
}

// Cleanup detaches the instance from its limiter.
func (p *Concurrency) Cleanup() error {
	if p.relLim != nil {
		p.relLim()
		p.lim, p.relLim = nil, nil
	}
	return nil
}

// Wrap returns the handler that holds a slot around next.
func (p *Concurrency) Wrap(next http.Handler) http.Handler {
	return &handler{p: p, lim: p.lim, next: next}
}

type handler struct {
	p    *Concurrency
	lim  *limiter
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := request.RecordOf(r)
	k := h.p.keyOf(r, rec)
	s, res := h.lim.acquire(r.Context().Done(), k)
	switch res {
	case granted:
		defer h.lim.release(s)
		h.next.ServeHTTP(w, r)
	case canceled:
		// The client went away while queued: nobody reads an answer.
		if rec != nil {
			rec.Status, rec.ErrorMsg = 499, "client closed request"
		}
	default:
		if res == queueFull {
			h.p.full.Inc()
		} else {
			h.p.timeout.Inc()
		}
		w.Header().Set("Retry-After", "1")
		request.WriteError(w, r, http.StatusTooManyRequests, "too many concurrent requests")
	}
}

// keyOf returns the key r is counted under: the hash of its request key,
// with a seed shared by every instance, so a limiter kept across a reload
// keeps counting the same parties.
func (p *Concurrency) keyOf(r *http.Request, rec *request.Record) lkey {
	return lkey(p.key.Hash(seed, r, rec))
}

// lkey identifies one counted party: the 64-bit hash of its request key.
type lkey uint64

const numShards = 32

var seed = maphash.MakeSeed()

func (k lkey) shard() uint64 { return uint64(k) % numShards }

// result is the outcome of acquire.
type result uint8

const (
	granted result = iota
	queueFull
	queueTimeout
	canceled
)

// limiter holds the per-key counts of every instance with the same route and
// settings (shared through plugin.Context.Shared), so a reload that leaves
// them unchanged keeps counting the requests already in flight.
type limiter struct {
	max, maxQueue int
	queueTimeout  time.Duration
	shards        [numShards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[lkey]*entry
	_  [48]byte // pads the shard to a cache line
}

// entry is one key's state; it exists while inflight > 0 or someone waits.
type entry struct {
	key        lkey
	inflight   int
	nwait      int
	head, tail *waiter
}

// waiter is a queued request. A releasing request hands its slot over by
// setting granted and signalling ch, without decrementing inflight.
type waiter struct {
	ch         chan struct{}
	granted    bool
	prev, next *waiter
}

func (e *entry) push(w *waiter) {
	w.prev = e.tail
	if e.tail != nil {
		e.tail.next = w
	} else {
		e.head = w
	}
	e.tail = w
	e.nwait++
}

func (e *entry) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		e.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		e.tail = w.prev
	}
	w.prev, w.next = nil, nil
	e.nwait--
}

var entryPool = sync.Pool{New: func() any { return new(entry) }}

// slot is a held slot, returned by acquire and given back to release.
type slot struct {
	sh *shard
	e  *entry
}

// acquire takes a slot for k, waiting in k's queue if the limiter allows
// it; done is the request's cancellation channel.
func (l *limiter) acquire(done <-chan struct{}, k lkey) (slot, result) {
	sh := &l.shards[k.shard()]
	sh.mu.Lock()
	e := sh.m[k]
	if e == nil {
		e = entryPool.Get().(*entry)
		e.key = k
		sh.m[k] = e
	}
	if e.inflight < l.max && e.head == nil {
		e.inflight++
		sh.mu.Unlock()
		return slot{sh, e}, granted
	}
	if l.queueTimeout <= 0 || e.nwait >= l.maxQueue {
		sh.mu.Unlock()
		return slot{}, queueFull
	}
	w := &waiter{ch: make(chan struct{}, 1)}
	e.push(w)
	sh.mu.Unlock()

	t := time.NewTimer(l.queueTimeout)
	defer t.Stop()
	res := queueTimeout
	select {
	case <-w.ch:
		return slot{sh, e}, granted
	case <-t.C:
	case <-done:
		res = canceled
	}
	sh.mu.Lock()
	if w.granted {
		// The slot was handed over just as the wait ended.
		sh.mu.Unlock()
		if res == canceled {
			l.release(slot{sh, e})
			return slot{}, canceled
		}
		return slot{sh, e}, granted
	}
	e.remove(w)
	l.dropIfIdle(sh, e)
	sh.mu.Unlock()
	return slot{}, res
}

// release gives a slot back: to the first waiter if there is one, else to
// the pool of free slots.
func (l *limiter) release(s slot) {
	s.sh.mu.Lock()
	e := s.e
	if w := e.head; w != nil {
		e.remove(w)
		w.granted = true
		w.ch <- struct{}{}
	} else {
		e.inflight--
		l.dropIfIdle(s.sh, e)
	}
	s.sh.mu.Unlock()
}

// dropIfIdle removes e from the map when nothing uses it; sh.mu is held.
func (l *limiter) dropIfIdle(sh *shard, e *entry) {
	if e.inflight > 0 || e.head != nil {
		return
	}
	delete(sh.m, e.key)
	*e = entry{}
	entryPool.Put(e)
}

// keys is the number of keys with state, for tests.
func (l *limiter) keys() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// stateOf reports k's in-flight and waiting counts, for tests.
func (l *limiter) stateOf(k lkey) (inflight, waiting int) {
	sh := &l.shards[k.shard()]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.m[k]; e != nil {
		return e.inflight, e.nwait
	}
	return 0, 0
}

// acquireLimiter returns the limiter for a route and settings from the
// gateway's shared pool, and the func that releases it. Requests still in
// flight keep using the limiter after the last release; only its sharing
// ends.
func acquireLimiter(ctx plugin.Context, route, key string, max, maxQueue int, queueTimeout time.Duration) (*limiter, func(), error) {
	rk := fmt.Sprintf("%s/%q|%s|%d|%d|%d", Name, route, key, max, maxQueue, queueTimeout)
	return plugin.SharedAs(ctx, rk, func() (*limiter, error) {
		l := &limiter{max: max, maxQueue: maxQueue, queueTimeout: queueTimeout}
		for i := range l.shards {
			l.shards[i].m = map[lkey]*entry{}
		}
		return l, nil
	})
}

// Close does nothing: requests in flight keep using the limiter after its
// last release.
func (l *limiter) Close() error { return nil }

var _ plugin.Plugin = (*Concurrency)(nil)
