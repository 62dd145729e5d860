package config

import (
	"net/http"
	"strings"

	"github.com/portico-gw/portico/internal/httpx"
)

// Defaults of a route's mirror (see Mirror).
const (
	DefaultMirrorPercent       = 100.0
	DefaultMirrorMaxConcurrent = 64
	DefaultMirrorMaxBody       = Size(64 << 10)
	DefaultMirrorHeader        = "X-Portico-Mirror"
)

// Mirror sends a copy of a sample of a route's requests to a second
// upstream (shadow traffic). The copy is sent in the background: its
// response is discarded, and its latency and failures never reach the
// client, whose request is answered by the route's own upstream.
type Mirror struct {
	// Upstream names the pool the copies go to.
	Upstream string `yaml:"upstream"`
	// Percent is the share of requests mirrored, 0 to 100 (fractions
	// allowed). Default 100.
	Percent *float64 `yaml:"percent"`
	// MaxConcurrent bounds the copies in flight; a request arriving while
	// that many are in flight is not mirrored (counted as dropped).
	// Default 64.
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxBody is the largest request body that is mirrored; a request with
	// a larger body is forwarded whole to the route's upstream but not
	// mirrored (counted as too_large). The body is held in memory while the
	// copy is sent. Default 64KiB.
	MaxBody Size `yaml:"max_body"`
	// Header is the name of the header set to "1" on every copy, so the
	// mirror upstream can tell shadow traffic apart. Default
	// "X-Portico-Mirror".
	Header string `yaml:"header"`
}

// applyDefaults fills the mirror's unset fields; m may be nil.
func (m *Mirror) applyDefaults() {
	if m == nil {
		return
	}
	if m.Percent == nil {
		p := DefaultMirrorPercent
		m.Percent = &p
	}
	setDefault(&m.MaxConcurrent, DefaultMirrorMaxConcurrent)
	setDefault(&m.MaxBody, DefaultMirrorMaxBody)
	setDefault(&m.Header, DefaultMirrorHeader)
}

// validateMirror checks a route's mirror (p is the route's path); m may be
// nil.
func (c *Config) validateMirror(l *errorList, p string, r *Route) {
	m := r.Mirror
	if m == nil {
		return
	}
	p += ".mirror"
	switch {
	case r.Upstream == "":
		l.add(p, "mirror needs the route to proxy to an upstream (not respond or redirect)")
	case m.Upstream == "":
		l.add(p+".upstream", "mirror upstream is required")
	default:
		if _, ok := c.Upstreams[m.Upstream]; !ok && !c.Covered("upstreams") {
			l.add(p+".upstream", "upstream %q is not defined (defined: %s)", m.Upstream, strings.Join(sortedKeys(c.Upstreams), ", "))
		}
	}
	if m.Percent != nil && !(*m.Percent >= 0 && *m.Percent <= 100) {
		l.add(p+".percent", "percent must be between 0 and 100")
	}
	if m.MaxConcurrent < 0 {
		l.add(p+".max_concurrent", "max_concurrent must be greater than 0")
	}
	if m.MaxBody < 0 {
		l.add(p+".max_body", "max_body must be a size such as 64KiB (0 means the default)")
	}
	switch {
	case m.Header != "" && !httpx.ValidToken(m.Header):
		l.add(p+".header", "header %q must be a valid header name", m.Header)
	case httpx.IsHopByHop(http.CanonicalHeaderKey(m.Header)):
		l.add(p+".header", "header %q is a hop-by-hop header and would not reach the mirror upstream", m.Header)
	}
}
