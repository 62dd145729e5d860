package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// e2ePurgeConfig has a route cache (catalog, keyed per consumer) and a
// global cache (blog); the backend tags its responses and varies on
// Accept.
const e2ePurgeConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "127.0.0.1:0", token: purge-test-token}
consumers:
  - {name: alice, credentials: {key_auth: [{key: purge-test-alice-key}]}}
  - {name: bob, credentials: {key_auth: [{key: purge-test-bob-key}]}}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
plugins:
  - {name: cache}
routes:
  - name: catalog
    match: {path_prefix: /catalog/}
    upstream: be
    plugins:
      - {name: cache, config: {key: {ignore_query: [utm_source]}}}
      - {name: key_auth}
  - name: blog
    match: {path_prefix: /blog/}
    upstream: be
`

// e2ePurgeBackend tags /catalog/items/N "product-N catalog", other
// catalog pages "catalog" and blog pages "blog" (in Surrogate-Key).
func e2ePurgeBackend(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "max-age=300")
	w.Header().Set("Vary", "Accept")
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/catalog/items/"):
		w.Header().Set("Cache-Tag", "product-"+strings.TrimPrefix(p, "/catalog/items/")+", catalog")
	case strings.HasPrefix(p, "/catalog/"):
		w.Header().Set("Cache-Tag", "catalog")
	default:
		w.Header().Set("Surrogate-Key", "blog")
	}
}

// e2ePurge posts a purge to the admin API and decodes the answer.
func e2ePurge(t *testing.T, adminURL, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", adminURL+"/cache/purge", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("purge %s: %v", body, err)
	}
	return resp.StatusCode, v
}

// e2ePurgeStored are the requests TestE2ECachePurge stores: path, API key
// (none for the blog route) and Accept (the backend varies on it).
var e2ePurgeStored = map[string]struct{ path, key, accept string }{
	"item1-alice-json": {"/catalog/items/1?b=2&a=1", "purge-test-alice-key", "application/json"},
	"item1-bob-json":   {"/catalog/items/1?b=2&a=1", "purge-test-bob-key", "application/json"},
	"item1-alice-text": {"/catalog/items/1?b=2&a=1", "purge-test-alice-key", "text/plain"},
	"item2":            {"/catalog/items/2", "purge-test-alice-key", "application/json"},
	"other":            {"/catalog/other", "purge-test-alice-key", "application/json"},
	"post1":            {"/blog/post-1", "", "application/json"},
	"post2":            {"/blog/post-2", "", "application/json"},
}

// e2ePurgeEnv is TestE2ECachePurge's gateway and backend.
type e2ePurgeEnv struct {
	t         *testing.T
	be        *e2eRecorder
	gw, admin string
}

// get requests a stored name and returns its X-Cache, checking that the
// tag headers never reach the client and that exactly a MISS reaches the
// backend.
func (env *e2ePurgeEnv) get(name string) string {
	t := env.t
	t.Helper()
	s := e2ePurgeStored[name]
	req := e2eReq(t, "GET", env.gw+s.path, nil)
	req.Header.Set("Accept", s.accept)
	if s.key != "" {
		req.Header.Set("X-API-Key", s.key)
	}
	before := env.be.count()
	resp, _ := e2eDo(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d", name, resp.StatusCode)
	}
	if len(resp.Header.Values("Cache-Tag")) > 0 || len(resp.Header.Values("Surrogate-Key")) > 0 {
		t.Fatalf("%s: tag headers reach the client: %v", name, resp.Header)
	}
	label := resp.Header.Get("X-Cache")
	if reached := env.be.count() > before; reached != (label == "MISS") {
		t.Fatalf("%s: X-Cache %s but backend reached %v", name, label, reached)
	}
	return label
}

// expect checks that the listed names MISS and every other one HITs.
func (env *e2ePurgeEnv) expect(step string, misses ...string) {
	env.t.Helper()
	for name := range e2ePurgeStored {
		want := "HIT"
		if slices.Contains(misses, name) {
			want = "MISS"
		}
		if got := env.get(name); got != want {
			env.t.Errorf("%s: %s is %s, want %s", step, name, got, want)
		}
	}
}

// purge posts a purge and checks its count and routes.
func (env *e2ePurgeEnv) purge(body string, wantPurged int, wantRoutes ...string) {
	t := env.t
	t.Helper()
	status, v := e2ePurge(t, env.admin, "purge-test-token", body)
	if status != http.StatusOK {
		t.Fatalf("purge %s: %d %v", body, status, v)
	}
	var routes []string
	for _, r := range v["routes"].([]any) {
		routes = append(routes, r.(string))
	}
	if int(v["purged"].(float64)) != wantPurged || !slices.Equal(routes, wantRoutes) {
		t.Fatalf("purge %s = %v, want purged %d on %v", body, v, wantPurged, wantRoutes)
	}
}

// TestE2ECachePurge stores tagged responses on a route cache and a global
// cache, then purges by URL (query order and an ignored parameter differ
// from the stored requests; every consumer and variant goes), by prefix,
// by tag and all, per route and across routes: each purged URL's next
// request is a MISS that reaches the backend while the others stay HITs.
func TestE2ECachePurge(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", e2ePurgeBackend)
	tg := e2eStart(t, e2ePurgeConfig, map[string]string{"BE": be.URL})
	env := &e2ePurgeEnv{t: t, be: be, gw: tg.URL, admin: tg.AdminURL}
	host := e2eHostPort(tg.URL)
	for name := range e2ePurgeStored {
		if got := env.get(name); got != "MISS" {
			t.Fatalf("first %s: %s", name, got)
		}
	}
	env.expect("stored")

	// URL: both consumers, both variants and the two index entries of the
	// varying response (5 entries), whatever the query order.
	env.purge(`{"url": "http://`+host+`/catalog/items/1?utm_source=x&a=1&b=2"}`, 5, "catalog", "blog")
	env.expect("url", "item1-alice-json", "item1-bob-json", "item1-alice-text")

	// Prefix on one route: the blog route's cache is not touched.
	env.purge(`{"prefix": "`+host+`/catalog/items/", "route": "catalog"}`, 7, "catalog")
	env.expect("prefix", "item1-alice-json", "item1-bob-json", "item1-alice-text", "item2")
	env.purge(`{"prefix": "http://`+host+`/blog/", "route": "catalog"}`, 0, "catalog")
	env.expect("prefix on another route")

	// Tag: from Cache-Tag on the catalog route, Surrogate-Key on the blog
	// route (index entries carry no tag, variants do).
	env.purge(`{"tag": "product-2"}`, 1, "catalog", "blog")
	env.expect("tag", "item2")
	env.purge(`{"tag": "blog", "route": "catalog"}`, 0, "catalog")
	env.purge(`{"tag": "blog"}`, 2, "catalog", "blog")
	env.expect("tag on the global cache", "post1", "post2")
	env.purge(`{"tag": "catalog"}`, 5, "catalog", "blog")
	env.expect("shared tag", "item1-alice-json", "item1-bob-json", "item1-alice-text", "item2", "other")

	// All, on the global cache's route, then everywhere.
	env.purge(`{"all": true, "route": "blog"}`, 4, "blog")
	env.expect("all on blog", "post1", "post2")
	env.purge(`{"all": true}`, 13, "catalog", "blog")
	env.expect("all", "item1-alice-json", "item1-bob-json", "item1-alice-text", "item2", "other", "post1", "post2")

	// The purges are counted per route and kind.
	wait.For(t, 5*time.Second, "purge counters", func() bool {
		req, _ := http.NewRequest("GET", tg.AdminURL+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer purge-test-token")
		resp, err := e2eClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `portico_cache_purged_total{kind="url",route="catalog"} 5`) &&
			strings.Contains(string(b), `portico_cache_purged_total{kind="all",route="blog"} 8`)
	})
}

// TestE2ECachePurgeErrors: bad bodies get 400 naming the field, an unknown
// route 404, a route without a cache 400, and without the admin token 401;
// nothing is purged by any of them.
func TestE2ECachePurgeErrors(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", e2ePurgeBackend)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "127.0.0.1:0", token: purge-test-token}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
routes:
  - name: blog
    match: {path_prefix: /blog/}
    upstream: be
    plugins: [{name: cache}]
  - name: plain
    match: {path_prefix: /}
    upstream: be
`, map[string]string{"BE": be.URL})
	getLabel := func() string {
		resp, _ := e2eGet(t, tg.URL+"/blog/post")
		return resp.Header.Get("X-Cache")
	}
	if got := getLabel(); got != "MISS" {
		t.Fatalf("first: %s", got)
	}
	for _, tc := range []struct {
		desc, token, body string
		status            int
		pointer           string
	}{
		{desc: "no token", body: `{"all": true}`, status: 401},
		{desc: "wrong token", token: "nope", body: `{"all": true}`, status: 401},
		{desc: "no selector", token: "purge-test-token", body: `{"route": "blog"}`, status: 400, pointer: ""},
		{desc: "two selectors", token: "purge-test-token", body: `{"all": true, "tag": "blog"}`, status: 400, pointer: "/all"},
		{desc: "relative url", token: "purge-test-token", body: `{"url": "/blog/post"}`, status: 400, pointer: "/url"},
		{desc: "unknown field", token: "purge-test-token", body: `{"all": true, "force": true}`, status: 400, pointer: "/force"},
		{desc: "not JSON", token: "purge-test-token", body: `all`, status: 400},
		{desc: "route without a cache", token: "purge-test-token", body: `{"all": true, "route": "plain"}`, status: 400, pointer: "/route"},
		{desc: "unknown route", token: "purge-test-token", body: `{"all": true, "route": "nope"}`, status: 404},
	} {
		status, v := e2ePurge(t, tg.AdminURL, tc.token, tc.body)
		if status != tc.status {
			t.Errorf("%s: %d %v, want %d", tc.desc, status, v, tc.status)
			continue
		}
		if tc.status == 400 && tc.desc != "not JSON" {
			errs, _ := v["errors"].([]any)
			if len(errs) == 0 || errs[0].(map[string]any)["pointer"] != tc.pointer {
				t.Errorf("%s: %v, want pointer %q", tc.desc, v, tc.pointer)
			}
		}
	}
	if got := getLabel(); got != "HIT" {
		t.Fatalf("after refused purges: %s", got)
	}
	if status, v := e2ePurge(t, tg.AdminURL, "purge-test-token", `{"all": true}`); status != 200 || v["purged"].(float64) != 2 {
		t.Fatalf("purge all: %d %v", status, v)
	}
	if got := getLabel(); got != "MISS" {
		t.Fatalf("after purge: %s", got)
	}
}

