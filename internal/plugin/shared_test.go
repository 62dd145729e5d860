package plugin

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"
)

type closeCounter struct{ closed *atomic.Int32 }

func (c closeCounter) Close() error { c.closed.Add(1); return nil }

func TestSharedPool(t *testing.T) {
	t.Parallel()
	p := NewSharedPool()
	var created, closed atomic.Int32
	create := func() (io.Closer, error) { created.Add(1); return closeCounter{&closed}, nil }
	v1, rel1, err := p.Acquire("k", create)
	if err != nil {
		t.Fatal(err)
	}
	v2, rel2, _ := p.Acquire("k", create)
	if v1 != v2 || created.Load() != 1 {
		t.Fatalf("second holder got a new value (created %d)", created.Load())
	}
	rel1()
	rel1() // idempotent
	if closed.Load() != 0 || p.Len() != 1 {
		t.Fatal("value closed while still held")
	}
	// A new holder before the last release keeps the same value (reload).
	v3, rel3, _ := p.Acquire("k", create)
	rel2()
	if v3 != v1 || closed.Load() != 0 {
		t.Fatal("value lost across overlapping holders")
	}
	rel3()
	if closed.Load() != 1 || p.Len() != 0 {
		t.Fatalf("closed %d, len %d after the last release", closed.Load(), p.Len())
	}
	// After the last release the next holder gets a fresh value.
	_, rel4, _ := p.Acquire("k", create)
	if created.Load() != 2 {
		t.Fatal("released value reused")
	}
	rel4()
	if _, _, err := p.Acquire("e", func() (io.Closer, error) { return nil, errors.New("boom") }); err == nil || p.Len() != 0 {
		t.Fatal("failed create left an entry")
	}
}

func TestStaticContextShared(t *testing.T) {
	t.Parallel()
	var closed atomic.Int32
	create := func() (io.Closer, error) { return closeCounter{&closed}, nil }
	_, rel, err := StaticContext{}.Shared("k", create)
	if err != nil {
		t.Fatal(err)
	}
	rel()
	rel()
	if closed.Load() != 1 {
		t.Fatalf("closed %d times, want 1", closed.Load())
	}
	pool := NewSharedPool()
	a, ra, _ := StaticContext{Pool: pool}.Shared("k", create)
	b, rb, _ := StaticContext{Pool: pool}.Shared("k", create)
	if a != b {
		t.Fatal("contexts with one pool do not share")
	}
	ra()
	rb()
}
