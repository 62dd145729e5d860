package oidclogin

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

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
