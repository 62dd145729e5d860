// Package jwt implements the "jwt" authentication plugin: it verifies a
// JSON Web Token (JWS compact serialisation) taken from the Authorization
// header, a cookie or a query parameter, checks its claims, maps it to a
// consumer and forwards selected claims upstream as headers.
//
// Algorithm safety: the token's "alg" header never chooses how it is
// verified. The algorithm must be listed in `algorithms`, and a key is only
// used with algorithms of its own type (HMAC secrets with HS*, RSA keys with
// RS*/PS*, EC keys with the ES* of their curve, Ed25519 keys with EdDSA) and
// only with the "alg" a JWK declares. "none" is never accepted, and public
// key material is never used as an HMAC secret, so an HS256 token signed
// with an RSA public key is refused. Tokens with a "crit" header are
// refused; "jku", "x5u" and embedded "jwk" headers are ignored.
//
// Failures answer 401 with `WWW-Authenticate: Bearer realm="…"` (plus
// error="invalid_token" when a token was presented); a valid token missing
// a required scope answers 403 with error="insufficient_scope". Why a token
// failed is logged at debug level only.
package jwt

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
	authclaims "github.com/portico-gw/portico/internal/plugin/auth/claims"
	"github.com/portico-gw/portico/internal/request"
)

func init() {
	plugin.Register(plugin.Spec{Name: "jwt", Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(JWT) }})
}

// Defaults.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultJWKSRefresh        = 5 * time.Minute
	DefaultJWKSMinRefresh     = 30 * time.Second
	DefaultJWKSStaleTTL       = time.Hour
	DefaultJWKSTimeout        = 5 * time.Second
	DefaultRealm              = "portico"
	defaultHeader             = "Authorization"
	failureReasonUnknown      = "unknown_consumer"
	failureReasonInsufficient = "insufficient_scope"
)

// Bounds of the time settings, checked at load.
const (
	MaxLeeway          = 5 * time.Minute
	MinJWKSMinRefresh  = time.Second
	MaxJWKSMinRefresh  = time.Hour
	reasonMissing      = "missing"
	reasonMalformed    = "malformed"
	reasonBadAlgorithm = "bad_algorithm"
	reasonBadSignature = "bad_signature"
	reasonUnknownKid   = "unknown_kid"
	reasonExpired      = "expired"
	reasonNotYetValid  = "not_yet_valid"
	reasonBadIssuer    = "bad_issuer"
	reasonBadAudience  = "bad_audience"
	reasonBadClaims    = "bad_claims"
)

// failureReasons are the reasons a token is refused for, as counted in
// portico_auth_failures_total and logged as auth_failure.
var failureReasons = []string{
	reasonMissing, reasonMalformed, reasonBadAlgorithm, reasonBadSignature, reasonUnknownKid,
	reasonExpired, reasonNotYetValid, reasonBadIssuer, reasonBadAudience, reasonBadClaims,
	failureReasonUnknown, failureReasonInsufficient,
}

// failureReason classifies a verification error. Signature problems come
// first: claims of a token whose signature failed are never judged.
func failureReason(err error) string {
	switch {
	case errors.Is(err, errUnknownKid):
		return reasonUnknownKid
	case errors.Is(err, errNoKey):
		return reasonBadAlgorithm
	case errors.Is(err, errCrit), errors.Is(err, gojwt.ErrTokenMalformed):
		return reasonMalformed
	case errors.Is(err, gojwt.ErrTokenSignatureInvalid), errors.Is(err, gojwt.ErrTokenUnverifiable):
		return reasonBadSignature
	case errors.Is(err, gojwt.ErrTokenExpired):
		return reasonExpired
	case errors.Is(err, gojwt.ErrTokenNotValidYet), errors.Is(err, gojwt.ErrTokenUsedBeforeIssued):
		return reasonNotYetValid
	case errors.Is(err, errIssuer), errors.Is(err, gojwt.ErrTokenInvalidIssuer):
		return reasonBadIssuer
	case errors.Is(err, gojwt.ErrTokenInvalidAudience):
		return reasonBadAudience
	case errors.Is(err, errClaims), errors.Is(err, gojwt.ErrTokenInvalidClaims), errors.Is(err, gojwt.ErrTokenRequiredClaimMissing):
		return reasonBadClaims
	}
	return reasonBadSignature
}

