// Package forwardauth implements the "forward_auth" plugin: every request is
// first described to an external authorization service over HTTP (like
// Traefik's ForwardAuth, nginx auth_request or Envoy's HTTP ext_authz), and
// that service's answer decides what happens to it.
//
//   - 2xx: the request is allowed. The response headers named in
//     copy_response_headers are copied onto the upstream request, and the
//     consumer_header response header, if configured, identifies the
//     consumer.
//   - 3xx, 4xx: the request is refused with the service's own status, body
//     (at most 64KiB) and WWW-Authenticate, Location, Set-Cookie and
//     Content-Type headers, so login redirects and challenges reach the
//     client. With `anonymous`, a 401 or 3xx lets the request continue as
//     the anonymous consumer instead.
//   - 5xx, timeout, unreachable: by default the request is refused with 503
//     "authorization service unavailable" (fail closed); with
//     failure_mode_allow it continues unauthenticated.
//
// Envoy's ext_authz answers 403 when the service fails; this plugin answers
// 503 instead, so a broken authorization service is not mistaken for a
// refusal and clients may retry.
//
// The service is told about the request the gateway routes, not the raw
// request line: X-Forwarded-Uri carries the normalised path the router
// matched (dot segments resolved, duplicate slashes merged, unreserved
// percent-escapes decoded), which is also what the upstream receives before
// any route rewrite, followed by the query string as received. A request
// with more than one Authorization header is refused with 400 before the
// service is called.
package forwardauth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
	"github.com/portico-gw/portico/internal/request"
)

// Name is the plugin name used in configs.
const Name = "forward_auth"

// Defaults of the optional settings.
const (
	DefaultMethod       = http.MethodGet
	DefaultTimeout      = 2 * time.Second
	DefaultMaxBodyBytes = 64 << 10
)

// DefaultForwardHeaders are the request headers sent to the authorization
// service when forward_headers is not set.
var DefaultForwardHeaders = []string{"Authorization", "Cookie"}

// maxDenyBody bounds the body of a refusal relayed to the client.
const maxDenyBody = 64 << 10

// HeaderBodyPartial is sent to the authorization service, with the value
// "true", when forward_body sent only the first max_body_bytes of a larger
// body.
const HeaderBodyPartial = "X-Forwarded-Body-Partial"

// relayedHeaders are the authorization service's response headers passed to
// the client with a refusal or redirect.
var relayedHeaders = []string{"Www-Authenticate", "Location", "Set-Cookie", "Content-Type"}

// alwaysSent are the request headers the plugin always sets on the call to
// the authorization service.
var alwaysSent = []string{
	"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host",
	"X-Forwarded-Proto", "X-Forwarded-For", "X-Request-Id",
}

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(ForwardAuth) }})
}

// ForwardAuth is the configuration of one "forward_auth" plugin instance.
type ForwardAuth struct {
	// Anonymous names a configured consumer that a request this plugin
	// cannot authenticate continues as, instead of being refused.
	Anonymous string `yaml:"anonymous"`

	// URL is the authorization service's endpoint (http or https). Required.
	URL string `yaml:"url"`
	// Method of the call to the service. Default GET.
	Method string `yaml:"method"`
	// Timeout bounds the whole call. Default 2s.
	Timeout config.Duration `yaml:"timeout"`
	// ForwardHeaders are the client request headers sent to the service.
	// Default [Authorization, Cookie]; [] sends none.
	ForwardHeaders []string `yaml:"forward_headers"`
	// ForwardBody sends the first max_body_bytes of the request body to the
	// service; the whole body still reaches the upstream. Default false.
	ForwardBody bool `yaml:"forward_body"`
	// MaxBodyBytes bounds the body sent with forward_body. Default 64KiB.
	MaxBodyBytes config.Size `yaml:"max_body_bytes"`
	// CopyResponseHeaders are copied from an allowing response onto the
	// upstream request. They are always removed from the client's request
	// first, so a client cannot supply them.
	CopyResponseHeaders []string `yaml:"copy_response_headers"`
	// ConsumerHeader names a header of an allowing response that holds the
	// consumer's name or ID. A configured consumer with that name is used;
	// any other name becomes a consumer of that name.
	ConsumerHeader string `yaml:"consumer_header"`
	// FailureModeAllow lets requests through, unauthenticated, when the
	// service fails (unreachable, timeout, 5xx). Default false: 503.
	FailureModeAllow bool `yaml:"failure_mode_allow"`

	base           auth.Base
	endpoint       string
	forward        []string
	copyHeaders    []string
	consumerHeader string
	maxBody        int64
	client         *http.Client
	transport      *http.Transport
	consumers      consumer.Store
	log            *slog.Logger
	// warn logs authorization service failures, rate limited.
	warn      *observe.DependencyWarner
	successes *observe.Counter
}

