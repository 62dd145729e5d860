package config

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// quotedRE matches the quoted user input an error message repeats
// ("unknown field \"x\"", 'anchor'), which may hold anything.
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'[^']*'|` + "`[^`]*`")

// jargon returns the YAML library wording left in msg outside quoted user
// input, or "".
func jargon(msg string) string {
	m := quotedRE.ReplaceAllString(msg, `""`)
	for _, j := range []string{"!!", "unmarshal", "yaml:", "yaml.", "reflect", "hashedSecret"} {
		if strings.Contains(m, j) {
			return j
		}
	}
	return ""
}

// TestWrongTypesInPlainWords feeds wrong-type values to fields of every
// kind and checks each message says what was expected and what was found,
// with no YAML library wording.
func TestWrongTypesInPlainWords(t *testing.T) {
	t.Parallel()
	tests := []struct{ yaml, want string }{
		{`server: {listen: [{addr: ":8080", max_connections: "200"}]}`, `expected an integer, got the string "200" (remove the quotes)`},
		{`server: {listen: [{addr: ":8080", max_connections: many}]}`, `expected an integer, got the string "many"`},
		{`server: {listen: [{addr: ":8080", max_connections: 1.5}]}`, `expected an integer, got the number 1.5`},
		{`server: {listen: [{addr: ":8080", max_connections: [1]}]}`, `expected an integer, got a list`},
		{`server: {listen: [{addr: ":8080", max_connections: {a: 1}}]}`, `expected an integer, got a mapping`},
		{`server: {listen: [{addr: ":8080", max_connections: true}]}`, `expected an integer, got the boolean true`},
		{`server: {listen: [{addr: ":8080", http3: "yes"}]}`, `expected true or false, got the string "yes"`},
		{`server: {listen: [{addr: ":8080", http3: 1}]}`, `expected true or false, got the integer 1`},
		{`tracing: {ratio: half}`, `expected a number, got the string "half"`},
		{`tracing: {ratio: [1]}`, `expected a number, got a list`},
		{`server: {listen: {addr: ":8080"}}`, `expected a list, got a mapping`},
		{`server: {listen: ":8080"}`, `expected a list, got the string ":8080"`},
		{`routes: {name: a}`, `expected a list, got a mapping`},
		{`server: [1]`, `expected a mapping (key: value lines), got a list`},
		{`server: 8080`, `expected a mapping (key: value lines), got the integer 8080`},
		{`upstreams: [a]`, `expected a mapping (key: value lines), got a list`},
		{`admin: {listen: [a]}`, `expected a string, got a list`},
		{`admin: {listen: {a: b}}`, `expected a string, got a mapping`},
		{`server: {limits: {idle_timeout: soon}}`, `expected a duration such as 10s, 250ms or 2m, got the string "soon"`},
		{`server: {limits: {idle_timeout: [1s]}}`, `expected a duration such as 10s, 250ms or 2m, got a list`},
		{`server: {limits: {max_body_bytes: lots}}`, `invalid size "lots"`},
		{`server: {limits: {max_body_bytes: {a: 1}}}`, `expected a size such as 65536 or 10MiB, got a mapping`},
		{`server: {limits: {max_header_count: 99999999999999999999}}`, `integer 99999999999999999999 is out of range`},
		{`server: {limits: {max_header_count: 1e3}}`, `expected an integer, got the number 1e3`},
		{`routes: [{name: a, respond: {status: "200"}}]`, `expected an integer, got the string "200" (remove the quotes)`},
		{`routes: [{name: a, match: {methods: GET}, respond: {}}]`, `expected a list, got the string "GET"`},
		{`routes: [{name: a, match: {headers: [a]}, respond: {}}]`, `expected a mapping (key: value lines), got a list`},
		{`routes: [{name: [a], respond: {}}]`, `expected a string, got a list`},
		{`routes: [{name: a, match: {headers: {[a]: b}}, respond: {}}]`, `expected a name as the key, got a list`},
		{`consumers: [{name: a, credentials: {basic_auth: {username: a}}}]`, `expected a list, got a mapping`},
		{`upstreams: {u: {targets: [{url: "http://a:1", weight: heavy}]}}`, `expected an integer, got the string "heavy"`},
		{`upstreams: {u: {targets: [{url: "http://a:1"}], health_check: {expected_statuses: 200}}}`, `expected a list, got the integer 200`},
		{`upstreams: {u: {targets: [{url: "http://a:1"}], retry: {attempts: twice}}}`, `expected an integer, got the string "twice"`},
		{`upstreams: {u: {targets: [{url: "http://a:1"}], debug_header: null}}`, ``},
		{"server:\n  listen: [\n", `invalid YAML`},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.yaml), "t", env(nil))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.yaml, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.yaml)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.yaml, err, tc.want)
		}
		var es Errors
		errors.As(err, &es)
		for _, e := range es {
			if j := jargon(e.Msg); j != "" {
				t.Errorf("%s: message %q has %q", tc.yaml, e.Msg, j)
			}
		}
	}
}

