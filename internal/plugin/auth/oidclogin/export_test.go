package oidclogin

import "testing"

// FakeIdP is the package's test OpenID provider, for the external tests
// that run oidc_login inside a real gateway.
type FakeIdP = fakeIdP

// NewFakeIdP starts a test provider on the real clock.
func NewFakeIdP(t testing.TB) *FakeIdP { return newFakeIdP(t, &testClock{}) }

// EndSessionCalls is how many times the provider's end-session endpoint
// was called.
func (p *fakeIdP) EndSessionCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.endSession)
}