// JWT is the configuration of one "jwt" plugin instance.
type JWT struct {
	// Base provides `anonymous`: the consumer to continue as when no valid
	// token is presented, instead of answering 401.
	auth.Base `yaml:",inline"`

	// Algorithms lists the accepted signature algorithms (required): HS256,
	// HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384,
	// ES512, EdDSA.
	Algorithms []string `yaml:"algorithms"`

	// Secret is the HMAC secret for HS* tokens, usually "${ENV_VAR}"; at
	// least 32 bytes.
	Secret string `yaml:"secret" secret:"true"`
	// SecretBase64 decodes Secret as base64 (standard or URL alphabet,
	// padded or not).
	SecretBase64 bool `yaml:"secret_base64"`
	// PublicKeys are inline PEM public keys or certificates (RSA, EC,
	// Ed25519).
	PublicKeys []string `yaml:"public_keys"`
	// KeyFiles are files holding PEM public keys or certificates, read at
	// provision.
	KeyFiles []string `yaml:"key_files"`
	// JWKS is an inline JWK Set (JSON); "oct" keys are HMAC secrets.
	JWKS string `yaml:"jwks" secret:"true"`
	// JWKSURL is fetched for a JWK Set and kept fresh (see JWKSRefresh).
	// Symmetric keys from it are ignored.
	JWKSURL string `yaml:"jwks_url"`
	// OIDCIssuer is an OpenID Connect issuer: its discovery document gives
	// the JWKS URL, and it is the default `issuer`.
	OIDCIssuer string `yaml:"oidc_issuer"`
	// JWKSRefresh is how often the JWKS is refetched (±10% jitter).
	// Default 5m.
	JWKSRefresh config.Duration `yaml:"jwks_refresh"`
	// JWKSMinRefreshInterval is the least time between two successful
	// fetches caused by tokens with an unknown kid, 1s to 1h. Default 30s.
	// A failed fetch is retried after a short back-off (0.5s doubling, at
	// most 5s and at most this interval) instead.
	JWKSMinRefreshInterval *config.Duration `yaml:"jwks_min_refresh_interval"`
	// JWKSStaleTTL is how long fetched keys stay usable after their last
	// successful fetch while refreshes fail; then they are dropped (fail
	// closed). Default 1h; at least jwks_refresh.
	JWKSStaleTTL config.Duration `yaml:"jwks_stale_ttl"`
	// JWKSTimeout bounds each discovery or JWKS request. Default 5s.
	JWKSTimeout config.Duration `yaml:"jwks_timeout"`

	// Issuer, when set, must equal the token's iss.
	Issuer string `yaml:"issuer"`
	// Issuers lists accepted iss values (merged with Issuer).
	Issuers []string `yaml:"issuers"`
	// Audiences: the token's aud must contain at least one of them.
	Audiences []string `yaml:"audiences"`
	// Leeway is the clock skew allowed for exp, nbf and iat, at most 5m.
	// Default 30s.
	Leeway *config.Duration `yaml:"leeway"`
	// RequireExp refuses tokens without exp. Default true.
	RequireExp *bool `yaml:"require_exp"`
	// RequiredClaims maps a claim to the value it must have: a string claim
	// must equal it, a list claim must contain it (numbers and booleans
	// compare in their JSON form). A mismatch is an invalid token (401).
	RequiredClaims map[string]string `yaml:"required_claims"`
	// RequiredScopes must all be in the token's scope (space-separated
	// string) or scp (list or space-separated string) claim; otherwise 403.
	RequiredScopes []string `yaml:"required_scopes"`

	// Header carries the token. Default Authorization, where the value must
	// be "Bearer <token>"; in another header a "Bearer " prefix is optional.
	Header string `yaml:"header"`
	// Cookie, when set, is a cookie carrying the token (tried after the
	// header). A token in more than one place must be the same token, and
	// the cookie may appear only once; otherwise the request is refused
	// with 400 (reason "multiple"), as are two Authorization headers.
	Cookie string `yaml:"cookie"`
	// Query, when set, is a query parameter carrying the token (tried after
	// the header and cookie); it may appear only once.
	Query string `yaml:"query"`
	// StripQuery removes the Query parameter from every request before it
	// is proxied. Default true.
	StripQuery *bool `yaml:"strip_query"`

	// ConsumerClaim names the claim (e.g. sub, client_id) whose value must
	// name a consumer (by name or id). Unset: the identity is a consumer
	// synthesised from sub.
	ConsumerClaim string `yaml:"consumer_claim"`
	// AllowUnknownConsumers accepts a ConsumerClaim value that names no
	// consumer, as a synthesised consumer with that name.
	AllowUnknownConsumers bool `yaml:"allow_unknown_consumers"`
	// GroupsClaim gives a synthesised consumer its groups (a list, or a
	// space- or comma-separated string).
	GroupsClaim string `yaml:"groups_claim"`
	// ClaimsToHeaders maps a claim to an upstream request header. These
	// headers are always removed from the client's request first. Values are
	// rendered by the shared claim rule: strings as is, numbers without
	// exponent, lists of scalars joined with ", ", objects as compact JSON;
	// a missing, null, "" or [] claim, or one holding a control character,
	// gives no header.
	ClaimsToHeaders map[string]string `yaml:"claims_to_headers"`
	// Realm is the realm in WWW-Authenticate. Default "portico".
	Realm string `yaml:"realm"`

	log          *slog.Logger
	consumers    consumer.Store
	algs         []string
	static       *keySet
	remote       *remote
	relRemote    func()
	parser       *gojwt.Parser
	keyfunc      gojwt.Keyfunc
	fallbackKey  gojwt.Keyfunc
	issuers      []string
	header       string
	bearerOnly   bool
	stripQuery   bool
	claimHeaders []authclaims.Mapping
	chMissing    string
	chInvalid    string
	chScope      string
}

