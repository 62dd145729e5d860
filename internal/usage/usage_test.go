package usage

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

type value struct {
	id     int
	closed atomic.Int32
}

func (v *value) Close() error { v.closed.Add(1); return nil }

func counter() (func() (*value, error), *atomic.Int32) {
	var n atomic.Int32
	return func() (*value, error) { return &value{id: int(n.Add(1))}, nil }, &n
}

func TestShareAndClose(t *testing.T) {
	var p Pool[*value]
	create, made := counter()
	a, relA, err := p.Acquire("k", create)
	if err != nil {
		t.Fatal(err)
	}
	b, relB, _ := p.Acquire("k", create)
	if a != b || made.Load() != 1 || p.Len() != 1 {
		t.Fatalf("same key: shared=%v made=%d len=%d", a == b, made.Load(), p.Len())
	}
	c, relC, _ := p.Acquire("other", create)
	if c == a || p.Len() != 2 {
		t.Fatalf("other key shares the value or Len=%d", p.Len())
	}
	relA()
	relA() // idempotent: must not drop b's reference
	if a.closed.Load() != 0 || p.Len() != 2 {
		t.Fatalf("closed=%d len=%d after one of two releases", a.closed.Load(), p.Len())
	}
	relB()
	if a.closed.Load() != 1 || p.Len() != 1 {
		t.Fatalf("closed=%d len=%d after the last release, want 1, 1", a.closed.Load(), p.Len())
	}
	relC()
	if p.Len() != 0 {
		t.Fatalf("Len=%d, want 0", p.Len())
	}
	d, relD, _ := p.Acquire("k", create)
	if d == a || made.Load() != 3 {
		t.Fatal("a released key did not get a fresh value")
	}
	relD()
}

// TestReloadKeepsValue: a new snapshot acquires before the old one
// releases, so the value (and its state) lives on; a key the new snapshot
// no longer uses is closed.
func TestReloadKeepsValue(t *testing.T) {
	p := New[*value](nil)
	create, _ := counter()
	old, relOld, _ := p.Acquire("kept", create)
	gone, relGone, _ := p.Acquire("dropped", create)

	cur, relCur, _ := p.Acquire("kept", create) // build the new snapshot
	relOld()                                    // clean up the old one
	relGone()
	if cur != old || old.closed.Load() != 0 {
		t.Fatalf("reload replaced or closed the kept value (same=%v closed=%d)", cur == old, old.closed.Load())
	}
	if gone.closed.Load() != 1 || p.Len() != 1 {
		t.Fatalf("dropped value closed=%d, Len=%d; want 1, 1", gone.closed.Load(), p.Len())
	}
	relCur()
}

func TestCreateError(t *testing.T) {
	var p Pool[*value]
	boom := errors.New("boom")
	_, rel, err := p.Acquire("k", func() (*value, error) { return nil, boom })
	if !errors.Is(err, boom) || rel != nil || p.Len() != 0 {
		t.Fatalf("err=%v rel=%v Len=%d", err, rel != nil, p.Len())
	}
	create, _ := counter()
	v, rel, err := p.Acquire("k", create)
	if err != nil || v == nil {
		t.Fatalf("retry after a failed create: %v", err)
	}
	rel()
}

func TestCreatePanic(t *testing.T) {
	var p Pool[*value]
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic swallowed")
			}
		}()
		_, _, _ = p.Acquire("k", func() (*value, error) { panic("bad") })
	}()
	if p.Len() != 0 {
		t.Fatalf("Len=%d after a panicking create", p.Len())
	}
}

func TestCloseFunc(t *testing.T) {
	var closed []string
	p := New(func(s string) error { closed = append(closed, s); return nil })
	_, rel, _ := p.Acquire("k", func() (string, error) { return "v", nil })
	rel()
	if len(closed) != 1 || closed[0] != "v" {
		t.Fatalf("closed %v", closed)
	}
	// A value that is no io.Closer and no close func: dropped quietly.
	var q Pool[int]
	_, rel, _ = q.Acquire("k", func() (int, error) { return 1, nil })
	rel()
}

// TestCreateOutsideLock: a slow create blocks only Acquires of its own key,
// and they get the same value once it is made.
func TestCreateOutsideLock(t *testing.T) {
	var p Pool[*value]
	gate, started := make(chan struct{}), make(chan struct{})
	var made atomic.Int32
	slow := func() (*value, error) {
		if made.Add(1) == 1 {
			close(started)
		}
		<-gate
		return &value{}, nil
	}
	first := make(chan *value)
	go func() { v, _, _ := p.Acquire("slow", slow); first <- v }()
	<-started // the first Acquire holds the key and is creating
	second := make(chan *value)
	go func() { v, _, _ := p.Acquire("slow", slow); second <- v }()
	fast, rel, err := p.Acquire("fast", func() (*value, error) { return &value{}, nil })
	if err != nil || fast == nil {
		t.Fatalf("another key waited on a slow create: %v", err)
	}
	rel()
	close(gate)
	a, b := <-first, <-second
	if a != b || made.Load() != 1 {
		t.Fatalf("waiters got different values (made %d)", made.Load())
	}
}

// TestConcurrent acquires and releases the same keys from many goroutines
// (run with -race): every value is closed exactly once, after its last
// user, and nothing is left.
func TestConcurrent(t *testing.T) {
	var p Pool[*value]
	var all sync.Map
	create := func() (*value, error) {
		v := &value{}
		all.Store(v, true)
		return v, nil
	}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				k := fmt.Sprint("k", (g+i)%4)
				v, rel, err := p.Acquire(k, create)
				if err != nil {
					t.Error(err)
					return
				}
				if v.closed.Load() != 0 {
					t.Error("acquired a closed value")
				}
				rel()
				rel()
			}
		}()
	}
	wg.Wait()
	if p.Len() != 0 {
		t.Fatalf("Len=%d, want 0", p.Len())
	}
	all.Range(func(k, _ any) bool {
		if n := k.(*value).closed.Load(); n != 1 {
			t.Errorf("value closed %d times, want 1", n)
		}
		return true
	})
}
