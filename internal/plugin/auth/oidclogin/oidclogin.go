// Package oidclogin implements the "oidc_login" plugin: an OpenID Connect
// relying party for browser applications (the authorization code flow with
// PKCE), in the manner of oauth2-proxy.
//
// An unauthenticated browser request is redirected to the identity
// provider's authorization endpoint. The login attempt (state, nonce, PKCE
// code verifier, the URL to return to) travels in a short-lived encrypted
// cookie named after a prefix of the state value, so several logins may run
// at once. The provider sends the browser back to redirect_path, where the
// plugin checks the state, exchanges the code (sending the code verifier),
// verifies the ID token (signature, issuer, audience, expiry) and its nonce,
// and stores the session in an encrypted cookie. Later requests carry the
// session cookie; when the access token has expired the plugin refreshes it
// with the refresh token, server-side, and rewrites the cookie.
//
// Cookies are sealed with AES-256-GCM under a key derived from cookie_secret
// with HKDF-SHA256. GCM is authenticated encryption: a cookie cannot be read
// without the key, and any change to it makes it invalid, so it is both
// encrypted and signed. The AEAD additional data binds each value to its
// cookie name and purpose, and to the issuer and client ID, so a cookie
// minted for one provider or client is never accepted by another route
// that shares cookie_secret. A session larger than one cookie is split
// into numbered cookies (name_0, name_1, …) that are verified as one
// sealed blob. A request carrying one of these cookies twice is refused
// with 400.
//
// Discovery runs during Provision. When the provider cannot be reached then,
// the route still loads and discovery is retried on later requests (at most
// every few seconds); until it succeeds, requests that need the provider
// (login, callback, refresh) are answered 503, while existing valid
// sessions keep working. A provider that cannot be reached (connection
// failure, timeout, 5xx or 429) at any later step — code exchange, ID
// token keys, refresh — is also answered 503 with Retry-After.
//
// The callback and logout paths are compared with the normalised path the
// router matched and the upstream receives, never the raw request path.
// At load time the plugin asks the gateway (plugin.Context.Covers) whether
// its route receives the callback, and refuses the config when it does not
// (see coverage.go).
//
// Logout deletes the browser's cookie; with `redis` set it also revokes
// the session on the server (see revocation.go).
package oidclogin

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
	authclaims "github.com/portico-gw/portico/internal/plugin/auth/claims"
	"github.com/portico-gw/portico/internal/redisclient"
)

// Name is the plugin name used in configs.
const Name = "oidc_login"

// Failure reasons, counted in portico_auth_failures_total and logged as
// auth_failure (besides missing, invalid, expired, error and multiple).
const (
	reasonUnavailable = "idp_unavailable"
	reasonBadState    = "bad_state"
	reasonProviderErr = "provider_error"
	reasonExchange    = "code_rejected"
	reasonBadIDToken  = "bad_id_token"
	reasonBadNonce    = "bad_nonce"
	reasonRefresh     = "refresh_failed"
)

// Defaults.
const (
	DefaultRedirectPath       = "/oauth2/callback"
	DefaultLogoutPath         = "/oauth2/logout"
	DefaultPostLogoutRedirect = "/"
	DefaultCookieName         = "portico_session"
	DefaultSessionTTL         = 8 * time.Hour
	DefaultTimeout            = 10 * time.Second
	DefaultConsumerClaim      = "sub"
	// MinCookieSecret is the minimum length of cookie_secret in bytes.
	MinCookieSecret = 32
)

// DefaultScopes are requested when scopes is not set.
var DefaultScopes = []string{oidc.ScopeOpenID, "profile", "email"}

// discoveryRetry is the minimum interval between discovery attempts after
// a failure.
const discoveryRetry = 5 * time.Second

// refreshShare is how long the result of a token refresh is shared with
// other requests carrying the same refresh token (parallel requests of one
// browser), so a provider that rotates refresh tokens sees one refresh.
const refreshShare = 30 * time.Second

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(OIDCLogin) }})
}

