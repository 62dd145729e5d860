package gateway_test

import (
	"errors"
	"log/slog"
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
		`line 32: plugins[0].config.allow_origins: expected a list, got the integer 5`,
		`line 36: consumers[0].credentials.basic_auth[0].password_hash: consumer "alice": malformed bcrypt hash: it has 15 characters, a bcrypt hash has 60`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
