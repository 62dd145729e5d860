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
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
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
	"github.com/portico-gw/portico/internal/request"
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
	plugin.Register(plugin.Spec{
		Name:  Name,
		Phase: plugin.PhaseAccess,
		New:   func() plugin.Plugin { return new(OIDCLogin) },
	})
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
	claimHeaders []claimHeader
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

type claimHeader struct{ claim, header string }

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
	if err := p.check(); err != nil {
		return err
	}

	p.deny = p.UnauthenticatedAction == "deny"
	p.refresh = p.Refresh == nil || *p.Refresh
	secure := p.CookieSecure == nil || *p.CookieSecure
	sameSite := map[string]http.SameSite{"": http.SameSiteLaxMode, "lax": http.SameSiteLaxMode, "strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode}[strings.ToLower(p.CookieSameSite)]
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
	p.sessionAttrs = cookieAttrs{path: "/", secure: secure, sameSite: sameSite}
	// The state cookie only travels to the callback. It is always Lax: the
	// provider's redirect back is a cross-site top-level navigation, which
	// Strict would strip.
	p.stateAttrs = cookieAttrs{path: p.redirectPath, secure: secure, sameSite: http.SameSiteLaxMode}
	if sameSite == http.SameSiteNoneMode {
		p.stateAttrs.sameSite = http.SameSiteNoneMode
	}
	for _, claim := range sortedKeys(p.ClaimsToHeaders) {
		p.claimHeaders = append(p.claimHeaders, claimHeader{claim, http.CanonicalHeaderKey(p.ClaimsToHeaders[claim])})
	}

	s, err := newSealer([]byte(p.CookieSecret), strings.TrimSuffix(p.Issuer, "/"), p.ClientID)
	if err != nil {
		return fmt.Errorf("cookie_secret: %v", err)
	}
	p.sealer = s

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
	return nil
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
	reserved := map[string]bool{"Host": true, "Cookie": true, "Content-Length": true}
	for _, h := range httpx.HopByHop {
		reserved[h] = true
	}
	for _, h := range httpx.IdentityHeaders {
		reserved[h] = true
	}
	for _, h := range httpx.ForeignIdentityHeaders {
		reserved[h] = true
	}
	if p.PassAccessToken {
		reserved["Authorization"] = true
	}
	seen := map[string]string{}
	for _, claim := range sortedKeys(p.ClaimsToHeaders) {
		h := p.ClaimsToHeaders[claim]
		c := http.CanonicalHeaderKey(h)
		switch {
		case claim == "":
			add("claims_to_headers: empty claim name")
		case !httpx.ValidToken(h):
			add("claims_to_headers.%s: %q is not a valid header name", claim, h)
		case reserved[c]:
			add("claims_to_headers.%s: %s is reserved by the gateway", claim, c)
		case seen[c] != "":
			add("claims_to_headers: %q and %q both map to %s", seen[c], claim, c)
		}
		seen[c] = claim
	}
	return errors.Join(errs...)
}

// provisionDiscoveryTimeout bounds discovery while a config is loaded.
const provisionDiscoveryTimeout = 2 * time.Second

// discover fetches the discovery document once.
func (p *OIDCLogin) discover() (*idp, error) { return p.discoverWithin(p.Timeout.D()) }

// discoverWithin fetches the discovery document once, within d.
func (p *OIDCLogin) discoverWithin(limit time.Duration) (*idp, error) {
	ctx, cancel := context.WithTimeout(p.clientContext(context.Background()), limit)
	defer cancel()
	p.lastDiscover = time.Now()
	prov, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		return nil, err
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = prov.Claims(&meta)
	d := &idp{
		provider:   prov,
		endpoint:   prov.Endpoint(),
		endSession: meta.EndSession,
		verifier: prov.Verifier(&oidc.Config{
			ClientID: p.ClientID,
			Now:      func() time.Time { return p.now() },
		}),
	}
	p.idp.Store(d)
	return d, nil
}