// OIDCLogin is the configuration of one "oidc_login" plugin instance.
type OIDCLogin struct {
	auth.Base `yaml:",inline"`

	// Issuer is the provider's issuer URL; its discovery document is read
	// from Issuer + "/.well-known/openid-configuration". Required.
	Issuer string `yaml:"issuer"`
	// ClientID is the client registered with the provider. Required.
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates the client at the token endpoint (usually
	// "${ENV}"). Empty for a public client, which PKCE still protects.
	ClientSecret string `yaml:"client_secret" secret:"true"`
	// RedirectPath is the callback path the plugin answers on every host of
	// the route. Default "/oauth2/callback". The route must receive a GET
	// of it (e.g. "/app/oauth2/callback" for a route on path_prefix /app),
	// or a route running the same login must; the config is refused
	// otherwise.
	RedirectPath string `yaml:"redirect_path"`
	// RedirectURL overrides the redirect_uri sent to the provider (an
	// absolute URL); its path then replaces redirect_path, and its host
	// must be one the route serves. By default the redirect_uri is
	// scheme://host + redirect_path of the request.
	RedirectURL string `yaml:"redirect_url"`
	// Scopes requested; must include "openid". Default openid, profile,
	// email. Add "groups" for group claims (Okta, Keycloak) and
	// "offline_access" for a refresh token (not Google, which needs
	// authorization parameters this plugin does not send).
	Scopes []string `yaml:"scopes"`
	// LogoutPath clears the session and, when the provider advertises an
	// end_session_endpoint, continues there. Default "/oauth2/logout". Put
	// it under the route's match too; loading warns when the route does
	// not receive it.
	LogoutPath string `yaml:"logout_path"`
	// PostLogoutRedirect is where the browser lands after logout: a path on
	// the same host or an absolute URL. Default "/".
	PostLogoutRedirect string `yaml:"post_logout_redirect"`
	// CookieName names the session cookie. Default "portico_session".
	CookieName string `yaml:"cookie_name"`
	// CookieSecret is the key material for the cookie encryption key, at
	// least 32 bytes (usually "${ENV}"). Required. Cookies are also bound
	// to issuer and client_id: routes sharing the secret but not both of
	// those never accept each other's cookies.
	CookieSecret string `yaml:"cookie_secret" secret:"true"`
	// CookieSecure sets the Secure attribute. Default true.
	CookieSecure *bool `yaml:"cookie_secure"`
	// CookieSameSite is lax (default), strict or none (needs cookie_secure).
	CookieSameSite string `yaml:"cookie_samesite"`
	// SessionTTL is the absolute lifetime of a session. Default 8h. It is
	// an upper bound: without a refresh token the session ends when the
	// access token (or, without expires_in, the ID token) expires.
	SessionTTL config.Duration `yaml:"session_ttl"`
	// Refresh renews expired tokens with the refresh token instead of
	// starting a new login (a provider that cannot be reached answers 503).
	// Default true.
	Refresh *bool `yaml:"refresh"`
	// ClaimsToHeaders sends ID token claims upstream: claim name → header
	// name. These headers are always removed from client requests first.
	// Values are rendered by the shared claim rule: strings as is, numbers
	// without exponent, lists of scalars joined with ", ", objects as
	// compact JSON; a claim the ID token lacks (or has as null, "" or []),
	// or one holding a control character, gives no header.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`
	// PassAccessToken sends "Authorization: Bearer <access token>" upstream.
	PassAccessToken bool `yaml:"pass_access_token"`
	// UnauthenticatedAction is redirect (default: start a login) or deny
	// (401). API clients (Accept: application/json, X-Requested-With:
	// XMLHttpRequest) and methods other than GET and HEAD always get 401.
	UnauthenticatedAction string `yaml:"unauthenticated_action"`
	// ConsumerClaim is the ID token claim that names the consumer. Default
	// "sub"; a consumer of that name in the consumer store is used if defined.
	ConsumerClaim string `yaml:"consumer_claim"`
	// Timeout bounds each call to the provider (discovery, token, keys).
	// Default 10s.
	Timeout config.Duration `yaml:"timeout"`
	// Redis, when set, revokes sessions on the server: logout records the
	// session's ID in Redis (key <key_prefix>oidc:revoked:<session ID>,
	// kept for the rest of the session's lifetime) and every request
	// checks it there, so a copy of a logged-out cookie is refused on every
	// node sharing the Redis. Without it logout only deletes the browser's
	// cookie and a copy stays valid until it expires. Sessions made before
	// redis was set carry no ID and are refused once (users log in again).
	Redis *redisclient.Config `yaml:"redis"`
	// OnRedisError is what happens when Redis cannot answer (with redis
	// set): "fail_closed" (default: requests with a session and logouts are
	// answered 503) or "fail_open" (sessions are accepted unchecked and a
	// logout that cannot be recorded only deletes the browser's cookie).
	OnRedisError string `yaml:"on_redis_error"`

	log          *slog.Logger
	store        consumer.Store
	sealer       *sealer
	sessionAttrs cookieAttrs
	stateAttrs   cookieAttrs
	redirectPath string
	claimHeaders []authclaims.Mapping
	deny         bool
	refresh      bool
	client       *http.Client
	transport    *http.Transport
	watch        *watchTransport
	warn         *observe.DependencyWarner
	revoke       *revocation

	idp          atomic.Pointer[idp]
	discoverMu   sync.Mutex
	lastDiscover time.Time
	retry        time.Duration

	refreshMu sync.Mutex
	refreshes map[string]*refreshCall

	// now is the clock; tests replace it.
	now func() time.Time
}

// idp is the discovered provider.
type idp struct {
	provider   *oidc.Provider
	endpoint   oauth2.Endpoint
	verifier   *oidc.IDTokenVerifier
	endSession string
}

// session is the content of the session cookie.
type session struct {
	// Sub is the ID token subject.
	Sub string `json:"sub"`
	// Name is the consumer name (the consumer_claim value).
	Name string `json:"name"`
	// Claims holds the formatted values of the claims_to_headers claims.
	Claims map[string]string `json:"cl,omitempty"`
	// Expires is the absolute end of the session (Unix seconds).
	Expires int64 `json:"exp"`
	// AccessToken and TokenExpiry (Unix seconds, 0 when unknown).
	AccessToken string `json:"at,omitempty"`
	TokenExpiry int64  `json:"ate,omitempty"`
	// RefreshToken, when the provider issued one.
	RefreshToken string `json:"rt,omitempty"`
	// IDToken is the raw ID token, sent back as id_token_hint on logout.
	IDToken string `json:"idt,omitempty"`
	// ID is the random session ID that logout revokes when redis is set.
	// Sessions made by earlier versions have none.
	ID string `json:"sid,omitempty"`
}

// loginState is the content of a state cookie.
type loginState struct {
	State       string `json:"s"`
	Nonce       string `json:"n"`
	Verifier    string `json:"v"`
	RedirectURI string `json:"r"`
	Return      string `json:"u"`
	Expires     int64  `json:"e"`
}

type refreshCall struct {
	done chan struct{}
	at   time.Time
	s    *session
	err  error
}

// Provision applies defaults, checks the config, derives the cookie key and
// discovers the provider (see the package comment for a failed discovery).
func (p *OIDCLogin) Provision(ctx plugin.Context) error {
	if err := p.Setup(ctx, Name, "expired", reasonUnavailable, reasonBadState, reasonProviderErr,
		reasonExchange, reasonBadIDToken, reasonBadNonce, reasonRefresh, reasonRevoked, reasonStoreUnavailable); err != nil {
		return err
	}
	p.log = ctx.Logger()
	p.warn = observe.NewDependencyWarner(p.log, 0)
	p.store = ctx.Consumers()
	if p.now == nil {
		p.now = ctx.Clock()
	}
	p.retry = discoveryRetry
	p.refreshes = map[string]*refreshCall{}
	p.defaults()
	if err := p.check(); err != nil {
		return err
	}

	p.deny = p.UnauthenticatedAction == "deny"
	p.refresh = p.Refresh == nil || *p.Refresh
	p.redirectPath = p.RedirectPath
	if p.RedirectURL != "" {
		u, _ := url.Parse(p.RedirectURL)
		p.redirectPath = u.Path
	}
	if err := p.checkCoverage(ctx); err != nil {
		return &plugin.RouteError{Err: err}
	}
	p.warnLogoutCoverage(ctx)
	if err := p.setupRevocation(ctx); err != nil {
		return err
	}
	p.setupCookieAttrs()
	p.claimHeaders, _ = authclaims.Mappings(p.ClaimsToHeaders)

	s, err := newSealer([]byte(p.CookieSecret), strings.TrimSuffix(p.Issuer, "/"), p.ClientID)
	if err != nil {
		return fmt.Errorf("cookie_secret: %v", err)
	}
	p.sealer = s

	p.connect()
	return nil
}

// defaults fills in the defaults of unset options.
func (p *OIDCLogin) defaults() {
	if p.RedirectPath == "" {
		p.RedirectPath = DefaultRedirectPath
	}
	if p.LogoutPath == "" {
		p.LogoutPath = DefaultLogoutPath
	}
	if p.PostLogoutRedirect == "" {
		p.PostLogoutRedirect = DefaultPostLogoutRedirect
	}
	if p.CookieName == "" {
		p.CookieName = DefaultCookieName
	}
	if len(p.Scopes) == 0 {
		p.Scopes = slices.Clone(DefaultScopes)
	}
	if p.SessionTTL == 0 {
		p.SessionTTL = config.Duration(DefaultSessionTTL)
	}
	if p.Timeout == 0 {
		p.Timeout = config.Duration(DefaultTimeout)
	}
	if p.ConsumerClaim == "" {
		p.ConsumerClaim = DefaultConsumerClaim
	}
	if p.UnauthenticatedAction == "" {
		p.UnauthenticatedAction = "redirect"
	}
}

// setupCookieAttrs sets the attributes of the session and state cookies.
func (p *OIDCLogin) setupCookieAttrs() {
	secure := p.CookieSecure == nil || *p.CookieSecure
	sameSite := map[string]http.SameSite{"": http.SameSiteLaxMode, "lax": http.SameSiteLaxMode, "strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode}[strings.ToLower(p.CookieSameSite)]
	p.sessionAttrs = cookieAttrs{path: "/", secure: secure, sameSite: sameSite}
	// The state cookie only travels to the callback. It is always Lax: the
	// provider's redirect back is a cross-site top-level navigation, which
	// Strict would strip.
	p.stateAttrs = cookieAttrs{path: p.redirectPath, secure: secure, sameSite: http.SameSiteLaxMode}
	if sameSite == http.SameSiteNoneMode {
		p.stateAttrs.sameSite = http.SameSiteNoneMode
	}
}

// connect builds the service client and runs the first discovery.
func (p *OIDCLogin) connect() {
	// The shared service client: bounded, pooled, never follows a
	// redirect. The watch notes when the provider could not be reached.
	p.client, p.transport = auth.NewServiceClient(p.Timeout.D())
	p.watch = &watchTransport{base: p.transport}
	p.client.Transport = p.watch
	// Discovery at load time is bounded tighter than requests to the
	// provider, so an unreachable provider cannot stall a config reload.
	if _, err := p.discoverWithin(min(p.Timeout.D(), provisionDiscoveryTimeout)); err != nil {
		p.log.Warn("oidc_login: provider discovery failed; retrying on demand, logins answer 503 until it succeeds",
			"issuer", p.Issuer, "error", err)
	}
}

// check validates the config after defaults are applied.
func (p *OIDCLogin) check() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.Issuer == "" {
		add("issuer is required")
	} else if _, err := config.CheckServiceURL("issuer", p.Issuer); err != nil {
		add("%v", err)
	}
	if p.ClientID == "" {
		add("client_id is required")
	}
	if len(p.CookieSecret) < MinCookieSecret {
		add("cookie_secret is required and must be at least %d bytes (e.g. 32 random bytes, base64-encoded)", MinCookieSecret)
	}
	p.checkPaths(add)
	p.checkSettings(add)
	p.checkClaimHeaders(add)
	return errors.Join(errs...)
}

// checkPaths checks redirect_path, logout_path, redirect_url and
// post_logout_redirect.
func (p *OIDCLogin) checkPaths(add func(format string, args ...any)) {
	for field, v := range map[string]string{"redirect_path": p.RedirectPath, "logout_path": p.LogoutPath} {
		if !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "?#") {
			add("%s: %q must be a path starting with /", field, v)
		}
	}
	if p.RedirectURL != "" {
		if u, err := config.CheckServiceURL("redirect_url", p.RedirectURL); err != nil {
			add("%v", err)
		} else if !strings.HasPrefix(u.Path, "/") {
			add("redirect_url: %q is not an absolute http(s) URL with a path", p.RedirectURL)
		} else if u.Path == p.LogoutPath {
			add("redirect_url: its path is the logout_path")
		}
	} else if p.RedirectPath == p.LogoutPath {
		add("redirect_path and logout_path must differ")
	}
	if p.PostLogoutRedirect != "" && safeReturn(p.PostLogoutRedirect, "") != p.PostLogoutRedirect {
		if _, err := config.CheckServiceURL("post_logout_redirect", p.PostLogoutRedirect); err != nil {
			add("%v; it must be a path starting with / or an absolute http(s) URL", err)
		}
	}
}

