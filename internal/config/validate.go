package config

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/httpx"
)

// Validate checks cross references and value ranges, returning every problem
// found as Errors. Route matching syntax (templates, regexps) is checked again
// by the router when the table is compiled.
func (c *Config) Validate() error {
	l := &errorList{root: c.Root}
	c.validateEcho(l)
	for i := range c.Server.Listen {
		validateListener(l, fmt.Sprintf("server.listen[%d]", i), &c.Server.Listen[i], c.Server.Listen[:i])
	}
	c.Server.validate(l)
	c.Admin.validate(l)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		l.add("log.level", "level must be debug, info, warn or error")
	}
	switch c.Log.Access.Format {
	case "json", "text":
	default:
		l.add("log.access.format", "format must be json or text")
	}
	if t := c.Tracing; t != nil {
		validateTracing(l, t)
	}
	for _, name := range sortedKeys(c.Upstreams) {
		validateUpstream(l, "upstreams."+name, name, c.Upstreams[name])
	}
	c.validateRoutes(l)
	c.validateStickyCookieNames(l)
	for i, ps := range c.Plugins {
		if ps.Name == "" {
			l.add(fmt.Sprintf("plugins[%d].name", i), "plugin name is required")
		}
	}
	return l.err()
}

// validateListener checks one listener; before are the listeners ahead of
// it, whose addresses it must not repeat.
func validateListener(l *errorList, p string, ln *Listener, before []Listener) {
	if ln.Addr == "" {
		l.add(p+".addr", "listen address is required (e.g. \":8080\")")
	} else if err := checkListenAddr(ln.Addr); err != nil {
		l.add(p+".addr", "%v", err)
	}
	for _, b := range before {
		if b.Addr == ln.Addr {
			l.add(p+".addr", "listen address %q is used twice", ln.Addr)
			break
		}
	}
	if ln.TLS != nil {
		validateListenerTLS(l, p+".tls", ln.TLS)
	}
	if ln.HTTP3 && ln.TLS == nil {
		l.add(p+".http3", "http3 needs tls on the listener")
	}
	if ln.MaxConnections < -1 {
		l.add(p+".max_connections", "must be a positive number, or -1 for unlimited")
	}
}

func validateListenerTLS(l *errorList, p string, t *TLS) {
	if len(t.Certificates) == 0 {
		l.add(p+".certificates", "at least one certificate is required")
	}
	for j, ct := range t.Certificates {
		if ct.CertFile == "" || ct.KeyFile == "" {
			l.add(fmt.Sprintf("%s.certificates[%d]", p, j), "cert_file and key_file are both required")
		}
	}
	switch t.ClientAuth {
	case "", "request", "require":
	default:
		l.add(p+".client_auth", "client_auth must be request or require")
	}
	if t.ClientAuth != "" && t.ClientCAFile == "" {
		l.add(p+".client_auth", "client_auth needs client_ca_file")
	}
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		l.add(p+".min_version", "min_version must be \"1.2\" or \"1.3\"")
	}
}