// provider returns the discovered provider, retrying discovery if it has
// not succeeded yet; nil means it is unavailable. Only one request at a
// time retries; the others get nil at once.
func (p *OIDCLogin) provider() *idp {
	if d := p.idp.Load(); d != nil {
		return d
	}
	if !p.discoverMu.TryLock() {
		return nil
	}
	defer p.discoverMu.Unlock()
	if d := p.idp.Load(); d != nil {
		return d
	}
	if time.Since(p.lastDiscover) < p.retry {
		return nil
	}
	d, err := p.discover()
	if err != nil {
		p.warn.Warn("oidc_provider", "oidc_login: provider discovery failed", err, slog.String("issuer", p.Issuer))
		return nil
	}
	p.log.Info("oidc_login: provider discovered", "issuer", p.Issuer)
	return d
}

// clientContext makes go-oidc and oauth2 use the plugin's HTTP client.
func (p *OIDCLogin) clientContext(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, p.client)
	return context.WithValue(ctx, oauth2.HTTPClient, p.client)
}

// oauthConfig is the OAuth 2.0 client for one redirect URI.
func (p *OIDCLogin) oauthConfig(d *idp, redirectURI string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint:     d.endpoint,
		RedirectURL:  redirectURI,
		Scopes:       p.Scopes,
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

func (p *OIDCLogin) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	for _, ch := range p.claimHeaders {
		r.Header.Del(ch.header)
	}
	switch requestPath(r) {
	case p.redirectPath:
		p.callback(w, r)
		return
	case p.LogoutPath:
		p.logout(w, r)
		return
	}
	if duplicateCookie(r, p.CookieName) {
		p.Ambiguous(w, r)
		return
	}

	s, reason := p.loadSession(r)
	if s != nil && p.revoke != nil {
		switch p.checkRevoked(r, s) {
		case sessionRevoked:
			s, reason = nil, reasonRevoked
		case sessionWithoutID:
			s, reason = nil, "invalid"
		case storeDown:
			p.storeUnavailable(w, r, "session store unavailable")
			return
		}
	}
	if s != nil && s.TokenExpiry != 0 && p.now().Unix() >= s.TokenExpiry {
		if !p.refresh || s.RefreshToken == "" {
			s, reason = nil, "expired"
		} else {
			d := p.provider()
			if d == nil {
				p.unavailable(w, r)
				return
			}
			ns, err := p.refreshSession(r.Context(), d, s)
			if errors.Is(err, errUnreachable) {
				p.warn.Warn("oidc_provider", "oidc_login: token refresh failed: provider unreachable", err, slog.String("issuer", p.Issuer), slog.String("route", routeOf(r)))
				p.unavailable(w, r)
				return
			}
			if err != nil {
				p.log.Info("oidc_login: token refresh failed; starting a new login", "route", routeOf(r), "error", err)
				s, reason = nil, reasonRefresh
			} else {
				s = ns
				if err := p.writeSession(w, r, s); err != nil {
					p.log.Error("oidc_login: cannot write session cookie", "error", err)
					s, reason = nil, "error"
				}
			}
		}
	}
	if s == nil {
		if reason != "missing" {
			clearChunked(w, r, p.sessionAttrs, p.CookieName)
		}
		p.unauthenticated(w, r, next, reason)
		return
	}

	stripCookies(r.Header, p.CookieName)
	c, ok := p.store.ByName(s.Name)
	if !ok {
		c = &consumer.Consumer{Name: s.Name, ID: s.Name}
	}
	p.Authenticated(r, c, s.Sub)
	for _, ch := range p.claimHeaders {
		if v, ok := s.Claims[ch.claim]; ok {
			r.Header.Set(ch.header, v)
		}
	}
	if p.PassAccessToken && s.AccessToken != "" {
		r.Header.Set("Authorization", "Bearer "+s.AccessToken)
	}
	next.ServeHTTP(w, r)
}

// loadSession decrypts the session cookie. It returns nil and the failure
// reason ("missing", "invalid", "expired") when there is no usable session.
func (p *OIDCLogin) loadSession(r *http.Request) (*session, string) {
	v, ok := readChunked(r, p.CookieName)
	if !ok {
		return nil, "missing"
	}
	var s session
	if err := p.sealer.open(purposeSession, p.CookieName, v, &s); err != nil || s.Name == "" {
		return nil, "invalid"
	}
	if p.now().Unix() >= s.Expires {
		return nil, "expired"
	}
	return &s, ""
}

