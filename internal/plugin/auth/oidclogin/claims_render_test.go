package oidclogin

import (
	"net/http"
	"testing"
)

// TestClaimsToHeadersSharedRule: oidc_login renders claims_to_headers
// values with the shared claim rule (auth/claims), end to end through a
// login against the in-test provider: lists joined with ", " (JSON when an
// element holds a comma or is not a scalar), numbers without exponent,
// objects as compact JSON, and a claim with a control character gives no
// header (and certainly no injected one) while the login still succeeds.
func TestClaimsToHeadersSharedRule(t *testing.T) {
	for _, tc := range []struct {
		name          string
		email, groups any
		wantEmail     string // "" = no header
		wantGroups    string
	}{
		{"scalars", 1700000000, []any{"dev", 2, true}, "1700000000", "dev, 2, true"},
		{"json fallback", map[string]any{"a": "<b>"}, []any{"Doe, Jane", "x"}, `{"a":"<b>"}`, `["Doe, Jane","x"]`},
		{"nested", "alice@example.com", []any{[]any{"x"}}, "alice@example.com", `[["x"]]`},
		{"CRLF", "x\r\nX-Admin: true", []any{"a", "b\r\nX-Admin: true"}, "", ""},
		{"NUL and DEL", "a\x00b", []any{"a\x7f"}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOpts{setup: func(p *fakeIdP) {
				p.extraClaims = map[string]any{"email": tc.email, "groups": tc.groups}
			}})
			e.login("/app")
			resp := e.get(e.browser, "/app", "X-User-Email", "mallory@evil.example", "X-User-Groups", "admins")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			h := e.lastUpstream()
			for name, want := range map[string]string{"X-User-Email": tc.wantEmail, "X-User-Groups": tc.wantGroups} {
				v, ok := h[name]
				switch {
				case want == "" && ok:
					t.Errorf("upstream got %s: %q, want no header", name, v)
				case want != "" && (len(v) != 1 || v[0] != want):
					t.Errorf("upstream %s = %q, want %q", name, v, want)
				}
			}
			if v, ok := h["X-Admin"]; ok {
				t.Errorf("injected header reached the upstream: %q", v)
			}
			if h.Get("X-Consumer-Username") != "alice-sub" {
				t.Errorf("consumer %q", h.Get("X-Consumer-Username"))
			}
		})
	}
}
