package jwt

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Remote key sets are shared through the gateway's pool
// (plugin.Context.Shared) by every jwt instance with the same key settings
// — the routes of one config and the same routes after a reload — and
// reference-counted: a reload reuses the warm keys instead of fetching them
// again (and does not wait on the identity provider), and the provider sees
// one refresher per key set, not one per route. The last release stops the
// refresher (remote.Close).

// remoteKey identifies the settings that shape a remote key set; it is the
// key of the set in the shared pool.
func remoteKey(issuer, jwksURL string, static []*key, algs []string, refresh, minInterval, staleTTL, timeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "jwt/jwks|%s|%s|%s|%d|%d|%d|%d", issuer, jwksURL, strings.Join(algs, ","), refresh, minInterval, staleTTL, timeout)
	for _, k := range static {
		fmt.Fprintf(&b, "|%s:%d:%s:%s", k.kid, k.typ, k.alg, keyFingerprint(k.pub))
	}
	return b.String()
}

// keyFingerprint is a digest of key material (never the material itself).
func keyFingerprint(pub any) string {
	var raw []byte
	switch v := pub.(type) {
	case []byte:
		raw = v
	default:
		der, err := x509.MarshalPKIXPublicKey(v)
		if err != nil {
			return fmt.Sprintf("%T", v)
		}
		raw = der
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:8])
}

// Close stops the refresher; the pool calls it with the last release.
func (r *remote) Close() error {
	r.stop()
	return nil
}
