package gateway_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
)

// validateAll runs the one-pass check `portico validate` runs: decode and
// validate what decodes (config.ParseAll), then build the intact parts.
func validateAll(t *testing.T, yml string) []string {
	t.Helper()
	cfg, err := config.ParseAll([]byte(yml), "test.yaml", func(string) (string, bool) { return "", false })
	if cfg != nil {
		err = gateway.NewRuntime(slog.New(slog.DiscardHandler)).Validate(cfg)
	}
	if err == nil {
		return nil
	}
	var es config.Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is not config.Errors: %v", err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Error()
	}
	return out
}

// sevenMistakes has independent mistakes of all three stages: decode
// (wrong types), validation (ranges, references, URL syntax) and build
// (plugins, route table, credentials), plus follow-on traps: a route on a
// broken upstream, and a global plugin that lands on three routes.
const sevenMistakes = `server:
  listen:
    - addr: ":99999"
    - addr: ":8443"
      max_connections: "200"
upstreams:
  api:
    targets: [{url: 127.0.0.1:9001}]
    health_check: {interval: 2s, timeout: 3s}
  users:
    targets: [{url: "http://127.0.0.1:9002"}]
    connect_timeout: [1s]
routes:
  - name: a
    match: {path: /a}
    upstream: users
  - name: b
    match: {path: "/x/{id}/{id}"}
    respond: {status: 200}
    plugins:
      - name: headers
        config: {request: {sett: {A: b}}}
  - name: c
    match: {path: /c, methods: [get]}
    timeout: {seconds: 3}
    respond: {}
  - name: d
    match: {path: /d, methods: [get]}
    respond: {}
  - name: e
    match: {path: "/e/{id}/{id}"}
    upstream: nowhere
plugins:
  - name: cors
    config: {allow_origins: 5}
consumers:
  - name: alice
    credentials:
      basic_auth: [{username: alice, password_hash: "$2b$12$tooshort"}]
`