// validate checks the server's trusted proxies and limits.
func (s *Server) validate(l *errorList) {
	for i, tp := range s.TrustedProxies {
		if _, err := ParsePrefix(tp); err != nil {
			l.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	lim := s.Limits
	if lim.MaxHeaderBytes < 1024 {
		l.add("server.limits.max_header_bytes", "must be at least 1KiB")
	}
	if lim.MaxHeaderCount < 1 {
		l.add("server.limits.max_header_count", "must be at least 1")
	}
	if lim.MaxURIBytes < 256 {
		l.add("server.limits.max_uri_bytes", "must be at least 256 bytes")
	}
	switch s.PathParams {
	case "reject", "strip", "allow":
	default:
		l.add("server.path_params", "path_params must be reject, strip or allow")
	}
	if lim.MaxBodyBytes < -1 {
		l.add("server.limits.max_body_bytes", "must be a size, or -1 for unlimited")
	}
	if lim.MaxGRPCMessageBytes < -1 {
		l.add("server.limits.max_grpc_message_bytes", "must be a size, or -1 for unlimited")
	}
}

func (a *Admin) validate(l *errorList) {
	if a.Listen != "off" && !strings.Contains(a.Listen, ":") {
		l.add("admin.listen", "admin address %q must be host:port or \"off\"", a.Listen)
	} else if err := checkListenAddr(a.Listen); a.Listen != "off" && err != nil {
		l.add("admin.listen", "%v", err)
	} else if a.Listen != "off" && a.Token == "" && !IsLoopback(a.Listen) {
		l.add("admin.token", "admin.token is required when admin.listen is not a loopback address")
	}
	for i, h := range a.AllowedHosts {
		_, ipErr := netip.ParseAddr(strings.Trim(h, "[]"))
		if h == "" || strings.ContainsAny(h, "/@ *\t") || (strings.Contains(h, ":") && ipErr != nil) {
			l.add(fmt.Sprintf("admin.allowed_hosts[%d]", i), "allowed host %q must be a host name or IP address, without scheme, port or path", h)
		}
	}
}

func (c *Config) validateRoutes(l *errorList) {
	names := map[string]int{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r == nil {
			l.add(p, "route is empty")
			continue
		}
		if r.Name == "" {
			l.add(p+".name", "route name is required")
		} else if j, dup := names[r.Name]; dup {
			l.add(p+".name", "route name %q is already used by routes[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		c.validateRoute(l, p, r)
	}
}

func (c *Config) validateRoute(l *errorList, p string, r *Route) {
	validateMatch(l, p+".match", &r.Match)
	for i, up := range r.Upgrades {
		name, _, _ := strings.Cut(up, "/")
		switch {
		case !httpx.ValidToken(name):
			l.add(fmt.Sprintf("%s.upgrades[%d]", p, i), "upgrade protocol %q must be a protocol name such as websocket", up)
		case strings.EqualFold(name, "h2c"):
			l.add(fmt.Sprintf("%s.upgrades[%d]", p, i), "h2c upgrades are never forwarded (they would tunnel past every route and plugin)")
		}
	}
	c.validateAction(l, p, r)
	c.validateMirror(l, p, r)
	if rw := r.Rewrite; rw != nil {
		validateRewrite(l, p, r, rw)
	}
	if r.Match.PathRegex != "" {
		if _, err := compileRegexp(r.Match.PathRegex); err != nil {
			l.add(p+".match.path_regex", "%v", err)
		}
	}
	for i, ps := range r.Plugins {
		if ps.Name == "" {
			l.add(fmt.Sprintf("%s.plugins[%d].name", p, i), "plugin name is required")
		}
	}
	if r.Retry != nil {
		validateRetry(l, p+".retry", r.Retry)
	}
	if r.BodyIdleTimeout < 0 {
		l.add(p+".body_idle_timeout", "must not be negative")
	}
}

// validateMatch checks a route's match conditions (p is the match's path);
// the router checks templates and expressions again when it compiles them.
func validateMatch(l *errorList, p string, m *Match) {
	n := 0
	for _, s := range []string{m.Path, m.PathPrefix, m.PathRegex} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		l.add(p, "use only one of path, path_prefix and path_regex")
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		l.add(p+".path", "path must start with /")
	}
	if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
		l.add(p+".path_prefix", "path_prefix must start with /")
	}
	for i, h := range m.Hosts {
		if h == "" || strings.ContainsAny(h, "/ ") || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) || strings.Count(h, "*") > 1 {
			l.add(fmt.Sprintf("%s.hosts[%d]", p, i), "host %q must be a name or a *.suffix wildcard", h)
		}
	}
	for i, meth := range m.Methods {
		if meth == "" || strings.ToUpper(meth) != meth || strings.ContainsAny(meth, " \t/") {
			l.add(fmt.Sprintf("%s.methods[%d]", p, i), "method %q must be an upper-case token such as GET", meth)
		}
	}
}

// validateAction checks that a route has exactly one action, and that action.
func (c *Config) validateAction(l *errorList, p string, r *Route) {
	actions := 0
	if r.Upstream != "" {
		actions++
		if _, ok := c.Upstreams[r.Upstream]; !ok && !c.Covered("upstreams") {
			l.add(p+".upstream", "upstream %q is not defined (defined: %s)", r.Upstream, strings.Join(sortedKeys(c.Upstreams), ", "))
		}
	}
	if r.Split != nil {
		actions++
		c.validateSplit(l, p+".split", r.Split)
	}
	if r.Versions != nil {
		actions++
		c.validateVersions(l, p+".versions", r)
	}
	if r.Respond != nil {
		actions++
		if r.Respond.Status < 100 || r.Respond.Status > 599 {
			l.add(p+".respond.status", "status must be between 100 and 599")
		}
	}
	if rd := r.Redirect; rd != nil {
		actions++
		switch rd.Status {
		case 301, 302, 303, 307, 308:
		default:
			l.add(p+".redirect.status", "redirect status must be 301, 302, 303, 307 or 308")
		}
		if rd.URL == "" && rd.Scheme == "" && rd.Host == "" && rd.Path == "" {
			l.add(p+".redirect", "redirect needs url, or at least one of scheme, host, path")
		}
		if RedactUserinfo(rd.URL) != rd.URL {
			l.add(p+".redirect.url", "credentials (user:password@) are not allowed in the redirect URL")
		}
	}
	if actions != 1 {
		l.add(p, "route must have exactly one action: upstream, split, versions, respond or redirect")
	}
}

func validateRewrite(l *errorList, p string, r *Route, rw *Rewrite) {
	if r.Upstream == "" && r.Split == nil && r.Versions == nil {
		l.add(p+".rewrite", "rewrite applies only to routes with an upstream, split or versions")
	}
	if rw.StripPrefix != "" && rw.ReplacePrefix != nil {
		l.add(p+".rewrite", "use only one of strip_prefix and replace_prefix")
	}
	if rw.ReplacePrefix != nil && r.Match.PathPrefix == "" {
		l.add(p+".rewrite.replace_prefix", "replace_prefix needs match.path_prefix")
	}
	if rw.Regex != nil {
		if _, err := compileRegexp(rw.Regex.Pattern); err != nil {
			l.add(p+".rewrite.regex.pattern", "%v", err)
		}
	}
	validateRewriteTransform(l, p+".rewrite", r, rw)
}

// validateUpstream checks the upstream called name at path p.
func validateUpstream(l *errorList, p, name string, u *Upstream) {
	if u == nil || len(u.Targets) == 0 {
		l.add(p, "upstream %q needs at least one target", name)
		return
	}
	u.validate(l, p)
	for i, t := range u.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", p, i)
		if err := checkTargetURL(t.URL); err != nil {
			l.add(tp+".url", "%v", err)
		}
		if t.Weight < 0 {
			l.add(tp+".weight", "weight must be positive")
		}
	}
}

