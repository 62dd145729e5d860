package claims

import (
	"testing"

	"github.com/portico-gw/portico/internal/httpx"
)

func TestReserved(t *testing.T) {
	shared := []string{"Host", "Content-Length", "Content-Type", "Cookie"}
	shared = append(shared, httpx.HopByHop[:]...)
	shared = append(shared, httpx.IdentityHeaders[:]...)
	for _, h := range shared {
		if !Reserved(h) {
			t.Errorf("Reserved(%q) = false", h)
		}
	}
	for _, h := range append([]string{"X-User-Email", "Authorization", "X-Tenant"}, httpx.ForeignIdentityHeaders[:]...) {
		if Reserved(h) {
			t.Errorf("Reserved(%q) = true without extra", h)
		}
	}
	if !Reserved("Authorization", "authorization") || !Reserved("X-Token", "x-token", "Authorization") {
		t.Error("extra headers are not reserved")
	}
}
