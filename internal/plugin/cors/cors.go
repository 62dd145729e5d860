// Package cors implements the "cors" plugin: it answers CORS preflight
// requests and adds the CORS response headers to actual requests from
// allowed origins.
//
// A preflight (OPTIONS with Origin and Access-Control-Request-Method) is
// answered by the gateway with 204 and never reaches the upstream; one from an
// origin or for a method that is not allowed gets a 403 JSON error. Other
// requests with an allowed Origin are passed on and the gateway's CORS headers
// replace any the upstream sent. Requests without Origin, and requests from
// origins that are not allowed, pass through untouched.
package cors

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

func init() {
	plugin.Register(plugin.Spec{Name: "cors", Phase: plugin.PhaseInit, New: func() plugin.Plugin { return new(CORS) }})
}

// DefaultMethods are the methods allowed when allow_methods is not set.
var DefaultMethods = []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"}

// CORS is the configuration of one "cors" plugin instance.
type CORS struct {
	// AllowOrigins lists the allowed origins: exact origins such as
	// "https://app.example.com", "*" for any origin, or patterns such as
	// "https://*.example.com" where "*" stands for one or more DNS labels.
	// Required.
	AllowOrigins []string `yaml:"allow_origins"`
	// AllowMethods lists the methods a preflight may ask for ("*": any).
	// Default: GET, HEAD, PUT, PATCH, POST, DELETE.
	AllowMethods []string `yaml:"allow_methods"`
	// AllowHeaders lists the request headers sent in
	// Access-Control-Allow-Headers. Default: reflect the preflight's
	// Access-Control-Request-Headers.
	AllowHeaders []string `yaml:"allow_headers"`
	// ExposeHeaders lists the response headers scripts may read
	// (Access-Control-Expose-Headers). Default: none.
	ExposeHeaders []string `yaml:"expose_headers"`
	// AllowCredentials sends Access-Control-Allow-Credentials: true. The
	// allowed origin is then always echoed, never "*".
	AllowCredentials bool `yaml:"allow_credentials"`
	// MaxAge is how long browsers may cache a preflight answer, sent in whole
	// seconds as Access-Control-Max-Age. Default: not sent (browser default).
	MaxAge *config.Duration `yaml:"max_age"`

	anyOrigin bool
	exact     map[string]struct{}
	wild      []wildcard

	anyMethod bool
	methods   []string

	// Precomputed, shared, read-only header values (len == cap).
	acaoAny        []string
	acam           []string
	acah           []string
	aceh           []string
	maxAge         []string
	preflightVary  []string
	reflectHeaders bool
	reflectMethod  bool
	// varyOrigin reports whether Access-Control-Allow-Origin depends on the
	// request's Origin, so responses must carry Vary: Origin.
	varyOrigin bool
}

// wildcard matches origins of the form prefix + labels + suffix, e.g.
// "https://" + "a.b" + ".example.com:8443".
type wildcard struct{ prefix, suffix string }

const (
	hOrigin  = "Origin"
	hVary    = "Vary"
	hACAO    = "Access-Control-Allow-Origin"
	hACAC    = "Access-Control-Allow-Credentials"
	hACAM    = "Access-Control-Allow-Methods"
	hACAH    = "Access-Control-Allow-Headers"
	hACEH    = "Access-Control-Expose-Headers"
	hMaxAge  = "Access-Control-Max-Age"
	hReqMeth = "Access-Control-Request-Method"
	hReqHdrs = "Access-Control-Request-Headers"
)

var (
	valTrue   = []string{"true"}[:1:1]
	valOrigin = []string{"Origin"}[:1:1]
)