// Failure reasons, counted and written to the access log as auth_failure.
const (
	reasonUnauthorized = "unauthorized"
	reasonRedirect     = "redirect"
	reasonForbidden    = "forbidden"
	reasonDenied       = "denied"
	reasonError        = "error"
)

// Provision checks the configuration, fills defaults and creates the HTTP
// client used to call the service.
func (p *ForwardAuth) Provision(ctx plugin.Context) error {
	p.base.Anonymous = p.Anonymous
	if err := p.base.Setup(ctx, Name, reasonUnauthorized, reasonRedirect, reasonDenied); err != nil {
		return err
	}
	p.log = ctx.Logger()
	p.warn = observe.NewDependencyWarner(p.log, 0)
	p.consumers = ctx.Consumers()
	p.successes = ctx.Stats().Counter("portico_auth_success_total", fmt.Sprintf("plugin=%q", Name))

	var errs []error
	if u, err := config.CheckServiceURL("url", p.URL); err != nil {
		errs = append(errs, err)
	} else {
		p.endpoint = u.String()
	}
	if p.Method == "" {
		p.Method = DefaultMethod
	}
	if !httpx.ValidToken(p.Method) {
		errs = append(errs, fmt.Errorf("method: %q is not a valid HTTP method", p.Method))
	}
	p.Method = strings.ToUpper(p.Method)
	timeout := p.Timeout.D()
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		errs = append(errs, errors.New("timeout must be positive"))
	}
	switch {
	case p.MaxBodyBytes == 0:
		p.maxBody = DefaultMaxBodyBytes
	case p.MaxBodyBytes < 0:
		errs = append(errs, errors.New("max_body_bytes must be positive"))
	default:
		p.maxBody = int64(p.MaxBodyBytes)
	}

	errs = append(errs, p.checkForwardHeaders()...)
	errs = append(errs, p.checkCopyHeaders()...)
	if p.ConsumerHeader != "" {
		if !httpx.ValidToken(p.ConsumerHeader) {
			errs = append(errs, fmt.Errorf("consumer_header: %q is not a valid header name", p.ConsumerHeader))
		}
		p.consumerHeader = http.CanonicalHeaderKey(p.ConsumerHeader)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	// A redirect from the service is its answer, relayed to the client.
	p.client, p.transport = auth.NewServiceClient(timeout)
	return nil
}

// checkForwardHeaders checks forward_headers and lists the canonical names
// to send.
func (p *ForwardAuth) checkForwardHeaders() []error {
	fwd := p.ForwardHeaders
	if fwd == nil {
		fwd = DefaultForwardHeaders
	}
	var errs []error
	p.forward, errs = headerList("forward_headers", fwd, func(c string) string {
		switch {
		case framing[c]:
			return "is managed by the HTTP layer and cannot be forwarded"
		case isAlwaysSent(c):
			return "is always sent"
		}
		return ""
	})
	return errs
}

// checkCopyHeaders checks copy_response_headers and lists the canonical
// names to copy.
func (p *ForwardAuth) checkCopyHeaders() []error {
	var errs []error
	p.copyHeaders, errs = headerList("copy_response_headers", p.CopyResponseHeaders, func(c string) string {
		if framing[c] || httpx.IsIdentityHeader(c) {
			return "cannot be copied onto the request"
		}
		return ""
	})
	return errs
}

// headerList checks the header names of the option field: each a valid
// name, not refused (refuse returns why the canonical name is refused, or
// ""), and listed once. It returns the canonical names of the good ones.
func headerList(field string, names []string, refuse func(canonical string) string) ([]string, []error) {
	var out []string
	var errs []error
	seen := map[string]bool{}
	for i, h := range names {
		c := http.CanonicalHeaderKey(h)
		if !httpx.ValidToken(h) {
			errs = append(errs, fmt.Errorf("%s[%d]: %q is not a valid header name", field, i, h))
		} else if why := refuse(c); why != "" {
			errs = append(errs, fmt.Errorf("%s[%d]: %s %s", field, i, c, why))
		} else if seen[c] {
			errs = append(errs, fmt.Errorf("%s[%d]: %s is listed twice", field, i, c))
		} else {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out, errs
}

// Cleanup closes the idle connections to the authorization service.
func (p *ForwardAuth) Cleanup() error {
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
	return nil
}

// framing are headers owned by the HTTP layer: the shared hop-by-hop set,
// Host, Content-Length and Expect.
var framing = func() map[string]bool {
	m := map[string]bool{"Host": true, "Content-Length": true, "Expect": true}
	for _, h := range httpx.HopByHop {
		m[h] = true
	}
	return m
}()

func isAlwaysSent(h string) bool {
	for _, a := range alwaysSent {
		if a == h {
			return true
		}
	}
	return false
}

// Wrap returns the handler that asks the authorization service, then calls
// next if it allows the request.
func (p *ForwardAuth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, next) })
}

