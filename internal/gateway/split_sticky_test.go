package gateway

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

// TestSplitCookieChooseNoAllocs: honouring a valid variant cookie
// allocates nothing, and a cookie with a wrong signature is not honoured.
func TestSplitCookieChooseNoAllocs(t *testing.T) {
	h := testSplitHandler()
	h.rules = nil
	h.variants = []splitVariant{{name: "stable"}, {name: "canary"}}
	h.cookie = newSplitCookie(&config.SplitCookie{Secret: strings.Repeat("k", 32)}, "api", h.variants)
	r, rec := testSplitRequest("/x", "theme=dark; portico_variant="+h.cookie.values[1])
	if n := testing.AllocsPerRun(100, func() {
		if i, set := h.choose(r, rec); i != 1 || set {
			panic("cookie not honoured")
		}
	}); n != 0 {
		t.Errorf("cookie choice: %v allocations", n)
	}
	bad := h.cookie.values[1][:len(h.cookie.values[1])-1] + "A"
	if bad == h.cookie.values[1] {
		bad = h.cookie.values[1][:len(h.cookie.values[1])-1] + "B"
	}
	r, rec = testSplitRequest("/x", "portico_variant="+bad)
	for range 50 {
		if _, set := h.choose(r, rec); !set {
			t.Fatal("a tampered cookie was honoured")
		}
	}
}
