package gateway_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/redisclient"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/testredis"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// poolJWKS serves one EC key as a JWKS and counts the fetches.
func poolJWKS(t *testing.T) (url string, fetches *atomic.Int32) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","alg":"ES256","use":"sig","x":%q,"y":%q}]}`,
		b64(pub[1:33]), b64(pub[33:]))
	fetches = new(atomic.Int32)
	srv := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	return srv.URL + "/jwks", fetches
}

// poolConfig is a gateway config with upstream u at backend, the given
// routes and a /version route answering version.
func poolConfig(backend, routes, version string) string {
	return fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "off"}
log: {access: {output: "off"}}
upstreams: {u: {targets: [{url: %q}]}}
routes:
%s
  - {name: version, match: {path: /version}, respond: {body: %q}}
`, backend, routes, version)
}

// poolRoutes limits /slow to one request in flight and guards /jwt with
// keys from jwks.
func poolRoutes(jwks string) string {
	return fmt.Sprintf(`
  - name: slow
    match: {path: /slow}
    upstream: u
    plugins: [{name: concurrency_limit, config: {max: 1, key: route}}]
  - name: jwt
    match: {path: /jwt}
    upstream: u
    plugins: [{name: jwt, config: {algorithms: [ES256], jwks_url: %q}}]`, jwks)
}

func poolStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestPoolGatewaysIsolated: two gateways in one process with the same
// config share no concurrency limiter and no JWKS refresher, while a reload
// of one keeps its limiter's in-flight count and its warm key set.
func TestPoolGatewaysIsolated(t *testing.T) {
	t.Parallel()
	jwks, fetches := poolJWKS(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			entered <- struct{}{}
			<-release
		}
	}))
	g1 := testutil.StartGateway(t, poolConfig(be.URL, poolRoutes(jwks), "1"))
	g2 := testutil.StartGateway(t, poolConfig(be.URL, poolRoutes(jwks), "1"))
	if n := fetches.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times by two gateways, want 2 (one key set each)", n)
	}

	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, g1.URL+"/slow", nil)
		req.Header.Set("X-Hold", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			held <- 0
			return
		}
		_ = resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-entered
	if c := poolStatus(t, g2.URL+"/slow"); c != http.StatusOK {
		t.Fatalf("gateway 2 while gateway 1 holds its only slot: %d, want 200 (no shared limiter)", c)
	}
	if c := poolStatus(t, g1.URL+"/slow"); c != http.StatusTooManyRequests {
		t.Fatalf("gateway 1 while its only slot is held: %d, want 429", c)
	}

	if err := g1.Runtime.Apply(testutil.ParseConfig(t, poolConfig(be.URL, poolRoutes(jwks), "2"))); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "reload applied", func() bool {
		resp, err := http.Get(g1.URL + "/version")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return string(b) == "2"
	})
	if c := poolStatus(t, g1.URL+"/slow"); c != http.StatusTooManyRequests {
		t.Fatalf("gateway 1 after a reload, slot still held: %d, want 429 (count kept)", c)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times after a reload, want 2 (warm key set kept)", n)
	}
	close(release)
	if c := <-held; c != http.StatusOK {
		t.Fatalf("held request: %d", c)
	}
	if c := poolStatus(t, g1.URL+"/slow"); c != http.StatusOK {
		t.Fatalf("gateway 1 after the slot was given back: %d, want 200", c)
	}
}

// TestPoolGatewaysRedisIsolated: two gateways with identical Redis
// settings hold a client each in their own pools, and a reload of one keeps
// its client.
func TestPoolGatewaysRedisIsolated(t *testing.T) {
	t.Parallel()
	rd := testredis.Start(t)
	be := testutil.Backend(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	routes := fmt.Sprintf(`
  - name: rl
    match: {path: /rl}
    upstream: u
    plugins: [{name: rate_limit, config: {key: [ip], backend: redis, redis: {addr: %q}, limits: [{rate: 100, per: 1h}]}}]`, rd.Addr)
	cfg := func(version string) string { return poolConfig(be.URL, routes, version) }
	g1 := testutil.StartGateway(t, cfg("1"))
	g2 := testutil.StartGateway(t, cfg("1"))
	// client returns the Redis client the gateway's rate_limit holds (the
	// same settings reach the same pool entry).
	client := func(g *testutil.Gateway) any {
		t.Helper()
		pool := gateway.SharedPool(g.Runtime)
		n := pool.Len()
		cl, rel, err := redisclient.Shared(func(key string, create func() (io.Closer, error)) (any, func(), error) {
			return pool.Acquire(key, create)
		}, &redisclient.Config{Addr: rd.Addr})
		if err != nil {
			t.Fatal(err)
		}
		defer rel()
		if pool.Len() != n {
			t.Fatal("the gateway holds no client for these settings")
		}
		return cl.UniversalClient
	}
	c1, c2 := client(g1), client(g2)
	if c1 == c2 {
		t.Fatal("two gateways share one Redis client")
	}
	if err := g1.Runtime.Apply(testutil.ParseConfig(t, cfg("2"))); err != nil {
		t.Fatal(err)
	}
	if client(g1) != c1 {
		t.Fatal("a reload replaced the Redis client")
	}
	for _, g := range []*testutil.Gateway{g1, g2} {
		if c := poolStatus(t, g.URL+"/rl"); c != http.StatusOK {
			t.Fatalf("rate-limited route: %d", c)
		}
	}
}