// serve runs the plugin for one request, then next.
func (p *ForwardAuth) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if _, single := p.base.Authorization(w, r); !single {
		return
	}
	for _, name := range p.copyHeaders {
		delete(r.Header, name)
	}
	areq, status, msg := p.authRequest(r)
	if areq == nil {
		request.WriteError(w, r, status, msg)
		return
	}
	resp, err := p.client.Do(areq)
	if err != nil {
		if r.Context().Err() == nil {
			p.warn.Warn("forward_auth", "authorization service call failed", err, slog.String("plugin", Name), slog.String("url", p.endpoint))
		}
		p.fail(w, r, next)
		return
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDenyBody))
		p.allow(w, r, resp.Header, next)
	case code >= 500:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDenyBody))
		p.warn.Warn("forward_auth", "authorization service failed", nil, slog.String("plugin", Name), slog.String("url", p.endpoint), slog.Int("status", code))
		p.fail(w, r, next)
	case code == http.StatusUnauthorized || (code >= 300 && code < 400):
		if p.Anonymous != "" {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDenyBody))
			p.base.Unauthenticated(w, r, next, "", reasonUnauthorized)
			return
		}
		reason := reasonUnauthorized
		if code < 400 {
			reason = reasonRedirect
		}
		p.relay(w, r, resp, reason)
	case code == http.StatusForbidden:
		p.relay(w, r, resp, reasonForbidden)
	case code >= 400:
		p.relay(w, r, resp, reasonDenied)
	default:
		// 1xx cannot end an exchange; treat it as a broken service.
		p.warn.Warn("forward_auth", "authorization service answered with an unexpected status", nil, slog.String("plugin", Name), slog.String("url", p.endpoint), slog.Int("status", code))
		p.fail(w, r, next)
	}
}

// authRequest builds the call to the authorization service. On failure it
// returns nil with the status and message to answer the client with.
func (p *ForwardAuth) authRequest(r *http.Request) (*http.Request, int, string) {
	var body io.Reader
	partial := false
	if p.ForwardBody && r.Body != nil && r.Body != http.NoBody {
		buf, err := io.ReadAll(io.LimitReader(r.Body, p.maxBody+1))
		if err != nil {
			status, msg := request.BodyReadStatus(err)
			return nil, status, msg
		}
		// The upstream still gets the whole body: what was read, then the
		// rest.
		r.Body = request.Replay(buf, r.Body, true)
		if int64(len(buf)) > p.maxBody {
			buf, partial = buf[:p.maxBody], true
		}
		body = bytes.NewReader(buf)
	}
	areq, err := http.NewRequestWithContext(r.Context(), p.Method, p.endpoint, body)
	if err != nil {
		p.log.Error("building authorization request", "plugin", Name, "error", err)
		return nil, http.StatusInternalServerError, "internal error"
	}
	out := areq.Header
	for _, name := range p.forward {
		if v := r.Header[name]; len(v) > 0 {
			out[name] = append([]string(nil), v...)
		}
	}
	if body != nil {
		if ct := r.Header["Content-Type"]; len(ct) > 0 {
			out["Content-Type"] = append([]string(nil), ct...)
		}
		if partial {
			out.Set(HeaderBodyPartial, "true")
		}
	}
	setForwarded(out, r)
	return areq, 0, ""
}

