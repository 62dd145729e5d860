package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// cliGateway starts an in-process gateway with a token-protected admin API.
func cliGateway(t *testing.T) *testutil.Gateway {
	t.Helper()
	backend := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	return testutil.StartGateway(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "127.0.0.1:0", token: cli-t0k3n}
log: {access: {output: "off"}}
upstreams:
  api:
    targets:
      - {url: "`+backend.URL+`", weight: 5}
      - {url: "http://127.0.0.1:1"}
routes:
  - name: hello
    match: {path: /hello}
    respond: {status: 201}
  - name: api
    match: {path_prefix: /api, hosts: [api.example.org, "*.example.net"], methods: [GET, POST]}
    upstream: api
    plugins: [{name: request_id}, {name: cors, config: {allow_origins: ["*"]}}]
  - name: old
    match: {path_regex: "^/old/.*"}
    redirect: {url: "https://example.org/new", status: 301}
`)
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCLIRoutes checks `portico routes` prints the route table.
func TestCLIRoutes(t *testing.T) {
	g := cliGateway(t)
	code, out, errs := runCLI("routes", "--admin", g.AdminURL, "--token", "cli-t0k3n")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("output:\n%s", out)
	}
	want := [][]string{
		{"NAME", "HOSTS", "PATH", "METHODS", "ACTION", "PLUGINS"},
		{"hello", "*", "/hello", "*", "respond 201", "-"},
		{"api", "api.example.org,*.example.net", "prefix /api", "GET,POST", "upstream api", "request_id,cors"},
		{"old", "*", "regex ^/old/.*", "*", "redirect 301 https://example.org/new", "-"},
	}
	for i, w := range want {
		got := strings.Join(strings.Fields(lines[i]), " ")
		if got != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want %q", i, got, strings.Join(w, " "))
		}
	}
	// Columns are aligned: every line has the PATH column at the same offset.
	col := strings.Index(lines[0], "PATH")
	if !strings.HasPrefix(lines[2][col:], "prefix /api") {
		t.Errorf("columns not aligned:\n%s", out)
	}
}

// TestCLIUpstreams checks `portico upstreams` prints target health, with
// the token from the environment and an address without a scheme.
func TestCLIUpstreams(t *testing.T) {
	g := cliGateway(t)
	t.Setenv("PORTICO_ADMIN_TOKEN", "cli-t0k3n")
	code, out, errs := runCLI("upstreams", "--admin", strings.TrimPrefix(g.AdminURL, "http://"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "UPSTREAM TARGET WEIGHT STATE IN-FLIGHT" {
		t.Errorf("header = %q", lines[0])
	}
	f := strings.Fields(lines[1])
	if len(f) != 5 || f[0] != "api" || !strings.HasPrefix(f[1], "http://127.0.0.1:") || f[2] != "5" || f[3] != "healthy" || f[4] != "0" {
		t.Errorf("row 1 = %q", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) != 5 || f[1] != "http://127.0.0.1:1" || f[2] != "1" {
		t.Errorf("row 2 = %q", lines[2])
	}
}

// TestCLIAdminErrors checks a wrong token and an unreachable admin
// listener fail with a message and exit 1.
func TestCLIAdminErrors(t *testing.T) {
	g := cliGateway(t)
	t.Setenv("PORTICO_ADMIN_TOKEN", "")
	code, _, errs := runCLI("routes", "--admin", g.AdminURL, "--token", "wrong")
	if code != 1 || !strings.Contains(errs, "unauthorized") || !strings.Contains(errs, "401") {
		t.Errorf("wrong token: exit %d, stderr %q", code, errs)
	}
	code, _, errs = runCLI("upstreams", "--admin", "http://127.0.0.1:1")
	if code != 1 || !strings.Contains(errs, "upstreams:") {
		t.Errorf("unreachable: exit %d, stderr %q", code, errs)
	}
	if code, _, _ := runCLI("routes", "--bogus"); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
}

// TestRunPersistsAdminChanges runs the binary from a file, adds a route
// through the admin API, restarts and finds the route served; the file
// keeps its ${ENV} reference.
func TestRunPersistsAdminChanges(t *testing.T) {
	addr, adminAddr := freePort(t), freePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.yaml")
	os.WriteFile(file, []byte(fmt.Sprintf(`server: {listen: [{addr: %q}], shutdown_grace: 1s}
admin: {listen: %q, token: "${PORTICO_TEST_CLI_TOKEN}"}
log: {access: {output: "off"}}
routes:
  - {name: a, match: {path: /a}, respond: {body: a}}
`, addr, adminAddr)), 0o644)
	t.Setenv("PORTICO_TEST_CLI_TOKEN", "run-t0k3n")
	start := func() *proc {
		p := startPortico(t, dir, "run", "--config", file)
		p.waitLog(t, "portico started")
		return p
	}
	p := start()
	adminURL := "http://" + adminAddr
	req, _ := http.NewRequest("GET", adminURL+"/version", nil)
	req.Header.Set("Authorization", "Bearer run-t0k3n")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if v["config_source"] != file || v["version"] == "" {
		t.Fatalf("/version = %v", v)
	}
	req, _ = http.NewRequest("PUT", adminURL+"/routes/b", strings.NewReader(`{"match": {"path": "/b"}, "respond": {"body": "b"}}`))
	req.Header.Set("Authorization", "Bearer run-t0k3n")
	req.Header.Set("If-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT = %d", resp.StatusCode)
	}
	if code, body := httpGet(t, "http://"+addr+"/b"); code != 200 || body != "b" {
		t.Fatalf("/b = %d %q", code, body)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	data, _ := os.ReadFile(file)
	if !strings.Contains(string(data), "${PORTICO_TEST_CLI_TOKEN}") || strings.Contains(string(data), "run-t0k3n") || !strings.Contains(string(data), "name: b") {
		t.Fatalf("saved file:\n%s", data)
	}
	start()
	if code, body := httpGet(t, "http://"+addr+"/b"); code != 200 || body != "b" {
		t.Fatalf("after restart /b = %d %q", code, body)
	}
}
