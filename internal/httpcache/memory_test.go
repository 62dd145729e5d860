package httpcache

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil/wait"
)

func keyOf(s string) Key { return VariantKey(Key{}, s) }

func entry(name string, body int, tags ...string) *Entry {
	return &Entry{Key: keyOf(name), Status: 200, Header: http.Header{"Content-Type": {"text/plain"}},
		Body: make([]byte, body), Path: "a.example/" + name, Tags: tags, TTL: time.Hour}
}

func newMem(t testing.TB, o MemoryOptions) *MemoryStore {
	s, err := NewMemoryStore(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestMemoryStoreOptions(t *testing.T) {
	if _, err := NewMemoryStore(MemoryOptions{}); err == nil {
		t.Fatal("zero max bytes accepted")
	}
	if _, err := NewMemoryStore(MemoryOptions{MaxBytes: 10, MaxEntryBytes: 11}); err == nil {
		t.Fatal("entry limit above the budget accepted")
	}
}

func TestMemoryStoreGetSetDelete(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, MemoryOptions{MaxBytes: 1 << 20})
	if e, err := s.Get(ctx, keyOf("x")); e != nil || err != nil {
		t.Fatal("miss returned an entry")
	}
	a := entry("x", 10)
	if err := s.Set(ctx, a); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Get(ctx, keyOf("x")); e != a {
		t.Fatal("Get after Set")
	}
	b := entry("x", 20)
	_ = s.Set(ctx, b)
	if e, _ := s.Get(ctx, keyOf("x")); e != b {
		t.Fatal("Set did not replace")
	}
	_ = s.Delete(ctx, keyOf("x"))
	if e, _ := s.Get(ctx, keyOf("x")); e != nil {
		t.Fatal("Delete")
	}
}

func TestMemoryStoreRejects(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, MemoryOptions{MaxBytes: 1 << 20, MaxEntryBytes: 4096})
	if err := s.Set(ctx, entry("big", 5000)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large entry: %v", err)
	}
	many := make([]string, MaxTags+1)
	for i := range many {
		many[i] = fmt.Sprint("t", i)
	}
	if err := s.Set(ctx, entry("tags", 1, many...)); !errors.Is(err, ErrBadTags) {
		t.Fatalf("too many tags: %v", err)
	}
	long := string(make([]byte, MaxTagLen+1))
	if err := s.Set(ctx, entry("long", 1, long)); !errors.Is(err, ErrBadTags) {
		t.Fatalf("long tag: %v", err)
	}
	if err := s.Set(ctx, entry("empty", 1, "")); !errors.Is(err, ErrBadTags) {
		t.Fatalf("empty tag: %v", err)
	}
	e := entry("nottl", 1)
	e.TTL = 0
	if err := s.Set(ctx, e); !errors.Is(err, ErrNoTTL) {
		t.Fatalf("no TTL: %v", err)
	}
	if st := s.Stats(); st.Rejected != 5 || st.Entries != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMemoryStoreBoundedByBytes(t *testing.T) {
	ctx := context.Background()
	const budget = 64 << 10
	s := newMem(t, MemoryOptions{MaxBytes: budget, MaxEntryBytes: 4096})
	for i := range 200 {
		if err := s.Set(ctx, entry(fmt.Sprint(i), 1000, "all", fmt.Sprint("t", i))); err != nil {
			t.Fatal(err)
		}
	}
	s.CleanUp()
	st := s.Stats()
	if st.Bytes > budget {
		t.Fatalf("%d bytes stored, budget %d", st.Bytes, budget)
	}
	if st.Evictions == 0 || int(st.Evictions)+st.Entries != 200 {
		t.Fatalf("stats %+v: evictions + entries != 200", st)
	}
	// The tag index follows evictions: "all" names exactly the live
	// entries, each per-entry tag only a live one.
	wait.For(t, 5*time.Second, "tag index to follow evictions", func() bool {
		tags, refs := s.tagCount()
		return tags == st.Entries+1 && refs == 2*st.Entries
	})
}

func TestMemoryStorePurge(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, MemoryOptions{MaxBytes: 1 << 20})
	_ = s.Set(ctx, &Entry{Key: keyOf("1"), Path: "a.example/v1/items/1", Tags: []string{"items", "item-1"}, TTL: time.Hour})
	_ = s.Set(ctx, &Entry{Key: keyOf("2"), Path: "a.example/v1/items/2", Tags: []string{"items", "item-2"}, TTL: time.Hour})
	_ = s.Set(ctx, &Entry{Key: keyOf("3"), Path: "a.example/v1/users/3", Tags: []string{"users"}, TTL: time.Hour})
	_ = s.Set(ctx, &Entry{Key: keyOf("4"), Path: "b.example/v1/items/4", TTL: time.Hour})

	if _, err := s.Purge(ctx, Purge{}); !errors.Is(err, ErrBadPurge) {
		t.Fatalf("empty purge: %v", err)
	}
	if _, err := s.Purge(ctx, Purge{All: true, Tag: "x"}); !errors.Is(err, ErrBadPurge) {
		t.Fatalf("double purge: %v", err)
	}
	_ = s.Set(ctx, &Entry{Key: keyOf("5"), Path: "a.example/v1/items?page=2", TTL: time.Hour})
	_ = s.Set(ctx, &Entry{Key: keyOf("6"), Path: "a.example/v1/items?page=2", Status: 200, TTL: time.Hour})
	if n, _ := s.Purge(ctx, Purge{URL: "a.example/v1/items?page=2"}); n != 2 {
		t.Fatalf("purge url: %d", n)
	}
	if n, _ := s.Purge(ctx, Purge{URL: "a.example/v1/items/1?x"}); n != 0 {
		t.Fatalf("purge url with another query: %d", n)
	}
	if n, _ := s.Purge(ctx, Purge{Tag: "item-1"}); n != 1 {
		t.Fatalf("purge tag item-1: %d", n)
	}
	if n, _ := s.Purge(ctx, Purge{Tag: "nope"}); n != 0 {
		t.Fatalf("purge unknown tag: %d", n)
	}
	if n, _ := s.Purge(ctx, Purge{Prefix: "a.example/v1/items/"}); n != 1 {
		t.Fatalf("purge prefix: %d", n)
	}
	if e, _ := s.Get(ctx, keyOf("4")); e == nil {
		t.Fatal("other host purged")
	}
	if n, _ := s.Purge(ctx, Purge{Tag: "items"}); n != 0 {
		t.Fatalf("purged items again: %d", n)
	}
	// Replacing an entry moves its tags.
	_ = s.Set(ctx, &Entry{Key: keyOf("3"), Path: "a.example/v1/users/3", Tags: []string{"people"}, TTL: time.Hour})
	if n, _ := s.Purge(ctx, Purge{Tag: "users"}); n != 0 {
		t.Fatalf("old tag still purges the replaced entry: %d", n)
	}
	if n, _ := s.Purge(ctx, Purge{All: true}); n != 2 {
		t.Fatalf("purge all: %d", n)
	}
	if e, _ := s.Get(ctx, keyOf("3")); e != nil {
		t.Fatal("purge all left an entry")
	}
	wait.For(t, 5*time.Second, "tag index empty", func() bool { tags, _ := s.tagCount(); return tags == 0 })
}