// setForwarded describes the client's request in X-Forwarded-* headers. The
// client's own X-Forwarded-Host and -Proto are believed only from a trusted
// proxy (the gateway drops them from anyone else before plugins run).
func setForwarded(out http.Header, r *http.Request) {
	rec := request.RecordOf(r)
	out.Set("X-Forwarded-Method", r.Method)
	out.Set("X-Forwarded-Uri", forwardedURI(r, rec))

	host := r.Host
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	clientIP := ""
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		clientIP = h
	}
	requestID := r.Header.Get("X-Request-Id")
	if rec != nil {
		if rec.TLS {
			proto = "https"
		} else {
			proto = "http"
		}
		if rec.TrustedPeer {
			if v := r.Header.Get("X-Forwarded-Host"); v != "" {
				host = firstValue(v)
			}
			if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
				proto = firstValue(v)
			}
		}
		if rec.ClientIP.IsValid() {
			clientIP = rec.ClientIP.String()
		}
		requestID = rec.RequestID
	}
	out.Set("X-Forwarded-Host", host)
	out.Set("X-Forwarded-Proto", proto)
	if clientIP != "" {
		out.Set("X-Forwarded-For", clientIP)
	}
	if requestID != "" {
		out.Set("X-Request-Id", requestID)
	}
}

// forwardedURI is the path the gateway routed (the normalised path the
// router matched, which the upstream also receives) with the query as
// received; outside the gateway, the request's own URI.
func forwardedURI(r *http.Request, rec *request.Record) string {
	if rec == nil || rec.Path == "" {
		return r.URL.RequestURI()
	}
	if q := r.URL.RawQuery; q != "" {
		return rec.Path + "?" + q
	}
	if r.URL.ForceQuery {
		return rec.Path + "?"
	}
	return rec.Path
}

// firstValue returns the first element of a comma-separated list: the
// value set by the proxy closest to the client.
func firstValue(v string) string {
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v)
}

// allow passes the request on after a 2xx from the service.
func (p *ForwardAuth) allow(w http.ResponseWriter, r *http.Request, rh http.Header, next http.Handler) {
	for _, name := range p.copyHeaders {
		if v := rh[name]; len(v) > 0 {
			r.Header[name] = v
		}
	}
	name := ""
	if p.consumerHeader != "" {
		name = strings.TrimSpace(rh.Get(p.consumerHeader))
	}
	if name == "" || !validValue(name) {
		// Allowed but not identified: no consumer is recorded.
		p.successes.Inc()
		next.ServeHTTP(w, r)
		return
	}
	c, ok := p.consumers.ByName(name)
	if !ok {
		c = &consumer.Consumer{Name: name, ID: name}
	}
	p.base.Authenticated(r, c, "")
	next.ServeHTTP(w, r)
}

// fail handles a failed call to the service.
func (p *ForwardAuth) fail(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if p.FailureModeAllow {
		next.ServeHTTP(w, r)
		return
	}
	p.base.Refused(r, reasonError)
	request.WriteError(w, r, http.StatusServiceUnavailable, "authorization service unavailable")
}

// relay answers the client with the service's refusal or redirect.
func (p *ForwardAuth) relay(w http.ResponseWriter, r *http.Request, resp *http.Response, reason string) {
	p.base.Refused(r, reason)
	status := resp.StatusCode
	msg := "forbidden"
	if status == http.StatusUnauthorized || status < 400 {
		msg = "unauthorized"
	}
	if request.IsGRPC(r) {
		// A gRPC client understands only a gRPC status.
		if status < 400 {
			status = http.StatusUnauthorized
		}
		request.WriteError(w, r, status, msg)
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDenyBody))
	if err != nil {
		body = nil
	}
	wh := w.Header()
	for _, name := range relayedHeaders {
		if v := resp.Header[name]; len(v) > 0 {
			wh[name] = v
		}
	}
	if len(body) == 0 && status >= 400 {
		// Nothing to relay: the gateway's own error body, with the
		// service's challenge and cookies kept.
		wh.Del("Content-Type")
		request.WriteError(w, r, status, msg)
		return
	}
	wh.Set("Content-Length", strconv.Itoa(len(body)))
	wh.Set("Cache-Control", "no-store")
	wh.Del("Content-Encoding")
	if rec := request.RecordOf(r); rec != nil {
		rec.ErrorMsg = msg
		if rec.RequestID != "" {
			wh.Set("X-Request-Id", rec.RequestID)
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// validValue reports whether s can be sent as a header value.
func validValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// InjectedHeaders lists the copy_response_headers names, which the gateway
// strips from client requests on every route.
func (p *ForwardAuth) InjectedHeaders() []string {
	return append([]string(nil), p.copyHeaders...)
}

// Interface guards.
var (
	_ plugin.Plugin         = (*ForwardAuth)(nil)
	_ plugin.Cleaner        = (*ForwardAuth)(nil)
	_ plugin.HeaderInjector = (*ForwardAuth)(nil)
)
