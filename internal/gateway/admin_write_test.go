package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// TestAdminRouteCRUD creates, replaces and deletes a route, checking the
// route serves traffic at once and that invalid input changes nothing.
func TestAdminRouteCRUD(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	if s, _ := a.traffic(t, "/new/x"); s != 404 {
		t.Fatalf("before PUT: %d", s)
	}
	old := a.RunningConfig().Hash
	r := a.write(t, "PUT", "/routes/new", `{"match": {"path_prefix": "/new"}, "upstream": "api"}`, 200)
	if r.etag() == old || r.etag() != a.RunningConfig().Hash || r.json(t)["revision"] != r.etag() {
		t.Fatalf("PUT ETag %q (old %q, running %q) body %s", r.etag(), old, a.RunningConfig().Hash, r.body)
	}
	if s, body := a.traffic(t, "/new/x"); s != 200 || body != "backend:/new/x" {
		t.Fatalf("new route: %d %q", s, body)
	}
	got := a.call(t, "GET", "/routes/new", "").json(t)
	if got["upstream"] != "api" || got["match"].(map[string]any)["path_prefix"] != "/new" {
		t.Errorf("GET /routes/new = %v", got)
	}
	// Replace: the route keeps its place and changes its action.
	a.write(t, "PUT", "/routes/new", `{"name": "new", "match": {"path_prefix": "/new"}, "respond": {"status": 201, "body": "replaced"}}`, 200)
	if s, body := a.traffic(t, "/new/x"); s != 201 || body != "replaced" {
		t.Fatalf("replaced route: %d %q", s, body)
	}
	if n := len(a.RunningConfig().Routes); n != 4 {
		t.Fatalf("routes = %d, want 4", n)
	}
	// Invalid input: 400 with every error located by a JSON pointer into
	// the body (or, for a syntax error, by line and column), nothing
	// changed.
	before := a.RunningConfig().Hash
	bad := []struct{ body, pointer, msg, summary string }{
		{`{"match": {"path": "/bad"}, "upstream": "missing"}`, "/upstream", "not defined", "invalid config"},
		{`{"match": {"path": "/a", "pth": 1}, "respond": {}}`, "/match/pth", "unknown field", "invalid config"},
		{`{"match": {"path": "nope"}, "respond": {}}`, "/match/path", "must start with /", "invalid config"},
		{`{"name": "other", "respond": {}}`, "/name", "does not match", "invalid request body"},
		{`{"respond": {}, "plugins": [{"name": "no_such_plugin"}]}`, "/plugins/0", "unknown plugin", "invalid config"},
		{`[1, 2]`, "", "JSON object", "invalid request body"},
		{`{"respond": `, "-", "unexpected end of JSON input", "request body is not valid JSON: line 1, column 13"},
	}
	for _, tc := range bad {
		r := a.write(t, "PUT", "/routes/bad", tc.body, 400)
		var body struct {
			Error  string `json:"error"`
			Errors []struct {
				Pointer *string `json:"pointer"`
				Path    string  `json:"path"`
				Message string  `json:"message"`
			} `json:"errors"`
		}
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || len(body.Errors) == 0 {
			t.Fatalf("PUT %s: body %s", tc.body, r.body)
		}
		if !strings.HasPrefix(body.Error, tc.summary) {
			t.Errorf("PUT %s: error %q, want it to start with %q", tc.body, body.Error, tc.summary)
		}
		found := false
		for _, e := range body.Errors {
			ptr := "-"
			if e.Pointer != nil {
				ptr = *e.Pointer
			}
			if strings.HasPrefix(ptr, tc.pointer) && e.Path == "" && strings.Contains(e.Message, tc.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("PUT %s: errors %s, want pointer %q with %q", tc.body, r.body, tc.pointer, tc.msg)
		}
		if a.RunningConfig().Hash != before {
			t.Fatalf("invalid PUT %s changed the config", tc.body)
		}
	}
	// Replacing an existing route badly: the pointer is the same, not
	// routes[0]'s config path.
	r = a.write(t, "PUT", "/routes/hello", `{"upstream": "missing"}`, 400)
	if !strings.Contains(r.body, `"pointer": "/upstream"`) || strings.Contains(r.body, "routes[0]") {
		t.Errorf("replacing routes[0] badly: %s", r.body)
	}
	// Delete.
	a.write(t, "DELETE", "/routes/new", "", 200)
	if s, _ := a.traffic(t, "/new/x"); s != 404 {
		t.Fatalf("after DELETE: %d", s)
	}
	a.write(t, "DELETE", "/routes/new", "", 404)
	if r := a.call(t, "GET", "/routes/new", ""); r.status != 404 {
		t.Errorf("GET deleted route = %d", r.status)
	}
}

// TestAdminPreconditions checks writes need the current revision.
func TestAdminPreconditions(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	rev := a.RunningConfig().Hash
	body := `{"match": {"path": "/p"}, "respond": {"body": "p"}}`
	r := a.call(t, "PUT", "/routes/p", body)
	if r.status != 428 || r.json(t)["revision"] != rev {
		t.Fatalf("no If-Match: %d %s", r.status, r.body)
	}
	r = a.call(t, "PUT", "/routes/p", body, "If-Match", `"0000"`)
	if r.status != 412 || r.json(t)["revision"] != rev || r.etag() != rev {
		t.Fatalf("wrong If-Match: %d %s", r.status, r.body)
	}
	a.write(t, "PUT", "/routes/p", body, 200)
	// The old revision is stale now.
	r = a.call(t, "DELETE", "/routes/p", "", "If-Match", `"`+rev+`"`)
	if r.status != 412 || r.json(t)["revision"] != a.RunningConfig().Hash {
		t.Fatalf("stale If-Match: %d %s", r.status, r.body)
	}
	for _, m := range []string{"DELETE", "PUT"} {
		if r := a.call(t, m, "/upstreams/api", `{"targets": [{"url": "http://127.0.0.1:1"}]}`); r.status != 428 {
			t.Errorf("%s /upstreams without If-Match = %d", m, r.status)
		}
	}
	if r := a.call(t, "PUT", "/plugins", `[]`); r.status != 428 {
		t.Errorf("PUT /plugins without If-Match = %d", r.status)
	}
	if r := a.call(t, "POST", "/routes", `{}`); r.status != 405 {
		t.Errorf("POST /routes = %d", r.status)
	}
}

// TestAdminConcurrentWrites sends two writes with the same If-Match at
// once: exactly one is applied.
func TestAdminConcurrentWrites(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	for round := 0; round < 5; round++ {
		rev := `"` + a.RunningConfig().Hash + `"`
		codes := make([]int, 2)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				body := fmt.Sprintf(`{"match": {"path": "/c%d"}, "respond": {}}`, round)
				codes[i] = a.call(t, "PUT", fmt.Sprintf("/routes/c%d-%d", round, i), body, "If-Match", rev).status
			}()
		}
		close(start)
		wg.Wait()
		if !((codes[0] == 200 && codes[1] == 412) || (codes[0] == 412 && codes[1] == 200)) {
			t.Fatalf("round %d: statuses %v, want one 200 and one 412", round, codes)
		}
	}
}

