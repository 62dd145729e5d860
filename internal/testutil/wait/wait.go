// Package wait lets tests wait on a condition instead of sleeping: it polls
// until the condition holds or a deadline passes. It imports nothing of
// Portico, so any package's tests, internal or external, can use it.
package wait

import (
	"testing"
	"time"
)

// Poll intervals: polling starts fast, so a condition that holds almost at
// once costs almost nothing, and backs off so a long wait does not spin.
const (
	firstInterval = time.Millisecond
	maxInterval   = 10 * time.Millisecond
)

// For polls cond until it holds. When d passes first, it fails the test
// with "timed out after d waiting for what", so what names the awaited
// state ("b marked unhealthy"). It must be called from the test's
// goroutine.
func For(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Within(d, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// Within polls cond until it holds or d passes and reports whether it
// held; cond is checked once more at the deadline. Tests that report a
// failure their own way (with extra diagnostics) use it instead of For.
func Within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	interval := firstInterval
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return cond()
		}
		time.Sleep(min(interval, left))
		interval = min(2*interval, maxInterval)
	}
	return true
}
