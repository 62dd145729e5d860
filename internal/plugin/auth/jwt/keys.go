package jwt

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	gojwt "github.com/golang-jwt/jwt/v5"
)

// keyType is the family of a verification key. A key is only ever used with
// the algorithms of its own family.
type keyType uint8

const (
	ktHMAC keyType = iota + 1
	ktRSA
	ktEC
	ktEd25519
)

// minRSABits is the smallest RSA modulus accepted for verification.
const minRSABits = 2048

// minSecretBytes is the smallest HMAC secret accepted (256 bits).
const minSecretBytes = 32

// knownAlgs are the algorithms the plugin can verify.
var knownAlgs = map[string]keyType{
	"HS256": ktHMAC, "HS384": ktHMAC, "HS512": ktHMAC,
	"RS256": ktRSA, "RS384": ktRSA, "RS512": ktRSA,
	"PS256": ktRSA, "PS384": ktRSA, "PS512": ktRSA,
	"ES256": ktEC, "ES384": ktEC, "ES512": ktEC,
	"EdDSA": ktEd25519,
}

// key is one parsed verification key.
type key struct {
	kid string
	typ keyType
	// alg restricts the key to one algorithm (the JWK "alg"); "" allows
	// every algorithm of the key's family.
	alg string
	// pub is []byte (HMAC), *rsa.PublicKey, *ecdsa.PublicKey or
	// ed25519.PublicKey: the types the signing methods require.
	pub any
	// src names where the key came from, for messages.
	src string
}

// compatible reports whether the key may verify a token signed with alg.
func (k *key) compatible(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	typ, ok := knownAlgs[alg]
	if !ok || typ != k.typ {
		return false
	}
	if k.typ == ktEC {
		// An EC key verifies only the algorithm of its curve.
		switch k.pub.(*ecdsa.PublicKey).Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		case elliptic.P521():
			return alg == "ES512"
		}
		return false
	}
	return true
}

// newKey checks a public key (or HMAC secret) and wraps it.
func newKey(pub any, kid, alg, src string) (*key, error) {
	k := &key{kid: kid, alg: alg, src: src}
	switch v := pub.(type) {
	case []byte:
		if len(v) < minSecretBytes {
			return nil, fmt.Errorf("%s: HMAC secret is too short (%d bytes, need at least %d)", src, len(v), minSecretBytes)
		}
		k.typ, k.pub = ktHMAC, v
	case *rsa.PublicKey:
		if v.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%s: RSA key is too small (%d bits, need at least %d)", src, v.N.BitLen(), minRSABits)
		}
		k.typ, k.pub = ktRSA, v
	case *ecdsa.PublicKey:
		switch v.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return nil, fmt.Errorf("%s: unsupported EC curve", src)
		}
		k.typ, k.pub = ktEC, v
	case ed25519.PublicKey:
		if len(v) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s: invalid Ed25519 key", src)
		}
		k.typ, k.pub = ktEd25519, v
	default:
		return nil, fmt.Errorf("%s: unsupported key type %T", src, pub)
	}
	if alg != "" {
		typ, ok := knownAlgs[alg]
		if !ok || typ != k.typ {
			return nil, fmt.Errorf("%s: key declares algorithm %q, which does not fit its type", src, alg)
		}
	}
	return k, nil
}

// parsePEM parses every PEM block in data: PUBLIC KEY (PKIX), RSA PUBLIC
// KEY (PKCS #1) or CERTIFICATE. Private keys are refused: configure the
// public half.
func parsePEM(data []byte, src string) ([]*key, error) {
	var out []*key
	for n := 0; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = c.PublicKey
			}
		default:
			if strings.Contains(b.Type, "PRIVATE") {
				return nil, fmt.Errorf("%s: contains a private key; configure the public key only", src)
			}
			return nil, fmt.Errorf("%s: unsupported PEM block %q", src, b.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", src, err)
		}
		k, err := newKey(pub, "", "", src)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no PEM public key found", src)
	}
	return out, nil
}

