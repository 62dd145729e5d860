package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/httpx"
	"go.yaml.in/yaml/v3"
)

// Load reads, expands, decodes, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path, os.LookupEnv)
}

// LoadAll is Load that keeps going past errors, as ParseAll does.
func LoadAll(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseAll(data, path, os.LookupEnv)
}

// Parse decodes a YAML document into a validated Config. lookup resolves
// ${VAR} references (os.LookupEnv in production). The returned error is an
// Errors value listing every problem with its path and line.
func Parse(data []byte, source string, lookup func(string) (string, bool)) (*Config, error) {
	cfg, err := ParseAll(data, source, lookup)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// ParseAll is Parse for tools that report every mistake in one run: with
// errors it still returns the config as far as it decoded (nil only when the
// YAML syntax is broken), carrying the errors (Problems) so the gateway's
// build can check the parts that are intact and report its own errors with
// them (Config.Merge). A config returned with an error must never be served.
//
// Decoding reports wrong types, malformed values, unknown fields and unset
// ${VAR}s; a value that failed to decode is left at its zero value, and
// validation skips the part of the file it is in (Config.Covered), so no
// follow-on errors are reported.
func ParseAll(data []byte, source string, lookup func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			root = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
		} else {
			return nil, yamlErrors(nil, "", err)
		}
	}
	if len(root.Content) == 0 || (root.Content[0].Kind == yaml.ScalarNode && root.Content[0].Tag == "!!null") {
		root.Content = []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}
	}
	l := &errorList{root: &root}
	raw := CloneNode(&root)
	expandEnv(l, &root, "", lookup)
	// Unknown fields and malformed values are collected first; each value
	// that cannot decode is then replaced by null, so the rest of the
	// document decodes and is validated in the same run.
	l.prune = true
	checkNode(l, root.Content[0], reflect.TypeOf(Config{}), "")
	for _, n := range l.bad {
		*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
	}
	cfg := &Config{}
	if err := root.Content[0].Decode(cfg); err != nil && len(l.errs) == 0 {
		// checkNode rejects everything the decoder would; this is a
		// safety net that still reports the error in plain words.
		if es, ok := yamlErrors(root.Content[0], "", err).(Errors); ok {
			l.errs = append(l.errs, es...)
		}
	}
	cfg.Root = &root
	cfg.RawRoot = raw
	cfg.Source = source
	sum := sha256.Sum256(data)
	cfg.Hash = hex.EncodeToString(sum[:])
	cfg.problems = l.errs
	cfg.setPaths()
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		var es Errors
		errors.As(err, &es)
		// Validation errors about parts that did not decode are
		// follow-on errors and dropped.
		merged := cfg.Merge(es)
		cfg.problems, _ = merged.(Errors)
	} else {
		cfg.problems = cfg.problems.Tidy()
	}
	if len(cfg.problems) > 0 {
		return cfg, cfg.problems
	}
	return cfg, nil
}

// setPaths records each plugin spec's YAML path so plugins can locate errors.
func (c *Config) setPaths() {
	for i := range c.Plugins {
		c.Plugins[i].Path = fmt.Sprintf("plugins[%d]", i)
	}
	for ri, r := range c.Routes {
		if r == nil {
			continue
		}
		for i := range r.Plugins {
			r.Plugins[i].Path = fmt.Sprintf("routes[%d].plugins[%d]", ri, i)
		}
	}
}

// Defaults for the safe edge limits; each is documented in the README.
const (
	DefaultListen                = ":8080"
	DefaultAdminListen           = "127.0.0.1:9901"
	DefaultMaxHeaderBytes        = 60 << 10
	DefaultMaxHeaderCount        = 100
	DefaultMaxURIBytes           = 8 << 10
	DefaultPathParams            = "reject"
	DefaultReadHeaderTimeout     = Duration(10e9)
	DefaultBodyReadTimeout       = Duration(60e9)
	DefaultIdleTimeout           = Duration(120e9)
	DefaultMaxBodyBytes          = 10 << 20
	DefaultMaxConnections        = 10000
	DefaultShutdownGrace         = Duration(30e9)
	DefaultConnectTimeout        = Duration(5e9)
	DefaultResponseHeaderTimeout = Duration(30e9)
	DefaultIdleConnTimeout       = Duration(90e9)
	DefaultMaxIdleConnsPerTarget = 256
	DefaultTLSHandshakeTimeout   = Duration(10e9)
	DefaultDNSRefresh            = Duration(30e9)
	DefaultBodyIdleTimeout       = Duration(60e9)
	DefaultMaxRespHeaderBytes    = 64 << 10
	DefaultMaxRespHeaderCount    = 100
)

