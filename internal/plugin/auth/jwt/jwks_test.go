package jwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

func newECKey(t testing.TB) testKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{priv: k, pub: &k.PublicKey}
}

func jwksCfg(url string, kv ...any) map[string]any {
	return cfgWith(map[string]any{"algorithms": []string{"ES256", "RS256"}, "jwks_url": url}, kv...)
}

func TestJWKSUnknownKidRefreshesOnce(t *testing.T) {
	t.Parallel()
	k1, k2, k3 := newECKey(t), newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	h, _ := mustBuild(t, jwksCfg(srv.URL+"/jwks", "jwks_min_refresh_interval", "1h"))
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches after provision = %d, want 1", n)
	}
	if w := call(h, sign(t, "ES256", k1, "k1", claims(nil))); w.Code != 200 {
		t.Fatalf("k1: status %d", w.Code)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("a known kid fetched: %d", n)
	}
	srv.set(t, jwk(k1.pub, "k1", "ES256"), jwk(k2.pub, "k2", "ES256"))
	if w := call(h, sign(t, "ES256", k2, "k2", claims(nil))); w.Code != 200 {
		t.Fatalf("k2 after refresh: status %d", w.Code)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches after unknown kid = %d, want 2", n)
	}
	// A second unknown kid within the interval does not fetch.
	srv.set(t, jwk(k1.pub, "k1", "ES256"), jwk(k2.pub, "k2", "ES256"), jwk(k3.pub, "k3", "ES256"))
	if w := call(h, sign(t, "ES256", k3, "k3", claims(nil))); w.Code != 401 {
		t.Fatalf("k3 within the min interval: status %d, want 401", w.Code)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches after a rate-limited unknown kid = %d, want 2", n)
	}
	if w := call(h, sign(t, "ES256", k2, "k2", claims(nil))); w.Code != 200 {
		t.Fatalf("k2 again: status %d", w.Code)
	}
}

func TestJWKSConcurrentUnknownKidOneFetch(t *testing.T) {
	t.Parallel()
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	srv.delay = 100 * time.Millisecond
	h, _ := mustBuild(t, jwksCfg(srv.URL+"/jwks", "jwks_min_refresh_interval", "1h"))
	srv.set(t, jwk(k1.pub, "k1", "ES256"), jwk(k2.pub, "k2", "ES256"))
	tok := sign(t, "ES256", k2, "k2", claims(nil))
	var wg sync.WaitGroup
	codes := make([]int, 50)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = call(h, tok).Code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("request %d: status %d", i, c)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2 (provision + one shared refresh)", n)
	}
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	genKeys(t)
	old := keyFor(t, "RS256")
	next := testKey{priv: rsaKey2, pub: &rsaKey2.PublicKey}
	srv := newJWKSServer(t, jwk(old.pub, "old", "RS256"))
	h, p := mustBuild(t, jwksCfg(srv.URL+"/jwks", "jwks_min_refresh_interval", "1s"))
	setMinInterval(p, 0) // below the configurable minimum, to test each refresh
	oldTok, newTok := sign(t, "RS256", old, "old", claims(nil)), sign(t, "RS256", next, "new", claims(nil))
	if w := call(h, oldTok); w.Code != 200 {
		t.Fatalf("old before rotation: %d", w.Code)
	}
	if w := call(h, newTok); w.Code != 401 {
		t.Fatalf("new before publication: %d", w.Code)
	}
	// Publish both, then only the new key.
	srv.set(t, jwk(old.pub, "old", "RS256"), jwk(next.pub, "new", "RS256"))
	if w := call(h, newTok); w.Code != 200 {
		t.Fatalf("new after publication: %d", w.Code)
	}
	if w := call(h, oldTok); w.Code != 200 {
		t.Fatalf("old during overlap: %d", w.Code)
	}
	srv.set(t, jwk(next.pub, "new", "RS256"))
	// Still cached until a refresh; a refresh happens on the next unknown kid.
	if w := call(h, sign(t, "RS256", next, "other", claims(nil))); w.Code != 401 {
		t.Fatalf("unknown kid: %d", w.Code)
	}
	if w := call(h, oldTok); w.Code != 401 {
		t.Fatalf("old after removal and refresh: %d, want 401", w.Code)
	}
	if w := call(h, newTok); w.Code != 200 {
		t.Fatalf("new after rotation: %d", w.Code)
	}
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	t.Parallel()
	k1, k2 := newECKey(t), newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	h, _ := mustBuild(t, jwksCfg(srv.URL+"/jwks", "jwks_refresh", "50ms", "jwks_min_refresh_interval", "1h"))
	// Use up the unknown-kid budget so only the refresher can pick k2 up.
	if w := call(h, sign(t, "ES256", k2, "zz", claims(nil))); w.Code != 401 {
		t.Fatalf("unknown: %d", w.Code)
	}
	srv.set(t, jwk(k2.pub, "k2", "ES256"))
	tok := sign(t, "ES256", k2, "k2", claims(nil))
	if !wait.Within(2*time.Second, func() bool { return call(h, tok).Code == 200 }) {
		t.Fatal("background refresh never picked up k2")
	}
}

