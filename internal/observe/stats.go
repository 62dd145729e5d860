package observe

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Counter is a monotonically increasing count, safe for concurrent use. A
// plugin obtains its counters at provision time and only adds at request
// time, so counting takes no lock.
type Counter struct {
	name   string
	labels string
	n      atomic.Int64
}

// Add increments the counter by d.
func (c *Counter) Add(d int64) { c.n.Add(d) }

// Inc increments the counter by one.
func (c *Counter) Inc() { c.n.Add(1) }

// Value is the current count.
func (c *Counter) Value() int64 { return c.n.Load() }

// Stats is a gateway's set of named counters. It survives reloads: the same
// name and labels always return the same counter. Each gateway runtime owns
// one, which its admin API exposes; nothing is shared between runtimes.
type Stats struct {
	mu sync.Mutex
	m  map[string]*Counter
}

// NewStats returns an empty set of counters.
func NewStats() *Stats { return &Stats{m: map[string]*Counter{}} }

// Counter returns the counter for name and a label string such as
// `plugin="key_auth",reason="invalid"`, creating it on first use.
func (s *Stats) Counter(name, labels string) *Counter {
	key := name + "{" + labels + "}"
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.m[key]
	if !ok {
		c = &Counter{name: name, labels: labels}
		s.m[key] = c
	}
	return c
}

// CounterValue is one counter in a Snapshot.
type CounterValue struct {
	Name   string `json:"name"`
	Labels string `json:"labels,omitempty"`
	Value  int64  `json:"value"`
}

// Snapshot lists every counter, sorted by name and labels.
func (s *Stats) Snapshot() []CounterValue {
	s.mu.Lock()
	out := make([]CounterValue, 0, len(s.m))
	for _, c := range s.m {
		out = append(out, CounterValue{Name: c.name, Labels: c.labels, Value: c.Value()})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].Labels < out[j].Labels
	})
	return out
}
