package jwt

import "testing"

// FuzzParseJWKS: a JWK Set from a remote URL never panics the parser, and
// with symmetric keys refused no HMAC key comes out of it.
func FuzzParseJWKS(f *testing.F) {
	for _, s := range []string{
		`{"keys":[]}`, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"a"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""}]}`, `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
		`{"keys":[{"kty":"RSA","alg":"none"}]}`, `{"keys":{}}`, `[]`, `null`, `{`, `{"keys":[null,1,"x"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, _, err := parseJWKS(data, "jwks_url", false)
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.compatible("HS256") || k.compatible("HS384") || k.compatible("HS512") {
				t.Fatalf("symmetric key %s accepted from a remote JWKS", k.src)
			}
		}
	})
}