// TestHumanYAML checks the safety net that rewrites YAML library messages.
func TestHumanYAML(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"cannot unmarshal !!str `200` into int":         `expected an integer, got the string "200"`,
		"cannot unmarshal !!str `yes` into bool":        `expected true or false, got the string "yes"`,
		"cannot unmarshal !!seq into string":            `expected a string, got a list`,
		"cannot unmarshal !!map into []string":          `expected a list, got a mapping`,
		"cannot unmarshal !!int `5` into config.Server": `expected a mapping (key: value lines), got the integer 5`,
		"cannot unmarshal !!str `1.5x` into float64":    `expected a number, got the string "1.5x"`,
		"cannot unmarshal !!seq into time.Duration":     `expected a duration such as 10s or 250ms, got a list`,
		"something !!map odd":                           `something mapping odd`,
	} {
		if got := humanYAML(in, false); got != want {
			t.Errorf("humanYAML(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDecodeStrictPlainWords checks plugin config errors (DecodeStrict) use
// the same words, also for a struct a YAML library would decode itself.
func TestDecodeStrictPlainWords(t *testing.T) {
	t.Parallel()
	var pc struct {
		Burst   int               `yaml:"burst"`
		On      bool              `yaml:"on"`
		Window  Duration          `yaml:"window"`
		Names   []string          `yaml:"names"`
		Headers map[string]string `yaml:"headers"`
		Nested  struct {
			Rate float64 `yaml:"rate"`
		} `yaml:"nested"`
	}
	c, err := Parse([]byte(`routes:
  - name: a
    respond: {}
    plugins:
      - name: p
        config: {burst: "20", on: maybe, window: [1], names: a, headers: [x], nested: {rate: fast}}
`), "t", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = DecodeStrict(&c.Routes[0].Plugins[0].Config, &pc, "routes[0].plugins[0].config")
	want := []string{
		`line 6: routes[0].plugins[0].config.burst: expected an integer, got the string "20" (remove the quotes)`,
		`line 6: routes[0].plugins[0].config.on: expected true or false, got the string "maybe"`,
		`line 6: routes[0].plugins[0].config.window: expected a duration such as 10s, 250ms or 2m, got a list`,
		`line 6: routes[0].plugins[0].config.names: expected a list, got the string "a"`,
		`line 6: routes[0].plugins[0].config.headers: expected a mapping (key: value lines), got a list`,
		`line 6: routes[0].plugins[0].config.nested.rate: expected a number, got the string "fast"`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

// FuzzParseErrorWords checks that no error message of any input, however
// malformed, carries YAML library wording, and that a config returned with
// errors by ParseAll carries the same errors.
func FuzzParseErrorWords(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte(`server: {listen: [{addr: ":8080", max_connections: "200"}]}`))
	f.Add([]byte(`routes: [{name: a, respond: {status: [1]}, timeout: {a: 1}}]`))
	f.Add([]byte(`upstreams: {u: {targets: [{url: 127.0.0.1:9001}], connect_timeout: !!binary aGk=}}`))
	f.Add([]byte("server: !!map [1]\nadmin: !!str {a: 1}\n"))
	f.Add([]byte("server:\n  listen: [\n"))
	f.Add([]byte("a: &x [*x]\nb: *y\n"))
	f.Add([]byte("tracing: {ratio: !!float abc}\nlog: {level: !!int x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseAll(data, "fuzz", env(map[string]string{"A": "1"}))
		if err == nil {
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
		}
		for _, e := range es {
			if j := jargon(e.Msg); j != "" {
				t.Fatalf("message %q has %q", e.Msg, j)
			}
		}
		if c != nil && len(c.Problems()) != len(es) {
			t.Fatalf("config carries %d problems, error has %d", len(c.Problems()), len(es))
		}
	})
}

// TestURLWithoutScheme checks a target or service URL written without a
// scheme gets the corrected URL in its message.
func TestURLWithoutScheme(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"127.0.0.1:9001", "localhost:80", "backend", "//backend:81"} {
		fixed := "http://" + strings.TrimPrefix(raw, "//")
		if err := checkTargetURL(raw); err == nil || !strings.Contains(err.Error(), `missing its scheme: write "`+fixed+`"`) {
			t.Errorf("target %q: %v", raw, err)
		}
		if _, err := CheckServiceURL("url", raw); err == nil || !strings.Contains(err.Error(), `missing scheme, write "`+fixed+`"`) {
			t.Errorf("service %q: %v", raw, err)
		}
	}
	for _, raw := range []string{"http://a:0", "https://a:65536", "http://a:x"} {
		if _, err := CheckServiceURL("url", raw); err == nil {
			t.Errorf("service %q accepted", raw)
		}
	}
}
