package basicauth

import (
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzParseBasic: the Authorization parser never panics, accepts only a
// non-empty user, and reads back what a client encodes.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{
		"Basic YWxpY2U6c2VjcmV0", "basic  YWxpY2U6c2VjcmV0", "BASIC YWxpY2U6", "Basic OnNlY3JldA==",
		"Basic", "Basic ", "Basicx", "Bearer abc", "Basic YWxpY2U", "Basic YWxpY2U6c2VjcmV0=", "Basic !!!", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		user, pass, found, ok := parseBasic(h)
		if ok && !found {
			t.Fatal("ok without found")
		}
		if !ok {
			if user != "" || pass != "" {
				t.Fatalf("credentials returned for a refused header %q", h)
			}
			return
		}
		if user == "" || strings.Contains(user, ":") {
			t.Fatalf("user %q accepted from %q", user, h)
		}
		enc := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
		if u, p, _, ok := parseBasic(enc); !ok || u != user || p != pass {
			t.Fatalf("round trip of %q:%q gave %q:%q ok=%v", user, pass, u, p, ok)
		}
	})
}
