package jwt

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchVerify runs valid tokens through the plugin's handler with a warm
// key cache and a no-op terminal handler.
func benchVerify(b *testing.B, alg string) {
	k := keyFor(b, alg)
	cfg := map[string]any{"algorithms": []string{alg}, "issuer": "https://issuer.test", "audiences": []string{"api"}}
	if k.sec != nil {
		cfg["secret"] = string(k.sec)
	} else {
		cfg["public_keys"] = []string{pemOf(b, k.pub)}
	}
	in, err := build(b, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(in.Cleanup)
	h := in.Plugin.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tok := sign(b, alg, k, "", claims(map[string]any{"scope": "read"}))
	r := httptest.NewRequest(http.MethodGet, "http://gw.test/api", nil)
	auth := "Bearer " + tok
	w := httptest.NewRecorder()
	r.Header.Set("Authorization", auth)
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Fatalf("warm-up status %d", w.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.Header.Set("Authorization", auth)
		h.ServeHTTP(w, r)
	}
}

func BenchmarkVerifyRS256(b *testing.B) { benchVerify(b, "RS256") }
func BenchmarkVerifyES256(b *testing.B) { benchVerify(b, "ES256") }
func BenchmarkVerifyHS256(b *testing.B) { benchVerify(b, "HS256") }