func TestJWKSStaleIfErrorThenFailClosed(t *testing.T) {
	t.Parallel()
	k1 := newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	h, p := mustBuild(t, jwksCfg(srv.URL+"/jwks", "jwks_refresh", "50ms", "jwks_stale_ttl", "300ms", "jwks_min_refresh_interval", "1s"))
	setMinInterval(p, 0)
	tok := sign(t, "ES256", k1, "k1", claims(nil))
	start := time.Now()
	srv.down.Store(true)
	// Refreshes now fail; the last good keys keep working for the TTL.
	for time.Since(start) < 150*time.Millisecond {
		if w := call(h, tok); w.Code != 200 {
			t.Fatalf("at %v with stale keys: status %d, want 200", time.Since(start), w.Code)
		}
		time.Sleep(20 * time.Millisecond) // samples the stale period: the TTL passing is what is tested
	}
	if !wait.Within(2*time.Second, func() bool { return call(h, tok).Code == 401 }) {
		t.Fatal("stale keys still accepted past jwks_stale_ttl")
	}
	// The TTL counts from the last good fetch, which ended after the
	// server last wrote the keys (on a busy machine that may be well
	// before start).
	if since := time.Since(time.Unix(0, srv.served.Load())); since < 300*time.Millisecond {
		t.Fatalf("keys dropped %v after the last good fetch, before jwks_stale_ttl", since)
	}
	// The server comes back: keys are restored by the refresher.
	srv.down.Store(false)
	if !wait.Within(2*time.Second, func() bool { return call(h, tok).Code == 200 }) {
		t.Fatal("keys not restored after the JWKS server recovered")
	}
}

func TestJWKSDownAtProvision(t *testing.T) {
	t.Parallel()
	k1 := newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	srv.down.Store(true)
	h, _ := mustBuild(t, jwksCfg(srv.URL+"/jwks", "jwks_refresh", "50ms", "jwks_min_refresh_interval", "1h"))
	tok := sign(t, "ES256", k1, "k1", claims(nil))
	if w := call(h, tok); w.Code != 401 {
		t.Fatalf("no keys yet: status %d", w.Code)
	}
	srv.down.Store(false)
	if !wait.Within(2*time.Second, func() bool { return call(h, tok).Code == 200 }) {
		t.Fatal("background retry never loaded the keys")
	}
}

func TestOIDCDiscovery(t *testing.T) {
	t.Parallel()
	k1 := newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	srv.discovery = true
	h, p := mustBuild(t, map[string]any{"algorithms": []string{"ES256"}, "oidc_issuer": srv.URL, "audiences": []string{"api"}})
	if len(p.issuers) != 1 || p.issuers[0] != srv.URL {
		t.Fatalf("issuer default = %v", p.issuers)
	}
	if w := call(h, sign(t, "ES256", k1, "k1", claims(map[string]any{"iss": srv.URL}))); w.Code != 200 {
		t.Fatalf("discovered key: status %d", w.Code)
	}
	if w := call(h, sign(t, "ES256", k1, "k1", claims(map[string]any{"iss": "https://issuer.test"}))); w.Code != 401 {
		t.Fatalf("other issuer: status %d", w.Code)
	}
	if srv.fetches.Load() != 1 {
		t.Fatalf("fetches = %d", srv.fetches.Load())
	}
}