func (p *OIDCLogin) writeSession(w http.ResponseWriter, r *http.Request, s *session) error {
	v, err := p.sealer.seal(purposeSession, p.CookieName, s)
	if err != nil {
		return err
	}
	maxAge := int(s.Expires - p.now().Unix())
	if maxAge <= 0 {
		return errors.New("session already expired")
	}
	return writeChunked(w, r, p.sessionAttrs, p.CookieName, v, maxAge)
}

// unauthenticated handles a request without a usable session: with
// `anonymous` it continues as the anonymous consumer; API clients, non-GET
// requests and deny mode get 401; browsers are sent to the provider.
func (p *OIDCLogin) unauthenticated(w http.ResponseWriter, r *http.Request, next http.Handler, reason string) {
	if p.Anonymous != "" || p.deny || apiClient(r) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		p.Unauthenticated(w, r, next, "", reason)
		return
	}
	d := p.provider()
	if d == nil {
		p.unavailable(w, r)
		return
	}
	p.startLogin(w, r, d)
}

// apiClient reports whether r comes from a script rather than a browser
// navigation, which cannot follow a login redirect.
func apiClient(r *http.Request) bool {
	if strings.EqualFold(r.Header.Get("X-Requested-With"), "XMLHttpRequest") {
		return true
	}
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(strings.ToLower(a), "application/json") {
			return true
		}
	}
	return false
}

// startLogin stores a new login attempt in a state cookie and redirects to
// the authorization endpoint.
func (p *OIDCLogin) startLogin(w http.ResponseWriter, r *http.Request, d *idp) {
	ls := loginState{
		State:       randomString(),
		Nonce:       randomString(),
		Verifier:    oauth2.GenerateVerifier(),
		RedirectURI: p.redirectURI(r),
		Return:      safeReturn(r.URL.RequestURI(), p.redirectPath),
		Expires:     p.now().Add(stateTTL).Unix(),
	}
	name := stateCookiePrefix + ls.State[:stateNameLen]
	v, err := p.sealer.seal(purposeState, name, &ls)
	if err != nil {
		p.log.Error("oidc_login: cannot seal state cookie", "error", err)
		request.WriteError(w, r, http.StatusInternalServerError, "internal error")
		return
	}
	http.SetCookie(w, p.stateAttrs.cookie(name, v, int(stateTTL/time.Second)))
	loc := p.oauthConfig(d, ls.RedirectURI).AuthCodeURL(ls.State,
		oidc.Nonce(ls.Nonce), oauth2.S256ChallengeOption(ls.Verifier))
	redirect(w, loc)
}

