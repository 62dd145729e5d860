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
	"bytes"
	"container/heap"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	plugin.Register(plugin.Spec{
		Name:  Name,
		Phase: plugin.PhaseAccess,
		New:   func() plugin.Plugin { return new(HMACAuth) },
	})
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
		authz := r.Header["Authorization"]
		if len(authz) > 1 {
			p.base.Ambiguous(w, r)
			return
		}
		var sp *sigParams
		found, ok := false, false
		if len(authz) == 1 {
			sp, found, ok = parseAuthorization(authz[0])
		}
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
			if status == http.StatusRequestEntityTooLarge {
				msg = "request body too large"
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

// replayKey identifies one accepted signature of one credential: SHA-256
// over the key ID and the decoded signature.
func replayKey(keyID string, signature []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(keyID))
	h.Write([]byte{0})
	h.Write(signature)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// redisCheck records the signature in Redis with SET NX for ttl. It
// returns reasonReplay when another node (or an earlier request) already
// recorded it, and reasonUnavailable with 503 when Redis cannot answer and
// on_redis_error is fail_closed.
func (p *HMACAuth) redisCheck(ctx context.Context, key [sha256.Size]byte, ttl time.Duration) (string, int) {
	if ttl < time.Second {
		ttl = time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, p.redisTTO)
	defer cancel()
	var b [len("hmac_replay:") + 2*sha256.Size]byte
	n := copy(b[:], "hmac_replay:")
	hex.Encode(b[n:], key[:])
	fresh, err := p.client.SetNX(ctx, p.client.Prefix+string(b[:]), 1, ttl).Result()
	if err != nil {
		p.warn.Warn("redis", "hmac_auth replay check failed", err, slog.String("plugin", Name), slog.String("on_redis_error", p.OnRedisError))
		if p.OnRedisError == "local" {
			return "", 0
		}
		return reasonUnavailable, http.StatusServiceUnavailable
	}
	if !fresh {
		return reasonReplay, 0
	}
	return "", 0
}

// signs reports whether the signed header list covers the required name.
func signs(signed []string, name string) bool {
	if slices.Contains(signed, name) {
		return true
	}
	return name == "date" && slices.Contains(signed, "x-date")
}

// hasBody reports whether the request may carry a body.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// readBody reads the whole body, at most MaxBodyBytes, and puts the bytes
// back on the request for the next handler.
func (p *HMACAuth) readBody(r *http.Request) ([]byte, int) {
	if !hasBody(r) {
		return nil, 0
	}
	limit := int64(p.MaxBodyBytes)
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge
		}
		return nil, http.StatusBadRequest
	}
	if n > limit {
		return nil, http.StatusRequestEntityTooLarge
	}
	body := buf.Bytes()
	r.Body = restoredBody{Reader: bytes.NewReader(body), Closer: r.Body}
	return body, 0
}

// restoredBody replays the buffered body and closes the original one.
type restoredBody struct {
	io.Reader
	io.Closer
}

// digestMatches checks a Digest header (RFC 3230): a comma-separated list
// of "algorithm=base64". At least one entry must be SHA-256 or SHA-512 and
// every such entry must match the body.
func digestMatches(header string, body []byte) bool {
	checked := false
	for part := range strings.SplitSeq(header, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return false
		}
		var sum []byte
		switch strings.ToUpper(alg) {
		case "SHA-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "SHA-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		got, err := base64.StdEncoding.DecodeString(val)
		if err != nil || !hmac.Equal(got, sum) {
			return false
		}
		checked = true
	}
	return checked
}

// signingString builds the string the client signed; ok is false when a
// signed header is absent from the request.
func signingString(r *http.Request, headers []string) ([]byte, bool) {
	var b []byte
	for i, name := range headers {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, name...)
		b = append(b, ": "...)
		switch name {
		case RequestTarget:
			// The origin-form target as received; an absolute-form
			// request line is reduced to its path and query.
			target := r.RequestURI
			if target == "" || target[0] != '/' {
				target = r.URL.RequestURI()
			}
			b = append(b, strings.ToLower(r.Method)...)
			b = append(b, ' ')
			b = append(b, target...)
		case "host":
			if r.Host == "" {
				return nil, false
			}
			b = append(b, r.Host...)
		default:
			vs := r.Header.Values(name)
			if len(vs) == 0 {
				return nil, false
			}
			for j, v := range vs {
				if j > 0 {
					b = append(b, ", "...)
				}
				b = append(b, strings.TrimSpace(v)...)
			}
		}
	}
	return b, true
}

// sigParams are the parameters of an hmac Authorization header.
type sigParams struct {
	keyID        string
	algorithm    string
	headers      []string
	signature    []byte // decoded
	rawSignature string
}

