// Package basicauth implements the "basic_auth" plugin: HTTP Basic
// authentication (RFC 7617) against the consumer store's usernames.
//
// A password given in clear in config is stored as its SHA-256 digest and
// checked by comparing digests in constant time. bcrypt and argon2id hashes
// are deliberately slow to check, which costs latency and lets a client
// burn CPU, so successful checks against them are remembered in a bounded
// in-memory cache (cache_ttl, cache_size) keyed by a salted SHA-256 of
// "username:password". Failed checks are remembered too (failure_cache_ttl,
// same bound), so a repeated wrong password is refused without hashing
// again, and the hash checks themselves are bounded: at most
// max_hash_checks_per_user run at once for one username and at most
// max_hash_checks in all; a request beyond either is answered 429 with
// Retry-After, without hashing. An unknown username still costs a digest
// comparison, so timing does not tell known usernames with clear passwords
// from unknown ones; a username with a hashed password is slower to refuse
// than an unknown one by the cost of the hash.
//
// A request carrying more than one Authorization header is refused with
// 400 before any check.
package basicauth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
	"github.com/portico-gw/portico/internal/plugin/auth/ttlcache"
	"github.com/portico-gw/portico/internal/request"
)

// Name is the plugin's name in configs.
const Name = "basic_auth"

// Defaults.
const (
	DefaultRealm     = "portico"
	DefaultCacheTTL  = 60 * time.Second
	DefaultCacheSize = 10_000
	// DefaultFailureCacheTTL is how long a failed slow check is remembered.
	DefaultFailureCacheTTL = 60 * time.Second
	// DefaultMaxHashChecksPerUser bounds concurrent slow checks of one
	// username.
	DefaultMaxHashChecksPerUser = 2
)

// DefaultMaxHashChecks bounds concurrent slow checks of one instance:
// the number of CPUs, at least 2.
func DefaultMaxHashChecks() int { return max(2, runtime.GOMAXPROCS(0)) }

// Failure reasons, counted and written to the access log as auth_failure.
const (
	reasonMalformed   = "malformed"
	reasonUnknownUser = "unknown_consumer"
	reasonBadPassword = "bad_password"
	reasonThrottled   = "throttled"
)

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(BasicAuth) }})
}

// BasicAuth is the configuration of one "basic_auth" instance.
type BasicAuth struct {
	// Anonymous names the consumer a request continues as when it carries
	// no valid credentials, instead of being refused.
	Anonymous string `yaml:"anonymous"`
	// Realm is sent in the WWW-Authenticate challenge. Default "portico".
	Realm string `yaml:"realm"`
	// HideCredentials removes the Authorization header before the request
	// is passed on. Default true.
	HideCredentials *bool `yaml:"hide_credentials"`
	// CacheTTL is how long a successful bcrypt/argon2id check is
	// remembered. Default 60s; 0 disables the cache.
	CacheTTL *config.Duration `yaml:"cache_ttl"`
	// CacheSize bounds the number of remembered checks, successful and
	// failed each. Default 10000.
	CacheSize int `yaml:"cache_size"`
	// FailureCacheTTL is how long a failed bcrypt/argon2id check of a
	// username and password is remembered, so the same wrong password is
	// refused without hashing again. Default 60s; 0 disables.
	FailureCacheTTL *config.Duration `yaml:"failure_cache_ttl"`
	// MaxHashChecksPerUser bounds the bcrypt/argon2id checks running at
	// once for one username; a request beyond it is answered 429 without
	// hashing. Default 2.
	MaxHashChecksPerUser int `yaml:"max_hash_checks_per_user"`
	// MaxHashChecks bounds the bcrypt/argon2id checks running at once in
	// this plugin instance; a request beyond it is answered 429 without
	// hashing. Default the number of CPUs (at least 2).
	MaxHashChecks int `yaml:"max_hash_checks"`

	base      auth.Base
	store     consumer.Store
	challenge string
	hide      bool
	cache     *verifiedCache
	failed    *verifiedCache
	salt      [32]byte
	limits    hashLimiter
	// now is the clock, replaceable in tests.
	now func() time.Time
	// checkHash runs one slow check; replaceable in tests.
	checkHash func(hash, pass string) bool
	// slowChecks counts bcrypt/argon2id comparisons actually run.
	slowChecks atomic.Int64
}

