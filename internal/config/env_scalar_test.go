package config

import (
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Issue 9 item 27.

// A quoted ${VAR} (how the README says to write one inside a flow mapping)
// decodes as the type of the field it is in.
func TestQuotedEnvDecodesAsFieldType(t *testing.T) {
	t.Parallel()
	y := `
server:
  listen: [{addr: ":8080", max_connections: "${CONNS}", h2c: '${H2C}'}]
  limits: {max_header_count: "${HDRS}", idle_timeout: "${IDLE}", max_body_bytes: "${BODY}"}
admin: {token: "${TOKEN}"}
tracing: {exporter: otlp_http, ratio: "${RATIO}", insecure: "${INSECURE}", service_name: "${SVC}"}
upstreams:
  u:
    targets: [{url: "http://127.0.0.1:9000", weight: "${W}"}]
    retry: {attempts: "${ATTEMPTS}"}
    health_check: {expected_statuses: ["${OK}", 204]}
routes:
  - {name: a, upstream: u, priority: "${PRIO:-7}"}
`
	c, err := Parse([]byte(y), "test", env(map[string]string{
		"CONNS": "50", "H2C": "false", "HDRS": "64", "IDLE": "30s", "BODY": "1MiB", "TOKEN": "12345678",
		"RATIO": "0.25", "INSECURE": "true", "SVC": "null", "W": "3", "ATTEMPTS": "0", "OK": "200",
	}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	l := c.Server.Listen[0]
	if l.MaxConnections != 50 || l.H2C == nil || *l.H2C {
		t.Errorf("listener = %+v, want max_connections 50 and h2c false", l)
	}
	lim := c.Server.Limits
	if lim.MaxHeaderCount != 64 || lim.IdleTimeout.D() != 30*time.Second || lim.MaxBodyBytes != 1<<20 {
		t.Errorf("limits = %+v", lim)
	}
	if c.Admin.Token != "12345678" {
		t.Errorf("a string field keeps its value as a string: token = %q", c.Admin.Token)
	}
	tr := c.Tracing
	if tr.Ratio == nil || *tr.Ratio != 0.25 || !tr.Insecure || tr.ServiceName != "null" {
		t.Errorf("tracing = ratio %v insecure %v service_name %q", tr.Ratio, tr.Insecure, tr.ServiceName)
	}
	u := c.Upstreams["u"]
	if u.Targets[0].Weight != 3 || u.Retry.Attempts == nil || *u.Retry.Attempts != 0 {
		t.Errorf("upstream weight %d attempts %v", u.Targets[0].Weight, u.Retry.Attempts)
	}
	if got := u.HealthCheck.ExpectedStatuses; len(got) != 2 || got[0] != 200 || got[1] != 204 {
		t.Errorf("expected_statuses = %v", got)
	}
	if c.Routes[0].Priority != 7 {
		t.Errorf("priority = %d, want the default 7", c.Routes[0].Priority)
	}
}

// Type errors name the key they are about, also when several keys share a
// line in a flow mapping, and whether the value is literal or expanded.
func TestTypeErrorsNameTheirKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, yaml string
		env        map[string]string
		want       string
	}{
		{"expanded non-integer in a flow mapping", `server: {listen: [{addr: ":8080", max_connections: "${C}"}]}`,
			map[string]string{"C": "many"}, `line 1: server.listen[0].max_connections: expected an integer, got the string "many"`},
		{"plain expanded non-integer", "server:\n  listen:\n    - addr: \":8080\"\n      max_connections: ${C}\n",
			map[string]string{"C": "many"}, `line 4: server.listen[0].max_connections: expected an integer, got the string "many"`},
		{"quoted literal integer", `server: {listen: [{addr: ":8080", max_connections: "50"}]}`,
			nil, `line 1: server.listen[0].max_connections: expected an integer, got the string "50" (remove the quotes)`},
		{"quoted literal in limits", `server: {limits: {max_body_bytes: 1MiB, max_header_count: "64"}}`,
			nil, `line 1: server.limits.max_header_count: expected an integer, got the string "64"`},
		{"expanded non-bool", `server: {listen: [{addr: ":8080", h2c: "${B}"}]}`,
			map[string]string{"B": "yes please"}, `line 1: server.listen[0].h2c: expected true or false, got the string "yes please"`},
		{"quoted literal bool", `upstreams: {u: {targets: [{url: "http://a:1"}], debug_header: "true"}}`,
			nil, `line 1: upstreams.u.debug_header: expected true or false, got the string "true"`},
		{"expanded non-number", `tracing: {exporter: none, ratio: "${R}"}`,
			map[string]string{"R": "half"}, `line 1: tracing.ratio: expected a number, got the string "half"`},
		{"expanded bad duration", `server: {limits: {max_header_count: 10, idle_timeout: "${D}"}}`,
			map[string]string{"D": "soon"}, `line 1: server.limits.idle_timeout: invalid duration: expected a duration such as 10s, 250ms or 2m, got the string "soon"`},
		{"expanded bad size", `server: {limits: {max_header_count: 10, max_body_bytes: "${S}"}}`,
			map[string]string{"S": "lots"}, `line 1: server.limits.max_body_bytes: invalid size "lots"`},
		{"integer out of range", "server:\n  listen: [{addr: \":8080\", max_connections: 99999999999999999999}]\n",
			nil, `line 2: server.listen[0].max_connections: integer 99999999999999999999 is out of range`},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), "test", env(tc.env))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err.Error(), tc.want)
			}
		})
	}
}

