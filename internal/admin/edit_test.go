package admin

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// TestJSONBodyToYAML checks a JSON body becomes YAML with its key order,
// value types and strings that look like other types kept as strings.
func TestJSONBodyToYAML(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest("PUT", "/routes/x", strings.NewReader(
		`{"z": 1, "a": "true", "m": {"f": 1.5, "n": null, "b": false}, "l": ["1", 2, "${ENV}"]}`))
	n, err := readBody(r, yaml.MappingNode)
	if err != nil {
		t.Fatal(err)
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{n}}
	out, err := config.MarshalDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := "z: 1\na: \"true\"\nm:\n  f: 1.5\n  n: null\n  b: false\nl:\n  - \"1\"\n  - 2\n  - ${ENV}\n"
	if string(out) != want {
		t.Fatalf("YAML:\n%s\nwant:\n%s", out, want)
	}
	for _, bad := range []string{``, `{"a": 1} {"b": 2}`, `{"a": }`, `[1]`} {
		r := httptest.NewRequest("PUT", "/routes/x", strings.NewReader(bad))
		if _, err := readBody(r, yaml.MappingNode); err == nil {
			t.Errorf("body %q accepted", bad)
		}
	}
}

// TestConfigViewRedacts checks secret-named keys are redacted at any depth
// and in any case inside plugin configs, while other values stay.
func TestConfigViewRedacts(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte(`admin: {token: tok-s3cr3t}
tracing: {exporter: otlp_http, headers: {authorization: Bearer trace-s3cr3t}}
routes:
  - name: r
    respond: {}
    plugins:
      - name: x
        config:
          nested: {Client_Secret: cs-s3cr3t, list: [{PASSWORD: pw-s3cr3t, user: visible-user}]}
          cookie_secret: ck-s3cr3t
          token: tk-s3cr3t
          header: visible-header
consumers:
  - name: c
    credentials:
      key_auth: [{key: key-s3cr3t-long}, {key_sha256: "`+strings.Repeat("ab", 32)+`"}]
      basic_auth: [{username: u, password: bpw-s3cr3t}, {username: v, password_hash: "$2b$10$abcdefghijklmnopqrstuv"}]
      hmac_auth: [{key_id: k, secret: hmac-s3cr3t-0123456789}]
`), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(configView(cfg, nil))
	s := string(b)
	if strings.Contains(s, "s3cr3t") {
		t.Fatalf("secret in view: %s", s)
	}
	for _, keep := range []string{"visible-user", "visible-header", strings.Repeat("ab", 32), "$2b$10$abcdefghijklmnopqrstuv", `"key_id":"k"`, `"username":"u"`} {
		if !strings.Contains(s, keep) {
			t.Errorf("view lost %q: %s", keep, s)
		}
	}
}
