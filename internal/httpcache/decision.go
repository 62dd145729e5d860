package httpcache

import (
	"net/http"
	"time"

	"github.com/portico-gw/portico/internal/httpx"
)

// Decision is what to do with a request given the stored response (if any).
type Decision uint8

const (
	// Miss: nothing usable is stored, or the request forbids using it
	// (request no-store); forward the request.
	Miss Decision = iota
	// Fresh: serve the stored response as is.
	Fresh
	// StaleOK: the stored response is stale but the request's max-stale
	// accepts it; serve it without revalidating.
	StaleOK
	// StaleRevalidate: stale within stale-while-revalidate; serve it and
	// revalidate in the background (RFC 5861 §3).
	StaleRevalidate
	// Revalidate: send a conditional request first (AddValidators) and
	// apply a 304 with Update304. If that fails, Meta.StaleIfErrorAllowed
	// says whether the stale response may be served instead.
	Revalidate
	// GatewayTimeout: only-if-cached and nothing usable without contacting
	// the origin; answer 504 (RFC 9111 §5.2.1.7).
	GatewayTimeout
)

var decisionNames = [...]string{"miss", "fresh", "stale", "stale-while-revalidate", "revalidate", "gateway-timeout"}

func (d Decision) String() string {
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return "unknown"
}

// RequestCacheControl parses the request's Cache-Control; without one, a
// "Pragma: no-cache" counts as no-cache (RFC 9111 §5.4).
func RequestCacheControl(h http.Header) CacheControl {
	vs := h["Cache-Control"]
	cc := ParseCacheControl(vs)
	if len(vs) == 0 && httpx.HasToken(h["Pragma"], "no-cache") {
		cc.NoCache = true
	}
	return cc
}

// Decide chooses how to answer a request with request directives req from
// the stored response m (nil when nothing is stored) at now.
//
// Order (RFC 9111 §4, §5.2.1, §4.2.4; RFC 5861): request no-store → Miss;
// nothing stored → Miss, or GatewayTimeout with only-if-cached; request or
// response no-cache → Revalidate; request max-age below the age or
// min-fresh above the remaining freshness → Revalidate; fresh → Fresh.
// A stale response: must-revalidate, proxy-revalidate and s-maxage forbid
// serving it stale → Revalidate; max-stale covering the staleness → StaleOK;
// within stale-while-revalidate → StaleRevalidate; else Revalidate. With
// only-if-cached, every Revalidate becomes GatewayTimeout. A nil req means
// no request directives.
func Decide(m *Meta, req *CacheControl, now time.Time) Decision {
	if req == nil {
		req = &NoDirectives
	}
	if req.NoStore {
		return Miss
	}
	if m == nil {
		if req.OnlyIfCached {
			return GatewayTimeout
		}
		return Miss
	}
	d := decide(m, req, now)
	if d == Revalidate && req.OnlyIfCached {
		return GatewayTimeout
	}
	return d
}

func decide(m *Meta, req *CacheControl, now time.Time) Decision {
	if req.NoCache || m.NoCache {
		return Revalidate
	}
	age := m.Age(now)
	if req.MaxAge >= 0 && age > seconds(req.MaxAge) {
		return Revalidate
	}
	if req.MinFresh >= 0 && m.Lifetime-age < seconds(req.MinFresh) {
		return Revalidate
	}
	if m.Lifetime > age {
		return Fresh
	}
	if m.MustRevalidate {
		return Revalidate
	}
	staleness := age - m.Lifetime
	if req.MaxStaleAny || (req.MaxStale >= 0 && staleness <= seconds(req.MaxStale)) {
		return StaleOK
	}
	if m.StaleWhileRevalidate > 0 && staleness <= m.StaleWhileRevalidate {
		return StaleRevalidate
	}
	return Revalidate
}

// StaleIfErrorAllowed reports whether the stored response m may be served
// stale at now because revalidating or fetching it failed (an error or a
// 500, 502, 503 or 504, RFC 5861 §4): the response's or the request's
// stale-if-error window covers its staleness and nothing forbids serving it
// stale (no-cache, must-revalidate, proxy-revalidate, s-maxage). A nil req
// means no request directives.
func (m *Meta) StaleIfErrorAllowed(req *CacheControl, now time.Time) bool {
	if req == nil {
		req = &NoDirectives
	}
	if m.NoCache || m.MustRevalidate || req.NoCache {
		return false
	}
	window := m.StaleIfError
	if req.StaleIfError >= 0 {
		window = max(window, seconds(req.StaleIfError))
	}
	staleness := m.Age(now) - m.Lifetime
	return staleness <= window
}

// ErrorStatus reports whether an upstream status lets stale-if-error apply.
func ErrorStatus(status int) bool {
	return status == 500 || status == 502 || status == 503 || status == 504
}