// ApplyDefaults fills a retry policy's unset fields: one retry on connect
// failure, 64KiB replay buffer, a 20% budget with at least 3 concurrent
// retries, and Retry-After waits of at most 1s.
func (r *Retry) ApplyDefaults() {
	if r.Attempts == nil {
		one := 1
		r.Attempts = &one
	}
	if r.On == nil {
		r.On = []string{"connect_failure"}
	}
	setDefault(&r.BufferBytes, 64<<10)
	setDefault(&r.BudgetPercent, 20)
	setDefault(&r.MinRetryConcurrency, 3)
	setDefault(&r.MaxRetryAfter, Duration(1e9))
}

// ApplyDefaults fills every unset field with its documented default.
func (c *Config) ApplyDefaults() {
	s := &c.Server
	if len(s.Listen) == 0 {
		s.Listen = []Listener{{Addr: DefaultListen}}
	}
	for i := range s.Listen {
		if s.Listen[i].MaxConnections == 0 {
			s.Listen[i].MaxConnections = DefaultMaxConnections
		}
	}
	lim := &s.Limits
	setDefault(&lim.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&lim.MaxHeaderCount, DefaultMaxHeaderCount)
	setDefault(&lim.MaxURIBytes, DefaultMaxURIBytes)
	setDefault(&s.PathParams, DefaultPathParams)
	setDefault(&lim.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&lim.BodyReadTimeout, DefaultBodyReadTimeout)
	setDefault(&lim.IdleTimeout, DefaultIdleTimeout)
	setDefault(&lim.MaxBodyBytes, DefaultMaxBodyBytes)
	// A gRPC message may by default be as large as a request body.
	setDefault(&lim.MaxGRPCMessageBytes, lim.MaxBodyBytes)
	setDefault(&s.ShutdownGrace, DefaultShutdownGrace)
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Access.Output == "" {
		c.Log.Access.Output = "stdout"
	}
	if c.Log.Access.Format == "" {
		c.Log.Access.Format = "json"
	}
	if t := c.Tracing; t != nil {
		setDefault(&t.Exporter, "none")
		switch t.Exporter {
		case "otlp_http":
			setDefault(&t.Endpoint, "localhost:4318")
		case "otlp_grpc":
			setDefault(&t.Endpoint, "localhost:4317")
		}
		setDefault(&t.Sampler, "parent_ratio")
		if t.Ratio == nil {
			one := 1.0
			t.Ratio = &one
		}
		setDefault(&t.ServiceName, "portico")
	}
	for _, u := range c.Upstreams {
		if u == nil {
			continue
		}
		setDefault(&u.ConnectTimeout, DefaultConnectTimeout)
		setDefault(&u.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
		setDefault(&u.IdleConnTimeout, DefaultIdleConnTimeout)
		setDefault(&u.MaxIdleConnsPerTarget, DefaultMaxIdleConnsPerTarget)
		setDefault(&u.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
		setDefault(&u.DNSRefresh, DefaultDNSRefresh)
		setDefault(&u.BodyIdleTimeout, DefaultBodyIdleTimeout)
		setDefault(&u.MaxResponseHeaderBytes, DefaultMaxRespHeaderBytes)
		setDefault(&u.MaxResponseHeaderCount, DefaultMaxRespHeaderCount)
		for i := range u.Targets {
			setDefault(&u.Targets[i].Weight, 1)
		}
		if u.OutlierDetection == nil {
			u.OutlierDetection = &OutlierDetection{}
		}
		od := u.OutlierDetection
		setDefault(&od.ConsecutiveFailures, 5)
		setDefault(&od.BaseEjectionTime, Duration(10e9))
		setDefault(&od.MaxEjectionTime, Duration(300e9))
		setDefault(&od.MaxEjectionPercent, 50)
		if u.Retry == nil {
			u.Retry = &Retry{}
		}
		u.Retry.ApplyDefaults()
	}
	for _, r := range c.Routes {
		if r == nil {
			continue
		}
		if r.Respond != nil && r.Respond.Status == 0 {
			r.Respond.Status = 200
		}
		if r.Redirect != nil && r.Redirect.Status == 0 {
			r.Redirect.Status = 302
		}
		if r.Retry != nil {
			r.Retry.ApplyDefaults()
		}
	}
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

func sortStrings(s []string) { sort.Strings(s) }

// Validate checks cross references and value ranges, returning every problem
// found as Errors. Route matching syntax (templates, regexps) is checked again
// by the router when the table is compiled.
func (c *Config) Validate() error {
	l := &errorList{root: c.Root}
	c.validateEcho(l)
	seenAddr := map[string]bool{}
	for i, ln := range c.Server.Listen {
		p := fmt.Sprintf("server.listen[%d]", i)
		if ln.Addr == "" {
			l.add(p+".addr", "listen address is required (e.g. \":8080\")")
		} else if err := checkListenAddr(ln.Addr); err != nil {
			l.add(p+".addr", "%v", err)
		}
		if seenAddr[ln.Addr] {
			l.add(p+".addr", "listen address %q is used twice", ln.Addr)
		}
		seenAddr[ln.Addr] = true
		if ln.TLS != nil {
			if len(ln.TLS.Certificates) == 0 {
				l.add(p+".tls.certificates", "at least one certificate is required")
			}
			for j, ct := range ln.TLS.Certificates {
				cp := fmt.Sprintf("%s.tls.certificates[%d]", p, j)
				if ct.CertFile == "" || ct.KeyFile == "" {
					l.add(cp, "cert_file and key_file are both required")
				}
			}
			switch ln.TLS.ClientAuth {
			case "", "request", "require":
			default:
				l.add(p+".tls.client_auth", "client_auth must be request or require")
			}
			if ln.TLS.ClientAuth != "" && ln.TLS.ClientCAFile == "" {
				l.add(p+".tls.client_auth", "client_auth needs client_ca_file")
			}
			switch ln.TLS.MinVersion {
			case "", "1.2", "1.3":
			default:
				l.add(p+".tls.min_version", "min_version must be \"1.2\" or \"1.3\"")
			}
		}
		if ln.HTTP3 && ln.TLS == nil {
			l.add(p+".http3", "http3 needs tls on the listener")
		}
		if ln.MaxConnections < -1 {
			l.add(p+".max_connections", "must be a positive number, or -1 for unlimited")
		}
	}
	for i, tp := range c.Server.TrustedProxies {
		if _, err := ParsePrefix(tp); err != nil {
			l.add(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	lim := c.Server.Limits
	if lim.MaxHeaderBytes < 1024 {
		l.add("server.limits.max_header_bytes", "must be at least 1KiB")
	}
	if lim.MaxHeaderCount < 1 {
		l.add("server.limits.max_header_count", "must be at least 1")
	}
	if lim.MaxURIBytes < 256 {
		l.add("server.limits.max_uri_bytes", "must be at least 256 bytes")
	}
	switch c.Server.PathParams {
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
	if c.Admin.Listen != "off" && !strings.Contains(c.Admin.Listen, ":") {
		l.add("admin.listen", "admin address %q must be host:port or \"off\"", c.Admin.Listen)
	} else if err := checkListenAddr(c.Admin.Listen); c.Admin.Listen != "off" && err != nil {
		l.add("admin.listen", "%v", err)
	} else if c.Admin.Listen != "off" && c.Admin.Token == "" && !IsLoopback(c.Admin.Listen) {
		l.add("admin.token", "admin.token is required when admin.listen is not a loopback address")
	}
	for i, h := range c.Admin.AllowedHosts {
		_, ipErr := netip.ParseAddr(strings.Trim(h, "[]"))
		if h == "" || strings.ContainsAny(h, "/@ *\t") || (strings.Contains(h, ":") && ipErr != nil) {
			l.add(fmt.Sprintf("admin.allowed_hosts[%d]", i), "allowed host %q must be a host name or IP address, without scheme, port or path", h)
		}
	}
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
		u := c.Upstreams[name]
		p := "upstreams." + name
		if u == nil || len(u.Targets) == 0 {
			l.add(p, "upstream %q needs at least one target", name)
			continue
		}
		validateUpstream(l, p, u)
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
	for i, ps := range c.Plugins {
		if ps.Name == "" {
			l.add(fmt.Sprintf("plugins[%d].name", i), "plugin name is required")
		}
	}
	return l.err()
}

func (c *Config) validateRoute(l *errorList, p string, r *Route) {
	m := r.Match
	n := 0
	for _, s := range []string{m.Path, m.PathPrefix, m.PathRegex} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		l.add(p+".match", "use only one of path, path_prefix and path_regex")
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		l.add(p+".match.path", "path must start with /")
	}
	if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
		l.add(p+".match.path_prefix", "path_prefix must start with /")
	}
	for i, h := range m.Hosts {
		if h == "" || strings.ContainsAny(h, "/ ") || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) || strings.Count(h, "*") > 1 {
			l.add(fmt.Sprintf("%s.match.hosts[%d]", p, i), "host %q must be a name or a *.suffix wildcard", h)
		}
	}
	for i, meth := range m.Methods {
		if meth == "" || strings.ToUpper(meth) != meth || strings.ContainsAny(meth, " \t/") {
			l.add(fmt.Sprintf("%s.match.methods[%d]", p, i), "method %q must be an upper-case token such as GET", meth)
		}
	}
	for i, up := range r.Upgrades {
		name, _, _ := strings.Cut(up, "/")
		switch {
		case !httpx.ValidToken(name):
			l.add(fmt.Sprintf("%s.upgrades[%d]", p, i), "upgrade protocol %q must be a protocol name such as websocket", up)
		case strings.EqualFold(name, "h2c"):
			l.add(fmt.Sprintf("%s.upgrades[%d]", p, i), "h2c upgrades are never forwarded (they would tunnel past every route and plugin)")
		}
	}
	actions := 0
	if r.Upstream != "" {
		actions++
		if _, ok := c.Upstreams[r.Upstream]; !ok && !c.Covered("upstreams") {
			l.add(p+".upstream", "upstream %q is not defined (defined: %s)", r.Upstream, strings.Join(sortedKeys(c.Upstreams), ", "))
		}
	}
	if r.Respond != nil {
		actions++
		if r.Respond.Status < 100 || r.Respond.Status > 599 {
			l.add(p+".respond.status", "status must be between 100 and 599")
		}
	}
	if r.Redirect != nil {
		actions++
		switch r.Redirect.Status {
		case 301, 302, 303, 307, 308:
		default:
			l.add(p+".redirect.status", "redirect status must be 301, 302, 303, 307 or 308")
		}
		if r.Redirect.URL == "" && r.Redirect.Scheme == "" && r.Redirect.Host == "" && r.Redirect.Path == "" {
			l.add(p+".redirect", "redirect needs url, or at least one of scheme, host, path")
		}
		if RedactUserinfo(r.Redirect.URL) != r.Redirect.URL {
			l.add(p+".redirect.url", "credentials (user:password@) are not allowed in the redirect URL")
		}
	}
	if actions != 1 {
		l.add(p, "route must have exactly one action: upstream, respond or redirect")
	}
	if rw := r.Rewrite; rw != nil {
		if r.Upstream == "" {
			l.add(p+".rewrite", "rewrite applies only to routes with an upstream")
		}
		if rw.StripPrefix != "" && rw.ReplacePrefix != nil {
			l.add(p+".rewrite", "use only one of strip_prefix and replace_prefix")
		}
		if rw.ReplacePrefix != nil && m.PathPrefix == "" {
			l.add(p+".rewrite.replace_prefix", "replace_prefix needs match.path_prefix")
		}
		if rw.Regex != nil {
			if _, err := compileRegexp(rw.Regex.Pattern); err != nil {
				l.add(p+".rewrite.regex.pattern", "%v", err)
			}
		}
	}
	if m.PathRegex != "" {
		if _, err := compileRegexp(m.PathRegex); err != nil {
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

func validateUpstream(l *errorList, p string, u *Upstream) {
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

// Defaults of active health checks (see HealthCheck.Times).
const (
	DefaultHealthInterval = Duration(5e9)
	DefaultHealthTimeout  = Duration(2e9)
)

// Times returns the check interval and timeout in force: each as set, and
// an unset one derived from the other so the two never contradict each
// other (the timeout is shorter than the interval). Unset both, they are 5s
// and 2s; an interval alone set gives a timeout of min(2s, interval/2), a
// timeout alone set gives an interval of max(5s, 2×timeout).
func (h *HealthCheck) Times() (interval, timeout Duration) {
	interval, timeout = h.Interval, h.Timeout
	switch {
	case interval == 0 && timeout == 0:
		return DefaultHealthInterval, DefaultHealthTimeout
	case timeout == 0:
		return interval, min(DefaultHealthTimeout, interval/2)
	case interval == 0:
		return max(DefaultHealthInterval, 2*timeout), timeout
	}
	return interval, timeout
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

// LocatedError wraps err (from a plugin or the router) with the line of path.
func (c *Config) LocatedError(path string, err error) error {
	var es Errors
	if errors.As(err, &es) {
		for i := range es {
			if es[i].Line == 0 {
				es[i].Line = LineOf(c.Root, es[i].Path)
			}
		}
		return es
	}
	return Errors{{Path: path, Line: LineOf(c.Root, path), Msg: err.Error()}}
}

// IsLoopback reports whether a host:port listen address binds only a
// loopback interface ("localhost", 127.0.0.0/8 or ::1). An empty host binds
// every interface and is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
