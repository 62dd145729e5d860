package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// e2eCacheConfig puts the cache plugin on three routes of one backend.
const e2eCacheConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
consumers:
  - {name: alice, credentials: {key_auth: [{key: cache-test-alice-key}]}}
  - {name: bob, credentials: {key_auth: [{key: cache-test-bob-key}]}}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
  gone: {targets: [{url: "{{GONE}}"}]}
routes:
  - name: gone
    match: {path_prefix: /gone/}
    upstream: gone
    plugins:
      - {name: cache, config: {stale_if_error: 300s}}
  - name: authed
    match: {path_prefix: /authed/}
    upstream: be
    plugins:
      - {name: cache}
      - {name: key_auth}
      - {name: headers, config: {response: {set: {X-Req: "${request_id}"}}}}
  - name: shared
    match: {path_prefix: /shared/}
    upstream: be
    plugins:
      - {name: cache, config: {share_between_consumers: true}}
      - {name: key_auth}
  - name: cached
    match: {path_prefix: /}
    upstream: be
    plugins:
      - {name: cache, config: {max_bytes: 1MiB, max_entry: 64KiB}}
  - name: coalesce
    match: {path_prefix: /co/}
    upstream: be
    plugins:
      - {name: cache, config: {coalesce: {max_waiters: 200, wait: 30s}}}
  - name: small
    match: {path_prefix: /small/}
    upstream: be
    plugins:
      - {name: cache, config: {max_bytes: 256KiB, max_entry: 4KiB}}
`

// e2eCacheBackend answers with the response directives the query asks for
// (cc, etag, vary, cookie) and a body naming the path, its hit number and
// the request's X-Tenant and Cookie.
type e2eCacheBackend struct {
	mu      sync.Mutex
	hits    map[string]int
	inm     map[string][]string
	failing map[string]bool
	release chan struct{}
}

func (b *e2eCacheBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	b.mu.Lock()
	b.hits[r.URL.Path]++
	n := b.hits[r.URL.Path]
	b.inm[r.URL.Path] = append(b.inm[r.URL.Path], r.Header.Get("If-None-Match"))
	fail := b.failing[r.URL.Path]
	b.mu.Unlock()
	if q.Get("block") != "" {
		<-b.release
	}
	if fail {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h := w.Header()
	if cc := q.Get("cc"); cc != "" {
		h.Set("Cache-Control", cc)
	}
	if cdn := q.Get("cdn"); cdn != "" {
		h.Set("CDN-Cache-Control", cdn)
	}
	if v := q.Get("vary"); v != "" {
		h.Set("Vary", v)
	}
	if q.Get("cookie") != "" {
		h.Set("Set-Cookie", "s=1")
	}
	if et := q.Get("etag"); et != "" {
		h.Set("Etag", `"`+et+`"`)
		if r.Header.Get("If-None-Match") == `"`+et+`"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	fmt.Fprintf(w, "path=%s n=%d tenant=%s cookie=%s pad=%s", r.URL.Path, n, r.Header.Get("X-Tenant"),
		r.Header.Get("Cookie"), strings.Repeat("x", 200))
}

func (b *e2eCacheBackend) count(path string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits[path]
}

type e2eCacheEnv struct {
	tg   *testutil.Gateway
	be   *e2eCacheBackend
	gone interface{ Close() }
	yaml string
}

