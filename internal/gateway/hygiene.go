package gateway

import (
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/plugin"
)

// Request header hygiene at arrival: everything here runs in identify,
// before routing and before any plugin, so what plugins set afterwards is
// what the upstream receives.

// Strip-set flags.
const (
	// stripAlways: removed from every client request.
	stripAlways uint8 = 1 << iota
	// stripUntrusted: removed unless the peer is a trusted proxy.
	stripUntrusted
)

// porticoPrefix is Portico's own header namespace; clients may not use it.
const porticoPrefix = "X-Portico-"

// spoofable are the forwarding headers only a trusted proxy may set: from
// any other peer they are removed, so neither plugins nor backends (many
// read X-Forwarded-Prefix, X-Original-URL and the like to rebuild URLs or
// pick a path) can be misled by a client.
var spoofable = [...]string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Real-Ip",
	"X-Forwarded-Prefix", "X-Forwarded-Port", "X-Forwarded-Uri", "X-Forwarded-Method",
	"X-Forwarded-Server", "X-Forwarded-Ssl", "X-Forwarded-Scheme",
	"X-Original-Url", "X-Rewrite-Url", "X-Original-Host",
	"X-Client-Ip", "True-Client-Ip",
}

// overrideHeaders are the method-override headers backends honour.
var overrideHeaders = [...]string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// standardHeaders are never put in the global strip set even when a plugin
// writes them: clients legitimately send them on other routes.
var standardHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "Authorization": true,
	"Cache-Control": true, "Content-Encoding": true, "Content-Length": true, "Content-Type": true,
	"Cookie": true, "Expect": true, "Host": true, "If-Match": true, "If-Modified-Since": true,
	"If-None-Match": true, "If-Range": true, "If-Unmodified-Since": true, "Origin": true,
	"Pragma": true, "Range": true, "Referer": true, "User-Agent": true, "X-Request-Id": true,
	"Traceparent": true, "Tracestate": true, "Baggage": true,
}

// edgePolicy is a snapshot's arrival header policy, compiled at load time.
type edgePolicy struct {
	// strip maps canonical names ("_" folded to "-") to strip flags.
	strip          map[string]uint8
	underscores    bool
	methodOverride bool
}

// newEdgePolicy compiles the strip set: identity headers, every header a
// plugin instance of this config injects (on any route), the method-override
// headers and the forwarding headers only trusted proxies may send.
func newEdgePolicy(srv config.Server, insts []*plugin.Instance, logger *slog.Logger) edgePolicy {
	e := edgePolicy{strip: map[string]uint8{}, underscores: srv.UnderscoresInHeaders, methodOverride: srv.MethodOverride}
	for _, h := range spoofable {
		e.strip[h] |= stripUntrusted
	}
	for _, h := range overrideHeaders {
		e.strip[h] |= stripAlways
	}
	for _, h := range httpx.IdentityHeaders {
		e.strip[httpx.FoldName(h)] |= stripAlways
	}
	for _, h := range httpx.ForeignIdentityHeaders {
		e.strip[httpx.FoldName(h)] |= stripAlways
	}
	var skipped []string
	for _, in := range insts {
		hi, ok := in.Plugin.(plugin.HeaderInjector)
		if !ok {
			continue
		}
		for _, h := range hi.InjectedHeaders() {
			c := httpx.FoldName(h)
			if standardHeaders[c] || httpx.IsHopByHop(c) || e.strip[c]&stripUntrusted != 0 {
				skipped = append(skipped, c)
				continue
			}
			e.strip[c] |= stripAlways
		}
	}
	if len(skipped) > 0 && logger != nil {
		sort.Strings(skipped)
		logger.Warn("plugins write standard headers; clients' values of these are not stripped on other routes", "headers", slices.Compact(skipped))
	}
	return e
}

// stripHeaders removes what a client may not send: names with "_" (unless
// allowed), Portico's own X-Portico-* namespace, identity and injected
// headers, method-override headers, and, from untrusted peers, forwarding
// headers. Names are compared as a backend that folds "_" into "-" reads
// them.
func (e *edgePolicy) stripHeaders(h http.Header, trusted bool) {
	for k := range h {
		name := k
		if strings.IndexByte(k, '_') >= 0 {
			if !e.underscores {
				delete(h, k)
				continue
			}
			name = httpx.FoldName(k)
		}
		if len(name) >= len(porticoPrefix) && strings.EqualFold(name[:len(porticoPrefix)], porticoPrefix) {
			delete(h, k)
			continue
		}
		if f := e.strip[name]; f&stripAlways != 0 || (f&stripUntrusted != 0 && !trusted) {
			delete(h, k)
		}
	}
}

var (
	connUpgrade = []string{"Upgrade"}
	teTrailers  = []string{"trailers"}
)

// cleanHopByHop removes the fields the client's Connection header names and
// the standard hop-by-hop fields, so the proxy's own hop-by-hop cleanup
// (which runs after plugins) has nothing left to remove that a plugin set.
// Two things survive: "TE: trailers" (the proxy passes it on), and an
// upgrade request's Upgrade field with "Connection: Upgrade" (the route's
// upgrade policy decides later whether it is forwarded).
func cleanHopByHop(h http.Header) {
	conn := h["Connection"]
	te := h["Te"]
	trailers := len(te) > 0 && httpx.HasToken(te, "trailers")
	upgrade := false
	if len(conn) > 0 {
		httpx.Tokens(conn, func(tok string) bool {
			switch {
			case strings.EqualFold(tok, "upgrade"):
				upgrade = true
			case strings.EqualFold(tok, "close"):
				delete(h, "Close")
			case strings.EqualFold(tok, "keep-alive"):
				delete(h, "Keep-Alive")
			default:
				delete(h, http.CanonicalHeaderKey(tok))
			}
			return true
		})
	}
	upgrade = upgrade && len(h["Upgrade"]) > 0
	for _, k := range httpx.HopByHop {
		if k != "Upgrade" || !upgrade {
			delete(h, k)
		}
	}
	if upgrade {
		h["Connection"] = connUpgrade[:1:1]
	}
	if trailers {
		h["Te"] = teTrailers[:1:1]
	}
}

