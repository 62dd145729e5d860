// Package introspection implements the "oauth2_introspection" plugin: it
// accepts opaque OAuth 2.0 bearer tokens by asking the authorization
// server's token introspection endpoint (RFC 7662) whether they are active.
//
// The token is read from "Authorization: Bearer <token>" only. A request
// with more than one Authorization header, or a token holding a comma (two
// tokens joined by a proxy), is refused with 400 ("more than one
// credential") before the endpoint is asked. Results are
// cached in memory, keyed by the SHA-256 of the token (the token itself is
// never stored): an active token until min(now+cache_ttl, exp), an inactive
// one for negative_cache_ttl. Concurrent requests carrying the same uncached
// token share one introspection call. When the endpoint cannot be reached,
// answers with a status other than 200 or with a malformed body, the request
// is refused (fail closed) and nothing is cached.
//
// With `issuer` and `audiences` set, an active token is accepted only when
// the response's "iss" equals the issuer and its "aud" (a string or a list)
// holds one of the audiences; a response without the member is refused.
package introspection

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
	authclaims "github.com/portico-gw/portico/internal/plugin/auth/claims"
	"github.com/portico-gw/portico/internal/plugin/auth/ttlcache"
)

// Name is the plugin name used in configs.
const Name = "oauth2_introspection"

// Defaults of the optional settings.
const (
	DefaultTokenTypeHint    = "access_token"
	DefaultTimeout          = 3 * time.Second
	DefaultCacheTTL         = 5 * time.Minute
	DefaultNegativeCacheTTL = 10 * time.Second
	DefaultCacheMaxEntries  = 10000
)

// maxResponseBytes bounds the introspection response read into memory.
const maxResponseBytes = 1 << 20

// maxTokenBytes bounds the bearer tokens sent to the endpoint.
const maxTokenBytes = 8 << 10

// Challenges sent in WWW-Authenticate (RFC 6750 §3): no error code when the
// request carries no token, invalid_token when the token is refused.
const (
	challengeMissing = `Bearer realm="portico"`
	challengeInvalid = `Bearer realm="portico", error="invalid_token"`
)

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(Introspection) }})
}

// Introspection is the configuration of one "oauth2_introspection" plugin
// instance.
type Introspection struct {
	// Anonymous names a configured consumer that a request this plugin
	// cannot authenticate continues as, instead of being refused.
	Anonymous string `yaml:"anonymous"`

	// IntrospectionURL is the RFC 7662 endpoint (http or https). Required.
	IntrospectionURL string `yaml:"introspection_url"`
	// ClientID and ClientSecret authenticate the gateway to the endpoint
	// with HTTP Basic (usually given as ${ENV} references).
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// ClientAuth is "basic" (default; client_id and client_secret are
	// required) or "none" (the endpoint is called without credentials).
	ClientAuth string `yaml:"client_auth"`
	// TokenTypeHint is sent as token_type_hint. Default "access_token".
	TokenTypeHint string `yaml:"token_type_hint"`
	// Timeout bounds one introspection call. Default 3s.
	Timeout config.Duration `yaml:"timeout"`
	// CacheTTL is the longest an active result is cached; it is also cut at
	// the token's exp. Default 5m; negative disables caching of active
	// results.
	CacheTTL config.Duration `yaml:"cache_ttl"`
	// NegativeCacheTTL is how long an inactive result is cached. Default
	// 10s; negative disables caching of inactive results.
	NegativeCacheTTL config.Duration `yaml:"negative_cache_ttl"`
	// CacheMaxEntries bounds the number of cached results. Default 10000.
	CacheMaxEntries int `yaml:"cache_max_entries"`
	// Issuer, when set, must equal the response's "iss" member, or the
	// token is refused (401 invalid_token).
	Issuer string `yaml:"issuer"`
	// Audiences, when set, must include one of the values of the
	// response's "aud" member (a string or a list of strings), or the
	// token is refused (401 invalid_token).
	Audiences []string `yaml:"audiences"`
	// RequiredScopes must all be in the token's space-separated scope, or
	// the request is refused with 403.
	RequiredScopes []string `yaml:"required_scopes"`
	// ConsumerClaim, when set, names the response member whose value must
	// be the name or ID of a configured consumer. When empty, the request
	// is identified as a consumer built from the token: ID sub (or
	// client_id), name username (or the ID).
	ConsumerClaim string `yaml:"consumer_claim"`
	// ClaimsToHeaders copies response members (claim → header name) onto
	// the upstream request. These headers are always removed from the
	// client's request first. Values are rendered by the shared claim rule:
	// strings as is, numbers without exponent, lists of scalars joined with
	// ", ", objects as compact JSON; a missing, null, "" or [] member, or one
	// holding a control character, gives no header.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`

	base      auth.Base
	endpoint  string
	basicAuth string
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger
	// warn logs endpoint failures, rate limited.
	warn      *observe.DependencyWarner
	consumers consumer.Store
	timeout   time.Duration
	posTTL    time.Duration
	negTTL    time.Duration
	// stripHeaders are the canonical claims_to_headers header names.
	stripHeaders []string
	claimHeaders []authclaims.Mapping
	cache        *ttlcache.Cache[[32]byte, *result]
	flight       singleflight.Group
	// now is the clock; tests replace it.
	now func() time.Time
}

