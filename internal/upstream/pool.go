// Package upstream holds pools of backend targets: target selection and the
// per-pool HTTP transport with its keep-alive connection pool. Transports are
// kept in a ref-counted Registry keyed by their settings so a config reload
// that leaves an upstream unchanged keeps its warm connections.
package upstream

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/portico-gw/portico/internal/config"
)

// ErrNoTarget is returned by Pick when the pool has no target to offer.
var ErrNoTarget = errors.New("no upstream target available")

// Target is one backend of a pool.
type Target struct {
	// URL is the parsed target URL (scheme, host, optional base path).
	URL *url.URL
	// BasePath is URL's path without a trailing slash ("" for none).
	BasePath string
	// Weight is the relative share of requests.
	Weight int
	// Index is the target's position in its pool.
	Index int
}

// Pool is a named set of targets and the transport that reaches them.
type Pool struct {
	Name    string
	Targets []*Target
	// Transport carries requests to the targets (shared across reloads).
	Transport *Transport

	wheel []uint16
	next  atomic.Uint64
}

// maxWheel bounds the precomputed weighted schedule.
const maxWheel = 4096

// NewPool builds a pool from config. The weighted schedule is precomputed
// with smooth weighted round-robin so Pick is one atomic add and an index.
func NewPool(name string, u *config.Upstream, tr *Transport) (*Pool, error) {
	if len(u.Targets) == 0 {
		return nil, fmt.Errorf("upstream %q has no targets", name)
	}
	if len(u.Targets) > 65535 {
		return nil, fmt.Errorf("upstream %q has too many targets", name)
	}
	p := &Pool{Name: name, Transport: tr}
	weights := make([]int, len(u.Targets))
	for i, t := range u.Targets {
		pu, err := url.Parse(t.URL)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: target %q: %w", name, t.URL, err)
		}
		w := t.Weight
		if w <= 0 {
			w = 1
		}
		weights[i] = w
		p.Targets = append(p.Targets, &Target{URL: pu, BasePath: strings.TrimSuffix(pu.EscapedPath(), "/"), Weight: w, Index: i})
	}
	p.wheel = smoothSchedule(weights)
	return p, nil
}

// smoothSchedule returns nginx's smooth weighted round-robin sequence for
// weights, reduced by their GCD and capped at maxWheel entries.
func smoothSchedule(weights []int) []uint16 {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	for i := range weights {
		weights[i] /= g
		total += weights[i]
	}
	for total > maxWheel {
		total = 0
		for i := range weights {
			weights[i] = (weights[i] + 1) / 2
			total += weights[i]
		}
	}
	cur := make([]int, len(weights))
	out := make([]uint16, 0, total)
	for len(out) < total {
		best := 0
		for i, w := range weights {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, uint16(best))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Pick returns the next target in weighted round-robin order. It takes no
// lock and does not allocate.
func (p *Pool) Pick() (*Target, error) {
	if len(p.Targets) == 0 {
		return nil, ErrNoTarget
	}
	n := p.next.Add(1) - 1
	return p.Targets[p.wheel[n%uint64(len(p.wheel))]], nil
}