func TestMemoryStoreExpiry(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, MemoryOptions{MaxBytes: 1 << 20})
	e := entry("short", 1, "t")
	e.TTL = time.Millisecond
	_ = s.Set(ctx, e)
	wait.For(t, 5*time.Second, "entry to expire", func() bool {
		got, _ := s.Get(ctx, keyOf("short"))
		return got == nil
	})
	wait.For(t, 5*time.Second, "expiration counted", func() bool {
		s.CleanUp()
		return s.Stats().Expirations == 1
	})
}

func TestMemoryStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newMem(t, MemoryOptions{MaxBytes: 256 << 10, MaxEntryBytes: 8192})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				name := fmt.Sprint((g*31 + i) % 300)
				switch i % 4 {
				case 0, 1:
					_ = s.Set(ctx, entry(name, 1500, "all", "g"+name))
				case 2:
					if e, _ := s.Get(ctx, keyOf(name)); e != nil && e.Key != keyOf(name) {
						t.Error("wrong entry")
					}
				case 3:
					if i%40 == 3 {
						_, _ = s.Purge(ctx, Purge{Tag: "g" + name})
					} else {
						_ = s.Delete(ctx, keyOf(name))
					}
				}
			}
		}()
	}
	wg.Wait()
	s.CleanUp()
	if st := s.Stats(); st.Bytes > 256<<10 {
		t.Fatalf("over budget: %+v", st)
	}
	_, _ = s.Purge(ctx, Purge{All: true})
	wait.For(t, 5*time.Second, "tag index empty after purge all", func() bool { tags, _ := s.tagCount(); return tags == 0 })
}

func BenchmarkMemoryStoreGetHit(b *testing.B) {
	ctx := context.Background()
	s := newMem(b, MemoryOptions{MaxBytes: 64 << 20})
	keys := make([]Key, 1024)
	for i := range keys {
		e := entry(fmt.Sprint(i), 1024)
		keys[i] = e.Key
		_ = s.Set(ctx, e)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if e, _ := s.Get(ctx, keys[i&1023]); e == nil {
				b.Fatal("miss")
			}
			i++
		}
	})
}

func BenchmarkMemoryStoreSet(b *testing.B) {
	ctx := context.Background()
	s := newMem(b, MemoryOptions{MaxBytes: 4 << 20})
	entries := make([]*Entry, 4096)
	for i := range entries {
		entries[i] = entry(fmt.Sprint(i), 1024, "t")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = s.Set(ctx, entries[i&4095])
		i++
	}
}