// Provision parses the origin patterns and precomputes the header values.
func (c *CORS) Provision(ctx plugin.Context) error {
	c.exact = map[string]struct{}{}
	for _, s := range c.AllowOrigins {
		o, err := parseOrigin(s)
		if err != nil {
			continue // reported by Validate
		}
		switch {
		case o.any:
			c.anyOrigin = true
		case o.wild != nil:
			c.wild = append(c.wild, *o.wild)
		default:
			c.exact[o.exact] = struct{}{}
		}
	}
	c.varyOrigin = !c.anyOrigin || c.AllowCredentials
	c.acaoAny = shared("*")
	if c.anyOrigin && c.AllowCredentials && ctx != nil && ctx.Logger() != nil {
		ctx.Logger().Warn(`cors: allow_origins "*" with allow_credentials lets every site make credentialed requests; the origin is echoed`)
	}

	methods := c.AllowMethods
	if len(methods) == 0 {
		methods = DefaultMethods
	}
	c.methods = c.methods[:0]
	for _, m := range methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "*" {
			c.anyMethod = true
		}
		c.methods = append(c.methods, m)
	}
	switch {
	case c.anyMethod && c.AllowCredentials:
		c.reflectMethod = true
	case c.anyMethod:
		c.acam = shared("*")
	default:
		c.acam = shared(strings.Join(c.methods, ", "))
	}

	switch {
	case len(c.AllowHeaders) == 0:
		c.reflectHeaders = true
	case contains(c.AllowHeaders, "*") && c.AllowCredentials:
		// With credentials browsers take "*" literally; reflect instead.
		c.reflectHeaders = true
	default:
		c.acah = shared(joinTrimmed(c.AllowHeaders))
	}
	if len(c.ExposeHeaders) > 0 {
		c.aceh = shared(joinTrimmed(c.ExposeHeaders))
	}
	if c.MaxAge != nil && c.MaxAge.D() >= 0 {
		c.maxAge = shared(strconv.FormatInt(int64(c.MaxAge.D()/time.Second), 10))
	}
	var vary []string
	if c.varyOrigin {
		vary = append(vary, hOrigin)
	}
	if c.reflectMethod {
		vary = append(vary, hReqMeth)
	}
	if c.reflectHeaders {
		vary = append(vary, hReqHdrs)
	}
	if len(vary) > 0 {
		c.preflightVary = shared(strings.Join(vary, ", "))
	}
	return nil
}

// shared returns a one-element header value that appends cannot modify.
func shared(v string) []string { return []string{v}[:1:1] }

func contains(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}

func joinTrimmed(list []string) string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = strings.TrimSpace(v)
	}
	return strings.Join(out, ", ")
}

// Validate checks the origin patterns, methods, header names and max_age.
func (c *CORS) Validate() error {
	var errs []error
	if len(c.AllowOrigins) == 0 {
		errs = append(errs, errors.New(`allow_origins: at least one origin is required ("*" allows any origin)`))
	}
	for i, s := range c.AllowOrigins {
		if _, err := parseOrigin(s); err != nil {
			errs = append(errs, fmt.Errorf("allow_origins[%d]: %w", i, err))
		}
	}
	for i, m := range c.AllowMethods {
		if m = strings.TrimSpace(m); m != "*" && !httpx.ValidToken(m) {
			errs = append(errs, fmt.Errorf("allow_methods[%d]: %q is not a valid method", i, m))
		}
	}
	for _, f := range []struct {
		name string
		list []string
	}{{"allow_headers", c.AllowHeaders}, {"expose_headers", c.ExposeHeaders}} {
		for i, h := range f.list {
			if h = strings.TrimSpace(h); h != "*" && !httpx.ValidToken(h) {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is not a valid header name", f.name, i, h))
			}
		}
	}
	if c.MaxAge != nil && c.MaxAge.D() < 0 {
		errs = append(errs, fmt.Errorf("max_age: must not be negative, got %s", c.MaxAge.D()))
	}
	return errors.Join(errs...)
}

// origin is one parsed allow_origins entry.
type origin struct {
	any   bool
	exact string
	wild  *wildcard
}