// callback completes a login: state check, code exchange with the PKCE
// verifier, ID token and nonce verification, session cookie.
func (p *OIDCLogin) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if len(state) < stateNameLen || !httpx.ValidToken(state) {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "missing or malformed state")
		return
	}
	name := stateCookiePrefix + state[:stateNameLen]
	if duplicateCookie(r, name) {
		p.Ambiguous(w, r)
		return
	}
	c, err := r.Cookie(name)
	if err != nil {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "no login in progress for this state")
		return
	}
	// The attempt is single-use whatever happens next.
	http.SetCookie(w, p.stateAttrs.cookie(name, "", -1))
	var ls loginState
	if err := p.sealer.open(purposeState, name, c.Value, &ls); err != nil {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "state cookie is invalid")
		return
	}
	if subtle.ConstantTimeCompare([]byte(ls.State), []byte(state)) != 1 {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "state mismatch")
		return
	}
	if p.now().Unix() >= ls.Expires {
		p.loginFailed(w, r, http.StatusBadRequest, "expired", "login attempt expired")
		return
	}
	if e := q.Get("error"); e != "" {
		p.loginFailed(w, r, http.StatusUnauthorized, reasonProviderErr, "provider returned error "+strconv.Quote(e))
		return
	}
	code := q.Get("code")
	if code == "" {
		p.loginFailed(w, r, http.StatusBadRequest, "invalid", "missing code")
		return
	}
	d := p.provider()
	if d == nil {
		p.unavailable(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(p.clientContext(r.Context()), p.Timeout.D())
	defer cancel()
	start := time.Now()
	tok, err := p.oauthConfig(d, ls.RedirectURI).Exchange(ctx, code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		if p.watch.failedSince(start) {
			p.warn.Warn("oidc_provider", "oidc_login: code exchange failed: provider unreachable", err, slog.String("issuer", p.Issuer), slog.String("route", routeOf(r)))
			p.unavailable(w, r)
			return
		}
		p.loginFailed(w, r, http.StatusUnauthorized, reasonExchange, "code exchange failed: "+err.Error())
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		p.loginFailed(w, r, http.StatusUnauthorized, reasonBadIDToken, "token response has no id_token")
		return
	}
	start = time.Now()
	idt, err := d.verifier.Verify(ctx, rawID)
	if err != nil {
		if p.watch.failedSince(start) {
			p.warn.Warn("oidc_provider", "oidc_login: ID token keys unavailable: provider unreachable", err, slog.String("issuer", p.Issuer), slog.String("route", routeOf(r)))
			p.unavailable(w, r)
			return
		}
		p.loginFailed(w, r, http.StatusUnauthorized, reasonBadIDToken, "ID token rejected: "+err.Error())
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 {
		p.loginFailed(w, r, http.StatusUnauthorized, reasonBadNonce, "ID token nonce mismatch")
		return
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			p.loginFailed(w, r, http.StatusUnauthorized, reasonBadIDToken, "access token does not match at_hash")
			return
		}
	}
	now := p.now()
	s := &session{
		Sub:          idt.Subject,
		Expires:      now.Add(p.SessionTTL.D()).Unix(),
		AccessToken:  tok.AccessToken,
		TokenExpiry:  tokenExpiry(now, tok, idt),
		RefreshToken: tok.RefreshToken,
		IDToken:      rawID,
		ID:           newSessionID(),
	}
	if err := p.applyClaims(s, idt); err != nil {
		p.loginFailed(w, r, http.StatusUnauthorized, reasonBadIDToken, err.Error())
		return
	}
	if err := p.writeSession(w, r, s); err != nil {
		p.loginFailed(w, r, http.StatusInternalServerError, "error", "cannot write session cookie: "+err.Error())
		return
	}
	redirect(w, safeReturn(ls.Return, p.redirectPath))
}

// applyClaims sets the consumer name and the claims_to_headers values.
func (p *OIDCLogin) applyClaims(s *session, idt *oidc.IDToken) error {
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return fmt.Errorf("ID token claims: %v", err)
	}
	name, err := authclaims.RenderJSON(claims[p.ConsumerClaim])
	if err != nil {
		return fmt.Errorf("ID token claim %q cannot name a consumer: %v", p.ConsumerClaim, err)
	}
	if name == "" {
		return fmt.Errorf("ID token has no %q claim", p.ConsumerClaim)
	}
	s.Name = name
	s.Claims = nil
	for _, ch := range p.claimHeaders {
		v, err := authclaims.RenderJSON(claims[ch.claim])
		if err != nil {
			p.log.Warn("oidc_login: ID token claim not sent as a header", "claim", ch.claim, "header", ch.header, "error", err)
			continue
		}
		if v != "" {
			if s.Claims == nil {
				s.Claims = map[string]string{}
			}
			s.Claims[ch.claim] = v
		}
	}
	return nil
}

// tokenExpiry is when the session's tokens must be refreshed: the access
// token's expiry, or the ID token's when the provider gave none.
func tokenExpiry(now time.Time, tok *oauth2.Token, idt *oidc.IDToken) int64 {
	switch {
	case tok.ExpiresIn > 0:
		return now.Unix() + tok.ExpiresIn
	case !tok.Expiry.IsZero():
		return now.Add(time.Until(tok.Expiry)).Unix()
	case idt != nil:
		return idt.Expiry.Unix()
	}
	return 0
}

