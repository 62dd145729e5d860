package oidclogin

import (
	"net/http"
	"net/url"
	"strings"
)

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
