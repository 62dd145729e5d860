package ratelimit

import (
	"sync"
	"time"
)

// numShards is the number of independently locked parts of a local store.
const numShards = 64

// localStore holds the state of every key of one limiter in this process.
//
// Keys are 64-bit hashes of the key parts (maphash with a per-plugin random
// seed), so a decision for a known key allocates nothing. Two different
// keys with the same hash share one state; with 64-bit hashes the chance of
// any collision among 100,000 live keys is about 3×10⁻¹⁰.
//
// Memory is bounded: each shard holds at most maxKeys/numShards keys (at
// least one). A key whose state is fully recovered is idle and is removed
// by the periodic sweep, or on insert into a full shard. When a shard is
// full of non-idle keys, inserting evicts an arbitrary key, which forgets
// that key's usage (it may then be admitted a fresh burst).
type localStore struct {
	limits   []limitSpec
	perShard int
	shards   [numShards]shard
	now      func() time.Time
	epoch    time.Time
}

type shard struct {
	mu sync.Mutex
	m  map[uint64]*entry
	// pad keeps neighbouring shard locks on separate cache lines.
	_ [40]byte
}

type entry struct {
	// idle is when every limit of the key is fully recovered.
	idle   int64
	states []state
}

func newLocalStore(limits []limitSpec, maxKeys int, now func() time.Time) *localStore {
	s := &localStore{limits: limits, perShard: max(maxKeys/numShards, 1), now: now, epoch: now()}
	for i := range s.shards {
		s.shards[i].m = make(map[uint64]*entry)
	}
	return s
}

// clock returns the current time in nanoseconds since the store's epoch.
func (s *localStore) clock() int64 { return int64(s.now().Sub(s.epoch)) }

// allow decides a request of n tokens for key.
func (s *localStore) allow(key uint64, n int64) decision {
	now := s.clock()
	sh := &s.shards[key%numShards]
	sh.mu.Lock()
	e, ok := sh.m[key]
	if !ok {
		e = s.insert(sh, key, now)
	}
	d, idle := decide(s.limits, e.states, now, n)
	e.idle = idle
	sh.mu.Unlock()
	return d
}

// insert adds a fresh entry for key to sh, making room if the shard is
// full; sh.mu is held.
func (s *localStore) insert(sh *shard, key uint64, now int64) *entry {
	if len(sh.m) >= s.perShard {
		sweepShard(sh, now)
		for k := range sh.m {
			if len(sh.m) < s.perShard {
				break
			}
			delete(sh.m, k)
		}
	}
	e := &entry{states: make([]state, len(s.limits))}
	sh.m[key] = e
	return e
}

// sweepShard removes idle entries; sh.mu is held.
func sweepShard(sh *shard, now int64) {
	for k, e := range sh.m {
		if e.idle <= now {
			delete(sh.m, k)
		}
	}
}

// sweep removes every idle entry, one shard at a time.
func (s *localStore) sweep() {
	now := s.clock()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sweepShard(sh, now)
		sh.mu.Unlock()
	}
}

// size is the number of keys held.
func (s *localStore) size() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// sweeper runs sweep every interval until stop is closed.
func sweeper(s *localStore, interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}
