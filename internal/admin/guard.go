package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strings"

	"github.com/portico-gw/portico/internal/config"
)

// guard runs before every admin endpoint. It refuses:
//
//   - a Host the admin API does not answer to, when no token is configured
//     or admin.allowed_hosts is set: a DNS-rebinding page reaches the
//     loopback listener under its own name, which this rejects;
//   - a cross-origin browser write (non-safe method whose Sec-Fetch-Site
//     or Origin names another origin), even with a token.
type guard struct {
	c    Controller
	m    Manager
	next http.Handler
	cop  *http.CrossOriginProtection
}

func newGuard(c Controller, next http.Handler) *guard {
	m, _ := c.(Manager)
	return &guard{c: c, m: m, next: next, cop: http.NewCrossOriginProtection()}
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var cfg *config.Config
	if g.m != nil {
		cfg = g.m.RunningConfig()
	}
	var allowed []string
	tokenSet := false
	if cfg != nil {
		allowed, tokenSet = cfg.Admin.AllowedHosts, cfg.Admin.Token != ""
	}
	if (!tokenSet || len(allowed) > 0) && !hostAllowed(r.Host, allowed) {
		writeJSON(w, http.StatusForbidden, map[string]any{
			"error": "forbidden: the admin API answers only to localhost, 127.0.0.0/8, [::1] and the names in admin.allowed_hosts in the Host header"})
		return
	}
	if err := g.cop.Check(r); err != nil || crossScheme(r) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "forbidden: cross-origin write to the admin API"})
		return
	}
	g.next.ServeHTTP(w, r)
}

// crossScheme reports a write whose Origin has the admin's host but another
// scheme (http.CrossOriginProtection compares hosts only).
func crossScheme(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	want := "http://"
	if r.TLS != nil {
		want = "https://"
	}
	return len(o) < len(want) || !strings.EqualFold(o[:len(want)], want)
}

// hostAllowed reports whether a Host header value names a loopback host
// (localhost, 127.0.0.0/8, ::1, with or without a port) or one of allowed.
func hostAllowed(hostport string, allowed []string) bool {
	h, ok := splitHost(hostport)
	if !ok {
		return false
	}
	if isLoopbackHost(h) {
		return true
	}
	for _, a := range allowed {
		a = strings.TrimSuffix(strings.Trim(a, "[]"), ".")
		if strings.EqualFold(a, h) {
			return true
		}
		if ip, err := netip.ParseAddr(h); err == nil {
			if aip, err := netip.ParseAddr(a); err == nil && aip.Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}

// splitHost returns the host part of a Host header value (brackets and port
// removed, one trailing dot dropped); ok is false when it is malformed.
func splitHost(hp string) (string, bool) {
	if hp == "" {
		return "", false
	}
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", false
		}
		host, port = hp[1:end], hp[end+1:]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", false
		}
	} else if i := strings.IndexByte(hp, ':'); i >= 0 {
		host, port = hp[:i], hp[i:]
	}
	if port != "" {
		if port[0] != ':' || len(port) > 6 {
			return "", false
		}
		for _, c := range port[1:] {
			if c < '0' || c > '9' {
				return "", false
			}
		}
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", false
	}
	return host, true
}

// isLoopbackHost reports whether h is localhost or a loopback IP address.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// tokenState reports whether the running config sets an admin token and,
// if so, whether r carries it as "Authorization: Bearer <token>".
func tokenState(cfg *config.Config, r *http.Request) (configured, valid bool) {
	if cfg == nil || cfg.Admin.Token == "" {
		return false, false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	// Comparing digests keeps the comparison constant-time in the token's
	// length too.
	want := sha256.Sum256([]byte(cfg.Admin.Token))
	have := sha256.Sum256([]byte(strings.TrimSpace(got)))
	return true, ok && subtle.ConstantTimeCompare(want[:], have[:]) == 1
}

// Interface guard.
var _ http.Handler = (*guard)(nil)
