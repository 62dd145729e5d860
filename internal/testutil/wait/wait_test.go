package wait

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWithinReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	start := time.Now()
	if !Within(10*time.Second, func() bool { return n.Add(1) >= 5 }) {
		t.Fatal("Within reported false for a condition that came true")
	}
	if n.Load() != 5 {
		t.Fatalf("cond called %d times, want 5", n.Load())
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %s for a condition that held on the fifth poll", el)
	}
}

func TestWithinGivesUpAtTheDeadline(t *testing.T) {
	start := time.Now()
	if Within(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("Within reported true for a condition that never held")
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("gave up after %s, before the 30ms deadline", el)
	}
}

func TestWithinChecksOnceMoreAtTheDeadline(t *testing.T) {
	deadline := time.Now().Add(20 * time.Millisecond)
	if !Within(20*time.Millisecond, func() bool { return !time.Now().Before(deadline) }) {
		t.Fatal("a condition that holds at the deadline was reported false")
	}
}

// failTB records Fatalf instead of ending the test.
type failTB struct {
	testing.TB
	msg string
}

func (f *failTB) Helper() {}
func (f *failTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestForFailsWithTheMessage(t *testing.T) {
	f := &failTB{TB: t}
	For(f, 10*time.Millisecond, "never", func() bool { return false })
	if !strings.Contains(f.msg, "waiting for never") {
		t.Fatalf("For on a deadline that passed: failure %q, want one naming what was awaited", f.msg)
	}
	g := &failTB{TB: t}
	For(g, time.Second, "at once", func() bool { return true })
	if g.msg != "" {
		t.Fatalf("For failed a condition that held: %q", g.msg)
	}
}