// get sends a GET with header pairs and returns status, X-Cache and body.
func (env *e2eCacheEnv) get(t *testing.T, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req := e2eReq(t, http.MethodGet, env.tg.URL+target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, body := e2eDo(t, req)
	return resp, string(body)
}

func (env *e2eCacheEnv) counter(route, result string) int64 {
	return env.tg.Runtime.Stats().Counter("portico_cache_lookups_total", fmt.Sprintf("route=%q,result=%q", route, result)).Value()
}

// TestCache drives the cache plugin through a gateway with a real backend.
func TestCache(t *testing.T) {
	t.Parallel()
	be := &e2eCacheBackend{hits: map[string]int{}, inm: map[string][]string{}, failing: map[string]bool{}, release: make(chan struct{})}
	srv := testutil.Backend(t, be)
	gone := testutil.Backend(t, be)
	env := &e2eCacheEnv{tg: e2eStart(t, e2eCacheConfig, map[string]string{"BE": srv.URL, "GONE": gone.URL}), be: be, gone: gone}
	env.yaml = strings.NewReplacer("{{BE}}", srv.URL, "{{GONE}}", gone.URL).Replace(e2eCacheConfig)
	for _, s := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"miss then hit with Age", env.missThenHit},
		{"max-age expiry", env.expiry},
		{"no-store and private are not stored", env.notStored},
		{"Authorization and Set-Cookie are not stored", env.authAndCookie},
		{"cache deception", env.deception},
		{"authentication runs before the cache", env.authFirst},
		{"consumers do not share stored responses unless configured", env.perConsumer},
		{"ETag revalidation", env.revalidation},
		{"client If-None-Match answered 304", env.clientConditional},
		{"100 concurrent misses make one upstream request", env.coalescing},
		{"Vary on a custom header", env.vary},
		{"stale-if-error", env.staleIfError},
		{"stale-if-error with the upstream gone", env.staleIfGone},
		{"unsafe method invalidates", env.invalidation},
		{"memory bound under 10k keys", env.memoryBound},
		{"CDN-Cache-Control governs the cache, clients get Cache-Control", env.targeted},
		{"Range requests answered from a stored complete response", env.ranges},
		{"HEAD answered from a stored GET", env.headFromGET},
		{"reload keeps the store unless the settings change", env.reload},
	} {
		t.Run(s.name, s.run)
	}
}

func (env *e2eCacheEnv) missThenHit(t *testing.T) {
	r1, b1 := env.get(t, "/hit?cc=max-age%3D60")
	r2, b2 := env.get(t, "/hit?cc=max-age%3D60")
	if r1.Header.Get("X-Cache") != "MISS" || r2.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("X-Cache %q then %q", r1.Header.Get("X-Cache"), r2.Header.Get("X-Cache"))
	}
	if b1 != b2 || env.be.count("/hit") != 1 {
		t.Fatalf("bodies %q / %q, upstream requests %d", b1, b2, env.be.count("/hit"))
	}
	if r2.Header.Get("Age") == "" || r1.Header.Get("Age") != "" {
		t.Fatalf("Age %q on the hit, %q on the miss", r2.Header.Get("Age"), r1.Header.Get("Age"))
	}
	if r2.Header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("stored header not served: %v", r2.Header)
	}
}

func (env *e2eCacheEnv) targeted(t *testing.T) {
	// Stored for an hour by CDN-Cache-Control although Cache-Control
	// says no-store; both fields reach the client unchanged.
	env.get(t, "/cdn?cc=no-store&cdn=max-age%3D3600")
	r, _ := env.get(t, "/cdn?cc=no-store&cdn=max-age%3D3600")
	if r.Header.Get("X-Cache") != "HIT" || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Cdn-Cache-Control") != "max-age=3600" {
		t.Fatalf("X-Cache %q, headers %v", r.Header.Get("X-Cache"), r.Header)
	}
	// CDN-Cache-Control: no-store wins over a long Cache-Control max-age.
	env.get(t, "/cdn-ns?cc=max-age%3D3600&cdn=no-store")
	if r, _ := env.get(t, "/cdn-ns?cc=max-age%3D3600&cdn=no-store"); r.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("no-store in CDN-Cache-Control: X-Cache %q", r.Header.Get("X-Cache"))
	}
	// An invalid field is ignored: Cache-Control decides.
	env.get(t, "/cdn-bad?cc=no-store&cdn=max-age%3D%2210%22")
	if r, _ := env.get(t, "/cdn-bad?cc=no-store&cdn=max-age%3D%2210%22"); r.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("invalid CDN-Cache-Control obeyed: X-Cache %q", r.Header.Get("X-Cache"))
	}
	if n := env.be.count("/cdn") + env.be.count("/cdn-ns") + env.be.count("/cdn-bad"); n != 5 {
		t.Fatalf("upstream requests %d, want 5", n)
	}
}