// Provision checks the config, parses every static key, and starts the
// JWKS refresher when a JWKS URL or OIDC issuer is configured. The first
// remote fetch happens here; its failure is logged, not fatal: remote keys
// are then refused until a background retry succeeds.
func (p *JWT) Provision(ctx plugin.Context) error {
	p.log = ctx.Logger()
	p.consumers = ctx.Consumers()
	if err := p.Setup(ctx, "jwt", failureReasons...); err != nil {
		return err
	}
	if err := p.checkSources(); err != nil {
		return err
	}
	keys, err := p.staticKeys()
	if err != nil {
		return err
	}
	p.static = newKeySet(keys, p.algs)
	if err := p.setupParser(); err != nil {
		return err
	}

	// Token sources.
	p.header = http.CanonicalHeaderKey(p.Header)
	if p.header == "" {
		p.header = defaultHeader
	}
	p.bearerOnly = p.header == defaultHeader
	p.stripQuery = p.Query != "" && (p.StripQuery == nil || *p.StripQuery)

	if err := p.setupClaimHeaders(); err != nil {
		return err
	}
	p.setupChallenges()
	if p.JWKSURL != "" || p.OIDCIssuer != "" {
		return p.startRemote(ctx, keys)
	}
	return nil
}

// checkSources checks the algorithms and that the key sources fit together.
func (p *JWT) checkSources() error {
	if len(p.Algorithms) == 0 {
		return errors.New("algorithms: list at least one algorithm")
	}
	for _, a := range p.Algorithms {
		if _, ok := knownAlgs[a]; !ok {
			return fmt.Errorf("algorithms: unsupported algorithm %q (supported: %s)", a, strings.Join(sortedAlgs(), ", "))
		}
		if !slices.Contains(p.algs, a) {
			p.algs = append(p.algs, a)
		}
	}
	if p.JWKSURL != "" && p.OIDCIssuer != "" {
		return errors.New("set jwks_url or oidc_issuer, not both")
	}
	if p.Secret == "" && len(p.PublicKeys) == 0 && len(p.KeyFiles) == 0 && p.JWKS == "" && p.JWKSURL == "" && p.OIDCIssuer == "" {
		return errors.New("no key source: set secret, public_keys, key_files, jwks, jwks_url or oidc_issuer")
	}
	if p.AllowUnknownConsumers && p.ConsumerClaim == "" {
		return errors.New("allow_unknown_consumers needs consumer_claim")
	}
	if p.SecretBase64 && p.Secret == "" {
		return errors.New("secret_base64 is set but secret is empty")
	}
	return nil
}