// TestAdminUpstreamCRUD adds, uses, replaces and deletes an upstream.
func TestAdminUpstreamCRUD(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	b2 := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "two") })).URL
	a.write(t, "PUT", "/upstreams/two", fmt.Sprintf(`{"targets": [{"url": %q, "weight": 2}], "balancer": "round_robin"}`, b2), 200)
	u := a.call(t, "GET", "/upstreams/two", "").json(t)
	if u["balancer"] != "round_robin" || u["targets"].([]any)[0].(map[string]any)["weight"] != 2.0 {
		t.Errorf("GET /upstreams/two = %v", u)
	}
	a.write(t, "PUT", "/routes/two", `{"match": {"path": "/two"}, "upstream": "two"}`, 200)
	if s, body := a.traffic(t, "/two"); s != 200 || body != "two" {
		t.Fatalf("/two = %d %q", s, body)
	}
	// Deleting an upstream a route uses is refused with 409 naming the
	// route.
	r := a.write(t, "DELETE", "/upstreams/two", "", 409)
	if got := r.json(t); got["error"] != `upstream "two" is used by route "two"; change or delete that route first` || fmt.Sprint(got["routes"]) != "[two]" {
		t.Errorf("DELETE used upstream: %s", r.body)
	}
	r = a.write(t, "PUT", "/upstreams/two", `{"targets": [{"url": "ftp://x"}]}`, 400)
	if !strings.Contains(r.body, `"pointer": "/targets/0/url"`) {
		t.Errorf("bad target: %s", r.body)
	}
	r = a.write(t, "PUT", "/upstreams/three", `{"targets": []}`, 400)
	if !strings.Contains(r.body, `"pointer": ""`) || !strings.Contains(r.body, "at least one target") {
		t.Errorf("no targets: %s", r.body)
	}
	a.write(t, "DELETE", "/routes/two", "", 200)
	a.write(t, "DELETE", "/upstreams/two", "", 200)
	a.write(t, "DELETE", "/upstreams/two", "", 404)
	if _, ok := a.RunningConfig().Upstreams["two"]; ok {
		t.Fatal("upstream two still configured")
	}
}

