package oidclogin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// refreshSession renews the tokens of s. Requests carrying the same
// refresh token share one call to the provider.
func (p *OIDCLogin) refreshSession(ctx context.Context, d *idp, s *session) (*session, error) {
	sum := sha256.Sum256([]byte(s.RefreshToken))
	key := hex.EncodeToString(sum[:])
	p.refreshMu.Lock()
	if c, ok := p.refreshes[key]; ok && time.Since(c.at) < refreshShare {
		p.refreshMu.Unlock()
		select {
		case <-c.done:
			return c.s, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	for k, c := range p.refreshes {
		if time.Since(c.at) >= refreshShare {
			delete(p.refreshes, k)
		}
	}
	c := &refreshCall{done: make(chan struct{}), at: time.Now()}
	p.refreshes[key] = c
	p.refreshMu.Unlock()

	// The provider call is not tied to this request: others may wait on it.
	rctx, cancel := context.WithTimeout(p.clientContext(context.WithoutCancel(ctx)), p.Timeout.D())
	defer cancel()
	start := time.Now()
	c.s, c.err = p.doRefresh(rctx, d, s)
	if c.err != nil && p.watch.failedSince(start) {
		c.err = fmt.Errorf("%w: %v", errUnreachable, c.err)
		// An outage is shared briefly only, so the first request after
		// the provider is back refreshes again.
		p.refreshMu.Lock()
		c.at = time.Now().Add(outageShare - refreshShare)
		p.refreshMu.Unlock()
	}
	close(c.done)
	return c.s, c.err
}

// errUnreachable marks a refresh that failed because the provider could
// not be reached.
var errUnreachable = errors.New("identity provider unreachable")

// outageShare is how long a refresh that failed for an outage is shared
// with the requests carrying the same refresh token.
const outageShare = 2 * time.Second

func (p *OIDCLogin) doRefresh(ctx context.Context, d *idp, old *session) (*session, error) {
	tok, err := p.oauthConfig(d, "").TokenSource(ctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		return nil, err
	}
	s := *old
	s.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		s.RefreshToken = tok.RefreshToken
	}
	var idt *oidc.IDToken
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		if idt, err = d.verifier.Verify(ctx, rawID); err != nil {
			return nil, fmt.Errorf("refreshed ID token rejected: %v", err)
		}
		if idt.Subject != old.Sub {
			return nil, errors.New("refreshed ID token is for another subject")
		}
		if err := p.applyClaims(&s, idt); err != nil {
			return nil, err
		}
		s.IDToken = rawID
	}
	s.TokenExpiry = tokenExpiry(p.now(), tok, idt)
	if s.TokenExpiry != 0 && s.TokenExpiry <= p.now().Unix() {
		return nil, errors.New("provider issued an already expired token")
	}
	return &s, nil
}
