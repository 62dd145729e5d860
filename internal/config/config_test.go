package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// issueExample is the config shape from the product surface (issue 2).
const issueExample = `
server:
  listen:
    - addr: ":8080"
    - addr: ":8443"
      tls: {certificates: [{cert_file: a.crt, key_file: a.key}]}
  limits: {max_header_bytes: 65536, read_header_timeout: 10s, idle_timeout: 120s, max_body_bytes: 10MiB}
  trusted_proxies: ["10.0.0.0/8"]
admin: {listen: "127.0.0.1:9901"}
log: {access: {output: stdout, format: json}}
upstreams:
  users:
    targets: [{url: "http://127.0.0.1:9001", weight: 3}, {url: "http://127.0.0.1:9002"}]
routes:
  - name: users
    match:
      hosts: ["api.example.com", "*.example.org"]
      path_prefix: /users
      methods: [GET, POST]
      headers: {X-Version: "2"}
      query: {debug: "1"}
    upstream: users
    rewrite: {strip_prefix: /users}
    plugins:
      - {name: headers, config: {request: {set: {X-From: portico}}, response: {remove: [Server]}}}
  - name: hello
    match: {path: /hello}
    respond: {status: 200, body: "hello from portico\n", headers: {Content-Type: text/plain}}
plugins: [{name: request_id}]
`

func TestParseIssueExample(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(issueExample), "test", env(nil))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Server.Limits.MaxBodyBytes; got != 10<<20 {
		t.Errorf("max_body_bytes = %d, want 10MiB", got)
	}
	if got := c.Server.Limits.ReadHeaderTimeout.D(); got != 10*time.Second {
		t.Errorf("read_header_timeout = %v", got)
	}
	if got := c.Upstreams["users"].Targets[1].Weight; got != 1 {
		t.Errorf("default weight = %d, want 1", got)
	}
	if got := c.Routes[0].Plugins[0].Path; got != "routes[0].plugins[0]" {
		t.Errorf("plugin path = %q", got)
	}
	if c.Routes[0].Plugins[0].Config.Kind == 0 {
		t.Error("plugin config node not kept")
	}
	if got := c.Routes[1].Respond.Body; got != "hello from portico\n" {
		t.Errorf("respond body = %q", got)
	}
	if c.Server.Limits.MaxHeaderCount != DefaultMaxHeaderCount || c.Server.Limits.BodyReadTimeout != DefaultBodyReadTimeout {
		t.Error("defaults not applied")
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		yaml string
		env  map[string]string
		want []string // substrings, each must appear in one error line
	}{
		{desc: "unknown top-level field", yaml: "server: {}\nbogus: 1\n", want: []string{`line 2: bogus: unknown field "bogus"`}},
		{desc: "unknown nested field names path and line", yaml: "routes:\n  - name: a\n    match:\n      pathh: /x\n    respond: {status: 200}\n",
			want: []string{`line 4: routes[0].match.pathh: unknown field "pathh"`}},
		{desc: "every error reported", yaml: "routes:\n  - name: a\n    mtch: {}\n  - name: b\n    respnd: {}\n",
			want: []string{"line 3: routes[0].mtch", "line 5: routes[1].respnd"}},
		{desc: "bad duration", yaml: "server:\n  limits:\n    idle_timeout: 10 parsecs\n", want: []string{"line 3: server.limits.idle_timeout: invalid duration"}},
		{desc: "bad size", yaml: "server:\n  limits:\n    max_body_bytes: 10 furlongs\n", want: []string{"line 3: server.limits.max_body_bytes: invalid size"}},
		{desc: "integer expected", yaml: "routes:\n  - name: a\n    priority: high\n    respond: {}\n", want: []string{"line 3: routes[0].priority: expected an integer"}},
		{desc: "undefined upstream", yaml: "routes:\n  - name: a\n    upstream: nope\n", want: []string{`line 3: routes[0].upstream: upstream "nope" is not defined`}},
		{desc: "no action", yaml: "routes:\n  - name: a\n    match: {path: /a}\n", want: []string{"line 2: routes[0]: route must have exactly one action"}},
		{desc: "two actions", yaml: "routes:\n  - name: a\n    respond: {}\n    redirect: {path: /b}\n", want: []string{"exactly one action"}},
		{desc: "duplicate route name", yaml: "routes:\n  - {name: a, respond: {}}\n  - {name: a, respond: {}}\n", want: []string{`line 3: routes[1].name: route name "a" is already used`}},
		{desc: "bad regex", yaml: "routes:\n  - name: a\n    match: {path_regex: '(['}\n    respond: {}\n", want: []string{"routes[0].match.path_regex: invalid regular expression"}},
		{desc: "two path kinds", yaml: "routes:\n  - name: a\n    match: {path: /a, path_prefix: /b}\n    respond: {}\n", want: []string{"use only one of path"}},
		{desc: "bad target url", yaml: "upstreams:\n  u:\n    targets: [{url: 'ftp://x'}]\n", want: []string{"line 3: upstreams.u.targets[0].url: target URL"}},
		{desc: "empty upstream", yaml: "upstreams:\n  u: {}\n", want: []string{"needs at least one target"}},
		{desc: "bad trusted proxy", yaml: "server:\n  trusted_proxies: [nonsense]\n", want: []string{"server.trusted_proxies[0]: invalid IP or CIDR"}},
		{desc: "missing env var", yaml: "upstreams:\n  u:\n    targets: [{url: '${BACKEND}'}]\n", want: []string{"line 3: upstreams.u.targets[0].url: environment variable BACKEND is not set"}},
		{desc: "yaml syntax", yaml: "routes: [\n", want: []string{"line"}},
		{desc: "duplicate key", yaml: "admin: {listen: a:1}\nadmin: {listen: b:2}\n", want: []string{"already defined"}},
		{desc: "bad host wildcard", yaml: "routes:\n  - name: a\n    match: {hosts: ['a.*.com']}\n    respond: {}\n", want: []string{"routes[0].match.hosts[0]"}},
		{desc: "lower-case method", yaml: "routes:\n  - name: a\n    match: {methods: [get]}\n    respond: {}\n", want: []string{"routes[0].match.methods[0]"}},
		{desc: "bad redirect status", yaml: "routes:\n  - name: a\n    redirect: {path: /x, status: 200}\n", want: []string{"routes[0].redirect.status"}},
		{desc: "tls without certificates", yaml: "server:\n  listen: [{addr: ':8443', tls: {}}]\n", want: []string{"server.listen[0].tls.certificates"}},
		{desc: "list expected", yaml: "routes: {name: a}\n", want: []string{"routes: expected a list"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tc.yaml), "test", env(tc.env))
			if err == nil {
				t.Fatal("Parse succeeded, want error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err.Error(), w)
				}
			}
		})
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Parallel()
	y := `
upstreams:
  u:
    targets:
      - url: "http://${HOST}:${PORT:-9000}"
        weight: ${W}
routes:
  - name: a
    upstream: u
    plugins:
      - name: x
        config: {secret: "${SECRET}", literal: "$${NOT_EXPANDED}"}
`
	c, err := Parse([]byte(y), "test", env(map[string]string{"HOST": "10.1.1.1", "W": "4", "SECRET": "s3cr3t: [x]"}))
	if err != nil {
		t.Fatal(err)
	}
	tg := c.Upstreams["u"].Targets[0]
	if tg.URL != "http://10.1.1.1:9000" || tg.Weight != 4 {
		t.Errorf("target = %+v", tg)
	}
	var pc struct {
		Secret  string `yaml:"secret"`
		Literal string `yaml:"literal"`
	}
	if err := DecodeStrict(&c.Routes[0].Plugins[0].Config, &pc, "routes[0].plugins[0].config"); err != nil {
		t.Fatal(err)
	}
	if pc.Secret != "s3cr3t: [x]" {
		t.Errorf("secret = %q (a value must never become YAML structure)", pc.Secret)
	}
	if pc.Literal != "${NOT_EXPANDED}" {
		t.Errorf("literal = %q", pc.Literal)
	}
}

