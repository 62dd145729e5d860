package introspection

import (
	"strings"
	"testing"
)

// TestClaimsToHeadersSharedRule: claims_to_headers values follow the shared
// claim rule (auth/claims) against the in-test introspection server: lists
// joined with ", " (JSON when an element holds a comma), numbers without
// exponent, objects as compact JSON, "" and [] give no header, and a value
// with a control character is never written, also from the cache.
func TestClaimsToHeadersSharedRule(t *testing.T) {
	t.Parallel()
	srv, p, _ := setup(t, `, claims_to_headers: {groups: X-Groups, n: X-N, e: X-E, obj: X-Obj, empty: X-Empty, none: X-None, comma: X-Comma, inject: X-Inject, nul: X-Nul}`)
	srv.set("t", `{"active":true,"sub":"alice","groups":["dev","admins"],"n":1700000000,"e":1.7e9,`+
		`"obj":{"tenant":"acme","tier":2},"empty":"","none":[],"comma":["Doe, Jane","x"],`+
		`"inject":"x\r\nX-Admin: true","nul":"a\u0000b"}`)
	for range 2 { // the second answer comes from the cache
		hdr := bearer("t")
		hdr["X-Inject"] = "forged"
		hdr["X-Empty"] = "forged"
		w := do(p, hdr)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		for h, want := range map[string]string{
			"X-Groups": "dev, admins", "X-N": "1700000000", "X-E": "1700000000",
			"X-Obj": `{"tenant":"acme","tier":2}`, "X-Empty": "", "X-None": "", "X-Comma": `["Doe, Jane","x"]`,
			"X-Inject": "", "X-Nul": "", "X-Admin": "",
		} {
			if got := w.Header().Values("X-Got-" + h); strings.Join(got, "|") != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	}
}