func (env *e2eCacheEnv) ranges(t *testing.T) {
	// Nothing stored: the Range request goes upstream, and is not stored.
	if r, _ := env.get(t, "/rg?cc=max-age%3D60&etag=v1", "Range", "bytes=0-3"); r.Header.Get("X-Cache") != "BYPASS" {
		t.Fatalf("ranged miss: X-Cache %q", r.Header.Get("X-Cache"))
	}
	_, full := env.get(t, "/rg?cc=max-age%3D60&etag=v1")
	r, b := env.get(t, "/rg?cc=max-age%3D60&etag=v1", "Range", "bytes=5-9")
	if r.StatusCode != http.StatusPartialContent || b != full[5:10] || r.Header.Get("X-Cache") != "HIT" ||
		r.Header.Get("Content-Range") != fmt.Sprintf("bytes 5-9/%d", len(full)) || r.Header.Get("Content-Length") != "5" {
		t.Fatalf("ranged hit: %d %q %v", r.StatusCode, b, r.Header)
	}
	if r.Header.Get("Cache-Control") != "max-age=60" || r.Header.Get("Age") == "" {
		t.Fatalf("stored header not served with the part: %v", r.Header)
	}
	// If-Range with another validator: the whole response, from the store.
	r, b = env.get(t, "/rg?cc=max-age%3D60&etag=v1", "Range", "bytes=5-9", "If-Range", `"v0"`)
	if r.StatusCode != http.StatusOK || b != full {
		t.Fatalf("If-Range mismatch: %d %q", r.StatusCode, b)
	}
	// Unsatisfiable: 416 from the store.
	if r, _ = env.get(t, "/rg?cc=max-age%3D60&etag=v1", "Range", "bytes=100000-"); r.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("unsatisfiable range: %d", r.StatusCode)
	}
	if n := env.be.count("/rg"); n != 2 {
		t.Fatalf("upstream requests %d, want 2 (the ranged miss and the full one)", n)
	}
}

func (env *e2eCacheEnv) headFromGET(t *testing.T) {
	_, full := env.get(t, "/hd?cc=max-age%3D60")
	resp, body := e2eDo(t, e2eReq(t, http.MethodHead, env.tg.URL+"/hd?cc=max-age%3D60", nil))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache") != "HIT" || len(body) != 0 ||
		resp.ContentLength != int64(len(full)) || resp.Header.Get("Cache-Control") != "max-age=60" {
		t.Fatalf("HEAD after GET: %d %q, Content-Length %d (GET body %d), body %d bytes", resp.StatusCode,
			resp.Header.Get("X-Cache"), resp.ContentLength, len(full), len(body))
	}
	// A stale GET is not used for HEAD: the HEAD goes upstream.
	env.get(t, "/hd-stale?cc=max-age%3D0&etag=h")
	if resp, _ := e2eDo(t, e2eReq(t, http.MethodHead, env.tg.URL+"/hd-stale?cc=max-age%3D0&etag=h", nil)); resp.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("HEAD with a stale GET stored: %q", resp.Header.Get("X-Cache"))
	}
	if n := env.be.count("/hd"); n != 1 {
		t.Fatalf("upstream requests %d, want 1", n)
	}
}

func (env *e2eCacheEnv) expiry(t *testing.T) {
	env.get(t, "/exp?cc=max-age%3D1")
	if r, _ := env.get(t, "/exp?cc=max-age%3D1"); r.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("second request %q", r.Header.Get("X-Cache"))
	}
	wait.For(t, 5*time.Second, "entry to expire", func() bool {
		r, _ := env.get(t, "/exp?cc=max-age%3D1")
		return r.Header.Get("X-Cache") == "MISS"
	})
	if n := env.be.count("/exp"); n != 2 {
		t.Fatalf("upstream requests %d, want 2", n)
	}
}

func (env *e2eCacheEnv) notStored(t *testing.T) {
	for _, cc := range []string{"no-store", "private", "private%2C+max-age%3D60", "no-store%2C+max-age%3D60"} {
		path := "/ns-" + strings.NewReplacer("%", "", "+", "").Replace(cc)
		for range 2 {
			if r, _ := env.get(t, path+"?cc="+cc); r.Header.Get("X-Cache") != "MISS" {
				t.Fatalf("%s: X-Cache %q", cc, r.Header.Get("X-Cache"))
			}
		}
		if n := env.be.count(path); n != 2 {
			t.Fatalf("%s: upstream requests %d, want 2", cc, n)
		}
	}
}

