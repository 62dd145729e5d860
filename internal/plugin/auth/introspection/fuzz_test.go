package introspection

import (
	"net/http"
	"strings"
	"testing"
)

// FuzzBearerToken: the Authorization parser never panics, returns tokens
// only of visible ASCII without commas, and reports two lines as multiple.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc", "Bearer a,b", "Bearer a, Bearer b", "Bearer ", "Basic x", "Bearer\tx", "BEARER x=="} {
		f.Add(s, "")
		f.Add(s, "Bearer other")
	}
	f.Fuzz(func(t *testing.T, first, second string) {
		h := http.Header{"Authorization": {first}}
		if second != "" {
			h["Authorization"] = append(h["Authorization"], second)
		}
		tok, ok, multiple := bearerToken(h)
		if second != "" && !multiple {
			t.Fatal("two Authorization lines not reported as multiple")
		}
		if tok != "" {
			if !ok || multiple || len(tok) > maxTokenBytes || strings.ContainsAny(tok, ", \t") {
				t.Fatalf("token %q ok=%v multiple=%v", tok, ok, multiple)
			}
			for i := 0; i < len(tok); i++ {
				if tok[i] <= ' ' || tok[i] >= 0x7f {
					t.Fatalf("token %q has byte %#x", tok, tok[i])
				}
			}
		}
	})
}