func TestValidateOnePassReportsEveryMistakeOnce(t *testing.T) {
	t.Parallel()
	got := validateAll(t, sevenMistakes)
	want := []string{
		`line 3: server.listen[0].addr: listen address ":99999": port 99999 is out of range (1 to 65535)`,
		`line 5: server.listen[1].max_connections: expected an integer, got the string "200" (remove the quotes)`,
		`line 8: upstreams.api.targets[0].url: target URL "127.0.0.1:9001" is missing its scheme: write "http://127.0.0.1:9001" (or https://)`,
		`line 9: upstreams.api.health_check.timeout: timeout 3s must be shorter than interval 2s: lower timeout or raise interval`,
		`line 12: upstreams.users.connect_timeout: expected a duration such as 10s, 250ms or 2m, got a list`,
		`line 18: routes[1].match: path "/x/{id}/{id}": duplicate parameter name "id"`,
		`line 22: routes[1].plugins[0].config.request.sett: unknown field "sett" (known: add, remove, rename, set)`,
		`line 25: routes[2].timeout: expected a duration such as 10s, 250ms or 2m, got a mapping`,
		`line 28: routes[3].match.methods[0]: method "get" must be an upper-case token such as GET`,
		`line 31: routes[4].match: path "/e/{id}/{id}": duplicate parameter name "id"`,
		`line 32: routes[4].upstream: upstream "nowhere" is not defined (defined: api, users)`,
		`line 35: plugins[0].config.allow_origins: expected a list, got the integer 5`,
		`line 39: consumers[0].credentials.basic_auth[0].password_hash: consumer "alice": malformed bcrypt hash: it has 15 characters, a bcrypt hash has 60`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestValidateChecksFiles checks that validate reads every file run would:
// listener certificates and keys (and that they are a pair), client CA
// files, and upstream CA and client certificate files, reporting each bad
// file at its own field in one run.
func TestValidateChecksFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA, _ := e2eSelfSigned(t, dir, "a", "a.example")
	_, keyB, _ := e2eSelfSigned(t, dir, "b", "b.example")
	missing := filepath.Join(dir, "missing.pem")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := `server:
  listen:
    - addr: "127.0.0.1:0"
      tls:
        certificates:
          - {cert_file: "` + certA + `", key_file: "` + keyA + `"}
          - {cert_file: "` + certA + `", key_file: "` + keyB + `"}
          - {cert_file: "` + missing + `", key_file: "` + keyA + `"}
        client_ca_file: "` + notPEM + `"
upstreams:
  u:
    targets: [{url: "https://127.0.0.1:9443"}]
    tls: {ca_file: "` + missing + `"}
  v:
    targets: [{url: "https://127.0.0.1:9443"}]
    tls: {cert_file: "` + certA + `", key_file: "` + keyB + `"}
routes:
  - {name: a, match: {path: /a}, respond: {}}
`
	got := strings.Join(validateAll(t, yml), "\n")
	for _, want := range []string{
		`line 7: server.listen[0].tls.certificates[1].key_file: the key in ` + keyB + ` does not belong to the certificate in ` + certA,
		`line 8: server.listen[0].tls.certificates[2].cert_file: cannot read: open ` + missing + `: no such file or directory`,
		`line 9: server.listen[0].tls.client_ca_file: ` + notPEM + ` holds no PEM certificate`,
		`line 13: upstreams.u.tls.ca_file: open ` + missing + `: no such file or directory`,
		`line 16: upstreams.v.tls.cert_file: key pair ` + certA + ` / ` + keyB + `: private key does not match public key`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 5 {
		t.Errorf("%d errors, want 5:\n%s", n, got)
	}
}

// TestValidateHealthCheckDefaults checks that a health-check interval or
// timeout set alone never contradicts the default of the other, and that
// an explicit contradiction names the field to change.
func TestValidateHealthCheckDefaults(t *testing.T) {
	t.Parallel()
	base := "upstreams:\n  u:\n    targets: [{url: \"http://127.0.0.1:9\"}]\n    health_check: "
	for _, hc := range []string{"{interval: 1s}", "{timeout: 10s}", "{interval: 300ms, timeout: 100ms}", "{type: tcp}"} {
		if errs := validateAll(t, base+hc+"\n"); errs != nil {
			t.Errorf("%s: %v", hc, errs)
		}
	}
	got := validateAll(t, base+"{interval: 1s, timeout: 1s}\n")
	want := `line 4: upstreams.u.health_check.timeout: timeout 1s must be shorter than interval 1s: lower timeout or raise interval`
	if len(got) != 1 || got[0] != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestValidateListenPorts checks the port of every listen address.
func TestValidateListenPorts(t *testing.T) {
	t.Parallel()
	got := strings.Join(validateAll(t, `server:
  listen:
    - addr: ":99999"
    - addr: "127.0.0.1:-1"
    - addr: "127.0.0.1:http"
    - addr: "127.0.0.1:0"
admin: {listen: "127.0.0.1:70000"}
tracing: {exporter: otlp_http, endpoint: "collector:0"}
upstreams:
  u: {targets: [{url: "http://127.0.0.1:65536"}]}
`), "\n")
	want := strings.Join([]string{
		`line 3: server.listen[0].addr: listen address ":99999": port 99999 is out of range (1 to 65535)`,
		`line 4: server.listen[1].addr: listen address "127.0.0.1:-1": port "-1" must be a number from 1 to 65535`,
		`line 5: server.listen[2].addr: listen address "127.0.0.1:http": port "http" must be a number from 1 to 65535`,
		`line 7: admin.listen: listen address "127.0.0.1:70000": port 70000 is out of range (1 to 65535)`,
		`line 8: tracing.endpoint: endpoint "collector:0": port 0 is not a port to connect to (use 1 to 65535)`,
		`line 10: upstreams.u.targets[0].url: target URL "http://127.0.0.1:65536": port 65536 is out of range (1 to 65535)`,
	}, "\n")
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestValidatePluginCustomDecoder checks a plugin that decodes its config
// itself (jwt) reports each error at its own path and line.
func TestValidatePluginCustomDecoder(t *testing.T) {
	t.Parallel()
	got := strings.Join(validateAll(t, `routes:
  - name: a
    match: {path: /a}
    respond: {}
    plugins:
      - name: jwt
        config:
          secret: "0123456789abcdef0123456789abcdef"
          algorithms: HS256
          leeway: soon
`), "\n")
	want := `line 9: routes[0].plugins[0].config.algorithms: expected a list, got the string "HS256"
line 10: routes[0].plugins[0].config.leeway: invalid duration: expected a duration such as 10s, 250ms or 2m, got the string "soon"`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestReloadReportsEveryMistake checks a reload rejects a file with the
// same one-pass list validate prints, and keeps the running config.
func TestReloadReportsEveryMistake(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	good := "routes:\n  - {name: a, match: {path: /a}, respond: {}}\n"
	if err := os.WriteFile(file, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := gateway.NewRuntime(slog.New(slog.DiscardHandler))
	defer rt.Close()
	rl := &gateway.Reloader{Path: file, Runtime: rt, Logger: slog.New(slog.DiscardHandler)}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	bad := `routes:
  - {name: a, match: {path: /a}, respond: {status: "200"}}
  - {name: b, match: {path: /b}, respond: {}, plugins: [{name: cors, config: {allow_origins: 5}}]}
`
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	err := rl.Reload()
	want := `line 2: routes[0].respond.status: expected an integer, got the string "200" (remove the quotes)
line 3: routes[1].plugins[0].config.allow_origins: expected a list, got the integer 5`
	if err == nil || err.Error() != want {
		t.Errorf("reload error:\n%v\nwant:\n%s", err, want)
	}
	if rt.Current() == nil || rt.Current().Config().Routes[0].Respond.Status != 200 {
		t.Error("running config not kept")
	}
}

// TestValidateBrokenShapesDoNotCrash builds configs whose parts failed to
// decode in every way (left zero or nil) and checks the build skips them
// and reports errors instead of crashing.
func TestValidateBrokenShapesDoNotCrash(t *testing.T) {
	t.Parallel()
	for _, yml := range []string{
		"routes: [5, {name: a, respond: 5}, {name: b, upstream: [u]}, {name: c, rewrite: 5, upstream: u, match: {path_prefix: /c}}]\nupstreams: {u: {targets: [{url: \"http://127.0.0.1:9\"}]}}\n",
		"routes: [{name: a, match: {path: /a}, upstream: u}]\nupstreams: [u]\n",
		"routes: [{name: a, match: {path: /a}, upstream: u}]\nupstreams: {u: 5}\n",
		"routes: [{name: a, match: {path: /a}, upstream: u}]\nupstreams: {u: {targets: 5, retry: 5, outlier_detection: 5, health_check: 5, tls: 5}}\n",
		"routes: [{name: a, match: {path: /a}, respond: {}, plugins: [5, {name: [x]}, {name: cors, config: 5}]}]\nplugins: [5, {name: {a: b}}]\n",
		"server: {listen: [5, {addr: [1]}, {addr: \":0\", tls: 5}], limits: 5, trusted_proxies: 5}\nadmin: 5\nlog: 5\ntracing: {ratio: [1], exporter: [x]}\n",
		"consumers: [5, {name: [a]}, {name: b, credentials: 5}, {name: c, credentials: {basic_auth: [5, {username: [u]}]}}]\n",
		"server: {path_params: [x]}\nroutes: {a: 1}\n",
	} {
		if errs := validateAll(t, yml); len(errs) == 0 {
			t.Errorf("accepted:\n%s", yml)
		}
	}
}
