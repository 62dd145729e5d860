package oidclogin

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
)

func (p *OIDCLogin) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	for _, ch := range p.claimHeaders {
		r.Header.Del(ch.Header)
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
		if v, ok := s.Claims[ch.Claim]; ok {
			r.Header.Set(ch.Header, v)
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

func redirect(w http.ResponseWriter, loc string) {
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
}

func routeOf(r *http.Request) string {
	if rec := request.RecordOf(r); rec != nil {
		return rec.Route
	}
	return ""
}