// parseAuthorization parses `hmac k="v", k="v", ...`. found reports whether
// the scheme is hmac; ok whether the parameters are complete and well
// formed. Unknown parameters are ignored; repeated ones are an error.
func parseAuthorization(h string) (sp *sigParams, found, ok bool) {
	const scheme = "hmac"
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return nil, false, false
	}
	rest := h[len(scheme):]
	if rest != "" && rest[0] != ' ' {
		return nil, false, false
	}
	sp = &sigParams{}
	var seen [4]bool
	hdrs := "date"
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, true, false
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		if rest == "" || rest[0] != '"' {
			return nil, true, false
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, true, false
		}
		val := rest[1 : 1+end]
		rest = strings.TrimLeft(rest[2+end:], " \t")
		if rest != "" {
			if rest[0] != ',' {
				return nil, true, false
			}
			rest = rest[1:]
		}
		idx := -1
		switch key {
		case "username":
			idx, sp.keyID = 0, val
		case "algorithm":
			idx, sp.algorithm = 1, strings.ToLower(val)
		case "headers":
			idx, hdrs = 2, val
		case "signature":
			idx, sp.rawSignature = 3, val
		}
		if idx >= 0 {
			if seen[idx] {
				return nil, true, false
			}
			seen[idx] = true
		}
	}
	if sp.keyID == "" || sp.algorithm == "" || sp.rawSignature == "" {
		return nil, true, false
	}
	for name := range strings.FieldsSeq(hdrs) {
		name = strings.ToLower(name)
		if slices.Contains(sp.headers, name) || len(sp.headers) == maxSignedHeaders {
			return nil, true, false
		}
		sp.headers = append(sp.headers, name)
	}
	if len(sp.headers) == 0 {
		return nil, true, false
	}
	// Strict decoding: one signature has exactly one accepted encoding.
	sig, err := base64.StdEncoding.Strict().DecodeString(sp.rawSignature)
	if err != nil || len(sig) == 0 {
		return nil, true, false
	}
	sp.signature = sig
	return sp, true, true
}

// replayShards spreads the replay cache over independently locked maps.
const replayShards = 64

// replayCache remembers accepted (key ID, signature) pairs, by their
// replayKey, until they expire. Each shard holds at most its share of the
// configured size; when a shard is full, expired entries are dropped and
// then the entries that expire soonest (the oldest dates) are evicted
// first. One cache serves every instance (see Provision); it grows to the
// largest size and the widest clock-skew window any of them configures.
//
// It is not an LRU (golang-lru): an entry's life is its signed date plus
// the skew window, not a fixed time from insertion, and evicting an entry
// whose window is still open lets that signature be replayed. Insertion or
// use order would evict a pair stored early but dated late while pairs
// whose window closes sooner stay; the expiry heap evicts the pairs closest
// to expiring, which keeps the replay window opened by a full cache as
// small as it can be.
type replayCache struct {
	seed   maphash.Seed
	max    atomic.Int64 // per shard
	skew   atomic.Int64 // widest clock skew, nanoseconds
	shards [replayShards]replayShard
}

type replayShard struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]int64 // expiry, Unix nanoseconds
	order   expiryHeap
}

func newReplayCache(size int) *replayCache {
	c := &replayCache{seed: maphash.MakeSeed()}
	c.grow(size)
	for i := range c.shards {
		c.shards[i].entries = map[[sha256.Size]byte]int64{}
	}
	return c
}

// Close lets the cache live in the shared pool; it holds nothing to free.
func (c *replayCache) Close() error { return nil }

// grow raises the bound to at least size entries.
func (c *replayCache) grow(size int) {
	per := int64(max(1, (size+replayShards-1)/replayShards))
	for {
		cur := c.max.Load()
		if per <= cur || c.max.CompareAndSwap(cur, per) {
			return
		}
	}
}

// widen raises the remembered window to at least skew.
func (c *replayCache) widen(skew time.Duration) {
	for {
		cur := c.skew.Load()
		if int64(skew) <= cur || c.skew.CompareAndSwap(cur, int64(skew)) {
			return
		}
	}
}

// window is the widest clock skew of the instances sharing the cache.
func (c *replayCache) window() time.Duration { return time.Duration(c.skew.Load()) }

// add records the pair until expires and reports whether it was new (not
// seen before, or seen but expired).
func (c *replayCache) add(keyID string, signature []byte, expires, now time.Time) bool {
	return c.addKey(replayKey(keyID, signature), expires, now)
}

// addKey is add for a precomputed replayKey.
func (c *replayCache) addKey(k [sha256.Size]byte, expires, now time.Time) bool {
	s := &c.shards[maphash.Comparable(c.seed, k)%replayShards]
	t, exp := now.UnixNano(), expires.UnixNano()
	limit := int(c.max.Load())
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[k]; ok && e >= t {
		return false
	}
	for len(s.order) > 0 && (s.order[0].exp < t || len(s.entries) >= limit) {
		it := heap.Pop(&s.order).(expiryItem)
		if e, ok := s.entries[it.key]; ok && e == it.exp {
			delete(s.entries, it.key)
		}
	}
	s.entries[k] = exp
	heap.Push(&s.order, expiryItem{key: k, exp: exp})
	return true
}

// len is the number of remembered pairs.
func (c *replayCache) len() int {
	n := 0
	for i := range c.shards {
		c.shards[i].mu.Lock()
		n += len(c.shards[i].entries)
		c.shards[i].mu.Unlock()
	}
	return n
}

type expiryItem struct {
	key [sha256.Size]byte
	exp int64
}

// expiryHeap is a min-heap of entries by expiry.
type expiryHeap []expiryItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp < h[j].exp }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryItem)) }
func (h *expiryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