// checkSettings checks the scopes, the cookie settings, the durations and
// unauthenticated_action.
func (p *OIDCLogin) checkSettings(add func(format string, args ...any)) {
	if !slices.Contains(p.Scopes, oidc.ScopeOpenID) {
		add("scopes must include %q", oidc.ScopeOpenID)
	}
	if !httpx.ValidToken(p.CookieName) || strings.HasPrefix(p.CookieName, stateCookiePrefix) {
		add("cookie_name: %q is not a valid cookie name", p.CookieName)
	}
	switch strings.ToLower(p.CookieSameSite) {
	case "", "lax", "strict":
	case "none":
		if p.CookieSecure != nil && !*p.CookieSecure {
			add("cookie_samesite: none requires cookie_secure (browsers reject it otherwise)")
		}
	default:
		add("cookie_samesite: %q must be lax, strict or none", p.CookieSameSite)
	}
	if p.SessionTTL < 0 {
		add("session_ttl must be positive")
	}
	if p.Timeout < 0 {
		add("timeout must be positive")
	}
	if p.UnauthenticatedAction != "redirect" && p.UnauthenticatedAction != "deny" {
		add("unauthenticated_action: %q must be redirect or deny", p.UnauthenticatedAction)
	}
}

// checkClaimHeaders checks claims_to_headers against the shared reserved
// header rule.
func (p *OIDCLogin) checkClaimHeaders(add func(format string, args ...any)) {
	// The identity headers of other gateways are reserved too, and so is
	// Authorization when the access token is sent in it.
	reserved := httpx.ForeignIdentityHeaders[:]
	if p.PassAccessToken {
		reserved = append(slices.Clone(reserved), "Authorization")
	}
	_, errs := authclaims.Mappings(p.ClaimsToHeaders, reserved...)
	for _, err := range errs {
		add("%w", err)
	}
}

// Cleanup closes idle connections to the provider.
func (p *OIDCLogin) Cleanup() error {
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
	p.releaseRevocation()
	return nil
}

// Wrap returns the handler that runs the login flow, then next.
func (p *OIDCLogin) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.serve(w, r, next)
	})
}

// InjectedHeaders lists the claims_to_headers names, which the gateway
// strips from client requests on every route.
func (p *OIDCLogin) InjectedHeaders() []string { return authclaims.Headers(p.claimHeaders) }

// Interface guards.
var (
	_ plugin.Plugin         = (*OIDCLogin)(nil)
	_ plugin.Cleaner        = (*OIDCLogin)(nil)
	_ plugin.HeaderInjector = (*OIDCLogin)(nil)
)