func TestDecodeStrictPluginErrors(t *testing.T) {
	t.Parallel()
	y := "routes:\n  - name: a\n    respond: {}\n    plugins:\n      - name: p\n        config:\n          good: 1\n          bad: 2\n"
	c, err := Parse([]byte(y), "test", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	var pc struct {
		Good int `yaml:"good"`
	}
	err = DecodeStrict(&c.Routes[0].Plugins[0].Config, &pc, "routes[0].plugins[0].config")
	if err == nil || !strings.Contains(err.Error(), `line 8: routes[0].plugins[0].config.bad: unknown field "bad"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestSizes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Size
		bad  bool
	}{
		{in: "65536", want: 65536}, {in: "64KiB", want: 64 << 10}, {in: "10MiB", want: 10 << 20},
		{in: "1GB", want: 1e9}, {in: "2k", want: 2048}, {in: "-1", want: -1},
		{in: "-5", bad: true}, {in: "x", bad: true}, {in: "99999999999GiB", bad: true}, {in: "-1KiB", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func TestEmptyConfigGetsDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(""), "empty", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Server.Listen) != 1 || c.Server.Listen[0].Addr != ":8080" || c.Admin.Listen != DefaultAdminListen {
		t.Errorf("defaults: %+v %+v", c.Server.Listen, c.Admin)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte("routes: [{name: a, match: {path: /x}, respond: {}}]"))
	f.Add([]byte("server: {limits: {max_body_bytes: 1KiB}}"))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz", env(map[string]string{"A": "1"}))
		if err == nil && c == nil {
			t.Fatal("nil config without error")
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
			}
		}
	})
}

// TestDecodeStrictInline checks that fields of an embedded struct tagged
// `yaml:",inline"` are known keys (auth plugins embed their shared options).
func TestDecodeStrictInline(t *testing.T) {
	t.Parallel()
	type shared struct {
		Anonymous string `yaml:"anonymous"`
	}
	type plug struct {
		shared `yaml:",inline"`
		Realm  string `yaml:"realm"`
	}
	c, err := Parse([]byte("routes:\n  - name: a\n    respond: {}\n    plugins:\n      - name: p\n        config: {anonymous: guest, realm: r}\n"), "t", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	var p plug
	if err := DecodeStrict(&c.Routes[0].Plugins[0].Config, &p, "x"); err != nil {
		t.Fatalf("inline field rejected: %v", err)
	}
	if p.Anonymous != "guest" || p.Realm != "r" {
		t.Fatalf("decoded %+v", p)
	}
}