// refreshSession renews the tokens of s. Requests carrying the same
// refresh token share one call to the provider.
func (p *OIDCLogin) refreshSession(ctx context.Context, d *idp, s *session) (*session, error) {
	sum := sha256.Sum256([]byte(s.RefreshToken))
	key := hex.EncodeToString(sum[:])
	p.refreshMu.Lock()
	if c, ok := p.refreshes[key]; ok && time.Since(c.at) < refreshShare {
		p.refreshMu.Unlock()
		select {
		case <-c.done:
			return c.s, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for k, c := range p.refreshes {
		if time.Since(c.at) >= refreshShare {
			delete(p.refreshes, k)
		}
	}
	c := &refreshCall{done: make(chan struct{}), at: time.Now()}
	p.refreshes[key] = c
	p.refreshMu.Unlock()

	// The provider call is not tied to this request: others may wait on it.
	rctx, cancel := context.WithTimeout(p.clientContext(context.WithoutCancel(ctx)), p.Timeout.D())
	defer cancel()
	start := time.Now()
	c.s, c.err = p.doRefresh(rctx, d, s)
	if c.err != nil && p.watch.failedSince(start) {
		c.err = fmt.Errorf("%w: %v", errUnreachable, c.err)
		// An outage is shared briefly only, so the first request after
		// the provider is back refreshes again.
		p.refreshMu.Lock()
		c.at = time.Now().Add(outageShare - refreshShare)
		p.refreshMu.Unlock()
	}
	close(c.done)
	return c.s, c.err
}

// errUnreachable marks a refresh that failed because the provider could
// not be reached.
var errUnreachable = errors.New("identity provider unreachable")

// outageShare is how long a refresh that failed for an outage is shared
// with the requests carrying the same refresh token.
const outageShare = 2 * time.Second

func (p *OIDCLogin) doRefresh(ctx context.Context, d *idp, old *session) (*session, error) {
	tok, err := p.oauthConfig(d, "").TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		return nil, err
	}
	s := *old
	s.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		s.RefreshToken = tok.RefreshToken
	}
	var idt *oidc.IDToken
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		if idt, err = d.verifier.Verify(ctx, rawID); err != nil {
			return nil, fmt.Errorf("refreshed ID token rejected: %v", err)
		}
		if idt.Subject != old.Sub {
			return nil, errors.New("refreshed ID token is for another subject")
		}
		if err := p.applyClaims(&s, idt); err != nil {
			return nil, err
		}
		s.IDToken = rawID
	}
	s.TokenExpiry = tokenExpiry(p.now(), tok, idt)
	if s.TokenExpiry != 0 && s.TokenExpiry <= p.now().Unix() {
		return nil, errors.New("provider issued an already expired token")
	}
	return &s, nil
}

// logout clears the session and continues to the provider's end-session
// endpoint when it has one, else to post_logout_redirect.
func (p *OIDCLogin) logout(w http.ResponseWriter, r *http.Request) {
	var idToken string
	if v, ok := readChunked(r, p.CookieName); ok {
		var s session
		if p.sealer.open(purposeSession, p.CookieName, v, &s) == nil {
			idToken = s.IDToken
			// Revoke first: when that fails closed the cookie stays, so
			// the user can log out again once Redis is back.
			if p.revoke != nil && p.recordLogout(r, &s) != nil {
				p.storeUnavailable(w, r, "logout could not be completed; try again")
				return
			}
		}
	}
	clearChunked(w, r, p.sessionAttrs, p.CookieName)
	after := p.PostLogoutRedirect
	if strings.HasPrefix(after, "/") {
		after = p.origin(r) + after
	}
	d := p.idp.Load()
	if d == nil || d.endSession == "" {
		redirect(w, p.PostLogoutRedirect)
		return
	}
	u, err := url.Parse(d.endSession)
	if err != nil {
		redirect(w, p.PostLogoutRedirect)
		return
	}
	q := u.Query()
	if idToken != "" {
		q.Set("id_token_hint", idToken)
	}
	q.Set("post_logout_redirect_uri", after)
	q.Set("client_id", p.ClientID)
	u.RawQuery = q.Encode()
	redirect(w, u.String())
}

