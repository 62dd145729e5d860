package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// admSecrets are the values behind the ${ENV} references of the admin test
// config; none may ever appear in an admin API response or in a file the
// API writes.
var admSecrets = map[string]string{
	"PORTICO_TEST_ADMIN_TOKEN":      "adm-token-s3cr3t-4c1d",
	"PORTICO_TEST_ADMIN_ALICE_KEY":  "alice-key-s3cr3t-9f2e",
	"PORTICO_TEST_ADMIN_ALICE_PW":   "alice-pw-s3cr3t-77aa",
	"PORTICO_TEST_ADMIN_ALICE_HMAC": "alice-hmac-s3cr3t-0123456789",
	"PORTICO_TEST_ADMIN_JWT":        "jwt-s3cr3t-0123456789abcdef0123456789abcdef",
	"PORTICO_TEST_ADMIN_REDIS_PW":   "redis-pw-s3cr3t-5b5b",
	"PORTICO_TEST_ADMIN_BOB_KEY":    "bob-key-s3cr3t-31337",
}

var admEnvOnce sync.Once

// admSetEnv sets the secrets' variables once for the whole package (tests
// stay parallel; the names are used by no other test).
func admSetEnv() {
	admEnvOnce.Do(func() {
		for k, v := range admSecrets {
			os.Setenv(k, v)
		}
	})
}

const admToken = "adm-token-s3cr3t-4c1d"

// admConfig is the test config; backend is the URL of the "api" upstream's
// target.
func admConfig(backend string) string {
	return fmt.Sprintf(`# Admin API test config.
server:
  listen: [{addr: "127.0.0.1:0"}]
admin:
  listen: "127.0.0.1:0"
  token: "${PORTICO_TEST_ADMIN_TOKEN}"
log: {access: {output: "off"}}
upstreams:
  api:
    targets:
      - url: %q
        weight: 3
routes:
  - name: hello
    match: {path: /hello}
    respond: {body: hi}
  - name: api
    match: {path_prefix: /api, methods: [GET]}
    upstream: api
    plugins:
      - name: key_auth
  - name: token
    match: {path: /token, hosts: [api.example.org]}
    respond: {body: t}
    plugins:
      - name: jwt
        config: {algorithms: [HS256], secret: "${PORTICO_TEST_ADMIN_JWT}"}
      - name: rate_limit
        config:
          backend: redis
          redis: {addr: "127.0.0.1:1", password: "${PORTICO_TEST_ADMIN_REDIS_PW}"}
          limits: [{rate: 10, per: 1s}]
consumers:
  - name: alice
    id: c-1
    groups: [staff]
    metadata: {team: core}
    credentials:
      key_auth: [{key: "${PORTICO_TEST_ADMIN_ALICE_KEY}"}]
      basic_auth: [{username: alice, password: "${PORTICO_TEST_ADMIN_ALICE_PW}"}]
      hmac_auth: [{key_id: alice-hmac, secret: "${PORTICO_TEST_ADMIN_ALICE_HMAC}"}]
plugins:
  - name: request_id
`, backend)
}

// admGateway is a gateway started from a config file, with its admin API.
type admGateway struct {
	*gateway.Gateway
	file, url, admin string
	c                *http.Client
}

// admStart writes yaml to a new temp file (unless it exists) and starts a
// gateway from it the way `portico run` does.
func admStart(t *testing.T, file, yaml string) *admGateway {
	t.Helper()
	admSetEnv()
	if yaml != "" {
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	g := testutil.NewGateway(testutil.Logger(t))
	g.ConfigFile, g.BuildVersion = file, "v-test"
	if err := g.Start(cfg); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { admStop(g) })
	a := &admGateway{Gateway: g, file: file, admin: "http://" + g.AdminAddr(), c: testutil.Client()}
	for _, addr := range g.Server.Addrs() {
		a.url = "http://" + addr
	}
	return a
}

func admStop(g *gateway.Gateway) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.Shutdown(ctx)
}

func admBackend(t *testing.T) string {
	return testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "backend:"+r.URL.Path)
	})).URL
}

// admResp is one admin API answer.
type admResp struct {
	status int
	header http.Header
	body   string
}

