package jwt

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

func decodeJWT(t *testing.T, src string) (*JWT, error) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	p := new(JWT)
	return p, config.DecodeStrict(n.Content[0], p, "config")
}

// The embedded auth.Base contributes the `anonymous` key through the strict
// decoder's inline support: it decodes, and an unknown key lists it.
func TestDecodeAnonymousInline(t *testing.T) {
	p, err := decodeJWT(t, "algorithms: [HS256]\nanonymous: guest\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.Anonymous != "guest" || len(p.Algorithms) != 1 {
		t.Fatalf("decoded %+v", p)
	}
	_, err = decodeJWT(t, "algorithms: [HS256]\nanonymus: guest\n")
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "anonymus") || !strings.Contains(msg, "known: algorithms, allow_unknown_consumers, anonymous, audiences,") || strings.Contains(msg, " base,") {
		t.Fatalf("error = %q", msg)
	}
	if _, err := decodeJWT(t, "anonymous: [a, b]\n"); err == nil || !strings.Contains(err.Error(), "config.anonymous") {
		t.Fatalf("list for anonymous: error = %v", err)
	}
}
