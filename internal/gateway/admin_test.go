package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
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
	rd := &admReader{t: t, a: a, rev: rev}
	admReadConfig(t, rd)
	admReadRoutes(t, rd)
	admReadUpstreams(t, rd)
	admReadConsumers(t, rd)
	admReadPlugins(t, rd)
	admReadVersion(t, rd)

	for _, p := range []string{"/stats", "/readyz", "/healthz", "/openapi.json", "/metrics"} {
		r := a.call(t, "GET", p, "")
		if r.status != 200 {
			t.Errorf("GET %s = %d", p, r.status)
		}
		rd.all.WriteString(r.body)
	}
	admNoSecrets(t, "admin API responses", rd.all.String())
}

// admReader GETs admin API documents of one running revision, checking
// the headers every answer shares, and keeps every body read for the
// secrets check.
type admReader struct {
	t   *testing.T
	a   *admGateway
	rev string
	all strings.Builder
}

// get GETs path and returns its JSON document.
func (rd *admReader) get(path string) map[string]any {
	t := rd.t
	t.Helper()
	r := rd.a.call(t, "GET", path, "")
	if r.status != 200 {
		t.Fatalf("GET %s = %d\n%s", path, r.status, r.body)
	}
	if r.etag() != rd.rev {
		t.Errorf("GET %s ETag = %q, want %q", path, r.header.Get("ETag"), rd.rev)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s Content-Type = %q", path, ct)
	}
	rd.all.WriteString(r.body)
	return r.json(t)
}

// admReadConfig checks /config: the running config with its defaults and
// its secrets redacted.
func admReadConfig(t *testing.T, rd *admReader) {
	cfgDoc := rd.get("/config")
	if cfgDoc["revision"] != rd.rev || cfgDoc["source"] != rd.a.file {
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
}

// admReadRoutes checks /routes and /routes/{name}.
func admReadRoutes(t *testing.T, rd *admReader) {
	routes := rd.get("/routes")["routes"].([]any)
	if len(routes) != 3 {
		t.Fatalf("routes = %v", routes)
	}
	api := routes[1].(map[string]any)
	if api["name"] != "api" || api["upstream"] != "api" || api["match"].(map[string]any)["path_prefix"] != "/api" {
		t.Errorf("routes[1] = %v", api)
	}
	one := rd.get("/routes/token")
	if one["name"] != "token" || one["match"].(map[string]any)["hosts"].([]any)[0] != "api.example.org" {
		t.Errorf("/routes/token = %v", one)
	}
	if r := rd.a.call(t, "GET", "/routes/nope", ""); r.status != 404 || r.etag() != rd.rev {
		t.Errorf("/routes/nope = %d %q", r.status, r.etag())
	}
}

// admReadUpstreams checks /upstreams and /upstreams/{name} with target state.
func admReadUpstreams(t *testing.T, rd *admReader) {
	ups := rd.get("/upstreams")["upstreams"].([]any)
	if len(ups) != 1 {
		t.Fatalf("upstreams = %v", ups)
	}
	u := rd.get("/upstreams/api")
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
}

// admReadConsumers checks /consumers and /consumers/{name}: credential
// counts, never credentials.
func admReadConsumers(t *testing.T, rd *admReader) {
	cs := rd.get("/consumers")["consumers"].([]any)
	ca := cs[0].(map[string]any)
	if ca["name"] != "alice" || ca["id"] != "c-1" || ca["groups"].([]any)[0] != "staff" || ca["metadata"].(map[string]any)["team"] != "core" {
		t.Errorf("consumer = %v", ca)
	}
	if cr := ca["credentials"].(map[string]any); cr["key_auth"] != 1.0 || cr["basic_auth"] != 1.0 || cr["hmac_auth"] != 1.0 || len(cr) != 3 {
		t.Errorf("credential counts = %v", cr)
	}
	rd.get("/consumers/alice")
}

// admReadPlugins checks /plugins: the registered and the global plugins.
func admReadPlugins(t *testing.T, rd *admReader) {
	pl := rd.get("/plugins")
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
}

// admReadVersion checks /version.
func admReadVersion(t *testing.T, rd *admReader) {
	v := rd.get("/version")
	if v["version"] != "v-test" || !strings.HasPrefix(v["go_version"].(string), "go") || v["revision"] != rd.rev || v["config_source"] != rd.a.file {
		t.Errorf("/version = %v", v)
	}
	if _, ok := v["uptime_seconds"].(float64); !ok {
		t.Errorf("/version uptime_seconds = %v", v["uptime_seconds"])
	}
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
