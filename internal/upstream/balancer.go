package upstream

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// Balancer chooses a target for a request. Implementations are small,
// immutable after construction (per-request state lives in atomics), take no
// lock and do not allocate in Pick.
type Balancer interface {
	// Pick returns a target for r among ts for which f.OK holds, or nil when
	// there is none.
	Pick(ts []*Target, r *http.Request, f *Filter) *Target
}

// BalancerFactory builds a balancer for a pool's targets from its config.
type BalancerFactory func(u *config.Upstream, ts []*Target) (Balancer, error)

var balancers = map[string]BalancerFactory{}

// RegisterBalancer adds a selection policy under a name; it is called from
// init functions only and panics on a duplicate.
func RegisterBalancer(name string, f BalancerFactory) {
	if _, dup := balancers[name]; dup {
		panic("upstream: duplicate balancer " + name)
	}
	balancers[name] = f
}

// BalancerNames lists the registered policies, sorted.
func BalancerNames() []string {
	out := make([]string, 0, len(balancers))
	for n := range balancers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func newBalancer(u *config.Upstream, ts []*Target) (Balancer, error) {
	name := u.Balancer
	if name == "" {
		name = DefaultBalancer
	}
	f, ok := balancers[name]
	if !ok {
		return nil, fmt.Errorf("unknown balancer %q (available: %v)", name, BalancerNames())
	}
	return f(u, ts)
}

// DefaultBalancer is used when an upstream names none.
const DefaultBalancer = "weighted_round_robin"

// maxTried is how many targets a Filter can remember as already tried.
const maxTried = 128

// Filter says which targets a pick may return: those available now (healthy,
// not ejected, not delayed by Retry-After) and not already tried by this
// request. It lives on the stack of the attempt loop.
type Filter struct {
	// Now is the pick time in unix nanoseconds.
	Now int64
	// SlowStart, when set, is the ramp-up window of recovered targets; a
	// balancer may call Admit to thin their traffic.
	SlowStart time.Duration
	tried     [maxTried / 64]uint64
	// MaxInflight, when positive, excludes targets with this many requests
	// in flight (the per-target circuit-breaker limit).
	MaxInflight int64
}

// NewFilter returns a filter for a pick at now.
func NewFilter(now time.Time, slowStart time.Duration) Filter {
	return Filter{Now: now.UnixNano(), SlowStart: slowStart}
}

// OK reports whether t may be picked.
func (f *Filter) OK(t *Target) bool {
	if t.Index < maxTried && f.tried[t.Index/64]&(1<<(t.Index%64)) != 0 {
		return false
	}
	if f.MaxInflight > 0 && t.State.Inflight() >= f.MaxInflight {
		return false
	}
	return t.State.Available(f.Now)
}

// MarkTried excludes t from later picks of the same request.
func (f *Filter) MarkTried(t *Target) {
	if t.Index < maxTried {
		f.tried[t.Index/64] |= 1 << (t.Index % 64)
	}
}

// SlowStartFactor is t's share of normal traffic under slow start (1 when
// slow start is off or over).
func (f *Filter) SlowStartFactor(t *Target) float64 {
	return t.State.SlowStartFactor(f.Now, f.SlowStart)
}
