package jwt

import (
	"net/http"
	"strings"
	"testing"
)

// TestClaimsToHeadersSharedRule: jwt renders claims_to_headers values with
// the shared claim rule (auth/claims): lists joined with ", ", integers
// without exponent, objects as compact JSON, "" and [] give no header, and
// a value with a control character is never written.
func TestClaimsToHeadersSharedRule(t *testing.T) {
	t.Parallel()
	k := keyFor(t, "HS256")
	h, _ := mustBuild(t, map[string]any{
		"algorithms": []string{"HS256"},
		"secret":     string(k.sec),
		"claims_to_headers": map[string]string{
			"groups": "X-Groups", "n": "X-N", "big": "X-Big", "obj": "X-Obj", "empty": "X-Empty",
			"none": "X-None", "comma": "X-Comma", "inject": "X-Inject", "nul": "X-Nul",
		},
	})
	w := call(h, sign(t, "HS256", k, "", claims(map[string]any{
		"groups": []string{"dev", "admins"},
		"n":      1700000000,
		"big":    1e21,
		"obj":    map[string]any{"tenant": "acme", "tier": 2},
		"empty":  "",
		"none":   []string{},
		"comma":  []string{"Doe, Jane", "x"},
		"inject": "x\r\nX-Admin: true",
		"nul":    "a\x00b",
	})), func(r *http.Request) { r.Header.Set("X-Inject", "forged") })
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	for hdr, want := range map[string]string{
		"X-Groups": "dev, admins", "X-N": "1700000000", "X-Big": "1000000000000000000000",
		"X-Obj": `{"tenant":"acme","tier":2}`, "X-Empty": "", "X-None": "", "X-Comma": `["Doe, Jane","x"]`,
		"X-Inject": "", "X-Nul": "", "X-Admin": "",
	} {
		if got := w.Header().Values("X-Got-" + hdr); strings.Join(got, "|") != want {
			t.Errorf("%s = %q, want %q", hdr, got, want)
		}
	}
}