// parseJWKS parses a JWK Set. Keys with "use" other than "sig", keys of
// unsupported types and (when allowSymmetric is false) "oct" keys are
// skipped and reported in skipped; err is set when the document is not a
// JWK Set or when it lists keys and none is usable.
func parseJWKS(data []byte, src string, allowSymmetric bool) (keys []*key, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, fmt.Errorf("%s: not a JWK Set: %v", src, err)
	}
	if set.Keys == nil {
		return nil, nil, fmt.Errorf("%s: not a JWK Set: no \"keys\" member", src)
	}
	for i, raw := range set.Keys {
		ks := fmt.Sprintf("%s.keys[%d]", src, i)
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Sprintf("%s: %v", ks, err))
			continue
		}
		if jwk.KeyID != "" {
			ks = fmt.Sprintf("%s (kid %q)", ks, jwk.KeyID)
		}
		if jwk.Use != "" && jwk.Use != "sig" {
			skipped = append(skipped, ks+": use is not \"sig\"")
			continue
		}
		pub := jwk.Key
		// go-jose's Valid() is false for every symmetric key, so "oct"
		// keys are checked here (newKey enforces the minimum length).
		if b, ok := pub.([]byte); ok {
			if !allowSymmetric {
				skipped = append(skipped, ks+": symmetric keys are not accepted from a URL")
				continue
			}
			pub = append([]byte(nil), b...)
		} else if !jwk.Valid() {
			skipped = append(skipped, ks+": invalid key")
			continue
		} else if !jwk.IsPublic() {
			pub = jwk.Public().Key
		}
		k, err := newKey(pub, jwk.KeyID, jwk.Algorithm, ks)
		if err != nil {
			skipped = append(skipped, err.Error())
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 && len(set.Keys) > 0 {
		return nil, skipped, fmt.Errorf("%s: no usable key (%s)", src, strings.Join(skipped, "; "))
	}
	return keys, skipped, nil
}

// kidAlg indexes the candidate keys for a token's kid and alg.
type kidAlg struct{ kid, alg string }

// keySet is an immutable index of verification keys, built once per key
// change so that a request only does map lookups. Each value is either one
// key (as the signing method wants it) or a jwt.VerificationKeySet.
type keySet struct {
	// byKidAlg: keys with this kid compatible with alg, then every
	// compatible key without a kid.
	byKidAlg map[kidAlg]any
	// byAlg: every key compatible with alg (tokens without kid).
	byAlg map[string]any
	// kidless: keys without a kid compatible with alg (tokens whose kid
	// matches no key).
	kidless map[string]any
	// kids holds every kid in the set.
	kids map[string]struct{}
	n    int
}

func candidates(keys []*key) any {
	switch len(keys) {
	case 0:
		return nil
	case 1:
		return keys[0].pub
	}
	vs := make([]gojwt.VerificationKey, len(keys))
	for i, k := range keys {
		vs[i] = k.pub
	}
	return gojwt.VerificationKeySet{Keys: vs}
}

// newKeySet indexes keys for the allowed algorithms.
func newKeySet(keys []*key, algs []string) *keySet {
	s := &keySet{
		byKidAlg: map[kidAlg]any{},
		byAlg:    map[string]any{},
		kidless:  map[string]any{},
		kids:     map[string]struct{}{},
		n:        len(keys),
	}
	for _, k := range keys {
		if k.kid != "" {
			s.kids[k.kid] = struct{}{}
		}
	}
	for _, alg := range algs {
		var all, noKid []*key
		byKid := map[string][]*key{}
		for _, k := range keys {
			if !k.compatible(alg) {
				continue
			}
			all = append(all, k)
			if k.kid == "" {
				noKid = append(noKid, k)
			} else {
				byKid[k.kid] = append(byKid[k.kid], k)
			}
		}
		if c := candidates(all); c != nil {
			s.byAlg[alg] = c
		}
		if c := candidates(noKid); c != nil {
			s.kidless[alg] = c
		}
		for kid, ks := range byKid {
			s.byKidAlg[kidAlg{kid, alg}] = candidates(append(ks, noKid...))
		}
	}
	return s
}

// lookup returns the keys to try for a token's kid and alg (nil when none)
// and whether the kid is known (always true for a token without kid).
func (s *keySet) lookup(kid, alg string) (any, bool) {
	if kid == "" {
		return s.byAlg[alg], true
	}
	if c, ok := s.byKidAlg[kidAlg{kid, alg}]; ok {
		return c, true
	}
	_, known := s.kids[kid]
	return s.kidless[alg], known
}

var (
	errUnknownKid = errors.New("no key with the token's kid")
	errNoKey      = errors.New("no key for the token's algorithm")
	errCrit       = errors.New("token has critical header parameters")
	errClaims     = errors.New("claims not accepted")
	errIssuer     = errors.New("issuer not accepted")
)