func (r admResp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

func (r admResp) etag() string { return strings.Trim(r.header.Get("ETag"), `"`) }

// call sends an admin request with the token; hdr adds headers ("-" as a
// value removes the Authorization header).
func (a *admGateway) call(t *testing.T, method, path, body string, hdr ...string) admResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "-" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return a.do(t, req)
}

// do sends req with the test's client and reads the whole answer.
func (a *admGateway) do(t *testing.T, req *http.Request) admResp {
	t.Helper()
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return admResp{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// write sends a write with If-Match set to the current revision, expecting
// want.
func (a *admGateway) write(t *testing.T, method, path, body string, want int) admResp {
	t.Helper()
	r := a.call(t, method, path, body, "If-Match", `"`+a.RunningConfig().Hash+`"`)
	if r.status != want {
		t.Fatalf("%s %s = %d, want %d\n%s", method, path, r.status, want, r.body)
	}
	return r
}

// traffic fetches a client path from the gateway's listener.
func (a *admGateway) traffic(t *testing.T, path string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", a.url+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r := a.do(t, req)
	return r.status, r.body
}

// admNoSecrets fails when any secret value occurs in s.
func admNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for name, v := range admSecrets {
		if strings.Contains(s, v) {
			t.Errorf("%s contains the value of %s", what, name)
		}
	}
}

// TestAdminReadEndpoints checks every read endpoint's fields, the ETag and
// that no secret appears in any response.
func TestAdminReadEndpoints(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	rev := a.RunningConfig().Hash
	if len(rev) != 64 {
		t.Fatalf("revision %q", rev)
	}
	var all strings.Builder
	get := func(path string) map[string]any {
		t.Helper()
		r := a.call(t, "GET", path, "")
		if r.status != 200 {
			t.Fatalf("GET %s = %d\n%s", path, r.status, r.body)
		}
		if r.etag() != rev {
			t.Errorf("GET %s ETag = %q, want %q", path, r.header.Get("ETag"), rev)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s Content-Type = %q", path, ct)
		}
		all.WriteString(r.body)
		return r.json(t)
	}

	cfgDoc := get("/config")
	if cfgDoc["revision"] != rev || cfgDoc["source"] != a.file {
		t.Errorf("/config revision/source = %v %v", cfgDoc["revision"], cfgDoc["source"])
	}
	c := cfgDoc["config"].(map[string]any)
	if c["admin"].(map[string]any)["token"] != "REDACTED" {
		t.Errorf("admin.token = %v", c["admin"].(map[string]any)["token"])
	}
	alice := c["consumers"].([]any)[0].(map[string]any)["credentials"].(map[string]any)
	for kind, field := range map[string]string{"key_auth": "key", "basic_auth": "password", "hmac_auth": "secret"} {
		if v := alice[kind].([]any)[0].(map[string]any)[field]; v != "REDACTED" {
			t.Errorf("consumers[0].credentials.%s[0].%s = %v, want REDACTED", kind, field, v)
		}
	}
	tokenRoute := c["routes"].([]any)[2].(map[string]any)
	plugins := tokenRoute["plugins"].([]any)
	if v := plugins[0].(map[string]any)["config"].(map[string]any)["secret"]; v != "REDACTED" {
		t.Errorf("jwt secret = %v", v)
	}
	if v := plugins[1].(map[string]any)["config"].(map[string]any)["redis"].(map[string]any)["password"]; v != "REDACTED" {
		t.Errorf("redis password = %v", v)
	}
	// Defaults are part of the running config.
	if v := c["upstreams"].(map[string]any)["api"].(map[string]any)["connect_timeout"]; v != "5s" {
		t.Errorf("upstreams.api.connect_timeout = %v", v)
	}

	routes := get("/routes")["routes"].([]any)
	if len(routes) != 3 {
		t.Fatalf("routes = %v", routes)
	}
	api := routes[1].(map[string]any)
	if api["name"] != "api" || api["upstream"] != "api" || api["match"].(map[string]any)["path_prefix"] != "/api" {
		t.Errorf("routes[1] = %v", api)
	}
	one := get("/routes/token")
	if one["name"] != "token" || one["match"].(map[string]any)["hosts"].([]any)[0] != "api.example.org" {
		t.Errorf("/routes/token = %v", one)
	}
	if r := a.call(t, "GET", "/routes/nope", ""); r.status != 404 || r.etag() != rev {
		t.Errorf("/routes/nope = %d %q", r.status, r.etag())
	}

	ups := get("/upstreams")["upstreams"].([]any)
	if len(ups) != 1 {
		t.Fatalf("upstreams = %v", ups)
	}
	u := get("/upstreams/api")
	if u["name"] != "api" || u["balancer"] != "weighted_round_robin" {
		t.Errorf("/upstreams/api = %v", u)
	}
	tg := u["targets"].([]any)[0].(map[string]any)
	for k, want := range map[string]any{"weight": 3.0, "healthy": true, "ejected": false, "available": true, "in_flight": 0.0, "ejections_total": 0.0} {
		if tg[k] != want {
			t.Errorf("target %s = %v, want %v", k, tg[k], want)
		}
	}
	if !strings.HasPrefix(tg["url"].(string), "http://127.0.0.1:") {
		t.Errorf("target url = %v", tg["url"])
	}

	cs := get("/consumers")["consumers"].([]any)
	ca := cs[0].(map[string]any)
	if ca["name"] != "alice" || ca["id"] != "c-1" || ca["groups"].([]any)[0] != "staff" || ca["metadata"].(map[string]any)["team"] != "core" {
		t.Errorf("consumer = %v", ca)
	}
	if cr := ca["credentials"].(map[string]any); cr["key_auth"] != 1.0 || cr["basic_auth"] != 1.0 || cr["hmac_auth"] != 1.0 || len(cr) != 3 {
		t.Errorf("credential counts = %v", cr)
	}
	get("/consumers/alice")

	pl := get("/plugins")
	var names []string
	for _, p := range pl["registered"].([]any) {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	for _, want := range []string{"jwt", "key_auth", "rate_limit", "acl"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("registered plugins %v lack %s", names, want)
		}
	}
	if g := pl["global"].([]any); len(g) != 1 || g[0].(map[string]any)["name"] != "request_id" {
		t.Errorf("global plugins = %v", g)
	}

	v := get("/version")
	if v["version"] != "v-test" || !strings.HasPrefix(v["go_version"].(string), "go") || v["revision"] != rev || v["config_source"] != a.file {
		t.Errorf("/version = %v", v)
	}
	if _, ok := v["uptime_seconds"].(float64); !ok {
		t.Errorf("/version uptime_seconds = %v", v["uptime_seconds"])
	}

	for _, p := range []string{"/stats", "/readyz", "/healthz", "/openapi.json", "/metrics"} {
		r := a.call(t, "GET", p, "")
		if r.status != 200 {
			t.Errorf("GET %s = %d", p, r.status)
		}
		all.WriteString(r.body)
	}
	admNoSecrets(t, "admin API responses", all.String())
}

// TestAdminAuth checks the bearer token is required everywhere except the
// health endpoints and the OpenAPI document.
func TestAdminAuth(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	for _, p := range []string{"/config", "/routes", "/routes/hello", "/upstreams", "/consumers", "/plugins", "/version", "/metrics", "/stats"} {
		for _, auth := range []string{"-", "Bearer wrong-token", "Basic " + admToken, "Bearer " + admToken + "x"} {
			r := a.call(t, "GET", p, "", "Authorization", auth)
			if r.status != 401 {
				t.Errorf("GET %s with Authorization %q = %d, want 401", p, auth, r.status)
				continue
			}
			if r.json(t)["error"] == nil || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("GET %s 401 body %s, WWW-Authenticate %q", p, r.body, r.header.Get("WWW-Authenticate"))
			}
		}
	}
	rev := `"` + a.RunningConfig().Hash + `"`
	if r := a.call(t, "PUT", "/routes/x", `{"match":{"path":"/x"},"respond":{}}`, "Authorization", "-", "If-Match", rev); r.status != 401 {
		t.Errorf("unauthenticated PUT = %d", r.status)
	}
	if r := a.call(t, "GET", "/routes/x", ""); r.status != 404 {
		t.Errorf("route created without a token: %d", r.status)
	}
	for _, p := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if r := a.call(t, "GET", p, "", "Authorization", "-"); r.status != 200 {
			t.Errorf("GET %s without a token = %d, want 200", p, r.status)
		}
	}
}