// Provision applies defaults and resolves the anonymous consumer.
func (p *BasicAuth) Provision(ctx plugin.Context) error {
	if p.Realm == "" {
		p.Realm = DefaultRealm
	}
	ttl := DefaultCacheTTL
	if p.CacheTTL != nil {
		ttl = p.CacheTTL.D()
	}
	if p.CacheSize == 0 {
		p.CacheSize = DefaultCacheSize
	}
	if _, err := rand.Read(p.salt[:]); err != nil {
		return fmt.Errorf("cache salt: %w", err)
	}
	if ttl > 0 && p.CacheSize > 0 {
		p.cache = newVerifiedCache(ttl, p.CacheSize)
	}
	fttl := DefaultFailureCacheTTL
	if p.FailureCacheTTL != nil {
		fttl = p.FailureCacheTTL.D()
	}
	if fttl > 0 && p.CacheSize > 0 {
		p.failed = newVerifiedCache(fttl, p.CacheSize)
	}
	if p.MaxHashChecksPerUser == 0 {
		p.MaxHashChecksPerUser = DefaultMaxHashChecksPerUser
	}
	if p.MaxHashChecks == 0 {
		p.MaxHashChecks = DefaultMaxHashChecks()
	}
	p.limits = hashLimiter{perUser: p.MaxHashChecksPerUser, total: int64(p.MaxHashChecks), users: map[string]int{}}
	p.checkHash = checkHash
	p.hide = p.HideCredentials == nil || *p.HideCredentials
	p.challenge = `Basic realm="` + p.Realm + `", charset="UTF-8"`
	p.now = ctx.Clock()
	p.store = ctx.Consumers()
	p.base.Anonymous = p.Anonymous
	return p.base.Setup(ctx, Name, reasonMalformed, reasonUnknownUser, reasonBadPassword, reasonThrottled)
}

// Validate checks the realm and the cache settings.
func (p *BasicAuth) Validate() error {
	var errs []error
	for i := 0; i < len(p.Realm); i++ {
		if c := p.Realm[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			errs = append(errs, errors.New(`realm: must not contain quotes, backslashes or control characters`))
			break
		}
	}
	if p.CacheTTL != nil && p.CacheTTL.D() < 0 {
		errs = append(errs, errors.New("cache_ttl: must not be negative"))
	}
	if p.CacheSize < 0 {
		errs = append(errs, errors.New("cache_size: must not be negative"))
	}
	if p.FailureCacheTTL != nil && p.FailureCacheTTL.D() < 0 {
		errs = append(errs, errors.New("failure_cache_ttl: must not be negative"))
	}
	if p.MaxHashChecksPerUser < 0 {
		errs = append(errs, errors.New("max_hash_checks_per_user: must be positive"))
	}
	if p.MaxHashChecks < 0 {
		errs = append(errs, errors.New("max_hash_checks: must be positive"))
	}
	return errors.Join(errs...)
}

// Wrap returns the handler that authenticates the request, then runs next.
func (p *BasicAuth) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz, single := p.base.Authorization(w, r)
		if !single {
			return
		}
		user, pass, found, ok := parseBasic(authz)
		if !found {
			p.base.Unauthenticated(w, r, next, p.challenge, "missing")
			return
		}
		if p.hide {
			r.Header.Del("Authorization")
		}
		if !ok {
			p.base.Unauthenticated(w, r, next, p.challenge, reasonMalformed)
			return
		}
		c, reason := p.verify(user, pass)
		switch reason {
		case "":
		case reasonThrottled:
			p.base.Refused(r, reason)
			w.Header().Set("Retry-After", "1")
			request.WriteError(w, r, http.StatusTooManyRequests, "too many password checks")
			return
		default:
			p.base.Unauthenticated(w, r, next, p.challenge, reason)
			return
		}
		p.base.Authenticated(r, c, user)
		next.ServeHTTP(w, r)
	})
}

// dummyDigest is compared against when the username is unknown.
var dummyDigest = sha256.Sum256([]byte("portico basic_auth: no such user"))

// verify checks the password of user and returns its consumer, or the
// failure reason.
func (p *BasicAuth) verify(user, pass string) (*consumer.Consumer, string) {
	digest := sha256.Sum256([]byte(pass))
	c, secrets, known := p.store.BasicSecrets(user)
	if !known {
		subtle.ConstantTimeCompare(digest[:], dummyDigest[:])
		return nil, reasonUnknownUser
	}
	match := 0
	hashed := false
	for _, s := range secrets {
		if s.Hash == "" {
			match |= subtle.ConstantTimeCompare(digest[:], s.Digest)
		} else {
			hashed = true
		}
	}
	if match == 1 {
		return c, ""
	}
	if !hashed {
		return nil, reasonBadPassword
	}
	var ck cacheKey
	if p.cache != nil || p.failed != nil {
		ck = p.key(user, pass)
	}
	if p.cache != nil && p.cache.get(ck, p.now()) {
		return c, ""
	}
	if p.failed != nil && p.failed.get(ck, p.now()) {
		return nil, reasonBadPassword
	}
	if !p.limits.acquire(user) {
		return nil, reasonThrottled
	}
	defer p.limits.release(user)
	for _, s := range secrets {
		if s.Hash == "" {
			continue
		}
		p.slowChecks.Add(1)
		if p.checkHash(s.Hash, pass) {
			if p.cache != nil {
				p.cache.put(ck, p.now())
			}
			return c, ""
		}
	}
	if p.failed != nil {
		p.failed.put(ck, p.now())
	}
	return nil, reasonBadPassword
}