// TestE2ECachePurgeAfterReload: a reload that leaves the route's cache
// settings alone keeps its store, and a purge through the new snapshot
// removes what the old one stored.
func TestE2ECachePurgeAfterReload(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", e2ePurgeBackend)
	const cfg = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
routes:
  - name: blog
    match: {path_prefix: /blog/}
    upstream: be
    plugins: [{name: cache}]
`
	tg := e2eStart(t, cfg, map[string]string{"BE": be.URL})
	label := func() string {
		resp, _ := e2eGet(t, tg.URL+"/blog/post")
		return resp.Header.Get("X-Cache")
	}
	if got := label(); got != "MISS" {
		t.Fatalf("first: %s", got)
	}
	yaml := strings.ReplaceAll(cfg, "{{BE}}", be.URL) + `
  - name: other
    match: {path_prefix: /other/}
    upstream: be
admin: {listen: "127.0.0.1:0"}
log: {access: {output: "off"}}
`
	if err := tg.Runtime.Apply(testutil.ParseConfig(t, yaml)); err != nil {
		t.Fatal(err)
	}
	if got := label(); got != "HIT" {
		t.Fatalf("after the reload: %s", got)
	}
	if status, v := e2ePurge(t, tg.AdminURL, "", `{"tag": "blog", "route": "blog"}`); status != 200 || v["purged"].(float64) != 1 {
		t.Fatalf("purge: %d %v", status, v)
	}
	if got := label(); got != "MISS" {
		t.Fatalf("after the purge: %s", got)
	}
}

// TestE2ECacheTagStripBypass: requests that pass the cache by go through
// the writer that strips tag headers: a WebSocket upgrade still works
// (hijacked through it; its 101, written on the hijacked connection, keeps
// the upstream's header), and an answer to a request with Authorization
// loses the tag headers.
func TestE2ECacheTagStripBypass(t *testing.T) {
	t.Parallel()
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Tag", "ws")
		if r.Header.Get("Upgrade") != "" {
			e2eWebSocketEcho(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = io.WriteString(w, "ok")
	}))
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
routes:
  - name: ws
    match: {path_prefix: /}
    upstream: be
    upgrades: [websocket]
    plugins: [{name: cache}]
`, map[string]string{"BE": be.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, "ws://"+e2eHostPort(tg.URL)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if resp.Header.Get("X-Cache") != "BYPASS" {
		t.Fatalf("101 header %v", resp.Header)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "ping" {
		t.Fatalf("echo %q, %v", msg, err)
	}
	req := e2eReq(t, "GET", tg.URL+"/x", nil)
	req.Header.Set("Authorization", "Bearer t")
	r, body := e2eDo(t, req)
	if r.Header.Get("X-Cache") != "BYPASS" || r.Header.Get("Cache-Tag") != "" || string(body) != "ok" {
		t.Fatalf("bypass: %v %q", r.Header, body)
	}
}