// An error from the YAML library itself is placed on the scalar it quotes,
// not on the first key of its line.
func TestYAMLErrorPathOnSharedLine(t *testing.T) {
	t.Parallel()
	var root yaml.Node
	src := "server: {listen: [{addr: \":8080\", max_connections: \"50\"}]}\nlong: {a: b, c: \"0123456789abc\"}\n"
	if err := yaml.Unmarshal([]byte(src), &root); err != nil {
		t.Fatal(err)
	}
	var v struct {
		Server struct {
			Listen []struct {
				Addr           string `yaml:"addr"`
				MaxConnections int    `yaml:"max_connections"`
			} `yaml:"listen"`
		} `yaml:"server"`
		Long struct {
			A string `yaml:"a"`
			C int    `yaml:"c"`
		} `yaml:"long"`
	}
	err := root.Content[0].Decode(&v)
	if err == nil {
		t.Fatal("Decode succeeded")
	}
	got := yamlErrors(root.Content[0], "", err).Error()
	for _, w := range []string{"line 1: server.listen[0].max_connections:", "line 2: long.c:"} {
		if !strings.Contains(got, w) {
			t.Errorf("errors %q do not contain %q", got, w)
		}
	}
}

// The expanded document still marshals as plain YAML (the admin API shows it).
func TestQuotedEnvMarshal(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(`admin: {token: "${T}"}`+"\n"), "test", env(map[string]string{"T": "123456789"}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(c.Root)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "!!") || !strings.Contains(string(out), `"123456789"`) {
		t.Errorf("marshalled = %s", out)
	}
}

func TestEdgeLimitSettings(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("server: {listen: [{addr: \":8080\"}]}\n"), "test", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Limits.MaxURIBytes != 8<<10 || c.Server.PathParams != "reject" {
		t.Errorf("defaults: max_uri_bytes %d, path_params %q", c.Server.Limits.MaxURIBytes, c.Server.PathParams)
	}
	c, err = Parse([]byte("server: {path_params: strip, limits: {max_uri_bytes: 16KiB}}\n"), "test", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Limits.MaxURIBytes != 16<<10 || c.Server.PathParams != "strip" {
		t.Errorf("set: max_uri_bytes %d, path_params %q", c.Server.Limits.MaxURIBytes, c.Server.PathParams)
	}
	for doc, want := range map[string]string{
		"server: {path_params: drop}\n":               "server.path_params: path_params must be reject, strip or allow",
		"server: {limits: {max_uri_bytes: 100}}\n":    "server.limits.max_uri_bytes: must be at least 256 bytes",
		"server: {limits: {max_uri_bytes: -1}}\n":     "server.limits.max_uri_bytes: must be at least 256 bytes",
		"server: {limits: {max_uri_bytes: \"1k\"}}\n": "",
	} {
		_, err := Parse([]byte(doc), "test", env(nil))
		if want == "" {
			if err != nil {
				t.Errorf("%q: %v", doc, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", doc, err, want)
		}
	}
}

// Plugin sections decode with DecodeStrict later; a quoted reference there
// decodes as the plugin field's type too, and names its own key on error.
func TestQuotedEnvInPluginConfig(t *testing.T) {
	t.Parallel()
	y := "routes:\n  - name: a\n    respond: {}\n    plugins: [{name: p, config: {burst: \"${N}\", on: \"${B}\", window: \"${W}\"}}]\n"
	c, err := Parse([]byte(y), "test", env(map[string]string{"N": "20", "B": "true", "W": "5s"}))
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		Burst  int      `yaml:"burst"`
		On     bool     `yaml:"on"`
		Window Duration `yaml:"window"`
	}
	spec := c.Routes[0].Plugins[0]
	if err := DecodeStrict(&spec.Config, &pc, spec.Path+".config"); err != nil {
		t.Fatal(err)
	}
	if pc.Burst != 20 || !pc.On || pc.Window.D() != 5*time.Second {
		t.Errorf("plugin config = %+v", pc)
	}
	c, err = Parse([]byte(y), "test", env(map[string]string{"N": "lots", "B": "true", "W": "5s"}))
	if err != nil {
		t.Fatal(err)
	}
	spec = c.Routes[0].Plugins[0]
	err = DecodeStrict(&spec.Config, &pc, spec.Path+".config")
	if err == nil || !strings.Contains(err.Error(), `routes[0].plugins[0].config.burst: expected an integer, got the string "lots"`) {
		t.Errorf("error = %v", err)
	}
}
