package introspection

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/httpx"
)

// claims_to_headers may not name a hop-by-hop header or an identity header
// Portico sets; a foreign identity header such as X-Authenticated-Scope may
// be written on purpose.
func TestClaimHeadersSharedSets(t *testing.T) {
	const base = "{introspection_url: 'https://x/i', client_auth: none, claims_to_headers: {sub: '"
	for _, h := range append(httpx.HopByHop[:], httpx.IdentityHeaders[:]...) {
		_, err := build(t, base+h+"'}}", nil)
		if err == nil || !strings.Contains(err.Error(), "cannot be set") {
			t.Errorf("claims_to_headers {sub: %s}: error %v", h, err)
		}
	}
	for _, h := range httpx.ForeignIdentityHeaders {
		if _, err := build(t, base+h+"'}}", nil); err != nil {
			t.Errorf("claims_to_headers {sub: %s}: %v", h, err)
		}
	}
}
