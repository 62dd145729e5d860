// Package auth holds what every authentication plugin shares: the outcome of
// authentication (identity on the request record, identity headers sent
// upstream), the semantics of several auth plugins on one route, the
// anonymous fallback consumer, and uniform failures (401 with
// WWW-Authenticate, 403, JSON body, counted).
//
// Several auth plugins on one route are ALL-OF by default: each must accept
// the request, and the first to refuse answers 401. When every auth plugin
// on the route sets `anonymous`, they are ANY-OF: a plugin that cannot
// authenticate the request lets it through (as the anonymous consumer if no
// one has authenticated it yet), so one successful plugin is enough, and a
// request no plugin accepts reaches the upstream as the anonymous consumer
// (typically refused later by acl). This is Kong's rule.
package auth

import (
	"fmt"
	"net/http"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

// Identity headers sent upstream after authentication (the full set, which
// the gateway core removes from every client request before any plugin
// runs, is httpx.IdentityHeaders).
const (
	HeaderConsumerID       = httpx.HeaderConsumerID
	HeaderConsumerUsername = httpx.HeaderConsumerUsername
	HeaderConsumerGroups   = httpx.HeaderConsumerGroups
	HeaderAnonymous        = httpx.HeaderAnonymous
	HeaderCredential       = httpx.HeaderCredential
	HeaderAuthenticatedBy  = httpx.HeaderAuthenticatedBy
)

// Base is embedded by auth plugins: the `anonymous` option plus the shared
// success and failure paths. Call Setup from Provision.
type Base struct {
	// Anonymous names a consumer to use when this plugin cannot
	// authenticate the request, instead of refusing it.
	Anonymous string `yaml:"anonymous"`

	name      string
	anon      *consumer.Consumer
	failures  map[string]*observe.Counter
	successes *observe.Counter
}

// Setup resolves the anonymous consumer and registers the plugin's counters
// (portico_auth_failures_total{plugin,reason}, portico_auth_success_total).
func (b *Base) Setup(ctx plugin.Context, pluginName string, reasons ...string) error {
	b.name = pluginName
	if b.Anonymous != "" {
		c, ok := ctx.Consumers().ByName(b.Anonymous)
		if !ok {
			return fmt.Errorf("anonymous: consumer %q is not defined", b.Anonymous)
		}
		anon := *c
		anon.Anonymous = true
		b.anon = &anon
	}
	b.failures = map[string]*observe.Counter{}
	for _, r := range append(reasons, "missing", "invalid", "forbidden", "error", ReasonMultiple) {
		b.failures[r] = ctx.Stats().Counter("portico_auth_failures_total", fmt.Sprintf("plugin=%q,reason=%q", pluginName, r))
	}
	b.successes = ctx.Stats().Counter("portico_auth_success_total", fmt.Sprintf("plugin=%q", pluginName))
	return nil
}

// Name is the plugin name given to Setup.
func (b *Base) Name() string { return b.name }

// Authenticated records c as the request's consumer and sets the identity
// headers for the upstream. A real consumer already set by an earlier
// plugin is kept; the anonymous consumer is replaced. credential, if not
// empty, identifies the credential used (never a secret).
func (b *Base) Authenticated(r *http.Request, c *consumer.Consumer, credential string) {
	b.AuthenticatedClaims(r, c, credential, nil)
}

// AuthenticatedClaims is Authenticated for a token plugin: the verified
// claims are recorded with the consumer (request.Record.Claims), for
// split rules, request keys and templates. They are kept only when this
// plugin's consumer is the one recorded.
func (b *Base) AuthenticatedClaims(r *http.Request, c *consumer.Consumer, credential string, claims map[string]any) {
	if b.successes != nil {
		b.successes.Inc()
	}
	rec := request.RecordOf(r)
	if rec != nil && rec.Consumer != nil && !rec.Consumer.Anonymous {
		return
	}
	if rec != nil {
		rec.Consumer, rec.AuthBy, rec.Claims = c, b.name, claims
	}
	SetIdentityHeaders(r.Header, c, b.name, credential)
}

// SetIdentityHeaders writes the identity headers for c.
func SetIdentityHeaders(h http.Header, c *consumer.Consumer, via, credential string) {
	h.Set(HeaderConsumerID, c.ID)
	h.Set(HeaderConsumerUsername, c.Name)
	if c.GroupsHeader != "" {
		h.Set(HeaderConsumerGroups, c.GroupsHeader)
	} else {
		h.Del(HeaderConsumerGroups)
	}
	if c.Anonymous {
		h.Set(HeaderAnonymous, "true")
	} else {
		h.Del(HeaderAnonymous)
	}
	if credential != "" {
		h.Set(HeaderCredential, credential)
	} else {
		h.Del(HeaderCredential)
	}
	h.Set(HeaderAuthenticatedBy, via)
}

// Unauthenticated handles a request this plugin could not authenticate.
// With `anonymous` set it continues to next (as the anonymous consumer
// unless someone already authenticated the request) and returns true.
// Otherwise it answers 401 with the challenge in WWW-Authenticate, counts
// the failure under reason, and returns false. The body never says why.
func (b *Base) Unauthenticated(w http.ResponseWriter, r *http.Request, next http.Handler, challenge, reason string) {
	if b.anon != nil {
		rec := request.RecordOf(r)
		if rec == nil || rec.Consumer == nil {
			if rec != nil {
				rec.Consumer, rec.AuthBy = b.anon, b.name
			}
			SetIdentityHeaders(r.Header, b.anon, b.name, "")
		}
		next.ServeHTTP(w, r)
		return
	}
	b.count(r, reason)
	if challenge != "" {
		w.Header().Set("WWW-Authenticate", challenge)
	}
	request.WriteError(w, r, http.StatusUnauthorized, "unauthorized")
}

// Forbidden answers 403 for an authenticated request that is not allowed.
func (b *Base) Forbidden(w http.ResponseWriter, r *http.Request, reason string) {
	b.count(r, reason)
	request.WriteError(w, r, http.StatusForbidden, "forbidden")
}

// ReasonMultiple is the failure reason for a request that carries more
// than one credential of a plugin's kind.
const ReasonMultiple = "multiple"

// Ambiguous answers 400 for a request carrying more than one credential of
// this plugin's kind (two Authorization headers, a key in both header and
// query…). Which one the plugin checked and which one the upstream reads
// could differ, so such a request is refused even with `anonymous` set.
func (b *Base) Ambiguous(w http.ResponseWriter, r *http.Request) {
	b.count(r, ReasonMultiple)
	request.WriteError(w, r, http.StatusBadRequest, "more than one credential")
}

// Authorization returns the request's Authorization value, "" when it has
// none. A request with more than one is answered 400 (see Ambiguous) and
// ok is false.
func (b *Base) Authorization(w http.ResponseWriter, r *http.Request) (value string, ok bool) {
	switch v := r.Header["Authorization"]; len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	}
	b.Ambiguous(w, r)
	return "", false
}

// Refused counts a failure under reason and records it for the access log,
// for a request the plugin answers itself with another status (429 when
// checks are throttled, 503 when a dependency is down…).
func (b *Base) Refused(r *http.Request, reason string) { b.count(r, reason) }

// count counts a failure under reason and records the reason on the
// request for the access log.
func (b *Base) count(r *http.Request, reason string) {
	if rec := request.RecordOf(r); rec != nil {
		rec.AuthFailure = reason
	}
	if c, ok := b.failures[reason]; ok {
		c.Inc()
	} else if c, ok := b.failures["invalid"]; ok {
		c.Inc()
	}
}

// ConsumerOf returns the request's authenticated consumer, or nil.
func ConsumerOf(r *http.Request) *consumer.Consumer {
	if rec := request.RecordOf(r); rec != nil {
		return rec.Consumer
	}
	return nil
}