// TestAdminTokenRequiredOffLoopback checks a non-loopback admin listener
// without a token is a config error.
func TestAdminTokenRequiredOffLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen, token string
		ok            bool
	}{
		{"0.0.0.0:9901", "", false},
		{":9901", "", false},
		{"10.1.2.3:9901", "", false},
		{"0.0.0.0:9901", "t0k3n", true},
		{"127.0.0.1:9901", "", true},
		{"[::1]:9901", "", true},
		{"localhost:9901", "", true},
		{"off", "", true},
	} {
		_, err := config.Parse([]byte(fmt.Sprintf("admin: {listen: %q, token: %q}\n", tc.listen, tc.token)), "test", os.LookupEnv)
		if tc.ok != (err == nil) {
			t.Errorf("listen %q token %q: err = %v", tc.listen, tc.token, err)
		}
		if err != nil && !strings.Contains(err.Error(), "admin.token: admin.token is required when admin.listen is not a loopback address") {
			t.Errorf("listen %q: error %v", tc.listen, err)
		}
	}
}

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

// TestAdminPersistence writes through the API, restarts from the same file
// and finds the change; the file keeps its ${ENV} references and comments.
func TestAdminPersistence(t *testing.T) {
	t.Parallel()
	backend := admBackend(t)
	file := filepath.Join(t.TempDir(), "portico.yaml")
	a := admStart(t, file, admConfig(backend))
	a.write(t, "PUT", "/routes/saved", `{"match": {"path": "/saved"}, "respond": {"body": "kept"}}`, 200)
	a.write(t, "PUT", "/consumers/bob", `{"credentials": {"key_auth": [{"key": "${PORTICO_TEST_ADMIN_BOB_KEY}"}]}}`, 200)
	rev := a.RunningConfig().Hash
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	admNoSecrets(t, "the persisted file", text)
	for _, ref := range []string{"${PORTICO_TEST_ADMIN_TOKEN}", "${PORTICO_TEST_ADMIN_ALICE_KEY}", "${PORTICO_TEST_ADMIN_JWT}", "${PORTICO_TEST_ADMIN_BOB_KEY}", "# Admin API test config."} {
		if !strings.Contains(text, ref) {
			t.Errorf("persisted file lacks %q:\n%s", ref, text)
		}
	}
	if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, want 0600 kept", st.Mode().Perm())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
	admStop(a.Gateway)

	b := admStart(t, file, "")
	if b.RunningConfig().Hash != rev {
		t.Errorf("restarted revision %s, want %s", b.RunningConfig().Hash, rev)
	}
	if s, body := b.traffic(t, "/saved"); s != 200 || body != "kept" {
		t.Fatalf("after restart /saved = %d %q", s, body)
	}
	if s, _ := b.traffic(t, "/api/x", "X-API-Key", admSecrets["PORTICO_TEST_ADMIN_BOB_KEY"]); s != 200 {
		t.Fatalf("after restart bob's key: %d", s)
	}
}