// loginFailed answers a failed callback; the reason is logged, never sent.
func (p *OIDCLogin) loginFailed(w http.ResponseWriter, r *http.Request, status int, reason, detail string) {
	p.log.Info("oidc_login: login failed", "route", routeOf(r), "reason", detail)
	p.Refused(r, reason)
	msg := "login failed"
	if status >= 500 {
		msg = "internal error"
	}
	request.WriteError(w, r, status, msg)
}

// unavailable answers 503 with Retry-After: the provider could not be
// reached for a step that needs it.
func (p *OIDCLogin) unavailable(w http.ResponseWriter, r *http.Request) {
	p.Refused(r, reasonUnavailable)
	w.Header().Set("Retry-After", "5")
	request.WriteError(w, r, http.StatusServiceUnavailable, "identity provider unavailable")
}

// requestPath is the normalised path the router matched and the upstream
// receives; every path decision uses it, so an encoded or dot-segment
// variant of the callback or logout path cannot slip past (or into) them.
func requestPath(r *http.Request) string { return request.RecordOf(r).PathOf(r) }

// watchTransport notes when the provider could not be reached: a transport
// error (refused, reset, timeout) or a 5xx/429 answer. Libraries wrap or
// flatten errors differently, so a step asks failedSince(its start) instead
// of inspecting the error.
type watchTransport struct {
	base     http.RoundTripper
	lastFail atomic.Int64 // unix nanos
}

func (t *watchTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		t.lastFail.Store(time.Now().UnixNano())
	}
	return resp, err
}

// failedSince reports whether a call to the provider failed at or after t.
func (t *watchTransport) failedSince(start time.Time) bool {
	return t.lastFail.Load() >= start.UnixNano()
}

// redirectURI is the callback URL sent to the provider.
func (p *OIDCLogin) redirectURI(r *http.Request) string {
	if p.RedirectURL != "" {
		return p.RedirectURL
	}
	return p.origin(r) + p.RedirectPath
}

// origin is scheme://host of the request as the browser sees it: https
// when the connection is TLS, or when a trusted proxy says so in
// X-Forwarded-Proto.
func (p *OIDCLogin) origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if rec := request.RecordOf(r); rec != nil {
		if rec.TLS {
			scheme = "https"
		}
		if rec.TrustedPeer {
			xfp, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
			switch strings.ToLower(strings.TrimSpace(xfp)) {
			case "https":
				scheme = "https"
			case "http":
				scheme = "http"
			}
		}
	}
	return scheme + "://" + r.Host
}

// safeReturn keeps u only if it is a same-origin path ("/…"), never a
// scheme-relative ("//host") or backslash form browsers would send off-site,
// and not the callback itself; otherwise it returns "/".
func safeReturn(u, callback string) string {
	if u == "" || u[0] != '/' || (len(u) > 1 && (u[1] == '/' || u[1] == '\\')) || strings.ContainsRune(u, '\\') {
		return "/"
	}
	for i := 0; i < len(u); i++ {
		if u[i] < 0x20 || u[i] == 0x7f {
			return "/"
		}
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "" || pu.Host != "" || pu.User != nil {
		return "/"
	}
	if callback != "" && pu.Path == callback {
		return "/"
	}
	return u
}

func redirect(w http.ResponseWriter, loc string) {
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func routeOf(r *http.Request) string {
	if rec := request.RecordOf(r); rec != nil {
		return rec.Route
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

var _ plugin.Plugin = (*OIDCLogin)(nil)
var _ plugin.Cleaner = (*OIDCLogin)(nil)

// InjectedHeaders lists the claims_to_headers names, which the gateway
// strips from client requests on every route.
func (p *OIDCLogin) InjectedHeaders() []string {
	out := make([]string, len(p.claimHeaders))
	for i, ch := range p.claimHeaders {
		out[i] = ch.header
	}
	return out
}

var _ plugin.HeaderInjector = (*OIDCLogin)(nil)
