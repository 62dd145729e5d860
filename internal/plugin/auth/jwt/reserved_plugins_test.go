package jwt

import (
	"strings"
	"testing"
)

// claims_to_headers follows the shared reserved-header rule: framing
// headers, Cookie, the token's own header and the identity headers of other
// gateways are refused.
func TestClaimHeadersSharedReserved(t *testing.T) {
	for _, h := range []string{"Content-Type", "cookie", "Host", "X-Authenticated-Userid", "X-Token"} {
		in, err := build(t, map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "header": "X-Token", "claims_to_headers": map[string]string{"sub": h}})
		if err == nil {
			in.Cleanup()
			t.Errorf("claims_to_headers {sub: %s} accepted", h)
			continue
		}
		if !strings.Contains(err.Error(), "reserved") {
			t.Errorf("claims_to_headers {sub: %s}: error %v", h, err)
		}
	}
	in, err := build(t, map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "header": "X-Token", "claims_to_headers": map[string]string{"sub": "Authorization"}})
	if err != nil {
		t.Fatalf("Authorization with the token in X-Token: %v", err)
	}
	in.Cleanup()
}

// Two claims sent in one header are refused, as in the other claim plugins.
func TestClaimHeadersDuplicateRefused(t *testing.T) {
	in, err := build(t, map[string]any{"algorithms": []string{"HS256"}, "secret": "0123456789abcdef0123456789abcdef", "claims_to_headers": map[string]string{"sub": "X-User", "email": "x-user"}})
	if err == nil {
		in.Cleanup()
		t.Fatal("two claims in one header accepted")
	}
	if !strings.Contains(err.Error(), `"email" and "sub" both map to X-User`) {
		t.Fatalf("error %v", err)
	}
}
