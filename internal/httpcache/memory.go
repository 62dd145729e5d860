package httpcache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// MemoryOptions bound a MemoryStore.
type MemoryOptions struct {
	// MaxBytes is the budget for all entries, by Entry.Size (required).
	MaxBytes int64
	// MaxEntryBytes is the largest entry stored (default MaxBytes/16, at
	// most 1<<31). Larger ones are refused with ErrTooLarge.
	MaxEntryBytes int64
}

// MemoryStats are a MemoryStore's counters.
type MemoryStats struct {
	Entries     int
	Bytes       uint64
	Evictions   uint64 // removed to stay within MaxBytes
	Expirations uint64 // removed when their TTL passed
	Rejected    uint64 // refused by Set (too large, bad tags, no TTL)
}

// MemoryStore is the in-memory Store, bounded by bytes. It is built on
// github.com/maypok86/otter/v2: a W-TinyLFU cache with per-entry weights
// (Entry.Size) and per-entry expiry (Entry.TTL), whose reads take no lock
// shared by all requests. otter was chosen over ristretto because its
// writes are synchronous and exact (a Set is visible to the next Get and
// eviction counts are exact), which the cache's revalidation and purge
// semantics need, where ristretto may drop or delay a Set.
//
// The tag index (tag → keys) has its own mutex, taken only on Set, on the
// removal of a tagged entry and on Purge, never on Get. It holds at most
// MaxTags tags per stored entry, so it is bounded by the entries.
type MemoryStore struct {
	c        *otter.Cache[Key, *Entry]
	maxEntry int64

	mu   sync.Mutex
	tags map[string]map[Key]struct{}

	evictions, expirations, rejected atomic.Uint64
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore builds a MemoryStore.
func NewMemoryStore(o MemoryOptions) (*MemoryStore, error) {
	if o.MaxBytes <= 0 {
		return nil, errors.New("httpcache: memory store needs a positive max bytes")
	}
	maxEntry := o.MaxEntryBytes
	if maxEntry <= 0 {
		maxEntry = max(o.MaxBytes/16, 1)
	}
	if maxEntry > o.MaxBytes {
		return nil, fmt.Errorf("httpcache: max entry bytes %d above max bytes %d", maxEntry, o.MaxBytes)
	}
	maxEntry = min(maxEntry, math.MaxUint32)
	s := &MemoryStore{maxEntry: maxEntry, tags: make(map[string]map[Key]struct{})}
	c, err := otter.New(&otter.Options[Key, *Entry]{
		MaximumWeight: uint64(o.MaxBytes),
		Weigher:       func(_ Key, e *Entry) uint32 { return uint32(e.Size()) },
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[Key, *Entry]) time.Duration {
			return e.Value.TTL
		}),
		OnAtomicDeletion: s.onDeletion,
	})
	if err != nil {
		return nil, err
	}
	s.c = c
	return s, nil
}

func (s *MemoryStore) onDeletion(ev otter.DeletionEvent[Key, *Entry]) {
	switch ev.Cause {
	case otter.CauseReplacement:
		return // Set moved the tags already
	case otter.CauseOverflow:
		s.evictions.Add(1)
	case otter.CauseExpiration:
		s.expirations.Add(1)
	}
	if len(ev.Value.Tags) > 0 {
		s.mu.Lock()
		s.untag(ev.Key, ev.Value)
		s.mu.Unlock()
	}
}

func (s *MemoryStore) untag(k Key, e *Entry) {
	for _, t := range e.Tags {
		if set := s.tags[t]; set != nil {
			delete(set, k)
			if len(set) == 0 {
				delete(s.tags, t)
			}
		}
	}
}

// Get returns the entry stored under key, or nil.
func (s *MemoryStore) Get(_ context.Context, key Key) (*Entry, error) {
	e, _ := s.c.GetIfPresent(key)
	return e, nil
}

// Set stores e under e.Key, replacing what was there.
func (s *MemoryStore) Set(_ context.Context, e *Entry) error {
	switch {
	case int64(e.Size()) > s.maxEntry:
		s.rejected.Add(1)
		return ErrTooLarge
	case !validTags(e.Tags):
		s.rejected.Add(1)
		return ErrBadTags
	case e.TTL <= 0:
		s.rejected.Add(1)
		return ErrNoTTL
	}
	s.c.Compute(e.Key, func(old *Entry, found bool) (*Entry, otter.ComputeOp) {
		if (found && len(old.Tags) > 0) || len(e.Tags) > 0 {
			s.mu.Lock()
			if found {
				s.untag(e.Key, old)
			}
			for _, t := range e.Tags {
				set := s.tags[t]
				if set == nil {
					set = make(map[Key]struct{})
					s.tags[t] = set
				}
				set[e.Key] = struct{}{}
			}
			s.mu.Unlock()
		}
		return e, otter.WriteOp
	})
	return nil
}

// Delete removes the entry stored under key.
func (s *MemoryStore) Delete(_ context.Context, key Key) error {
	s.c.Invalidate(key)
	return nil
}

// Purge removes everything, the entries whose Path is the URL or has the
// prefix, or those with the tag. URL and prefix purges walk all entries.
func (s *MemoryStore) Purge(_ context.Context, p Purge) (int, error) {
	if !p.valid() {
		return 0, ErrBadPurge
	}
	var keys []Key
	switch {
	case p.All:
		n := s.c.EstimatedSize()
		s.c.InvalidateAll()
		return n, nil
	case p.Tag != "":
		s.mu.Lock()
		for k := range s.tags[p.Tag] {
			keys = append(keys, k)
		}
		s.mu.Unlock()
	case p.URL != "":
		for k, e := range s.c.All() {
			if e.Path == p.URL {
				keys = append(keys, k)
			}
		}
	default:
		for k, e := range s.c.All() {
			if strings.HasPrefix(e.Path, p.Prefix) {
				keys = append(keys, k)
			}
		}
	}
	n := 0
	for _, k := range keys {
		if _, ok := s.c.Invalidate(k); ok {
			n++
		}
	}
	return n, nil
}

// Stats returns the store's counters.
func (s *MemoryStore) Stats() MemoryStats {
	return MemoryStats{
		Entries:     s.c.EstimatedSize(),
		Bytes:       s.c.WeightedSize(),
		Evictions:   s.evictions.Load(),
		Expirations: s.expirations.Load(),
		Rejected:    s.rejected.Load(),
	}
}

// CleanUp runs pending maintenance (evictions, expirations) now; tests and
// the admin API use it to read exact counters.
func (s *MemoryStore) CleanUp() { s.c.CleanUp() }

// Close stops the store's background goroutines.
func (s *MemoryStore) Close() { s.c.StopAllGoroutines() }

// tagCount reports the size of the tag index (tests).
func (s *MemoryStore) tagCount() (tags, refs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, set := range s.tags {
		tags++
		refs += len(set)
	}
	return
}
