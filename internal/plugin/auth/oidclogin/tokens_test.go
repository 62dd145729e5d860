package oidclogin

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/httpx"
)

// claims_to_headers may not name a hop-by-hop or identity header.
func TestClaimHeadersSharedSetsReserved(t *testing.T) {
	base := "issuer: https://idp.example\nclient_id: c\ncookie_secret: " + testSecret + "\n"
	names := append(httpx.HopByHop[:], httpx.IdentityHeaders[:]...)
	names = append(names, httpx.ForeignIdentityHeaders[:]...)
	for _, h := range names {
		_, err := build(t, base+"claims_to_headers: {sub: '"+strings.ToLower(h)+"'}", nil)
		if err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("claims_to_headers {sub: %s}: error %v", h, err)
		}
	}
}
