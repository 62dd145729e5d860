package proxy

import (
	"net/http"
	"testing"

	"github.com/portico-gw/portico/internal/httpx"
)

// removeHopByHop clears the whole shared hop-by-hop set and every header the
// Connection header names, and keeps the rest.
func TestRemoveHopByHopSharedSet(t *testing.T) {
	h := http.Header{}
	for _, k := range httpx.HopByHop {
		h.Set(k, "x")
	}
	h["Connection"] = []string{"X-Drop, , x-also ", "\tX-Third"}
	h.Set("X-Drop", "1")
	h.Set("X-Also", "1")
	h.Set("X-Third", "1")
	h.Set("Link", "</a.css>; rel=preload")
	removeHopByHop(h)
	if len(h) != 1 || h.Get("Link") == "" {
		t.Fatalf("after removeHopByHop: %v", h)
	}
}
