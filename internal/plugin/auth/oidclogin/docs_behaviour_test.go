package oidclogin

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// These tests pin behaviour the README states for new users.

// TestSessionEndsWithTokenWithoutRefreshToken: without a refresh token the
// session ends when the access token expires (expires_in), or the ID
// token when the provider gives no expires_in, whatever session_ttl says.
func TestSessionEndsWithTokenWithoutRefreshToken(t *testing.T) {
	for _, tc := range []struct {
		name        string
		noExpiresIn bool
	}{{"access token expiry", false}, {"ID token expiry", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{extraYAML: "session_ttl: 24h", setup: func(p *fakeIdP) {
				p.noRefreshToken, p.noExpiresIn, p.tokenTTL = true, tc.noExpiresIn, 20*time.Minute
			}})
			e.login("/app")
			e.clock.Advance(19 * time.Minute)
			if resp := e.get(e.step, "/app"); resp.StatusCode != http.StatusOK {
				t.Fatalf("before the token expires: %d, want 200", resp.StatusCode)
			}
			e.clock.Advance(2 * time.Minute)
			if resp := e.get(e.step, "/app", "Accept", "application/json"); resp.StatusCode != http.StatusUnauthorized || e.lastReason != "expired" {
				t.Errorf("after the token expired, API client: %d reason %q, want 401 expired", resp.StatusCode, e.lastReason)
			}
			if resp := e.get(e.step, "/app"); !isAuthorizeRedirect(e, resp) {
				t.Errorf("after the token expired, browser: %d, want a new login", resp.StatusCode)
			}
		})
	}
}

// TestMissingClaimMeansNoHeader: a claims_to_headers claim the ID token
// lacks (or has as null, "" or []) gives no header at all, and a value the
// client sent is still removed.
func TestMissingClaimMeansNoHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims map[string]any
	}{
		{"missing", map[string]any{"email": nil, "groups": nil}},
		{"null", map[string]any{"email": json.RawMessage("null"), "groups": json.RawMessage("null")}},
		{"empty", map[string]any{"email": "", "groups": []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{setup: func(p *fakeIdP) { p.extraClaims = tc.claims }})
			e.login("/app")
			resp := e.get(e.step, "/app", "X-User-Email", "mallory@evil.example", "X-User-Groups", "admins")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			h := e.lastUpstream()
			for _, name := range []string{"X-User-Email", "X-User-Groups"} {
				if v, ok := h[name]; ok {
					t.Errorf("upstream got %s: %q, want no header", name, v)
				}
			}
			if h.Get("X-Consumer-Username") != "alice-sub" {
				t.Errorf("consumer %q", h.Get("X-Consumer-Username"))
			}
		})
	}
}