// Provision checks the configuration, fills defaults and creates the HTTP
// client used to call the endpoint.
func (p *Introspection) Provision(ctx plugin.Context) error {
	p.base.Anonymous = p.Anonymous
	if err := p.base.Setup(ctx, Name, reasonMalformed, reasonInactive, reasonUnknownConsumer, reasonScope,
		reasonIssuer, reasonAudience); err != nil {
		return err
	}
	p.log = ctx.Logger()
	p.warn = observe.NewDependencyWarner(p.log, 0)
	p.consumers = ctx.Consumers()
	if p.now == nil {
		p.now = ctx.Clock()
	}
	var errs []error
	errs = append(errs, p.checkEndpoint()...)
	errs = append(errs, p.checkLimits()...)
	errs = append(errs, p.checkClaimHeaders()...)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	c, err := ttlcache.New[[32]byte, *result](p.CacheMaxEntries)
	if err != nil {
		return fmt.Errorf("cache_max_entries: %v", err)
	}
	p.cache = c
	// The endpoint must answer itself; a redirect comes back as a non-200
	// answer and fails closed.
	p.client, p.transport = auth.NewServiceClient(p.timeout)
	return nil
}

// checkEndpoint checks introspection_url and the client credentials, and
// renders the Basic authorization sent to the endpoint.
func (p *Introspection) checkEndpoint() []error {
	var errs []error
	if u, err := config.CheckServiceURL("introspection_url", p.IntrospectionURL); err != nil {
		errs = append(errs, err)
	} else {
		p.endpoint = u.String()
	}
	switch p.ClientAuth {
	case "", "basic":
		if p.ClientID == "" || p.ClientSecret == "" {
			errs = append(errs, errors.New("client_id and client_secret are required (or set client_auth: none)"))
		} else {
			// RFC 6749 §2.3.1: both parts are form-encoded before Basic.
			p.basicAuth = "Basic " + base64Encode(url.QueryEscape(p.ClientID)+":"+url.QueryEscape(p.ClientSecret))
		}
	case "none":
		if p.ClientSecret != "" {
			errs = append(errs, errors.New("client_secret is set but client_auth is none"))
		}
	default:
		errs = append(errs, fmt.Errorf("client_auth: %q is not one of basic, none", p.ClientAuth))
	}
	return errs
}

// checkLimits fills the defaults of the timeouts and the cache and checks
// them, the audiences and the required scopes.
func (p *Introspection) checkLimits() []error {
	var errs []error
	if p.TokenTypeHint == "" {
		p.TokenTypeHint = DefaultTokenTypeHint
	}
	p.timeout = durationOr(p.Timeout, DefaultTimeout)
	if p.timeout < 0 {
		errs = append(errs, errors.New("timeout must be positive"))
	}
	p.posTTL = durationOr(p.CacheTTL, DefaultCacheTTL)
	p.negTTL = durationOr(p.NegativeCacheTTL, DefaultNegativeCacheTTL)
	switch {
	case p.CacheMaxEntries == 0:
		p.CacheMaxEntries = DefaultCacheMaxEntries
	case p.CacheMaxEntries < 0:
		errs = append(errs, errors.New("cache_max_entries must be positive"))
	}
	for i, a := range p.Audiences {
		if a == "" {
			errs = append(errs, fmt.Errorf("audiences[%d]: must not be empty", i))
		}
	}
	for i, s := range p.RequiredScopes {
		if s == "" || strings.ContainsAny(s, " \t\"\\") {
			errs = append(errs, fmt.Errorf("required_scopes[%d]: %q is not a valid scope", i, s))
		}
	}
	return errs
}

