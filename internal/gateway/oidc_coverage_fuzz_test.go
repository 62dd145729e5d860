package gateway

import (
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

// FuzzCovers: plugin.Context.Covers answers any host and target a plugin
// passes (they come from user config) without panicking, and a covered
// answer always carries the target's normal form.
func FuzzCovers(f *testing.F) {
	cfg, err := config.Parse([]byte(`
server: {listen: [{addr: "127.0.0.1:0"}]}
routes:
  - {name: app, match: {hosts: [app.example.com, "*.wild.example"], path_prefix: /app, headers: {X-Tenant: blue}}, respond: {}}
  - {name: cb, match: {path: "/app/{id}/cb", methods: [GET]}, respond: {}}
  - {name: re, match: {path_regex: "^/app/re"}, respond: {}}
  - {name: any, respond: {}}
`), "fuzz", func(string) (string, bool) { return "", false })
	if err != nil {
		f.Fatal(err)
	}
	s := &Snapshot{cfg: cfg}
	for _, seed := range [][2]string{
		{"", "/app/oauth2/callback"}, {"", "/oauth2/callback"}, {"app.example.com", "/app/x?code=1"},
		{"APP.example.com:8443", "/app/./x"}, {"x.wild.example", "/app/1/cb"}, {"wild.example", "/app"},
		{"[::1]:80", "/app"}, {"", "%zz"}, {"", ""}, {"", "//app"}, {"", "/app/..;/x"}, {".", "/app/re?a=b&a=c"},
		{"", "/app/%2e%2e/x"}, {"*.wild.example", "/app"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, host, target string) {
		for _, rc := range cfg.Routes {
			cv := pluginCtx{snap: s, rc: rc}.Covers(host, target)
			if cv.Covered && cv.Path == "" && target != "" {
				t.Fatalf("route %s: %q on %q covered without a normal form", rc.Name, target, host)
			}
			if cv.Covered && (cv.Winner != "" || cv.HostMismatch) {
				t.Fatalf("route %s: inconsistent answer %+v", rc.Name, cv)
			}
		}
	})
}