func (env *e2eCacheEnv) authAndCookie(t *testing.T) {
	for range 2 {
		r, _ := env.get(t, "/auth?cc=max-age%3D60", "Authorization", "Bearer abc")
		if r.Header.Get("X-Cache") != "BYPASS" {
			t.Fatalf("Authorization: X-Cache %q", r.Header.Get("X-Cache"))
		}
	}
	// Nothing was stored for the URL either.
	if r, _ := env.get(t, "/auth?cc=max-age%3D60"); r.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("after authorized requests: %q", r.Header.Get("X-Cache"))
	}
	for range 2 {
		r, _ := env.get(t, "/cookie?cc=max-age%3D60&cookie=1")
		if r.Header.Get("X-Cache") != "MISS" || r.Header.Get("Set-Cookie") == "" {
			t.Fatalf("Set-Cookie: X-Cache %q, Set-Cookie %q", r.Header.Get("X-Cache"), r.Header.Get("Set-Cookie"))
		}
	}
	if env.be.count("/auth") != 3 || env.be.count("/cookie") != 2 {
		t.Fatalf("upstream requests %d, %d", env.be.count("/auth"), env.be.count("/cookie"))
	}
}

func (env *e2eCacheEnv) deception(t *testing.T) {
	_, alice := env.get(t, "/account.php/x.css?cc=private", "Cookie", "session=alice")
	r, bob := env.get(t, "/account.php/x.css?cc=private", "Cookie", "session=bob")
	if !strings.Contains(alice, "session=alice") || strings.Contains(bob, "alice") || r.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("second client got %q (X-Cache %q)", bob, r.Header.Get("X-Cache"))
	}
}

func (env *e2eCacheEnv) perConsumer(t *testing.T) {
	const own, shared = "/authed/own?cc=public%2C+max-age%3D60", "/shared/x?cc=public%2C+max-age%3D60"
	for _, step := range []struct{ target, key, want string }{
		{own, "cache-test-alice-key", "MISS"},
		{own, "cache-test-bob-key", "MISS"},
		{own, "cache-test-alice-key", "HIT"},
		{own, "cache-test-bob-key", "HIT"},
		{shared, "cache-test-alice-key", "MISS"},
		{shared, "cache-test-bob-key", "HIT"},
	} {
		if r, _ := env.get(t, step.target, "X-API-Key", step.key); r.Header.Get("X-Cache") != step.want {
			t.Fatalf("%s as %s: X-Cache %q, want %q", step.target, step.key, r.Header.Get("X-Cache"), step.want)
		}
	}
	if a, s := env.be.count("/authed/own"), env.be.count("/shared/x"); a != 2 || s != 1 {
		t.Fatalf("upstream requests: %d for the per-consumer path (want 2), %d for the shared one (want 1)", a, s)
	}
}

func (env *e2eCacheEnv) authFirst(t *testing.T) {
	const u = "/authed/x?cc=public%2C+max-age%3D60"
	env.get(t, u, "X-API-Key", "cache-test-alice-key")
	if r, _ := env.get(t, u, "X-API-Key", "cache-test-alice-key"); r.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("authenticated repeat: %q", r.Header.Get("X-Cache"))
	}
	// Response transformations run on every answer: a per-request value
	// is never stored and replayed.
	a, _ := env.get(t, u, "X-API-Key", "cache-test-alice-key")
	b, _ := env.get(t, u, "X-API-Key", "cache-test-alice-key")
	if a.Header.Get("X-Cache") != "HIT" || a.Header.Get("X-Req") == "" || a.Header.Get("X-Req") == b.Header.Get("X-Req") {
		t.Fatalf("X-Req %q then %q (X-Cache %q)", a.Header.Get("X-Req"), b.Header.Get("X-Req"), a.Header.Get("X-Cache"))
	}
	r, body := env.get(t, u)
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("X-Cache") != "" || strings.Contains(body, "path=") {
		t.Fatalf("anonymous client: status %d, X-Cache %q, body %q", r.StatusCode, r.Header.Get("X-Cache"), body)
	}
}

