// Package hmacauth implements the "hmac_auth" plugin: requests signed with
// a shared secret, in the format of Kong's and APISIX's hmac-auth (after
// draft-cavage-http-signatures).
//
// The client sends
//
//	Authorization: hmac username="<key_id>", algorithm="hmac-sha256",
//	    headers="@request-target date digest", signature="<base64>"
//
// The signing string has one line "name: value" per name in headers,
// joined by "\n" with no trailing newline. The pseudo-header
// @request-target is "<lower-case method> <path and query as received>"
// (still percent-encoded, as on the request line);
// host is the request's Host; a header sent several times is its values
// joined by ", ". The signature is the standard base64 of the HMAC of the
// signing string under the consumer's secret.
//
// A request is accepted when, in this order: the scheme and parameters are
// well formed; the algorithm is allowed; every required header is signed;
// the Date (or X-Date) header is signed and within clock_skew of the
// gateway's clock; the key ID is known and the signature matches; the body
// matches a signed Digest header (required for requests with a body unless
// enforce_digest is false; checked whenever present); and the same key ID
// and signature were not accepted before. Accepted signatures are
// remembered until their date leaves the clock-skew window, so a captured
// request cannot be replayed while its date is still acceptable.
//
// The replay cache is keyed by the key ID and the signature, which is a
// MAC over everything signed, so unsigned additions (an extra header, a
// re-encoded signature, unknown Authorization parameters) cannot make a
// replay look new. It is one cache for the whole process, shared by every
// hmac_auth instance on every route and kept across reloads (it lives in
// the gateway's shared pool, plugin.Context.Shared), so a request accepted
// on one route is a replay on every other route and after a reload. With
// `redis` set, accepted signatures are also recorded in Redis (SET NX with
// the rest of the window as TTL), so gateway nodes sharing that Redis share
// the protection; when Redis cannot answer, on_redis_error decides.
//
// A request carrying more than one Authorization header is refused with
// 400 before any check: which one this plugin verified and which one the
// upstream reads could differ.
package hmacauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/request"
)

// Name is the plugin's name in configs.
const Name = "hmac_auth"

// Defaults.
const (
	DefaultClockSkew       = 300 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	DefaultReplayCacheSize = 100_000
)

// RequestTarget is the pseudo-header for the method and request target.
const RequestTarget = "@request-target"

// maxSignedHeaders bounds the headers one signature may cover.
const maxSignedHeaders = 32

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(HMACAuth) }})
}

// algorithms maps the supported algorithm names to their hash.
var algorithms = map[string]func() hash.Hash{
	"hmac-sha256": sha256.New,
	"hmac-sha384": sha512.New384,
	"hmac-sha512": sha512.New,
}

// HMACAuth is the configuration of one "hmac_auth" instance.
type HMACAuth struct {
	// Anonymous names the consumer a request continues as when it carries
	// no valid signature, instead of being refused.
	Anonymous string `yaml:"anonymous"`
	// ClockSkew is how far the signed Date may be from the gateway's
	// clock, either way. Default 300s.
	ClockSkew config.Duration `yaml:"clock_skew"`
	// Algorithms allowed. Default [hmac-sha256, hmac-sha512]; hmac-sha384
	// is also supported.
	Algorithms []string `yaml:"algorithms"`
	// RequiredHeaders must all be among the signed headers. Default
	// ["@request-target", "date"]; "date" is satisfied by "x-date".
	RequiredHeaders []string `yaml:"required_headers"`
	// EnforceDigest requires a signed Digest header on requests with a
	// body. Default true.
	EnforceDigest *bool `yaml:"enforce_digest"`
	// MaxBodyBytes bounds the body read to check the digest; 413 beyond.
	// Default 1MiB.
	MaxBodyBytes config.Size `yaml:"max_body_bytes"`
	// ReplayCacheSize bounds the remembered signatures. The replay cache is
	// shared by every hmac_auth instance in the process and holds the
	// largest size any of them sets. Default 100000.
	ReplayCacheSize int `yaml:"replay_cache_size"`
	// Redis, when set, also records accepted signatures in Redis, so
	// gateway nodes sharing it refuse each other's replays. Its timeout
	// (default 100ms) bounds each check.
	Redis *redisclient.Config `yaml:"redis"`
	// OnRedisError is what happens when Redis cannot answer: "fail_closed"
	// (default: 503, the request is not accepted) or "local" (accept on
	// the in-process replay cache alone).
	OnRedisError string `yaml:"on_redis_error"`

	base      auth.Base
	store     consumer.Store
	algs      map[string]func() hash.Hash
	required  []string
	digest    bool
	skew      time.Duration
	challenge string
	replays   *replayCache
	release   func()
	client    *redisclient.Client
	relClient func()
	redisTTO  time.Duration
	warn      *observe.DependencyWarner
	// now is the clock, replaceable in tests.
	now func() time.Time
}