// staticKeys parses secret, public_keys, key_files and jwks, and checks
// that every key can verify one of the allowed algorithms.
func (p *JWT) staticKeys() ([]*key, error) {
	var keys []*key
	if p.Secret != "" {
		sec := []byte(p.Secret)
		if p.SecretBase64 {
			var err error
			if sec, err = decodeBase64(p.Secret); err != nil {
				return nil, errors.New("secret: not valid base64")
			}
		}
		k, err := newKey(sec, "", "", "secret")
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	for i, s := range p.PublicKeys {
		ks, err := parsePEM([]byte(s), fmt.Sprintf("public_keys[%d]", i))
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	for i, f := range p.KeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("key_files[%d]: %v", i, err)
		}
		ks, err := parsePEM(b, fmt.Sprintf("key_files[%d] (%s)", i, f))
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	if p.JWKS != "" {
		ks, skipped, err := parseJWKS([]byte(p.JWKS), "jwks", true)
		if err != nil {
			return nil, err
		}
		if len(skipped) > 0 {
			return nil, fmt.Errorf("jwks: %s", strings.Join(skipped, "; "))
		}
		keys = append(keys, ks...)
	}
	for _, k := range keys {
		if !slices.ContainsFunc(p.algs, k.compatible) {
			return nil, fmt.Errorf("%s: the key cannot verify any of the allowed algorithms %v", k.src, p.algs)
		}
	}
	return keys, nil
}

// setupParser collects the accepted issuers and builds the token parser
// with the allowed algorithms, leeway, audiences and exp rule.
func (p *JWT) setupParser() error {
	p.issuers = nil
	for _, iss := range append([]string{p.Issuer}, p.Issuers...) {
		if iss != "" && !slices.Contains(p.issuers, iss) {
			p.issuers = append(p.issuers, iss)
		}
	}
	if len(p.issuers) == 0 && p.OIDCIssuer != "" {
		p.issuers = []string{p.OIDCIssuer}
	}
	leeway := DefaultLeeway
	if p.Leeway != nil {
		leeway = p.Leeway.D()
		if leeway < 0 || leeway > MaxLeeway {
			return fmt.Errorf("leeway: %s is out of range (0 to %s)", leeway, MaxLeeway)
		}
	}
	opts := []gojwt.ParserOption{
		gojwt.WithValidMethods(p.algs),
		gojwt.WithLeeway(leeway),
		gojwt.WithIssuedAt(),
	}
	if p.RequireExp == nil || *p.RequireExp {
		opts = append(opts, gojwt.WithExpirationRequired())
	}
	if len(p.Audiences) > 0 {
		opts = append(opts, gojwt.WithAudience(p.Audiences...))
	}
	p.parser = gojwt.NewParser(opts...)
	p.keyfunc = p.lookupKey
	p.fallbackKey = p.lookupKeyNoRefresh
	return nil
}

// setupClaimHeaders checks claims_to_headers against the shared reserved
// header rule (the token's own header is reserved too).
func (p *JWT) setupClaimHeaders() error {
	ms, errs := authclaims.Mappings(p.ClaimsToHeaders, p.reservedHeaders()...)
	p.claimHeaders = ms
	return errors.Join(errs...)
}

// reservedHeaders are the headers beyond the shared reserved set that
// claims_to_headers may not write: the header carrying the token and the
// identity headers of other gateways.
func (p *JWT) reservedHeaders() []string {
	return append([]string{p.header}, httpx.ForeignIdentityHeaders[:]...)
}

// setupChallenges renders the WWW-Authenticate challenges once.
func (p *JWT) setupChallenges() {
	realm := p.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	realm = strconv.Quote(realm)
	p.chMissing = "Bearer realm=" + realm
	p.chInvalid = p.chMissing + `, error="invalid_token"`
	p.chScope = p.chMissing + `, error="insufficient_scope"`
	if len(p.RequiredScopes) > 0 {
		p.chScope += `, scope=` + strconv.Quote(strings.Join(p.RequiredScopes, " "))
	}
}

// startRemote checks the remote key settings and joins (or starts) the
// shared JWKS refresher for them.
func (p *JWT) startRemote(ctx plugin.Context, keys []*key) error {
	for _, f := range [...][2]string{{"jwks_url", p.JWKSURL}, {"oidc_issuer", p.OIDCIssuer}} {
		if f[1] == "" {
			continue
		}
		if _, err := config.CheckServiceURL(f[0], f[1]); err != nil {
			return err
		}
	}
	refresh := durationOr(p.JWKSRefresh, DefaultJWKSRefresh)
	stale := durationOr(p.JWKSStaleTTL, DefaultJWKSStaleTTL)
	timeout := durationOr(p.JWKSTimeout, DefaultJWKSTimeout)
	minInterval := DefaultJWKSMinRefresh
	if p.JWKSMinRefreshInterval != nil {
		minInterval = p.JWKSMinRefreshInterval.D()
	}
	switch {
	case refresh <= 0 || timeout <= 0:
		return errors.New("jwks_refresh and jwks_timeout must be positive")
	case minInterval < MinJWKSMinRefresh || minInterval > MaxJWKSMinRefresh:
		return fmt.Errorf("jwks_min_refresh_interval: %s is out of range (%s to %s)", minInterval, MinJWKSMinRefresh, MaxJWKSMinRefresh)
	case stale < refresh:
		return fmt.Errorf("jwks_stale_ttl (%s) must be at least jwks_refresh (%s)", stale, refresh)
	}
	rk := remoteKey(p.OIDCIssuer, p.JWKSURL, keys, p.algs, refresh, minInterval, stale, timeout)
	r, release, err := plugin.SharedAs(ctx, rk, func() (*remote, error) {
		// The shared service client never follows a redirect: a
		// discovery or JWKS URL that redirects elsewhere is an error.
		client, _ := auth.NewServiceClient(timeout)
		r := newRemote(p.OIDCIssuer, p.JWKSURL, client, keys, p.algs, refresh, minInterval, stale, p.log)
		r.now = ctx.Clock()
		r.start()
		return r, nil
	})
	if err != nil {
		return err
	}
	p.remote, p.relRemote = r, release
	return nil
}

// Cleanup stops the JWKS refresher; it tolerates a partial Provision.
func (p *JWT) Cleanup() error {
	if p.relRemote != nil {
		p.relRemote()
		p.relRemote = nil
	}
	return nil
}

func durationOr(d config.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

// Wrap returns the authenticating handler.
func (p *JWT) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range p.claimHeaders {
			delete(r.Header, p.claimHeaders[i].Header)
		}
		raw, ambiguous := p.token(r)
		if ambiguous {
			p.Ambiguous(w, r)
			return
		}
		if p.stripQuery && r.URL.RawQuery != "" {
			if q, ok := stripParam(r.URL.RawQuery, p.Query); ok {
				r.URL.RawQuery = q
			}
		}
		if raw == "" {
			p.Unauthenticated(w, r, next, p.chMissing, reasonMissing)
			return
		}
		claims, kid, err := p.verify(r, raw)
		if err != nil {
			reason := failureReason(err)
			if p.log.Enabled(r.Context(), slog.LevelDebug) {
				p.log.Debug("jwt: token refused", "reason", reason, "error", err)
			}
			p.Unauthenticated(w, r, next, p.chInvalid, reason)
			return
		}
		c, ok := p.identify(claims)
		if !ok {
			if p.log.Enabled(r.Context(), slog.LevelDebug) {
				p.log.Debug("jwt: token names no known consumer", "claim", p.ConsumerClaim)
			}
			p.Unauthenticated(w, r, next, p.chInvalid, failureReasonUnknown)
			return
		}
		if !p.hasScopes(claims) {
			if p.log.Enabled(r.Context(), slog.LevelDebug) {
				p.log.Debug("jwt: token lacks a required scope", "consumer", c.Name)
			}
			w.Header().Set("WWW-Authenticate", p.chScope)
			p.Forbidden(w, r, failureReasonInsufficient)
			return
		}
		for i := range p.claimHeaders {
			ch := &p.claimHeaders[i]
			v, err := request.RenderClaim(claims[ch.Claim])
			if err != nil {
				if p.log.Enabled(r.Context(), slog.LevelDebug) {
					p.log.Debug("jwt: claim not sent as a header", "claim", ch.Claim, "header", ch.Header, "error", err)
				}
				continue
			}
			if v != "" {
				r.Header[ch.Header] = []string{v}
			}
		}
		p.AuthenticatedClaims(r, c, kid, claims)
		next.ServeHTTP(w, r)
	})
}

// InjectedHeaders lists the claims_to_headers names, which the gateway
// strips from client requests on every route.
func (p *JWT) InjectedHeaders() []string { return authclaims.Headers(p.claimHeaders) }

// Interface guards.
var (
	_ plugin.Plugin         = (*JWT)(nil)
	_ plugin.Cleaner        = (*JWT)(nil)
	_ plugin.HeaderInjector = (*JWT)(nil)
)
