// Package upstream holds pools of backend targets: selection policies
// (balancers), target health (active checks, passive outlier detection),
// circuit-breaker limits, retry budgets and the per-pool HTTP transport. The
// long-lived parts (transports, target state) are ref-counted in registries
// keyed by identity, so a reload that keeps an upstream or a target keeps its
// connections and health.
package upstream

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
)

// ErrNoTarget is returned by Pick when no target is available.
var ErrNoTarget = errors.New("no upstream target available")

// Target is one backend of a pool as the current snapshot sees it.
type Target struct {
	// URL is the parsed target URL (scheme, host, optional base path).
	URL *url.URL
	// BasePath is URL's escaped path without a trailing slash ("" for none).
	BasePath string
	// Weight is the relative share of requests.
	Weight int
	// Index is the target's position in its pool.
	Index int
	// State is the target's runtime state, shared across reloads.
	State *TargetState
}

// Pool is a named set of targets, the policy that picks among them and the
// transport that reaches them.
type Pool struct {
	Name    string
	Targets []*Target
	// Transport carries requests to the targets (shared across reloads).
	Transport *Transport
	// Config is the upstream's validated configuration.
	Config *config.Upstream

	balancer Balancer
	state    *PoolState
	// releases give back the pool and target states (Close).
	releases []func()
	outlier  outlier
	limits   limits
	// closed is set by Close (which runs once, from the goroutine that
	// releases the pool); the states stay referenced for late requests.
	closed bool
	// log and warn report ejections and refusals (nil: not logged).
	log  *slog.Logger
	warn *observe.DependencyWarner
}

// SetLogger makes the pool log outlier ejections (WARN), recoveries from
// them (INFO) and refused requests (WARN, rate limited) to l.
func (p *Pool) SetLogger(l *slog.Logger) {
	p.log, p.warn = l, observe.NewDependencyWarner(l, 0)
}

// NewPool builds a pool from config, acquiring each target's state from
// states (released by Close).
func NewPool(name string, u *config.Upstream, tr *Transport, states *StateRegistry) (*Pool, error) {
	if len(u.Targets) == 0 {
		return nil, fmt.Errorf("upstream %q has no targets", name)
	}
	if len(u.Targets) > 65535 {
		return nil, fmt.Errorf("upstream %q has more than 65535 targets", name)
	}
	p := &Pool{Name: name, Transport: tr, Config: u}
	var release func()
	p.state, release = states.AcquirePool(name)
	p.releases = append(p.releases, release)
	if od := u.OutlierDetection; od != nil && !od.Disabled {
		p.outlier = outlier{enabled: true, consecutive: int32(od.ConsecutiveFailures), base: od.BaseEjectionTime.D(), max: od.MaxEjectionTime.D(), maxPercent: od.MaxEjectionPercent}
	}
	if l := u.Limits; l != nil {
		p.limits.maxRequests = int64(l.MaxRequests)
		if l.MaxConnections > 0 {
			p.limits.maxPerTarget = int64(l.MaxConnections + l.MaxPending)
		}
	}
	for i, t := range u.Targets {
		pu, err := url.Parse(t.URL)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("upstream %q: target %q: %w", name, t.URL, err)
		}
		w := t.Weight
		if w <= 0 {
			w = 1
		}
		st, release := states.Acquire(name + "|" + t.URL)
		p.releases = append(p.releases, release)
		p.Targets = append(p.Targets, &Target{
			URL:      pu,
			BasePath: strings.TrimSuffix(pu.EscapedPath(), "/"),
			Weight:   w,
			Index:    i,
			State:    st,
		})
	}
	b, err := newBalancer(u, p.Targets)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("upstream %q: %w", name, err)
	}
	p.balancer = b
	return p, nil
}

// Pick chooses a target for r that f admits. When none is admissible it
// fails at once, so a dead or saturated pool answers 503 quickly:
// ErrOverloaded when healthy targets exist but are at their in-flight
// limit, ErrNoTarget otherwise.
func (p *Pool) Pick(r *http.Request, f *Filter) (*Target, error) {
	if t := p.balancer.Pick(p.Targets, r, f); t != nil {
		return t, nil
	}
	if f.MaxInflight > 0 {
		for _, t := range p.Targets {
			if t.State.Available(f.Now) && t.State.Inflight() >= f.MaxInflight {
				p.state.overload.Add(1)
				return nil, ErrOverloaded
			}
		}
	}
	return nil, ErrNoTarget
}

// Close releases the pool's target and pool states back to the registry.
// It is idempotent, and the pool stays safe to use afterwards: a request
// that began before Close (a long stream of a retired snapshot) still ends
// on the very state objects it began on, so End and Report after Close
// neither panic nor touch a counter that the request never incremented.
// Once the registry has forgotten a state, only such requests still see it.
func (p *Pool) Close() {
	if p.closed {
		return
	}
	p.closed = true
	for _, release := range p.releases {
		release()
	}
}
