package oidclogin

import (
	"strings"
	"testing"
)

// claims_to_headers follows the shared reserved-header rule: framing
// headers and Cookie are refused, Authorization only when the access token
// is sent in it.
func TestClaimHeadersSharedReservedRule(t *testing.T) {
	base := "issuer: https://idp.example\nclient_id: c\ncookie_secret: " + testSecret + "\n"
	for _, h := range []string{"content-type", "Cookie", "Host", "Content-Length"} {
		_, err := build(t, base+"claims_to_headers: {sub: '"+h+"'}", nil)
		if err == nil || !strings.Contains(err.Error(), "reserved") {
			t.Errorf("claims_to_headers {sub: %s}: error %v", h, err)
		}
	}
	_, err := build(t, base+"pass_access_token: true\nclaims_to_headers: {sub: authorization}", nil)
	if err == nil || !strings.Contains(err.Error(), "reserved") {
		t.Errorf("Authorization with pass_access_token: error %v", err)
	}
}
