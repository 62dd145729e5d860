package gateway_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// e2eReloadFailures reads g's portico_config_reloads_total{result="failure"}.
func e2eReloadFailures(t *testing.T, g *gateway.Gateway) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	g.Metrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, `portico_config_reloads_total{result="failure"} `); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

func e2eReloadYAML(extraListen, routeExtra string) string {
	return `
server:
  listen: [{addr: "127.0.0.1:0"}` + extraListen + `]
admin: {listen: "127.0.0.1:0"}
log: {access: {output: "off"}}
routes:
  - name: hello
    match: {path: /hello}
    respond: {body: hi}
` + routeExtra
}

// TestE2EEveryFailedReloadIsCountedAndLogged: a reload that fails at any
// stage — reading the file, YAML, validation, plugin build, listener bind —
// and an admin API write that fails to load or build each add one to
// portico_config_reloads_total{result="failure"}, log one structured line
// and leave the running config in force. Not parallel: the metric is
// process-wide.
func TestE2EEveryFailedReloadIsCountedAndLogged(t *testing.T) {
	file := filepath.Join(t.TempDir(), "portico.yaml")
	if err := os.WriteFile(file, []byte(e2eReloadYAML("", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	g := testutil.NewGateway(slog.New(slog.NewJSONHandler(logs, nil)))
	g.ConfigFile = file
	if err := g.Start(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admStop(g) })
	rl := g.NewReloader(file)
	running := g.RunningConfig().Hash

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	check := func(what, wantMsg, wantStage string) {
		t.Helper()
		if got := g.RunningConfig().Hash; got != running {
			t.Fatalf("%s: the running config changed", what)
		}
		var found bool
		for _, l := range logs.Take(t) {
			if l["msg"] == wantMsg {
				found = true
				if l["level"] != "ERROR" && l["level"] != "WARN" {
					t.Errorf("%s: logged at %v", what, l["level"])
				}
				if l["stage"] != wantStage || l["errors"] == nil {
					t.Errorf("%s: log line %v, want stage %s", what, l, wantStage)
				}
			}
		}
		if !found {
			t.Errorf("%s: no %q log line", what, wantMsg)
		}
	}

	fileCases := []struct{ name, yaml, stage string }{
		{"unreadable file", "", "read"},
		{"YAML syntax", "routes: [\n  - {name: x", "config"},
		{"unknown field", e2eReloadYAML("", "    bogus: 1\n"), "config"},
		{"validation", e2eReloadYAML("", "  - {name: up, match: {path: /up}, upstream: nope}\n"), "config"},
		{"unknown plugin", e2eReloadYAML("", "    plugins: [{name: no_such_plugin}]\n"), "apply"},
		{"plugin config", e2eReloadYAML("", "    plugins: [{name: headers, config: {request: {set: {\"bad name\": x}}}}]\n"), "apply"},
		{"listener bind", e2eReloadYAML(`, {addr: "`+busy.Addr().String()+`"}`, ""), "apply"},
	}
	for _, tc := range fileCases {
		before := e2eReloadFailures(t, g)
		if tc.yaml == "" {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := rl.Reload(); err == nil {
			t.Fatalf("%s: reload accepted", tc.name)
		}
		if d := e2eReloadFailures(t, g) - before; d != 1 {
			t.Errorf("%s: failure counter +%v, want +1", tc.name, d)
		}
		check(tc.name, "config reload rejected; keeping the running config", tc.stage)
	}

	// Admin API writes whose result does not load or build.
	if err := os.WriteFile(file, []byte(e2eReloadYAML("", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := "http://" + g.AdminAddr()
	for _, tc := range []struct{ name, body, stage string }{
		{"admin: validation", `{"match":{"path":"/x"},"upstream":"nope"}`, "config"},
		{"admin: unknown field", `{"match":{"path":"/x"},"respond":{},"bogus":1}`, "config"},
		{"admin: plugin build", `{"match":{"path":"/x"},"respond":{},"plugins":[{"name":"no_such_plugin"}]}`, "apply"},
	} {
		before := e2eReloadFailures(t, g)
		req, _ := http.NewRequest("PUT", admin+"/routes/x", strings.NewReader(tc.body))
		req.Header.Set("If-Match", `"`+running+`"`)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
		if d := e2eReloadFailures(t, g) - before; d != 1 {
			t.Errorf("%s: failure counter +%v, want +1", tc.name, d)
		}
		check(tc.name, "admin: config change rejected; keeping the running config", tc.stage)
	}

	// A good reload still counts as a success and changes nothing else.
	before := e2eReloadFailures(t, g)
	if err := os.WriteFile(file, []byte(e2eReloadYAML("", "  - {name: more, match: {path: /more}, respond: {}}\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := e2eReloadFailures(t, g) - before; d != 0 {
		t.Errorf("good reload: failure counter +%v", d)
	}
}
