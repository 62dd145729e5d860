package oidclogin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/request"
)

// Server-side revocation. Without Redis a session lives in its cookie
// alone: logout deletes the browser's cookie, but a copy of it stays
// valid until it expires. With `redis` set, every session carries a random
// session ID inside its sealed cookie; logout records the ID in Redis
// under <key_prefix>oidc:revoked:<id> for the rest of the session's
// lifetime, and every request looks its ID up there first.

// Failure reasons of revocation.
const (
	reasonRevoked          = "revoked"
	reasonStoreUnavailable = "session_store_unavailable"
)

// on_redis_error values.
const (
	failClosed = "fail_closed"
	failOpen   = "fail_open"
)

// revokedKey is the part of a revocation key after the key prefix.
const revokedKey = "oidc:revoked:"

// sessionIDBytes is the entropy of a session ID.
const sessionIDBytes = 16

// revocation is the Redis side of an instance with `redis` set.
type revocation struct {
	client   *redisclient.Client
	release  func()
	timeout  time.Duration
	failOpen bool
	prefix   string
	errors   *observe.Counter
}

// setupRevocation validates redis and on_redis_error and acquires the
// shared Redis client.
func (p *OIDCLogin) setupRevocation(ctx plugin.Context) error {
	if p.Redis == nil {
		if p.OnRedisError != "" {
			return errors.New("on_redis_error: only applies with redis")
		}
		return nil
	}
	if p.OnRedisError == "" {
		p.OnRedisError = failClosed
	}
	if p.OnRedisError != failClosed && p.OnRedisError != failOpen {
		return fmt.Errorf("on_redis_error: %q is not fail_closed or fail_open", p.OnRedisError)
	}
	cl, release, err := redisclient.Shared(ctx.Shared, p.Redis)
	if err != nil {
		return err
	}
	p.revoke = &revocation{
		client:   cl,
		release:  release,
		timeout:  p.Redis.Timeout.D(),
		failOpen: p.OnRedisError == failOpen,
		prefix:   cl.Prefix + revokedKey,
		errors:   ctx.Stats().Counter("portico_oidc_login_redis_errors_total", fmt.Sprintf("route=%q", ctx.Route())),
	}
	return nil
}

// releaseRevocation gives back the Redis client.
func (p *OIDCLogin) releaseRevocation() {
	if p.revoke != nil {
		p.revoke.release()
		p.revoke = nil
	}
}

// newSessionID returns a random session ID (128 bits, base64url).
func newSessionID() string {
	b := make([]byte, sessionIDBytes)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// revokeResult is the outcome of a revocation lookup.
type revokeResult uint8

const (
	sessionLive revokeResult = iota
	sessionRevoked
	// sessionWithoutID: a session made before redis was configured; it
	// cannot be revoked, so it is not accepted.
	sessionWithoutID
	// storeDown: Redis could not answer and on_redis_error is
	// fail_closed.
	storeDown
)

// checkRevoked looks the session's ID up in Redis. A session without an
// ID (made before redis was configured) cannot be revoked and is refused.
func (p *OIDCLogin) checkRevoked(r *http.Request, s *session) revokeResult {
	rv := p.revoke
	if s.ID == "" {
		return sessionWithoutID
	}
	ctx, cancel := context.WithTimeout(r.Context(), rv.timeout)
	defer cancel()
	n, err := rv.client.Exists(ctx, rv.prefix+s.ID).Result()
	if err != nil {
		if p.revocationFailed(r, "oidc_login: session revocation check failed", err) {
			return sessionLive
		}
		return storeDown
	}
	if n > 0 {
		return sessionRevoked
	}
	return sessionLive
}

// recordLogout writes the session's revocation with the rest of its
// lifetime as TTL. It returns an error only when the revocation could not
// be recorded and on_redis_error is fail_closed.
func (p *OIDCLogin) recordLogout(r *http.Request, s *session) error {
	rv := p.revoke
	if s.ID == "" {
		return nil
	}
	ttl := time.Unix(s.Expires, 0).Sub(p.now())
	if ttl <= 0 {
		return nil
	}
	ttl = max(ttl.Round(time.Second), time.Second)
	ctx, cancel := context.WithTimeout(r.Context(), rv.timeout)
	defer cancel()
	err := rv.client.Set(ctx, rv.prefix+s.ID, 1, ttl).Err()
	if err == nil {
		return nil
	}
	if p.revocationFailed(r, "oidc_login: logout could not be recorded", err) {
		return nil
	}
	return err
}

// revocationFailed counts and logs (rate limited) a failed call to the
// revocation store, and reports whether on_redis_error lets the request
// continue.
func (p *OIDCLogin) revocationFailed(r *http.Request, msg string, err error) (failOpen bool) {
	p.revoke.errors.Inc()
	p.warn.Warn("redis", msg, err,
		slog.String("plugin", Name), slog.String("route", routeOf(r)), slog.String("on_redis_error", p.OnRedisError))
	return p.revoke.failOpen
}

// storeUnavailable answers 503 with Retry-After: Redis could not answer
// and on_redis_error is fail_closed.
func (p *OIDCLogin) storeUnavailable(w http.ResponseWriter, r *http.Request, msg string) {
	p.Refused(r, reasonStoreUnavailable)
	w.Header().Set("Retry-After", "5")
	request.WriteError(w, r, http.StatusServiceUnavailable, msg)
}