func (env *e2eCacheEnv) revalidation(t *testing.T) {
	_, first := env.get(t, "/etag?cc=max-age%3D1&etag=v1")
	var last string
	wait.For(t, 5*time.Second, "a revalidated answer", func() bool {
		r, b := env.get(t, "/etag?cc=max-age%3D1&etag=v1")
		last = r.Header.Get("X-Cache")
		if last != "HIT" && last != "REVALIDATED" {
			t.Fatalf("X-Cache %q", last)
		}
		if b != first {
			t.Fatalf("body changed: %q", b)
		}
		return last == "REVALIDATED"
	})
	env.be.mu.Lock()
	inm := env.be.inm["/etag"]
	env.be.mu.Unlock()
	if len(inm) != 2 || inm[0] != "" || inm[1] != `"v1"` {
		t.Fatalf("upstream saw If-None-Match %q", inm)
	}
}

func (env *e2eCacheEnv) clientConditional(t *testing.T) {
	env.get(t, "/cond?cc=max-age%3D60&etag=c1")
	r, body := env.get(t, "/cond?cc=max-age%3D60&etag=c1", "If-None-Match", `W/"c1"`)
	if r.StatusCode != http.StatusNotModified || body != "" || r.Header.Get("X-Cache") != "HIT" || r.Header.Get("Etag") != `"c1"` {
		t.Fatalf("status %d, X-Cache %q, body %q, header %v", r.StatusCode, r.Header.Get("X-Cache"), body, r.Header)
	}
	if n := env.be.count("/cond"); n != 1 {
		t.Fatalf("upstream requests %d", n)
	}
}

func (env *e2eCacheEnv) coalescing(t *testing.T) {
	const n = 100
	var wg sync.WaitGroup
	bodies := make([]string, n)
	var misses atomic.Int32
	for i := range n {
		wg.Go(func() {
			r, b := env.get(t, "/co/one?cc=max-age%3D60&block=1")
			bodies[i] = b
			if r.Header.Get("X-Cache") == "MISS" {
				misses.Add(1)
			}
		})
	}
	wait.For(t, 10*time.Second, "100 lookups", func() bool { return env.counter("coalesce", "miss") == n })
	close(env.be.release)
	wg.Wait()
	if c := env.be.count("/co/one"); c != 1 {
		t.Fatalf("upstream requests %d, want 1", c)
	}
	for _, b := range bodies {
		if b != bodies[0] || !strings.Contains(b, "n=1 ") {
			t.Fatalf("bodies differ: %q vs %q", b, bodies[0])
		}
	}
	if misses.Load() != 1 || env.counter("coalesce", "coalesced") != n-1 {
		t.Fatalf("%d MISS answers, coalesced counter %d", misses.Load(), env.counter("coalesce", "coalesced"))
	}
}

func (env *e2eCacheEnv) vary(t *testing.T) {
	const u = "/vary?cc=max-age%3D60&vary=X-Tenant"
	for i, s := range []struct{ tenant, want string }{{"a", "MISS"}, {"a", "HIT"}, {"b", "MISS"}, {"b", "HIT"}, {"a", "HIT"}} {
		r, b := env.get(t, u, "X-Tenant", s.tenant)
		if r.Header.Get("X-Cache") != s.want || !strings.Contains(b, "tenant="+s.tenant+" ") {
			t.Fatalf("request %d (tenant %s): X-Cache %q, body %q", i, s.tenant, r.Header.Get("X-Cache"), b)
		}
	}
	if n := env.be.count("/vary"); n != 2 {
		t.Fatalf("upstream requests %d", n)
	}
}

func (env *e2eCacheEnv) staleIfError(t *testing.T) {
	const u = "/sie?cc=max-age%3D1%2C+stale-if-error%3D300"
	_, first := env.get(t, u)
	env.be.mu.Lock()
	env.be.failing["/sie"] = true
	env.be.mu.Unlock()
	wait.For(t, 5*time.Second, "a stale answer", func() bool {
		r, b := env.get(t, u)
		if r.StatusCode != http.StatusOK || b != first {
			t.Fatalf("status %d body %q", r.StatusCode, b)
		}
		return r.Header.Get("X-Cache") == "STALE"
	})
	if n := env.be.count("/sie"); n != 2 {
		t.Fatalf("upstream requests %d", n)
	}
}

