package jwt

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	gojwt "github.com/golang-jwt/jwt/v5"
)

func sortedAlgs() []string {
	out := make([]string, 0, len(knownAlgs))
	for a := range knownAlgs {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("invalid base64")
}

// keys returns the key set in force.
func (p *JWT) keys() *keySet {
	if p.remote == nil {
		return p.static
	}
	return p.remote.current(p.static)
}

// lookupKey is the jwt.Keyfunc: candidates are chosen by kid and by the
// algorithm's compatibility with each key's type, never by alg alone. An
// unknown kid with a JWKS source reports errUnknownKid so the caller can
// refresh.
func (p *JWT) lookupKey(t *gojwt.Token) (any, error) {
	return p.pick(t, p.remote != nil)
}

// lookupKeyNoRefresh is lookupKey after a refresh attempt: an unknown kid
// falls back to the keys without kid.
func (p *JWT) lookupKeyNoRefresh(t *gojwt.Token) (any, error) {
	return p.pick(t, false)
}

func (p *JWT) pick(t *gojwt.Token, unknownIsError bool) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errCrit
	}
	alg := t.Method.Alg()
	if _, ok := knownAlgs[alg]; !ok || !slices.Contains(p.algs, alg) {
		return nil, errNoKey
	}
	kid, _ := t.Header["kid"].(string)
	c, known := p.keys().lookup(kid, alg)
	if !known && (unknownIsError || c == nil) {
		return nil, errUnknownKid
	}
	if c == nil {
		return nil, errNoKey
	}
	return c, nil
}

// verify parses and verifies raw and checks its claims.
func (p *JWT) verify(r *http.Request, raw string) (gojwt.MapClaims, string, error) {
	claims := gojwt.MapClaims{}
	tok, err := p.parser.ParseWithClaims(raw, claims, p.keyfunc)
	if err != nil && p.remote != nil && errors.Is(err, errUnknownKid) {
		p.remote.refreshForKid(r.Context())
		claims = gojwt.MapClaims{}
		tok, err = p.parser.ParseWithClaims(raw, claims, p.fallbackKey)
	}
	if err != nil {
		return nil, "", err
	}
	if len(p.issuers) > 0 {
		iss, _ := claims["iss"].(string)
		if !slices.Contains(p.issuers, iss) {
			return nil, "", errIssuer
		}
	}
	for c, want := range p.RequiredClaims {
		if !claimHas(claims[c], want) {
			return nil, "", fmt.Errorf("%w: required claim %q does not match", errClaims, c)
		}
	}
	kid, _ := tok.Header["kid"].(string)
	return claims, kid, nil
}
