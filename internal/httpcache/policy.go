package httpcache

import "time"

// TTLMode says how a route's Policy.TTL combines with the freshness the
// upstream response gives.
type TTLMode uint8

const (
	// TTLCap caps the upstream freshness at TTL: the lifetime is the smaller
	// of the two. A response without freshness of its own stays without
	// (it is stored only when it could be stored anyway). This is the
	// zero value, the safe default: a route can only shorten what the
	// upstream allows.
	TTLCap TTLMode = iota
	// TTLReplace ignores the upstream freshness (max-age, s-maxage, Expires,
	// heuristics) and uses TTL as the lifetime of every storable response,
	// even one without explicit freshness. no-store, private, no-cache,
	// Authorization and Set-Cookie are still honoured: the override changes
	// how long a response is fresh, never whether it may be shared.
	TTLReplace
)

// Policy is a route's cache policy: the knobs RFC 9111 leaves to the cache
// operator. The zero value (or a nil *Policy) is the strict default.
type Policy struct {
	// TTL, when positive, overrides the upstream freshness as Mode says.
	TTL  time.Duration
	Mode TTLMode
	// AllowAuthorized lets responses to requests carrying Authorization be
	// stored, and then only when the response says public, s-maxage or
	// must-revalidate (RFC 9111 §3.5). Off by default.
	AllowAuthorized bool
	// AllowSetCookie lets responses carrying Set-Cookie be stored (the
	// cookie is then served to every client). Off by default.
	AllowSetCookie bool
	// Heuristic enables heuristic freshness (RFC 9111 §4.2.2) for responses
	// without explicit freshness: HeuristicFraction (default 0.1) of the time
	// since Last-Modified, at most HeuristicMax (default 24h). Off by default.
	Heuristic         bool
	HeuristicFraction float64
	HeuristicMax      time.Duration
	// StaleIfError, when positive, is the stale-if-error window (RFC 5861
	// §4) of stored responses that do not give one: how long past its
	// freshness a response may still be served when the upstream fails
	// (an error, 500, 502, 503 or 504). The response's own directive wins;
	// no-cache, must-revalidate, proxy-revalidate and s-maxage still
	// forbid serving it stale.
	StaleIfError time.Duration
	// Targeted lists the targeted cache-control fields (RFC 9213) this
	// cache honours, in order of precedence, as canonical header names;
	// see ResponseDirectives. Empty: none, Cache-Control alone decides.
	Targeted []string
}

// defaultPolicy stands in for a nil *Policy.
var defaultPolicy Policy

func (p *Policy) heuristicLifetime(date, lastModified time.Time) time.Duration {
	if !p.Heuristic || lastModified.IsZero() || !lastModified.Before(date) {
		return 0
	}
	f := p.HeuristicFraction
	if f <= 0 {
		f = 0.1
	}
	maxLife := p.HeuristicMax
	if maxLife <= 0 {
		maxLife = 24 * time.Hour
	}
	d := time.Duration(float64(date.Sub(lastModified)) * f)
	return min(d, maxLife)
}