// parseOrigin parses "*", "null", "scheme://host[:port]" or
// "scheme://*.domain[:port]", lowercasing it and dropping a default port.
func parseOrigin(s string) (origin, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "*":
		return origin{any: true}, nil
	case "null":
		return origin{exact: "null"}, nil
	case "":
		return origin{}, errors.New("empty origin")
	}
	s = strings.ToLower(s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return origin{}, fmt.Errorf("%q is not an origin (want scheme://host[:port], e.g. https://app.example.com)", s)
	}
	if !validScheme(scheme) {
		return origin{}, fmt.Errorf("%q: invalid scheme %q", s, scheme)
	}
	if i := strings.IndexAny(rest, "/?#@ \t"); i >= 0 {
		return origin{}, fmt.Errorf("%q: an origin has no path, query, user info or spaces", s)
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return origin{}, fmt.Errorf("%q: unterminated IPv6 address", s)
		}
		host, port = rest[:end+1], rest[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return origin{}, fmt.Errorf("%q: invalid port", s)
		}
		port = strings.TrimPrefix(port, ":")
		if strings.ContainsAny(host, "*") || !validIPv6(host[1:end]) {
			return origin{}, fmt.Errorf("%q: invalid IPv6 address", s)
		}
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
	}
	if port != "" || strings.HasSuffix(rest, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return origin{}, fmt.Errorf("%q: invalid port %q", s, port)
		}
		if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
			port = ""
		}
	}
	suffix := ""
	if port != "" {
		suffix = ":" + port
	}
	if name, ok := strings.CutPrefix(host, "*."); ok {
		if !validHostname(name) {
			return origin{}, fmt.Errorf("%q: invalid domain %q after \"*.\"", s, name)
		}
		return origin{wild: &wildcard{prefix: scheme + "://", suffix: "." + name + suffix}}, nil
	}
	if strings.Contains(host, "*") {
		return origin{}, fmt.Errorf(`%q: "*" is only allowed as a whole leading label, as in https://*.example.com`, s)
	}
	if !strings.HasPrefix(host, "[") && !validHostname(host) {
		return origin{}, fmt.Errorf("%q: invalid host %q", s, host)
	}
	return origin{exact: scheme + "://" + host + suffix}, nil
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func validIPv6(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':' || c == '.') {
			return false
		}
	}
	return true
}

// validHostname reports whether s is one or more dot-separated labels of
// letters, digits and hyphens (no empty labels).
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	label := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if label == 0 {
				return false
			}
			label = 0
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			label++
			if label > 63 {
				return false
			}
		default:
			return false
		}
	}
	return label > 0
}

// originAllowed reports whether a request's Origin value is allowed.
func (c *CORS) originAllowed(o string) bool {
	if _, ok := c.exact[o]; ok {
		return true
	}
	if c.anyOrigin {
		// Without credentials "*" is sent whatever the origin. With
		// credentials the origin is echoed, so it must be a plain origin;
		// "null" (sandboxed and file documents) must be listed explicitly.
		return !c.AllowCredentials || (o != "null" && plainOrigin(o))
	}
	for i := range c.wild {
		if c.wild[i].match(o) {
			return true
		}
	}
	if hasUpper(o) {
		_, ok := c.exact[strings.ToLower(o)]
		return ok
	}
	return false
}

func (w *wildcard) match(o string) bool {
	if len(o) <= len(w.prefix)+len(w.suffix) ||
		!strings.EqualFold(o[:len(w.prefix)], w.prefix) ||
		!strings.EqualFold(o[len(o)-len(w.suffix):], w.suffix) {
		return false
	}
	return validHostname(o[len(w.prefix) : len(o)-len(w.suffix)])
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 'A' && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// plainOrigin reports whether o is safe to echo: printable ASCII without
// spaces or list separators.
func plainOrigin(o string) bool {
	if o == "" {
		return false
	}
	for i := 0; i < len(o); i++ {
		if c := o[i]; c <= ' ' || c >= 0x7f || c == ',' || c == ';' {
			return false
		}
	}
	return true
}

func (c *CORS) methodAllowed(m string) bool {
	if c.anyMethod {
		return httpx.ValidToken(m)
	}
	for _, v := range c.methods {
		if v == m {
			return true
		}
	}
	return false
}

// allowOrigin returns the Access-Control-Allow-Origin value for an allowed
// origin; originVals is the request's Origin header.
func (c *CORS) allowOrigin(originVals []string) []string {
	if c.anyOrigin && !c.AllowCredentials {
		return c.acaoAny
	}
	return originVals[:1:1]
}

// Wrap returns the handler that answers preflights and decorates responses
// to allowed origins.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, next) })
}