func TestJWKSOversizedAndSymmetricRefused(t *testing.T) {
	t.Parallel()
	big := make([]byte, maxDocBytes+10)
	for i := range big {
		big[i] = ' '
	}
	srv := newJWKSServer(t)
	srv.mu.Lock()
	srv.body = append(append([]byte(`{"keys":[]`), big...), '}')
	srv.mu.Unlock()
	_, p := mustBuild(t, jwksCfg(srv.URL+"/jwks", "jwks_min_refresh_interval", "1h"))
	if p.remote.state.Load() != nil {
		t.Fatal("an oversized JWKS was accepted")
	}
	// An "oct" key from a URL is never used as an HMAC secret.
	sec := []byte("0123456789abcdef0123456789abcdef")
	srv2 := newJWKSServer(t, jwk(sec, "s1", "HS256"), jwk(newECKey(t).pub, "e1", "ES256"))
	h2, _ := mustBuild(t, cfgWith(jwksCfg(srv2.URL+"/jwks", "jwks_min_refresh_interval", "1h"), "algorithms", []string{"HS256", "ES256"}))
	if w := call(h2, sign(t, "HS256", testKey{sec: sec}, "s1", claims(nil))); w.Code != 401 {
		t.Fatalf("HS256 with a remote oct key: status %d, want 401", w.Code)
	}
}

func TestCleanupStopsRefresher(t *testing.T) {
	k1 := newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	runtime.GC()
	before := runtime.NumGoroutine()
	in, err := build(t, jwksCfg(srv.URL+"/jwks", "jwks_refresh", "20ms"))
	if err != nil {
		t.Fatal(err)
	}
	p := in.Plugin.(*JWT)
	h := p.Wrap(http.HandlerFunc(upstream))
	if w := call(h, sign(t, "ES256", k1, "k1", claims(nil))); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	wait.For(t, 2*time.Second, "two refreshes", func() bool { return srv.fetches.Load() >= 3 })
	in.Cleanup()
	if p.remote.ctx.Err() == nil {
		t.Fatal("refresher context not cancelled")
	}
	// The refresher has exited once the goroutines are back; a fetch it
	// had in flight when Cleanup ran may still have been counted before.
	if !wait.Within(2*time.Second, func() bool { return runtime.NumGoroutine() <= before }) {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after Cleanup\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
	n := srv.fetches.Load()
	time.Sleep(80 * time.Millisecond) // an absence check: four refresh intervals with no fetch
	if srv.fetches.Load() != n {
		t.Fatal("fetches continued after Cleanup")
	}
	// Cleanup twice and Cleanup of an unprovisioned instance are harmless.
	in.Cleanup()
	if err := new(JWT).Cleanup(); err != nil {
		t.Fatal(err)
	}
}

// TestRemoteKeysShared: instances with the same key settings built with
// one shared pool (the routes of a config, and the same routes after a
// reload) share one key set: one initial fetch, and the refresher lives
// until the last instance is cleaned up. Another pool (another gateway)
// gets a key set of its own.
func TestRemoteKeysShared(t *testing.T) {
	k1 := newECKey(t)
	srv := newJWKSServer(t, jwk(k1.pub, "k1", "ES256"))
	cfg := jwksCfg(srv.URL+"/jwks", "jwks_min_refresh_interval", "1h")
	pool := plugin.NewSharedPool()
	a, err := build(t, cfg, plugintest.WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	b, err := build(t, cfg, plugintest.WithPool(pool))
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for two instances with the same settings, want 1", n)
	}
	other, err := build(t, cfg, plugintest.WithPool(plugin.NewSharedPool()))
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.fetches.Load(); n != 2 || other.Plugin.(*JWT).remote == b.Plugin.(*JWT).remote {
		t.Fatalf("another pool shares the key set (%d fetches, want 2)", n)
	}
	a.Cleanup()
	hb := b.Plugin.(*JWT).Wrap(http.HandlerFunc(upstream))
	if w := call(hb, sign(t, "ES256", k1, "k1", claims(nil))); w.Code != 200 {
		t.Fatalf("second instance after the first was cleaned up: status %d", w.Code)
	}
	b.Cleanup()
	if b.Plugin.(*JWT).remote.ctx.Err() == nil {
		t.Fatal("refresher still running after the last instance was cleaned up")
	}
}
