package jwt

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Remote key sets are shared by every jwt instance with the same key
// settings — the routes of one config and the same routes after a reload —
// and reference-counted: a reload reuses the warm keys instead of fetching
// them again (and does not wait on the identity provider), and the provider
// sees one refresher per key set, not one per route.
var shared = struct {
	mu sync.Mutex
	m  map[string]*sharedRemote
}{m: map[string]*sharedRemote{}}

type sharedRemote struct {
	r    *remote
	refs int
}

// remoteKey identifies the settings that shape a remote key set.
func remoteKey(issuer, jwksURL string, static []*key, algs []string, refresh, minInterval, staleTTL, timeout time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%d|%d|%d|%d", issuer, jwksURL, strings.Join(algs, ","), refresh, minInterval, staleTTL, timeout)
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

// acquireRemote returns the shared key set for k, creating and starting it
// (one synchronous fetch) on first use.
func acquireRemote(k string, create func() *remote) *remote {
	shared.mu.Lock()
	if s, ok := shared.m[k]; ok {
		s.refs++
		shared.mu.Unlock()
		return s.r
	}
	r := create()
	shared.m[k] = &sharedRemote{r: r, refs: 1}
	shared.mu.Unlock()
	r.start()
	return r
}

// releaseRemote drops one reference; the last one stops the refresher.
func releaseRemote(k string) {
	shared.mu.Lock()
	s, ok := shared.m[k]
	if !ok {
		shared.mu.Unlock()
		return
	}
	s.refs--
	if s.refs > 0 {
		shared.mu.Unlock()
		return
	}
	delete(shared.m, k)
	shared.mu.Unlock()
	s.r.stop()
}
