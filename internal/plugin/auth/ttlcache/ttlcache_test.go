package ttlcache

import (
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestBoundEvictsOldest(t *testing.T) {
	c, err := New[int, string](3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		c.Add(i, "v", t0.Add(time.Minute), t0)
		if n := c.Len(); n > 3 {
			t.Fatalf("cache grew to %d entries", n)
		}
	}
	// A lookup does not keep an entry: eviction follows insertion order.
	if _, ok := c.Get(2, t0); !ok {
		t.Fatal("entry 2 missing")
	}
	c.Add(5, "v", t0.Add(time.Minute), t0)
	for k, want := range map[int]bool{0: false, 1: false, 2: false, 3: true, 4: true, 5: true} {
		if _, ok := c.Get(k, t0); ok != want {
			t.Errorf("entry %d present = %v, want %v", k, ok, want)
		}
	}
}

func TestExpiry(t *testing.T) {
	c, _ := New[string, int](10)
	c.Add("a", 1, t0.Add(10*time.Second), t0)
	if v, ok := c.Get("a", t0.Add(9*time.Second)); !ok || v != 1 {
		t.Fatalf("before expiry: %d, %v", v, ok)
	}
	if _, ok := c.Get("a", t0.Add(10*time.Second)); ok {
		t.Fatal("entry served at its expiry")
	}
	// Replacing renews the entry.
	c.Add("a", 2, t0.Add(time.Minute), t0.Add(10*time.Second))
	if v, ok := c.Get("a", t0.Add(30*time.Second)); !ok || v != 2 {
		t.Fatalf("after replace: %d, %v", v, ok)
	}
}

func TestExpiredDroppedFirst(t *testing.T) {
	c, _ := New[int, int](3)
	for i := range 3 {
		c.Add(i, i, t0.Add(time.Minute), t0)
	}
	later := t0.Add(2 * time.Minute)
	c.Add(10, 10, later.Add(time.Minute), later)
	if n := c.Len(); n != 1 {
		t.Fatalf("%d entries after adding to a cache of expired ones, want 1", n)
	}
	if v, ok := c.Get(10, later); !ok || v != 10 {
		t.Fatalf("new entry: %d, %v", v, ok)
	}
}

func TestBadSize(t *testing.T) {
	if _, err := New[int, int](0); err == nil {
		t.Fatal("size 0 accepted")
	}
}

func TestConcurrent(t *testing.T) {
	c, _ := New[int, int](64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				c.Add(g*1000+i, i, now.Add(50*time.Millisecond), now)
				c.Get(g*1000+i-1, now)
			}
		})
	}
	wg.Wait()
	if n := c.Len(); n > 64 {
		t.Fatalf("cache grew to %d entries", n)
	}
}
