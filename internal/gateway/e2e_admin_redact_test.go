package gateway_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
)

// e2eRedactSecrets are the secret values of e2eRedactYAML, by kind; none
// may appear in any admin API answer.
var e2eRedactSecrets = map[string]string{
	"admin token":                    "adm-tok-s3cr3t-e2e",
	"headers plugin Authorization":   "hdr-auth-s3cr3t-1",
	"headers plugin custom header":   "hdr-custom-s3cr3t-2",
	"headers plugin Cookie (add)":    "hdr-cookie-s3cr3t-3",
	"headers plugin Set-Cookie resp": "hdr-resp-s3cr3t-4",
	"global headers plugin":          "hdr-global-s3cr3t-5",
	"match header X-Api-Key":         "match-hdr-s3cr3t-6",
	"match query token":              "match-query-s3cr3t-7",
	"respond Set-Cookie":             "respond-s3cr3t-8",
	"tracing header":                 "trace-s3cr3t-9",
	"jwt secret":                     "jwt-s3cr3t-0123456789abcdef0123456789abcdef",
	"jwt issuer userinfo":            "iss-pw-s3cr3t-10",
	"oidc client_secret":             "oidc-client-s3cr3t-11",
	"oidc cookie_secret":             "oidc-cookie-s3cr3t-12-0123456789abcdef",
	"introspection client_secret":    "introspect-s3cr3t-13",
	"redis password":                 "redis-pw-s3cr3t-14",
	"consumer key":                   "key-s3cr3t-15-long-enough",
	"consumer password":              "basic-pw-s3cr3t-16",
	"consumer hmac secret":           "hmac-s3cr3t-17-0123456789",
}

const e2eRedactYAML = `
server:
  listen: [{addr: "127.0.0.1:0"}]
admin: {listen: "127.0.0.1:0", token: adm-tok-s3cr3t-e2e}
tracing:
  exporter: none
  headers: {authorization: "Bearer trace-s3cr3t-9"}
upstreams:
  api: {targets: [{url: "http://127.0.0.1:1"}]}
plugins:
  - name: headers
    config: {request: {set: {X-Global: hdr-global-s3cr3t-5}}}
routes:
  - name: hdr
    match: {path: /hdr, headers: {X-Api-Key: match-hdr-s3cr3t-6, X-Env: prod-visible}, query: {token: match-query-s3cr3t-7, page: page-visible}}
    upstream: api
    plugins:
      - name: headers
        config:
          request:
            set: {Authorization: "Bearer hdr-auth-s3cr3t-1", X-Custom-Thing: hdr-custom-s3cr3t-2}
            add: {Cookie: "sid=hdr-cookie-s3cr3t-3"}
            remove: [X-Remove-Visible]
          response:
            set: {Set-Cookie: "s=hdr-resp-s3cr3t-4"}
  - name: resp
    match: {path: /resp}
    respond: {body: body-visible, headers: {Set-Cookie: "a=respond-s3cr3t-8", X-Frame-Options: DENY}}
  - name: auth
    match: {path: /auth}
    upstream: api
    plugins:
      - name: jwt
        config: {algorithms: [HS256], secret: jwt-s3cr3t-0123456789abcdef0123456789abcdef, issuer: "https://iss-user:iss-pw-s3cr3t-10@idp.example"}
      - name: oidc_login
        config: {issuer: "http://127.0.0.1:1", client_id: cid-visible, client_secret: oidc-client-s3cr3t-11, cookie_secret: oidc-cookie-s3cr3t-12-0123456789abcdef, redirect_path: /auth}
      - name: oauth2_introspection
        config: {introspection_url: "http://127.0.0.1:1/introspect", client_id: cid2-visible, client_secret: introspect-s3cr3t-13}
      - name: rate_limit
        config:
          backend: redis
          redis: {addr: "127.0.0.1:1", password: redis-pw-s3cr3t-14}
          limits: [{rate: 10, per: 1s}]
consumers:
  - name: alice
    credentials:
      key_auth: [{key: key-s3cr3t-15-long-enough}]
      basic_auth: [{username: alice, password: basic-pw-s3cr3t-16}]
      hmac_auth: [{key_id: alice-hmac, secret: hmac-s3cr3t-17-0123456789}]
`