func (u *Upstream) validate(l *errorList, p string) {
	switch u.Protocol {
	case "", "http1", "http2", "h2c":
	default:
		l.add(p+".protocol", "protocol must be http1, http2 or h2c")
	}
	if h := u.HashOn; h != nil {
		n := 0
		if h.Header != "" {
			n++
		}
		if h.Cookie != "" {
			n++
		}
		if h.ClientIP {
			n++
		}
		if h.Path {
			n++
		}
		if len(h.Key) > 0 {
			n++
		}
		if n != 1 {
			l.add(p+".hash_on", "set exactly one of header, cookie, client_ip, path, key")
		}
		if u.Balancer != "consistent_hash" {
			l.add(p+".hash_on", "hash_on only applies to balancer: consistent_hash")
		}
	} else if u.Balancer == "consistent_hash" {
		l.add(p+".balancer", "consistent_hash needs hash_on (header, cookie, client_ip, path or key)")
	}
	if od := u.OutlierDetection; od != nil {
		if od.ConsecutiveFailures < 1 {
			l.add(p+".outlier_detection.consecutive_failures", "must be at least 1")
		}
		if od.MaxEjectionPercent < 0 || od.MaxEjectionPercent > 100 {
			l.add(p+".outlier_detection.max_ejection_percent", "must be between 0 and 100")
		}
	}
	if lim := u.Limits; lim != nil && (lim.MaxRequests < 0 || lim.MaxPending < 0 || lim.MaxConnections < 0) {
		l.add(p+".limits", "limits must not be negative")
	}
	if u.Retry != nil {
		validateRetry(l, p+".retry", u.Retry)
	}
	if t := u.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		l.add(p+".tls", "cert_file and key_file go together")
	}
	if u.BodyIdleTimeout < 0 {
		l.add(p+".body_idle_timeout", "must not be negative")
	}
	if hc := u.HealthCheck; hc != nil {
		validateHealthCheck(l, p+".health_check", hc)
	}
	if u.MaxResponseHeaderBytes != 0 && u.MaxResponseHeaderBytes < 1024 {
		l.add(p+".max_response_header_bytes", "must be at least 1KiB")
	}
	if u.MaxResponseHeaderCount < 0 {
		l.add(p+".max_response_header_count", "must be positive")
	}
}