// hashLimiter bounds the slow checks running at once, per username and in
// all. Only usernames with a hashed password reach it, so its map is
// bounded by the consumer store.
type hashLimiter struct {
	perUser int
	total   int64
	running atomic.Int64
	// peak is the most checks seen running at once (for tests).
	peak atomic.Int64

	mu    sync.Mutex
	users map[string]int
}

// acquire takes a slot for user, or reports false when user or the
// instance is at its bound.
func (l *hashLimiter) acquire(user string) bool {
	n := l.running.Add(1)
	if n > l.total {
		l.running.Add(-1)
		return false
	}
	l.mu.Lock()
	if l.users[user] >= l.perUser {
		l.mu.Unlock()
		l.running.Add(-1)
		return false
	}
	l.users[user]++
	l.mu.Unlock()
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return true
}

// release gives back user's slot.
func (l *hashLimiter) release(user string) {
	l.mu.Lock()
	if l.users[user] <= 1 {
		delete(l.users, user)
	} else {
		l.users[user]--
	}
	l.mu.Unlock()
	l.running.Add(-1)
}

// parseBasic parses an Authorization header value. found reports whether it
// uses the Basic scheme at all; ok whether it is well formed: strict
// standard base64 of "user:password" with a non-empty user.
func parseBasic(h string) (user, pass string, found, ok bool) {
	const scheme = "basic"
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", "", false, false
	}
	if len(h) == len(scheme) {
		return "", "", true, false
	}
	if h[len(scheme)] != ' ' {
		return "", "", false, false
	}
	enc := strings.TrimLeft(h[len(scheme):], " ")
	dec, err := base64.StdEncoding.Strict().DecodeString(enc)
	if err != nil {
		return "", "", true, false
	}
	user, pass, colon := strings.Cut(string(dec), ":")
	if !colon || user == "" {
		return "", "", true, false
	}
	return user, pass, true, true
}

// checkHash reports whether pass matches a bcrypt or argon2id hash.
func checkHash(hash, pass string) bool {
	if strings.HasPrefix(hash, "$argon2id$") {
		return checkArgon2id(hash, pass)
	}
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
}

// checkArgon2id verifies pass against a PHC string
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash> (parsed, within
// bounds, by consumer.ParseArgon2id, which also checks hashes at load time).
func checkArgon2id(phc, pass string) bool {
	a, err := consumer.ParseArgon2id(phc)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(pass), a.Salt, a.Time, a.Memory, a.Threads, uint32(len(a.Key)))
	return subtle.ConstantTimeCompare(got, a.Key) == 1
}

// cacheKey identifies one verified username and password.
type cacheKey [sha256.Size]byte

// verifiedCache remembers slow-hash checks (successful ones, or failed
// ones) for ttl, in at most max entries. When full, expired entries are
// dropped first, then the oldest ones.
type verifiedCache struct {
	ttl time.Duration
	c   *ttlcache.Cache[cacheKey, struct{}]
}

func newVerifiedCache(ttl time.Duration, max int) *verifiedCache {
	c, err := ttlcache.New[cacheKey, struct{}](max)
	if err != nil {
		panic(err) // max is checked positive by the caller
	}
	return &verifiedCache{ttl: ttl, c: c}
}

// key is SHA-256 over a per-instance random salt and "user:pass", so the
// caches hold nothing a memory dump could be brute-forced against offline
// with precomputed tables.
func (p *BasicAuth) key(user, pass string) cacheKey {
	h := sha256.New()
	h.Write(p.salt[:])
	h.Write([]byte(user))
	h.Write([]byte{':'})
	h.Write([]byte(pass))
	var k cacheKey
	h.Sum(k[:0])
	return k
}

func (c *verifiedCache) get(k cacheKey, now time.Time) bool {
	_, ok := c.c.Get(k, now)
	return ok
}

func (c *verifiedCache) put(k cacheKey, now time.Time) {
	c.c.Add(k, struct{}{}, now.Add(c.ttl), now)
}

// len is the number of entries, expired ones not yet dropped included.
func (c *verifiedCache) len() int { return c.c.Len() }

// Interface guards.
var (
	_ plugin.Plugin    = (*BasicAuth)(nil)
	_ plugin.Validator = (*BasicAuth)(nil)
)
