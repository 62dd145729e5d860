package gateway_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil/logbuf"
)

// oidcCoverageValidate validates a config with the given routes (and
// optional global plugins) the way `portico validate` does.
func oidcCoverageValidate(t *testing.T, body string) error {
	t.Helper()
	src := "server: {listen: [{addr: \"127.0.0.1:0\"}]}\nupstreams: {app: {targets: [{url: \"http://127.0.0.1:1\"}]}}\n" + body
	cfg, err := config.Parse([]byte(src), "test", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	return gateway.NewRuntime(slog.New(slog.NewTextHandler(io.Discard, nil))).Validate(cfg)
}

// oidcLogin is an oidc_login plugin entry with extra config keys; the
// issuer refuses connections, so discovery fails fast and is retried later.
func oidcLogin(extra string) string {
	return `
      - name: oidc_login
        config: {issuer: "http://127.0.0.1:1", client_id: portico, cookie_secret: "0123456789abcdef0123456789abcdef-cov"` + extra + `}
`
}

// oidcApp is a config whose route "app", on path_prefix prefix, runs an
// oidc_login with extra settings; more routes may follow.
func oidcApp(prefix, extra string) string {
	return "\nroutes:\n  - name: app\n    match: {path_prefix: " + prefix + "}\n    upstream: app\n    plugins:" + oidcLogin(extra)
}

// oidcGlobalAppHome is a config with a global oidc_login and routes "app"
// (/app) and "home" (/, a catch-all that gets the callback).
func oidcGlobalAppHome() string {
	return "\nplugins:" + oidcLogin("") + "routes:\n  - name: app\n    match: {path_prefix: /app}\n    upstream: app\n" +
		"  - name: home\n    match: {path_prefix: /}\n    upstream: app\n"
}

// TestOIDCLoginCallbackCoverage: validate refuses an oidc_login whose
// callback (redirect_path, or redirect_url's host and path) the route does
// not receive — not matched, won by another route, or on another host —
// with an error naming the route, its match and what to do; and accepts
// the callback when the route, or a route running the same login, gets it.
func TestOIDCLoginCallbackCoverage(t *testing.T) {
	// Table test: its length is the table of cases.
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error; none means valid
	}{
		{"prefix route, default path", oidcApp("/app", ""),
			[]string{`routes[0].plugins[0].config`, `redirect_path "/oauth2/callback" is not matched by route "app" (match: path_prefix /app): use a path under /app, e.g. "/app/oauth2/callback", or add a route for it`}},
		{"prefix route, path under it", oidcApp("/app", ", redirect_path: /app/oauth2/callback"), nil},
		{"shadowed by a longer prefix", oidcApp("/app", ", redirect_path: /app/oauth2/callback") + `
  - name: static
    match: {path_prefix: /app/oauth2}
    upstream: app
`, []string{`redirect_path "/app/oauth2/callback" is matched by route "static", which wins over route "app" (match: path_prefix /app)`,
			`give route "static" an oidc_login with the same issuer`}},
		{"shadowed by an exact path", oidcApp("/", "") + `
  - name: cb
    match: {path: /oauth2/callback}
    respond: {status: 204}
`, []string{`is matched by route "cb", which wins over route "app" (match: path_prefix /)`}},
		{"won by a route with a different login", oidcApp("/", "") + `
  - name: cb
    match: {path: /oauth2/callback}
    upstream: app
    plugins:` + oidcLogin(", client_id: other"),
			[]string{`is matched by route "cb"`}},
		{"won by a route with the same login", oidcApp("/app", "") + `
  - name: home
    match: {path_prefix: /}
    upstream: app
    plugins:` + oidcLogin(""), nil},
		{"global login, a catch-all route gets the callback", oidcGlobalAppHome(), nil},
		{"global login, no route gets the callback", `
plugins:` + oidcLogin("") + `
routes:
  - name: api
    match: {path_prefix: /api}
    upstream: app
  - name: app
    match: {path_prefix: /app}
    upstream: app
`, []string{`is not matched by route "api" (match: path_prefix /api)`, `is not matched by route "app" (match: path_prefix /app)`}},
		{"method-restricted route", `
routes:
  - name: app
    match: {path_prefix: /, methods: [POST]}
    upstream: app
    plugins:` + oidcLogin(""),
			[]string{`is not matched by route "app" (match: path_prefix /, methods [POST])`}},
		{"exact-path route", `
routes:
  - name: app
    match: {path: /app}
    upstream: app
    plugins:` + oidcLogin(""),
			[]string{`is not matched by route "app" (match: path /app): use a path this route matches, or add a route for it`}},
		{"route hosts, covered on every host", `
routes:
  - name: app
    match: {hosts: [a.example.com, "*.b.example.com"]}
    upstream: app
    plugins:` + oidcLogin(""), nil},
		{"route hosts, one host's callback won by a host route", `
routes:
  - name: app
    match: {hosts: [a.example.com, b.example.com]}
    upstream: app
    plugins:` + oidcLogin("") + `
  - name: b-callback
    match: {hosts: [b.example.com], path: /oauth2/callback}
    respond: {status: 204}
`, []string{`redirect_path "/oauth2/callback" on host b.example.com is matched by route "b-callback", which wins over route "app" (match: hosts [a.example.com b.example.com])`}},
		{"redirect_url on another host", `
routes:
  - name: app
    match: {hosts: [app.example.com]}
    upstream: app
    plugins:` + oidcLogin(`, redirect_url: "https://login.example.com/oauth2/callback"`),
			[]string{`redirect_url "https://login.example.com/oauth2/callback" is on host login.example.com, which route "app" (match: hosts [app.example.com]) does not serve`}},
		{"redirect_url on a wildcard host", `
routes:
  - name: app
    match: {hosts: ["*.example.com"]}
    upstream: app
    plugins:` + oidcLogin(`, redirect_url: "https://App.Example.com:8443/oauth2/callback"`), nil},
		{"redirect_url on the wildcard's parent", `
routes:
  - name: app
    match: {hosts: ["*.example.com"]}
    upstream: app
    plugins:` + oidcLogin(`, redirect_url: "https://example.com/oauth2/callback"`),
			[]string{`is on host example.com, which route "app" (match: hosts [*.example.com]) does not serve`}},
		{"redirect_url path outside the route", `
routes:
  - name: app
    match: {hosts: [app.example.com], path_prefix: /app}
    upstream: app
    plugins:` + oidcLogin(`, redirect_url: "https://app.example.com/oauth2/callback"`),
			[]string{`redirect_url "https://app.example.com/oauth2/callback" is not matched by route "app" (match: hosts [app.example.com], path_prefix /app): use a path under /app, e.g. "https://app.example.com/app/oauth2/callback", or add a route for it`}},
		{"redirect_url host won by a host route", oidcApp("/", `, redirect_url: "https://login.example.com/oauth2/callback"`) + `
  - name: login
    match: {hosts: [login.example.com]}
    upstream: app
`, []string{`is matched by route "login", which wins over route "app"`}},
		{"redirect_path not in normal form", oidcApp("/", ", redirect_path: /oauth2/./callback"),
			[]string{`redirect_path "/oauth2/./callback": the path is not in normal form (requests for it are routed and compared as "/oauth2/callback")`}},
		{"header-conditioned route", `
routes:
  - name: app
    match: {path_prefix: /, headers: {X-Tenant: blue}}
    upstream: app
    plugins:` + oidcLogin(""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := oidcCoverageValidate(t, tc.yaml)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want an error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestOIDCLoginLogoutPathWarning: a logout_path the route does not receive
// is not an error, but every load says so in a WARN line; a logout_path
// under the route, or handled by a route with the same login, is silent.
func TestOIDCLoginLogoutPathWarning(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, yaml string
		warn       bool
	}{
		{"logout outside the route", oidcApp("/app", ", redirect_path: /app/oauth2/callback"), true},
		{"logout under the route", oidcApp("/app", ", redirect_path: /app/oauth2/callback, logout_path: /app/oauth2/logout"), false},
		{"logout on a route with the same login", oidcGlobalAppHome(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf logbuf.Buffer
			src := "server: {listen: [{addr: \"127.0.0.1:0\"}]}\nupstreams: {app: {targets: [{url: \"http://127.0.0.1:1\"}]}}\n" + tc.yaml
			cfg, err := config.Parse([]byte(src), "test", func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			if err := gateway.NewRuntime(slog.New(slog.NewJSONHandler(&buf, nil))).Validate(cfg); err != nil {
				t.Fatalf("want valid: %v", err)
			}
			warned := false
			for _, l := range buf.Lines(t) {
				if l["level"] == "WARN" && strings.Contains(fmt.Sprint(l["msg"]), "logout_path is not routed") {
					warned = true
					if l["route"] != "app" || l["logout_path"] != "/oauth2/logout" || l["match"] != "path_prefix /app" {
						t.Errorf("warning %v", l)
					}
				}
			}
			if warned != tc.warn {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tc.warn, buf.String())
			}
		})
	}
}