func (env *e2eCacheEnv) staleIfGone(t *testing.T) {
	// The response's stale-if-error, and the route's stale_if_error for a
	// response without one, let a stale answer be served once the upstream
	// is gone; must-revalidate forbids it.
	const u = "/gone/x?cc=max-age%3D1%2C+stale-if-error%3D300"
	const byRoute = "/gone/r?cc=max-age%3D1"
	const forbidden = "/gone/m?cc=max-age%3D1%2C+must-revalidate"
	_, first := env.get(t, u)
	_, firstByRoute := env.get(t, byRoute)
	env.get(t, forbidden)
	env.gone.Close()
	for _, c := range []struct{ target, body string }{{u, first}, {byRoute, firstByRoute}} {
		wait.For(t, 5*time.Second, "a stale answer", func() bool {
			r, b := env.get(t, c.target)
			if r.StatusCode != http.StatusOK || b != c.body {
				t.Fatalf("%s: status %d body %q", c.target, r.StatusCode, b)
			}
			return r.Header.Get("X-Cache") == "STALE"
		})
	}
	wait.For(t, 5*time.Second, "must-revalidate to refuse stale", func() bool {
		r, _ := env.get(t, forbidden)
		if r.Header.Get("X-Cache") == "STALE" {
			t.Fatalf("must-revalidate response served stale")
		}
		return r.StatusCode == http.StatusBadGateway
	})
	// Without stale-if-error the failure reaches the client.
	if r, _ := env.get(t, "/gone/y?cc=max-age%3D60"); r.StatusCode != http.StatusBadGateway || r.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("uncached request to a gone upstream: %d %q", r.StatusCode, r.Header.Get("X-Cache"))
	}
}

func (env *e2eCacheEnv) invalidation(t *testing.T) {
	env.get(t, "/inv?cc=max-age%3D60")
	if r, _ := env.get(t, "/inv?cc=max-age%3D60"); r.Header.Get("X-Cache") != "HIT" {
		t.Fatal("not stored")
	}
	resp, _ := e2eDo(t, e2eReq(t, http.MethodPost, env.tg.URL+"/inv?cc=max-age%3D60", strings.NewReader("x")))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %d", resp.StatusCode)
	}
	if r, _ := env.get(t, "/inv?cc=max-age%3D60"); r.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("after POST: %q", r.Header.Get("X-Cache"))
	}
}

func (env *e2eCacheEnv) memoryBound(t *testing.T) {
	const keys, workers = 10000, 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < keys; i += workers {
				r, _ := env.get(t, fmt.Sprintf("/small/k%d?cc=max-age%%3D600", i))
				if r.StatusCode != http.StatusOK {
					t.Errorf("status %d", r.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	stats := env.tg.Runtime.Stats()
	bytes := stats.Counter("portico_cache_stored_bytes", `route="small"`).Value()
	ev := stats.Counter("portico_cache_evictions_total", `route="small"`).Value()
	stored := stats.Counter("portico_cache_stores_total", `route="small"`).Value()
	t.Logf("stored %d responses, %d bytes held, %d evictions", stored, bytes, ev)
	if bytes <= 0 || bytes > 256<<10 || ev == 0 || stored != keys {
		t.Fatalf("bytes %d (max %d), evictions %d, stored %d", bytes, 256<<10, ev, stored)
	}
}

func (env *e2eCacheEnv) reload(t *testing.T) {
	const u = "/reload?cc=max-age%3D600"
	env.get(t, u)
	if err := env.tg.Runtime.Apply(testutil.ParseConfig(t, env.yaml)); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.get(t, u); r.Header.Get("X-Cache") != "HIT" {
		t.Fatalf("after an unchanged reload: %q", r.Header.Get("X-Cache"))
	}
	changed := strings.Replace(env.yaml, "{max_bytes: 1MiB, max_entry: 64KiB}", "{max_bytes: 2MiB, max_entry: 64KiB}", 1)
	if changed == env.yaml {
		t.Fatal("config not changed")
	}
	if err := env.tg.Runtime.Apply(testutil.ParseConfig(t, changed)); err != nil {
		t.Fatal(err)
	}
	if r, _ := env.get(t, u); r.Header.Get("X-Cache") != "MISS" {
		t.Fatalf("after max_bytes changed: %q", r.Header.Get("X-Cache"))
	}
}