// Failure reasons, counted and written to the access log as auth_failure.
const (
	reasonMalformed   = "malformed"
	reasonAlgorithm   = "unsupported_algorithm"
	reasonUnsigned    = "unsigned_header"
	reasonBadDate     = "bad_date"
	reasonClockSkew   = "clock_skew"
	reasonUnknownKey  = "unknown_key"
	reasonSignature   = "bad_signature"
	reasonDigest      = "bad_digest"
	reasonReplay      = "replay"
	reasonUnavailable = "unavailable"
)

// replayPoolKey names the process-wide replay cache in the shared pool.
const replayPoolKey = Name + "/replay"

// Provision applies defaults and resolves the anonymous consumer.
func (p *HMACAuth) Provision(ctx plugin.Context) error {
	if p.ClockSkew == 0 {
		p.ClockSkew = config.Duration(DefaultClockSkew)
	}
	p.skew = p.ClockSkew.D()
	if p.Algorithms == nil {
		p.Algorithms = []string{"hmac-sha256", "hmac-sha512"}
	}
	p.algs = map[string]func() hash.Hash{}
	for _, a := range p.Algorithms {
		if h, ok := algorithms[strings.ToLower(a)]; ok {
			p.algs[strings.ToLower(a)] = h
		}
	}
	if p.RequiredHeaders == nil {
		p.RequiredHeaders = []string{RequestTarget, "date"}
	}
	p.required = make([]string, len(p.RequiredHeaders))
	for i, h := range p.RequiredHeaders {
		p.required[i] = strings.ToLower(strings.TrimSpace(h))
	}
	p.digest = p.EnforceDigest == nil || *p.EnforceDigest
	if p.MaxBodyBytes == 0 {
		p.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if p.ReplayCacheSize == 0 {
		p.ReplayCacheSize = DefaultReplayCacheSize
	}
	if p.OnRedisError == "" {
		p.OnRedisError = "fail_closed"
	}
	if p.ReplayCacheSize > 0 && p.skew >= 0 {
		replays, release, err := plugin.SharedAs(ctx, replayPoolKey, func() (*replayCache, error) {
			return newReplayCache(p.ReplayCacheSize), nil
		})
		if err != nil {
			return err
		}
		p.release = release
		p.replays = replays
		p.replays.grow(p.ReplayCacheSize)
		p.replays.widen(p.skew)
	}
	if p.Redis != nil {
		if err := p.Redis.Validate(); err != nil {
			return err
		}
		cl, release, err := redisclient.Shared(ctx.Shared, p.Redis)
		if err != nil {
			return err
		}
		p.client, p.relClient = cl, release
		p.redisTTO = p.Redis.Timeout.D()
		p.warn = observe.NewDependencyWarner(ctx.Logger(), 0)
	}
	hint := slices.Clone(p.required)
	if p.digest && !slices.Contains(hint, "digest") {
		hint = append(hint, "digest")
	}
	p.challenge = `hmac realm="portico", headers="` + strings.Join(hint, " ") + `"`
	p.now = ctx.Clock()
	p.store = ctx.Consumers()
	p.base.Anonymous = p.Anonymous
	return p.base.Setup(ctx, Name, reasonMalformed, reasonAlgorithm, reasonUnsigned, reasonBadDate,
		reasonClockSkew, reasonUnknownKey, reasonSignature, reasonDigest, reasonReplay, reasonUnavailable)
}

// Cleanup gives back the shared replay cache and the Redis client; it
// tolerates a partial Provision.
func (p *HMACAuth) Cleanup() error {
	if p.release != nil {
		p.release()
		p.release = nil
	}
	if p.relClient != nil {
		p.relClient()
		p.client, p.relClient = nil, nil
	}
	return nil
}

// Validate checks the configured algorithms, headers and limits.
func (p *HMACAuth) Validate() error {
	var errs []error
	if p.skew < 0 {
		errs = append(errs, errors.New("clock_skew: must be positive"))
	}
	if len(p.Algorithms) == 0 {
		errs = append(errs, errors.New("algorithms: at least one is required"))
	}
	for i, a := range p.Algorithms {
		if _, ok := algorithms[strings.ToLower(a)]; !ok {
			errs = append(errs, fmt.Errorf("algorithms[%d]: unsupported %q (use hmac-sha256, hmac-sha384 or hmac-sha512)", i, a))
		}
	}
	for i, h := range p.required {
		if h == "" || strings.ContainsAny(h, " \t\"") {
			errs = append(errs, fmt.Errorf("required_headers[%d]: %q is not a header name", i, p.RequiredHeaders[i]))
		}
	}
	if p.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("max_body_bytes: must be positive"))
	}
	if p.ReplayCacheSize < 0 {
		errs = append(errs, errors.New("replay_cache_size: must be positive"))
	}
	switch p.OnRedisError {
	case "fail_closed", "local":
	default:
		errs = append(errs, fmt.Errorf("on_redis_error: %q is not fail_closed or local", p.OnRedisError))
	}
	return errors.Join(errs...)
}