// serve runs the plugin for one request, then next.
func (c *CORS) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	ov := r.Header[hOrigin]
	if len(ov) == 0 {
		next.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodOptions {
		if m := r.Header[hReqMeth]; len(m) > 0 {
			c.preflight(w, r, ov, m[0])
			return
		}
	}
	if !c.originAllowed(ov[0]) {
		next.ServeHTTP(w, r)
		return
	}
	rw := writerPool.Get().(*responseWriter)
	rw.c, rw.acao = c, c.allowOrigin(ov)
	rw.Reset(w, rw)
	next.ServeHTTP(rw, r)
	rw.Finish()
	*rw = responseWriter{}
	writerPool.Put(rw)
}

// preflight answers a preflight request without calling the upstream.
func (c *CORS) preflight(w http.ResponseWriter, r *http.Request, ov []string, method string) {
	if !c.originAllowed(ov[0]) {
		request.WriteError(w, r, http.StatusForbidden, "CORS preflight: origin not allowed")
		return
	}
	if !c.methodAllowed(method) {
		request.WriteError(w, r, http.StatusForbidden, "CORS preflight: method not allowed")
		return
	}
	h := w.Header()
	h[hACAO] = c.allowOrigin(ov)
	if c.AllowCredentials {
		h[hACAC] = valTrue
	}
	if c.reflectMethod {
		h[hACAM] = r.Header[hReqMeth][:1:1]
	} else {
		h[hACAM] = c.acam
	}
	if c.reflectHeaders {
		if v := r.Header[hReqHdrs]; len(v) > 0 && validList(v) {
			h[hACAH] = v[:len(v):len(v)]
		}
	} else {
		h[hACAH] = c.acah
	}
	if c.maxAge != nil {
		h[hMaxAge] = c.maxAge
	}
	if c.preflightVary != nil {
		if old := h[hVary]; len(old) == 0 {
			h[hVary] = c.preflightVary
		} else {
			h[hVary] = append(old, c.preflightVary[0])
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// validList reports whether every value is a comma-separated list of tokens.
func validList(vals []string) bool {
	for _, v := range vals {
		for i := 0; i < len(v); i++ {
			if c := v[i]; !httpx.IsTokenChar(c) && c != ',' && c != ' ' && c != '\t' {
				return false
			}
		}
	}
	return true
}

// decorate sets the CORS headers of an actual response, replacing any the
// upstream sent.
func (c *CORS) decorate(h http.Header, acao []string) {
	h[hACAO] = acao
	if c.AllowCredentials {
		h[hACAC] = valTrue
	} else {
		delete(h, hACAC)
	}
	if c.aceh != nil {
		h[hACEH] = c.aceh
	} else {
		delete(h, hACEH)
	}
	if c.varyOrigin {
		addVaryOrigin(h)
	}
}

// addVaryOrigin adds Origin to Vary unless it (or "*") is already there.
func addVaryOrigin(h http.Header) {
	old := h[hVary]
	for _, v := range old {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "*" || strings.EqualFold(part, hOrigin) {
				return
			}
		}
	}
	if len(old) == 0 {
		h[hVary] = valOrigin
	} else {
		h[hVary] = append(old, hOrigin)
	}
}

var writerPool = sync.Pool{New: func() any { return new(responseWriter) }}

// responseWriter adds the CORS headers just before the response headers are
// written. It is recycled when ServeHTTP returns.
type responseWriter struct {
	plugin.HeaderWriter
	c    *CORS
	acao []string
}

// BeforeHeaders adds the CORS headers.
func (w *responseWriter) BeforeHeaders(h http.Header) { w.c.decorate(h, w.acao) }

// Interface guards.
var (
	_ plugin.Plugin       = (*CORS)(nil)
	_ plugin.Validator    = (*CORS)(nil)
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ plugin.HeaderHook   = (*responseWriter)(nil)
)