// compileUpgrades returns the lower-case protocol names a route allows;
// nil config means WebSocket only.
func compileUpgrades(list []string) []string {
	if list == nil {
		return []string{"websocket"}
	}
	out := make([]string, 0, len(list))
	for _, p := range list {
		name, _, _ := strings.Cut(p, "/")
		if strings.EqualFold(name, "h2c") {
			continue
		}
		out = append(out, strings.ToLower(name))
	}
	return out
}

// allowsUpgrade reports whether one Upgrade element ("name" or
// "name/version") names a protocol the route allows. h2c never is.
func (rt *route) allowsUpgrade(tok string) bool {
	name, version, hasVersion := strings.Cut(tok, "/")
	if hasVersion && !httpx.ValidToken(version) || !httpx.ValidToken(name) || strings.EqualFold(name, "h2c") {
		return false
	}
	for _, p := range rt.upgrades {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

// filterUpgrade keeps only the upgrade protocols the route allows. With
// none left the request goes on as a plain request: Upgrade and the
// Connection header are removed (HTTP2-Settings already was on arrival).
func (rt *route) filterUpgrade(h http.Header) {
	up := h["Upgrade"]
	if _, ok := h["Connection"]; !ok {
		delete(h, "Upgrade")
		return
	}
	keep, total := 0, 0
	httpx.Tokens(up, func(tok string) bool {
		total++
		if rt.allowsUpgrade(tok) {
			keep++
		}
		return true
	})
	switch {
	case keep == 0:
		delete(h, "Upgrade")
		delete(h, "Connection")
	case keep == total && len(up) == 1:
	default:
		kept := make([]string, 0, keep)
		httpx.Tokens(up, func(tok string) bool {
			if rt.allowsUpgrade(tok) {
				kept = append(kept, tok)
			}
			return true
		})
		h["Upgrade"] = []string{strings.Join(kept, ", ")}
	}
}

// overrideMethod applies or refuses method overrides; it returns a message
// for a 400 answer, or "". The override headers themselves are removed by
// stripHeaders afterwards.
func (e *edgePolicy) overrideMethod(r *http.Request) string {
	param := r.URL.RawQuery != "" && hasMethodParam(r.URL.RawQuery)
	if !e.methodOverride || r.Method != http.MethodPost {
		if param {
			return "method override (_method query parameter) is not allowed"
		}
		return ""
	}
	want := ""
	add := func(v string) bool {
		v = strings.TrimSpace(v)
		if want != "" && !strings.EqualFold(v, want) {
			return false
		}
		want = v
		return true
	}
	for _, h := range overrideHeaders {
		for _, v := range r.Header[h] {
			if !add(v) {
				return "conflicting method overrides"
			}
		}
	}
	if param {
		for _, v := range methodParamValues(r.URL.RawQuery) {
			if !add(v) {
				return "conflicting method overrides"
			}
		}
	}
	if want == "" {
		return ""
	}
	switch m := strings.ToUpper(want); m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		r.Method = m
		return ""
	}
	return "method override must be GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"
}

// queryPairs calls fn with the raw key and value of each query element,
// split on "&" and ";" (some backends split on either).
func queryPairs(raw string, fn func(k, v string)) {
	for raw != "" {
		var pair string
		if i := strings.IndexAny(raw, "&;"); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		k, v, _ := strings.Cut(pair, "=")
		fn(k, v)
	}
}

// isMethodKey reports whether a raw query key reads as "_method" to a
// backend: after percent-decoding, compared case-insensitively, with the
// first byte also accepted as "." " " or "[" (PHP turns those into "_").
func isMethodKey(k string) bool {
	if strings.ContainsAny(k, "%+") {
		if d, err := url.QueryUnescape(k); err == nil {
			k = d
		}
	}
	k = strings.TrimLeft(k, " ")
	if len(k) < 7 {
		return false
	}
	switch k[0] {
	case '_', '.', '[':
	default:
		return false
	}
	rest := k[1:]
	if i := strings.IndexByte(rest, '['); i >= 0 {
		rest = rest[:i]
	}
	return strings.EqualFold(rest, "method")
}

// hasMethodParam reports whether the raw query has a "_method" parameter.
func hasMethodParam(raw string) bool {
	found := false
	queryPairs(raw, func(k, _ string) {
		if !found && isMethodKey(k) {
			found = true
		}
	})
	return found
}

// methodParamValues returns the decoded values of the "_method" parameters.
func methodParamValues(raw string) []string {
	var out []string
	queryPairs(raw, func(k, v string) {
		if isMethodKey(k) {
			if d, err := url.QueryUnescape(v); err == nil {
				v = d
			}
			out = append(out, v)
		}
	})
	return out
}

// parseForwardedAddr parses one X-Forwarded-For element: an IP address, or
// the ip:port, [ipv6]:port and [ipv6] forms some proxies write (the port is
// dropped). Zones are dropped and IPv4-mapped IPv6 addresses unmapped.
func parseForwardedAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil || !a.Is6() {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return a.WithZone("").Unmap(), true
}
