package oidclogin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/request"
)

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
	ls, ok := p.openState(w, r, q.Get("state"))
	if !ok {
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
	tok, idt, ok := p.redeem(ctx, w, r, d, ls, code)
	if !ok {
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
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

// openState finds, deletes and opens the state cookie of the login attempt
// named by state, and checks that the attempt matches and has not expired.
// On failure it has answered the request and returns false.
func (p *OIDCLogin) openState(w http.ResponseWriter, r *http.Request, state string) (*loginState, bool) {
	if len(state) < stateNameLen || !httpx.ValidToken(state) {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "missing or malformed state")
		return nil, false
	}
	name := stateCookiePrefix + state[:stateNameLen]
	if duplicateCookie(r, name) {
		p.Ambiguous(w, r)
		return nil, false
	}
	c, err := r.Cookie(name)
	if err != nil {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "no login in progress for this state")
		return nil, false
	}
	// The attempt is single-use whatever happens next.
	http.SetCookie(w, p.stateAttrs.cookie(name, "", -1))
	var ls loginState
	if err := p.sealer.open(purposeState, name, c.Value, &ls); err != nil {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "state cookie is invalid")
		return nil, false
	}
	if subtle.ConstantTimeCompare([]byte(ls.State), []byte(state)) != 1 {
		p.loginFailed(w, r, http.StatusBadRequest, reasonBadState, "state mismatch")
		return nil, false
	}
	if p.now().Unix() >= ls.Expires {
		p.loginFailed(w, r, http.StatusBadRequest, "expired", "login attempt expired")
		return nil, false
	}
	return &ls, true
}

// redeem exchanges the code (with the PKCE verifier) and verifies the ID
// token, its nonce and its at_hash. A provider that cannot be reached is
// answered 503. On failure it has answered the request and returns false.
func (p *OIDCLogin) redeem(ctx context.Context, w http.ResponseWriter, r *http.Request, d *idp, ls *loginState, code string) (*oauth2.Token, *oidc.IDToken, bool) {
	start := time.Now()
	tok, err := p.oauthConfig(d, ls.RedirectURI).Exchange(ctx, code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		p.providerFailed(w, r, start, err, reasonExchange, "code exchange failed", "code exchange failed")
		return nil, nil, false
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		p.loginFailed(w, r, http.StatusUnauthorized, reasonBadIDToken, "token response has no id_token")
		return nil, nil, false
	}
	start = time.Now()
	idt, err := d.verifier.Verify(ctx, rawID)
	if err != nil {
		p.providerFailed(w, r, start, err, reasonBadIDToken, "ID token keys unavailable", "ID token rejected")
		return nil, nil, false
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 {
		p.loginFailed(w, r, http.StatusUnauthorized, reasonBadNonce, "ID token nonce mismatch")
		return nil, nil, false
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			p.loginFailed(w, r, http.StatusUnauthorized, reasonBadIDToken, "access token does not match at_hash")
			return nil, nil, false
		}
	}
	return tok, idt, true
}

// providerFailed answers a login whose call to the provider, started at
// start, failed: 503 (logged as "<unreachable>: provider unreachable")
// when the provider could not be reached meanwhile, else 401 with reason
// and "<refused>: <error>" as the logged detail.
func (p *OIDCLogin) providerFailed(w http.ResponseWriter, r *http.Request, start time.Time, err error, reason, unreachable, refused string) {
	if p.watch.failedSince(start) {
		p.warn.Warn("oidc_provider", "oidc_login: "+unreachable+": provider unreachable", err, slog.String("issuer", p.Issuer), slog.String("route", routeOf(r)))
		p.unavailable(w, r)
		return
	}
	p.loginFailed(w, r, http.StatusUnauthorized, reason, refused+": "+err.Error())
}

// applyClaims sets the consumer name and the claims_to_headers values.
func (p *OIDCLogin) applyClaims(s *session, idt *oidc.IDToken) error {
	var claims map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return fmt.Errorf("ID token claims: %v", err)
	}
	name, err := request.RenderClaimJSON(claims[p.ConsumerClaim])
	if err != nil {
		return fmt.Errorf("ID token claim %q cannot name a consumer: %v", p.ConsumerClaim, err)
	}
	if name == "" {
		return fmt.Errorf("ID token has no %q claim", p.ConsumerClaim)
	}
	s.Name = name
	s.Claims = nil
	for _, ch := range p.claimHeaders {
		v, err := request.RenderClaimJSON(claims[ch.Claim])
		if err != nil {
			p.log.Warn("oidc_login: ID token claim not sent as a header", "claim", ch.Claim, "header", ch.Header, "error", err)
			continue
		}
		if v != "" {
			if s.Claims == nil {
				s.Claims = map[string]string{}
			}
			s.Claims[ch.Claim] = v
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

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