// checkClaimHeaders checks claims_to_headers against the shared reserved
// header rule (Authorization, which carries the token, is reserved too)
// and lists the headers to set, sorted by claim.
func (p *Introspection) checkClaimHeaders() []error {
	ms, errs := authclaims.Mappings(p.ClaimsToHeaders, "Authorization")
	p.claimHeaders = ms
	p.stripHeaders = authclaims.Headers(ms)
	return errs
}

// Cleanup closes the idle connections to the endpoint.
func (p *Introspection) Cleanup() error {
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
	return nil
}

// Failure reasons, counted and written to the access log as auth_failure.
const (
	reasonMalformed       = "malformed"
	reasonInactive        = "inactive_token"
	reasonUnknownConsumer = "unknown_consumer"
	reasonScope           = "insufficient_scope"
	reasonIssuer          = "bad_issuer"
	reasonAudience        = "bad_audience"
)

func durationOr(d config.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

// Wrap returns the handler that authenticates requests, then calls next.
func (p *Introspection) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, next) })
}

// serve runs the plugin for one request, then next.
func (p *Introspection) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	for _, name := range p.stripHeaders {
		delete(r.Header, name)
	}
	token, ok, multiple := bearerToken(r.Header)
	if multiple {
		p.base.Ambiguous(w, r)
		return
	}
	if !ok {
		p.base.Unauthenticated(w, r, next, challengeMissing, "missing")
		return
	}
	if token == "" {
		p.base.Unauthenticated(w, r, next, challengeInvalid, reasonMalformed)
		return
	}
	res, err := p.lookup(r.Context(), token)
	if err != nil {
		if r.Context().Err() == nil {
			p.warn.Warn("oauth2_introspection", "token introspection failed", err, slog.String("plugin", Name), slog.String("endpoint", p.endpoint))
		}
		p.base.Unauthenticated(w, r, next, challengeInvalid, "error")
		return
	}
	switch {
	case !res.active:
		reason := res.reason
		if reason == "" {
			reason = reasonInactive
		}
		p.base.Unauthenticated(w, r, next, challengeInvalid, reason)
		return
	case res.consumer == nil:
		p.base.Unauthenticated(w, r, next, challengeInvalid, reasonUnknownConsumer)
		return
	case !res.scopeOK:
		w.Header().Set("WWW-Authenticate", p.scopeChallenge())
		p.base.Forbidden(w, r, reasonScope)
		return
	}
	for _, hv := range res.headers {
		r.Header[hv.name] = hv.value
	}
	p.base.AuthenticatedClaims(r, res.consumer, res.credential, res.claims)
	next.ServeHTTP(w, r)
}

func (p *Introspection) scopeChallenge() string {
	return `Bearer realm="portico", error="insufficient_scope", scope="` + strings.Join(p.RequiredScopes, " ") + `"`
}

// bearerToken returns the token of the request's single "Authorization:
// Bearer" header. ok is false when there is no bearer credential at all; an
// empty token with ok true means a malformed one. multiple reports more
// than one Authorization header, or a comma in the token (two credentials
// joined into one line), which the caller refuses as ambiguous.
func bearerToken(h http.Header) (token string, ok, multiple bool) {
	vals := h["Authorization"]
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) > 1 {
		return "", true, true
	}
	v := vals[0]
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false, false
	}
	t := strings.TrimLeft(v[7:], " ")
	if t == "" || len(t) > maxTokenBytes {
		return "", true, false
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == ',':
			return "", true, true
		case c <= ' ' || c >= 0x7f:
			return "", true, false
		}
	}
	return t, true, false
}

func base64Encode(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// InjectedHeaders lists the claims_to_headers names, which the gateway
// strips from client requests on every route.
func (p *Introspection) InjectedHeaders() []string { return authclaims.Headers(p.claimHeaders) }

// Interface guards.
var (
	_ plugin.Plugin         = (*Introspection)(nil)
	_ plugin.Cleaner        = (*Introspection)(nil)
	_ plugin.HeaderInjector = (*Introspection)(nil)
)