// TestAdminNoPersist checks admin.persist: false leaves the file alone.
func TestAdminNoPersist(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	yaml := strings.Replace(admConfig(admBackend(t)), `token: "${PORTICO_TEST_ADMIN_TOKEN}"`, `token: "${PORTICO_TEST_ADMIN_TOKEN}"`+"\n  persist: false", 1)
	a := admStart(t, file, yaml)
	a.write(t, "PUT", "/routes/mem", `{"match": {"path": "/mem"}, "respond": {"body": "m"}}`, 200)
	if s, _ := a.traffic(t, "/mem"); s != 200 {
		t.Fatalf("/mem = %d", s)
	}
	if data, _ := os.ReadFile(file); string(data) != yaml {
		t.Fatal("file changed although persist is false")
	}
}

// TestAdminPersistFailureRollsBack makes the save fail (the temporary
// file's name is too long) and checks the change is undone.
func TestAdminPersistFailureRollsBack(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), strings.Repeat("p", 240)+".yaml")
	a := admStart(t, file, admConfig(admBackend(t)))
	rev := a.RunningConfig().Hash
	r := a.write(t, "PUT", "/routes/lost", `{"match": {"path": "/lost"}, "respond": {}}`, 500)
	if !strings.Contains(r.body, "rolled back") {
		t.Errorf("body %s", r.body)
	}
	if a.RunningConfig().Hash != rev {
		t.Fatal("config not rolled back")
	}
	if s, _ := a.traffic(t, "/lost"); s != 404 {
		t.Fatalf("/lost = %d after rollback", s)
	}
}