// TestAdminConsumerCRUD adds a consumer whose key comes from the
// environment, uses it, and removes it; no secret is ever returned.
func TestAdminConsumerCRUD(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	bobKey := admSecrets["PORTICO_TEST_ADMIN_BOB_KEY"]
	if s, _ := a.traffic(t, "/api/x", "X-API-Key", bobKey); s != 401 {
		t.Fatalf("unknown key: %d", s)
	}
	a.write(t, "PUT", "/consumers/bob", `{"groups": ["dev"], "credentials": {"key_auth": [{"key": "${PORTICO_TEST_ADMIN_BOB_KEY}"}]}}`, 200)
	if s, body := a.traffic(t, "/api/x", "X-API-Key", bobKey); s != 200 || body != "backend:/api/x" {
		t.Fatalf("bob's key: %d %q", s, body)
	}
	var all strings.Builder
	for _, p := range []string{"/consumers", "/consumers/bob", "/config"} {
		r := a.call(t, "GET", p, "")
		all.WriteString(r.body)
	}
	bob := a.call(t, "GET", "/consumers/bob", "").json(t)
	if bob["id"] != "bob" || bob["credentials"].(map[string]any)["key_auth"] != 1.0 {
		t.Errorf("bob = %v", bob)
	}
	admNoSecrets(t, "consumer responses", all.String())
	// Invalid credentials are refused with their path.
	r := a.write(t, "PUT", "/consumers/carol", `{"credentials": {"key_auth": [{"key": "short"}]}}`, 400)
	if !strings.Contains(r.body, `"pointer": "/credentials/key_auth/0/key"`) {
		t.Errorf("short key: %s", r.body)
	}
	r = a.write(t, "PUT", "/consumers/carol", `{"credentials": {"key_auth": [{"key": "${PORTICO_TEST_ADMIN_BOB_KEY}"}]}}`, 400)
	if !strings.Contains(r.body, "already assigned") {
		t.Errorf("duplicate key: %s", r.body)
	}
	admNoSecrets(t, "error responses", r.body)
	a.write(t, "DELETE", "/consumers/bob", "", 200)
	if s, _ := a.traffic(t, "/api/x", "X-API-Key", bobKey); s != 401 {
		t.Fatalf("deleted consumer's key: %d", s)
	}
	a.write(t, "DELETE", "/consumers/bob", "", 404)
}

// TestAdminPutPlugins replaces the global plugin list.
func TestAdminPutPlugins(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	a.write(t, "PUT", "/plugins", `[{"name": "headers", "config": {"response": {"set": {"X-Global": "yes"}}}}]`, 200)
	resp, err := a.c.Get(a.url + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Global") != "yes" {
		t.Fatalf("global plugin not applied: %v", resp.Header)
	}
	pl := a.call(t, "GET", "/plugins", "").json(t)
	if g := pl["global"].([]any); len(g) != 1 || g[0].(map[string]any)["name"] != "headers" {
		t.Errorf("global = %v", g)
	}
	r := a.write(t, "PUT", "/plugins", `[{"name": "nope"}]`, 400)
	if !strings.Contains(r.body, `"pointer": "/0`) {
		t.Errorf("unknown plugin: %s", r.body)
	}
	a.write(t, "PUT", "/plugins", `{"name": "headers"}`, 400)
	a.write(t, "PUT", "/plugins", `[]`, 200)
	if n := len(a.RunningConfig().Plugins); n != 0 {
		t.Fatalf("plugins = %d", n)
	}
}
