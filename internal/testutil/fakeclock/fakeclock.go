// Package fakeclock is a settable time source for tests: code that reads
// the time through a now func() time.Time field gets Clock.Now, and the
// test moves time forward instead of sleeping. It imports nothing of
// Portico, so any package's tests, internal or external, can use it.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a time source safe for concurrent use that moves only when the
// test moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock reading start.
func New(start time.Time) *Clock { return &Clock{t: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