// Wrap returns the handler that authenticates the request, then runs next.
func (p *HMACAuth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz, single := p.base.Authorization(w, r)
		if !single {
			return
		}
		sp, found, ok := parseAuthorization(authz)
		if !found {
			p.base.Unauthenticated(w, r, next, p.challenge, "missing")
			return
		}
		if !ok {
			p.base.Unauthenticated(w, r, next, p.challenge, reasonMalformed)
			return
		}
		c, reason, status := p.check(r, sp)
		switch {
		case status == http.StatusServiceUnavailable:
			p.base.Refused(r, reason)
			request.WriteError(w, r, status, "replay check unavailable")
			return
		case status != 0:
			msg := "bad request"
			switch status {
			case http.StatusRequestEntityTooLarge:
				msg = "request body too large"
			case http.StatusRequestTimeout:
				msg = "request body read timed out"
			}
			request.WriteError(w, r, status, msg)
			return
		case reason != "":
			p.base.Unauthenticated(w, r, next, p.challenge, reason)
			return
		}
		p.base.Authenticated(r, c, sp.keyID)
		next.ServeHTTP(w, r)
	})
}

// check verifies a parsed signature. It returns the consumer, or the
// failure reason, or an HTTP status for a body that could not be read.
func (p *HMACAuth) check(r *http.Request, sp *sigParams) (*consumer.Consumer, string, int) {
	newHash, ok := p.algs[sp.algorithm]
	if !ok {
		return nil, reasonAlgorithm, 0
	}
	for _, req := range p.required {
		if !signs(sp.headers, req) {
			return nil, reasonUnsigned, 0
		}
	}
	// The date checked against the clock must be signed, or an old
	// signature could be replayed with a fresh date once forgotten.
	dateName := ""
	switch {
	case slices.Contains(sp.headers, "date") && r.Header.Get("Date") != "":
		dateName = "Date"
	case slices.Contains(sp.headers, "x-date") && r.Header.Get("X-Date") != "":
		dateName = "X-Date"
	default:
		return nil, reasonBadDate, 0
	}
	date, err := http.ParseTime(r.Header.Get(dateName))
	if err != nil {
		return nil, reasonBadDate, 0
	}
	now := p.now()
	if d := now.Sub(date); d > p.skew || d < -p.skew {
		return nil, reasonClockSkew, 0
	}
	c, secret, ok := p.store.HMACSecret(sp.keyID)
	if !ok {
		return nil, reasonUnknownKey, 0
	}
	msg, ok := signingString(r, sp.headers)
	if !ok {
		return nil, reasonUnsigned, 0
	}
	mac := hmac.New(newHash, secret)
	mac.Write(msg)
	if !hmac.Equal(mac.Sum(nil), sp.signature) {
		return nil, reasonSignature, 0
	}
	digestHdr := r.Header.Values("Digest")
	if len(digestHdr) > 0 && !slices.Contains(sp.headers, "digest") {
		// An unsigned digest says nothing about the body.
		return nil, reasonDigest, 0
	}
	if len(digestHdr) > 0 || (p.digest && hasBody(r)) {
		body, status := p.readBody(r)
		if status != 0 {
			return nil, "", status
		}
		if len(digestHdr) == 0 {
			if len(body) > 0 {
				return nil, reasonDigest, 0
			}
		} else if !digestMatches(strings.Join(digestHdr, ","), body) {
			return nil, reasonDigest, 0
		}
	}
	if p.replays != nil {
		key := replayKey(sp.keyID, sp.signature)
		// Entries live until the date leaves the widest clock-skew window
		// of any instance sharing the cache.
		expires := date.Add(p.replays.window())
		if !p.replays.addKey(key, expires, now) {
			return nil, reasonReplay, 0
		}
		if p.client != nil {
			if reason, status := p.redisCheck(r.Context(), key, expires.Sub(now)); reason != "" {
				return nil, reason, status
			}
		}
	}
	return c, "", 0
}

// Interface guards.
var (
	_ plugin.Plugin    = (*HMACAuth)(nil)
	_ plugin.Validator = (*HMACAuth)(nil)
	_ plugin.Cleaner   = (*HMACAuth)(nil)
)