// TestAdminFileChangedOnDisk checks the API refuses to overwrite a file
// edited on disk that is not the running config.
func TestAdminFileChangedOnDisk(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	a := admStart(t, file, admConfig(admBackend(t)))
	edited := admConfig(admBackend(t)) + "# edited by hand\n"
	os.WriteFile(file, []byte(edited), 0o600)
	a.write(t, "PUT", "/routes/x", `{"match": {"path": "/x"}, "respond": {}}`, 409)
	if data, _ := os.ReadFile(file); string(data) != edited {
		t.Fatal("hand edit overwritten")
	}
}

// TestAdminWriteDoesNotTriggerReload checks the file watcher sees the
// API's own write as the running revision and does nothing, while a real
// edit still reloads.
func TestAdminWriteDoesNotTriggerReload(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	backend := admBackend(t)
	a := admStart(t, file, admConfig(backend))
	var reloads atomic.Int32
	rl := a.NewReloader(file)
	rl.OnResult = func(error) { reloads.Add(1) }
	// The watcher logs at debug level when it finds the running revision.
	var logs logbuf.Buffer
	rl.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	watching := make(chan struct{})
	gateway.OnWatching(rl, func() { close(watching) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rl.Watch(ctx, 50*time.Millisecond)
	<-watching
	a.write(t, "PUT", "/routes/w", `{"match": {"path": "/w"}, "respond": {"body": "w"}}`, 200)
	rev := a.RunningConfig().Hash
	wait.For(t, 5*time.Second, "the watcher to see the admin write", func() bool {
		return strings.Contains(logs.String(), "config file unchanged; nothing to reload")
	})
	if n := reloads.Load(); n != 0 {
		t.Fatalf("%d reloads after an admin write, want 0", n)
	}
	if a.RunningConfig().Hash != rev {
		t.Fatal("revision changed")
	}
	// A real edit is still applied.
	data, _ := os.ReadFile(file)
	os.WriteFile(file, append(data, []byte("# touched\n")...), 0o600)
	if !wait.Within(5*time.Second, func() bool { return reloads.Load() != 0 }) {
		t.Fatal("edit not reloaded")
	}
	if s, body := a.traffic(t, "/w"); s != 200 || body != "w" {
		t.Fatalf("/w = %d %q", s, body)
	}
}

// TestAdminConfigHistory: every applied revision is listed, oldest first.
func TestAdminConfigHistory(t *testing.T) {
	t.Parallel()
	tg := testutil.StartGateway(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
routes: [{name: a, match: {path: /a}, respond: {}}]
`)
	cfg2 := testutil.ParseConfig(t, "server: {listen: [{addr: \"127.0.0.1:0\"}]}\nadmin: {listen: \"127.0.0.1:0\"}\nlog: {access: {output: \"off\"}}\nroutes: [{name: a, match: {path: /a}, respond: {}}, {name: b, match: {path: /b}, respond: {}}]\n")
	cfg2.Server.Listen = tg.Runtime.Current().Config().Server.Listen
	if err := tg.Runtime.Apply(cfg2); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(tg.AdminURL + "/config/history")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		History []struct {
			Revision string `json:"revision"`
			Routes   int    `json:"routes"`
		} `json:"history"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.History) != 2 || body.History[0].Routes != 1 || body.History[1].Routes != 2 || body.History[1].Revision != cfg2.Hash {
		t.Fatalf("history = %+v", body.History)
	}
}