// TestE2EAdminRedactsEverySecretKind: GET /config, /routes, /routes/{name},
// /plugins and /upstreams return no secret of any kind, while the names and
// non-secret values around them stay readable.
func TestE2EAdminRedactsEverySecretKind(t *testing.T) {
	t.Parallel()
	tg := e2eStart(t, e2eRedactYAML, nil)
	var all strings.Builder
	for _, p := range []string{"/config", "/routes", "/routes/hdr", "/routes/resp", "/routes/auth", "/plugins", "/upstreams", "/upstreams/api", "/consumers", "/version", "/config/history", "/readyz"} {
		r := e2eAdminRaw(t, tg, "GET", p, "127.0.0.1", "Authorization: Bearer adm-tok-s3cr3t-e2e")
		if r.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", p, r.StatusCode, r.Body)
		}
		body := string(r.Body)
		for kind, v := range e2eRedactSecrets {
			if strings.Contains(body, v) {
				t.Errorf("GET %s returns the %s", p, kind)
			}
		}
		if strings.Contains(body, "s3cr3t") {
			t.Errorf("GET %s returns a secret: %s", p, body)
		}
		all.WriteString(body)
	}
	s := all.String()
	for _, keep := range []string{"prod-visible", "page-visible", "body-visible", "DENY", "cid-visible", "cid2-visible",
		"X-Remove-Visible", `"Authorization": "REDACTED"`, `"X-Custom-Thing": "REDACTED"`, `"X-Api-Key": "REDACTED"`,
		`"token": "REDACTED"`, `"Set-Cookie": "REDACTED"`, `"https://REDACTED@idp.example"`, `"X-Global": "REDACTED"`} {
		if !strings.Contains(s, keep) {
			t.Errorf("admin answers lack %s", keep)
		}
	}
}

// TestE2EUserinfoURLsRefused: every setting that takes a URL the gateway
// calls (or sends clients to) refuses user:password@ with an error naming
// the setting, and the error never repeats the password.
func TestE2EUserinfoURLsRefused(t *testing.T) {
	t.Parallel()
	const pw = "url-pw-s3cr3t"
	route := func(plugin string) string {
		return `
routes:
  - name: r
    match: {path: /r}
    respond: {}
    plugins:
      - name: ` + plugin + "\n"
	}
	for _, tc := range []struct{ name, yaml, field string }{
		{"forward_auth url", route(`forward_auth
        config: {url: "http://user:` + pw + `@127.0.0.1:1/auth"}`), "url"},
		{"forward_auth url, user only", route(`forward_auth
        config: {url: "http://` + pw + `@127.0.0.1:1/auth"}`), "url"},
		{"introspection url", route(`oauth2_introspection
        config: {introspection_url: "https://u:` + pw + `@idp.example/i", client_id: a, client_secret: b}`), "introspection_url"},
		{"jwt jwks_url", route(`jwt
        config: {algorithms: [RS256], jwks_url: "https://u:` + pw + `@idp.example/jwks"}`), "jwks_url"},
		{"jwt oidc_issuer", route(`jwt
        config: {algorithms: [RS256], oidc_issuer: "https://u:` + pw + `@idp.example"}`), "oidc_issuer"},
		{"oidc_login issuer", route(`oidc_login
        config: {issuer: "https://u:` + pw + `@idp.example", client_id: a, client_secret: b, cookie_secret: 0123456789abcdef0123456789abcdef}`), "issuer"},
		{"oidc_login redirect_url", route(`oidc_login
        config: {issuer: "https://idp.example", redirect_url: "https://u:` + pw + `@app.example/cb", client_id: a, client_secret: b, cookie_secret: 0123456789abcdef0123456789abcdef}`), "redirect_url"},
		{"upstream target", `
upstreams: {api: {targets: [{url: "http://u:` + pw + `@127.0.0.1:1"}]}}
routes: [{name: r, match: {path: /r}, upstream: api}]`, "upstreams.api.targets[0].url"},
		{"redirect url", `
routes: [{name: r, match: {path: /r}, redirect: {url: "https://u:` + pw + `@example.org/"}}]`, "routes[0].redirect.url"},
		{"tracing endpoint", `
tracing: {exporter: otlp_http, endpoint: "u:` + pw + `@collector:4318"}`, "tracing.endpoint"},
		{"tracing endpoint, user only", `
tracing: {exporter: otlp_grpc, endpoint: "` + pw + `@collector:4317"}`, "tracing.endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			yaml := "server: {listen: [{addr: \"127.0.0.1:0\"}]}\n" + tc.yaml
			cfg, err := config.Parse([]byte(yaml), "test", func(string) (string, bool) { return "", false })
			if err == nil {
				err = gateway.NewRuntime(slog.New(slog.NewTextHandler(io.Discard, nil))).Validate(cfg)
			}
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.field) || !strings.Contains(msg, "credentials") {
				t.Errorf("error does not point at %s: %v", tc.field, msg)
			}
			if strings.Contains(msg, pw) {
				t.Errorf("error repeats the password: %v", msg)
			}
		})
	}
}