func validateHealthCheck(l *errorList, p string, hc *HealthCheck) {
	switch hc.Type {
	case "", "http", "tcp", "grpc":
	default:
		l.add(p+".type", "type must be http, tcp or grpc")
	}
	if hc.Path != "" && !strings.HasPrefix(hc.Path, "/") {
		l.add(p+".path", "path must start with /")
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"interval", hc.Interval}, {"timeout", hc.Timeout}, {"jitter", hc.Jitter}} {
		if f.d < 0 {
			l.add(p+"."+f.name, "must not be negative")
		}
	}
	if hc.Interval > 0 && hc.Timeout > 0 && hc.Timeout >= hc.Interval {
		l.add(p+".timeout", "timeout %s must be shorter than interval %s: lower timeout or raise interval", hc.Timeout.D(), hc.Interval.D())
	}
	for i, st := range hc.ExpectedStatuses {
		if st < 100 || st > 599 {
			l.add(fmt.Sprintf("%s.expected_statuses[%d]", p, i), "expected status %d is not an HTTP status (100-599)", st)
		}
	}
	if hc.HealthyThreshold < 0 {
		l.add(p+".healthy_threshold", "must not be negative")
	}
	if hc.UnhealthyThreshold < 0 {
		l.add(p+".unhealthy_threshold", "must not be negative")
	}
}

func validateTracing(l *errorList, t *Tracing) {
	switch t.Exporter {
	case "none":
	case "otlp_http", "otlp_grpc":
		if strings.Contains(t.Endpoint, "@") {
			l.add("tracing.endpoint", "endpoint must be host:port; credentials (user:password@) are not allowed in it, give them in tracing.headers")
		} else if host, port, err := net.SplitHostPort(t.Endpoint); err != nil || host == "" || port == "" || strings.Contains(t.Endpoint, "/") {
			l.add("tracing.endpoint", "endpoint %q must be host:port", t.Endpoint)
		} else if err := checkPort(port, false); err != nil {
			l.add("tracing.endpoint", "endpoint %q: %v", t.Endpoint, err)
		}
	default:
		l.add("tracing.exporter", "exporter must be otlp_http, otlp_grpc or none")
	}
	switch t.Sampler {
	case "always", "never", "ratio", "parent_ratio":
	default:
		l.add("tracing.sampler", "sampler must be always, never, ratio or parent_ratio")
	}
	if r := *t.Ratio; !(r >= 0 && r <= 1) {
		l.add("tracing.ratio", "ratio must be between 0 and 1")
	}
}

func validateRetry(l *errorList, p string, r *Retry) {
	if r.Attempts != nil && (*r.Attempts < 0 || *r.Attempts > 10) {
		l.add(p+".attempts", "attempts must be between 0 and 10")
	}
	for i, on := range r.On {
		switch on {
		case "connect_failure", "reset", "timeout":
			continue
		}
		if code, err := strconv.Atoi(on); err == nil && code >= 400 && code <= 599 {
			continue
		}
		l.add(fmt.Sprintf("%s.on[%d]", p, i), "retry condition %q must be connect_failure, reset, timeout or a status 400-599", on)
	}
	if r.BudgetPercent < 0 || r.BudgetPercent > 100 {
		l.add(p+".budget_percent", "must be between 0 and 100")
	}
	if r.BufferBytes < 0 {
		l.add(p+".buffer_bytes", "must not be negative")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortStrings(s []string) { sort.Strings(s) }
