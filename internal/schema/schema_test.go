package schema

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	embedded "github.com/portico-gw/portico/schema"
)

const root = "../.."

// ModeLine is the first line of every file in examples/.
const ModeLine = "# yaml-language-server: $schema=../schema/portico.schema.json"

// TestSchemaCurrent regenerates the schema and compares it with the
// committed (and embedded) file.
func TestSchemaCurrent(t *testing.T) {
	got, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(root, File))
	if err != nil {
		t.Fatalf("%v; run `go generate ./internal/schema` to create it", err)
	}
	if !bytes.Equal(got, committed) {
		t.Fatalf("%s is out of date with the config types (%s); run `go generate ./internal/schema` and commit the result",
			File, firstDiff(committed, got))
	}
	if !bytes.Equal(embedded.JSON, committed) {
		t.Fatalf("the embedded schema differs from %s", File)
	}
	again, err := Generate(root)
	if err != nil || !bytes.Equal(got, again) {
		t.Fatalf("two generations differ (err %v): the output is not deterministic", err)
	}
}

// firstDiff describes the first line where want and got differ.
func firstDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d: committed %q, generated %q", i+1, strings.TrimSpace(a), strings.TrimSpace(b))
		}
	}
	return "no line differs"
}

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	compileErr  error
)

// compiledSchema compiles the committed schema once (which also checks it
// against the draft 2020-12 meta-schema).
func compiledSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	compileOnce.Do(func() {
		compiled, compileErr = compileRef("")
	})
	if compileErr != nil {
		t.Fatal(compileErr)
	}
	return compiled
}

// compileRef compiles the committed schema, or the part fragment of it
// ("#/$defs/Duration").
func compileRef(fragment string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(embedded.JSON))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(ID, doc); err != nil {
		return nil, err
	}
	return c.Compile(ID + fragment)
}

// yamlToJSON converts a YAML document to the JSON value an editor checks:
// ${VAR} references stay strings.
func yamlToJSON(t testing.TB, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatalf("YAML: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	j, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// TestSchemaExamples checks every example config against the schema, and
// that each starts with the line that points editors at it.
func TestSchemaExamples(t *testing.T) {
	sch := compiledSchema(t)
	files, err := filepath.Glob(filepath.Join(root, "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := bufio.NewReader(bytes.NewReader(data)).ReadLine()
		if string(first) != ModeLine {
			t.Errorf("%s: first line is %q, want %q", filepath.Base(f), first, ModeLine)
		}
		if err := sch.Validate(yamlToJSON(t, string(data))); err != nil {
			t.Errorf("%s does not match the schema:\n%v", filepath.Base(f), err)
		}
	}
}

// schemaCases are configs the schema must accept (ok) or refuse. Each is
// also loaded by the config package (and its plugins built), which must
// agree, so the schema neither flags a working config nor lets through one
// the gateway refuses.
var schemaCases = []struct {
	name string
	ok   bool
	yaml string
	// plugin and pluginConfig, when set, are built with plugin.NewFromYAML
	// instead of loading yaml with the config package.
	plugin, pluginConfig string
}{
	{name: "minimal", ok: true, yaml: "routes:\n  - name: r\n    match: {path_prefix: /}\n    respond: {status: 200}\n"},
	{name: "env references in typed scalars", ok: true, yaml: `
server:
  listen:
    - addr: ":8080"
      max_connections: "${MAXC}"
      h2c: ${H2C}
  limits:
    max_body_bytes: "${BODY}"
    read_header_timeout: ${RHT}
  method_override: "${MO}"
log: {level: "${LEVEL}"}
routes:
  - name: r
    match: {path_prefix: /}
    respond: {status: "${STATUS}"}
`},
	{name: "scalars stored as strings", ok: true, yaml: `
server:
  listen:
    - addr: ":8443"
      tls:
        min_version: 1.3
        certificates: [{cert_file: c.pem, key_file: k.pem}]
upstreams:
  u: {targets: [{url: "http://127.0.0.1:9"}], retry: {on: [502, connect_failure, "503"]}}
routes:
  - name: r
    match: {path_prefix: /, headers: {X-Version: 2}}
    upstream: u
`},
	{name: "durations and sizes", ok: true, yaml: `
server:
  shutdown_grace: 5
  limits: {idle_timeout: 1m30s, max_header_bytes: 64KiB, max_body_bytes: -1, max_uri_bytes: 4096}
routes:
  - name: r
    match: {path_prefix: /}
    respond: {status: 204}
    timeout: 250ms
`},
	{name: "plugin with config", ok: true, yaml: `
plugins:
  - name: cors
    config: {allow_origins: ["https://app.example.org"]}
  - name: request_id
routes:
  - name: r
    match: {path_prefix: /}
    respond: {status: 200}
`},
	{name: "unknown field", yaml: "server:\n  listn: [{addr: \":8080\"}]\n"},
	{name: "unknown top-level field", yaml: "route: []\n"},
	{name: "wrong type", yaml: "server:\n  limits: {max_header_count: lots}\n"},
	{name: "list expected", yaml: "routes:\n  - name: r\n    match: {hosts: example.org}\n    respond: {status: 200}\n"},
	{name: "bad duration", yaml: "server:\n  shutdown_grace: 10 parsecs\n"},
	{name: "fractional seconds", yaml: "server:\n  shutdown_grace: 1.5\n"},
	{name: "bad size", yaml: "server:\n  limits: {max_body_bytes: 10 MiBs}\n"},
	{name: "bad enum", yaml: "log:\n  access: {format: xml}\n"},
	{name: "bad redirect status", yaml: "routes:\n  - name: r\n    match: {path_prefix: /}\n    redirect: {host: example.org, status: 305}\n"},
	{name: "unknown plugin name", yaml: "plugins:\n  - name: no_such_plugin\n"},
	{name: "unknown key in plugin spec", yaml: "plugins:\n  - name: cors\n    settings: {}\n"},
	{name: "bad plugin config field", yaml: "plugins:\n  - name: cors\n    config: {allow_origin: [\"*\"]}\n",
		plugin: "cors", pluginConfig: "allow_origin: [\"*\"]\n"},
	{name: "bad plugin config type", yaml: "plugins:\n  - name: rate_limit\n    config: {limits: {rate: 10}}\n",
		plugin: "rate_limit", pluginConfig: "limits: {rate: 10}\n"},
	{name: "plugin enums", ok: true, yaml: "plugins:\n  - name: rate_limit\n    config: {headers: both, limits: [{rate: 5, per: 1s, algorithm: sliding_window}]}\n"},
	{name: "bad plugin enum", yaml: "plugins:\n  - name: rate_limit\n    config: {backend: memcached, limits: [{rate: 5, per: 1s}]}\n",
		plugin: "rate_limit", pluginConfig: "{backend: memcached, limits: [{rate: 5, per: 1s}]}\n"},
	{name: "anonymous on jwt", ok: true, yaml: "consumers: [{name: guest}]\nplugins:\n  - name: jwt\n    config: {anonymous: guest, algorithms: [HS256], secret: \"${JWT_SECRET}\"}\n"},
}

func TestSchemaCases(t *testing.T) {
	sch := compiledSchema(t)
	env := map[string]string{"MAXC": "100", "H2C": "false", "BODY": "1MiB", "RHT": "5s", "MO": "true",
		"LEVEL": "warn", "STATUS": "204", "JWT_SECRET": strings.Repeat("k", 32)}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range schemaCases {
		t.Run(tc.name, func(t *testing.T) {
			err := sch.Validate(yamlToJSON(t, tc.yaml))
			if tc.ok && err != nil {
				t.Fatalf("schema refuses a valid config:\n%v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("schema accepts an invalid config")
			}
			// The gateway's own decoder must agree.
			var loadErr error
			if tc.plugin != "" {
				_, loadErr = plugin.NewFromYAML(tc.plugin, tc.pluginConfig, plugin.StaticContext{SpecPath: "plugins[0]"})
			} else {
				loadErr = buildPlugins(tc.yaml, lookup)
			}
			if tc.ok && loadErr != nil {
				t.Fatalf("the case is valid for the schema but Portico refuses it: %v", loadErr)
			}
			if !tc.ok && loadErr == nil {
				t.Fatalf("the case is invalid for the schema but Portico accepts it")
			}
		})
	}
}

// buildPlugins loads a config and builds its global plugins as the gateway
// does.
func buildPlugins(src string, lookup func(string) (string, bool)) error {
	cfg, err := config.Parse([]byte(src), "test.yaml", lookup)
	if err != nil {
		return err
	}
	store, err := consumer.NewStore(cfg.Consumers)
	if err != nil {
		return err
	}
	for _, ps := range cfg.Plugins {
		in, err := plugin.New(ps, plugin.StaticContext{SpecPath: ps.Path, Store: store})
		if err != nil {
			return err
		}
		in.Cleanup()
	}
	return nil
}

// TestSchemaEveryPlugin checks that the plugin spec knows every registered
// plugin and checks each one's config against that plugin's own type.
func TestSchemaEveryPlugin(t *testing.T) {
	var doc struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Enum []string `json:"enum"`
			} `json:"properties"`
			AllOf []struct {
				If struct {
					Properties struct {
						Name struct {
							Const string `json:"const"`
						} `json:"name"`
					} `json:"properties"`
				} `json:"if"`
				Then struct {
					Properties struct {
						Config struct {
							Ref string `json:"$ref"`
						} `json:"config"`
					} `json:"properties"`
				} `json:"then"`
			} `json:"allOf"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(embedded.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	spec := doc.Defs["PluginSpec"]
	names := plugin.Names()
	if got := spec.Properties["name"].Enum; strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("plugin names in the schema %v, registered %v", got, names)
	}
	refs := map[string]string{}
	for _, c := range spec.AllOf {
		refs[c.If.Properties.Name.Const] = c.Then.Properties.Config.Ref
	}
	sch := compiledSchema(t)
	for _, name := range names {
		ref := refs[name]
		if _, ok := doc.Defs[strings.TrimPrefix(ref, "#/$defs/")]; !ok {
			t.Errorf("plugin %s: config refers to %q, not a definition", name, ref)
			continue
		}
		bad := yamlToJSON(t, "plugins:\n  - name: "+name+"\n    config: {no_such_setting: 1}\n")
		if sch.Validate(bad) == nil {
			t.Errorf("plugin %s: the schema accepts an unknown config field", name)
		}
	}
}

// matchDef reports whether the schema definition def accepts s.
func matchDef(def *jsonschema.Schema, s string) bool {
	return def.Validate(s) == nil
}

// plainText reports whether s is what a person types for a duration or
// size: printable ASCII (µ and μ too) without leading or trailing space.
// The decoders also trim other white space, which the schema leaves out.
func plainText(s string) bool {
	if strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if (r < ' ' || r > '~') && r != 'µ' && r != 'μ' {
			return false
		}
	}
	return true
}

// FuzzDurationPattern checks that the schema accepts every string that
// config.Duration accepts, so editors never flag a working duration.
func FuzzDurationPattern(f *testing.F) {
	for _, s := range []string{"10s", "250ms", "1h30m", "0", "30", "-5", "1.5h", ".5s", "1µs", "1us", "10 s", "s", "1.5", "+3m", "1e3s", "${T}"} {
		f.Add(s)
	}
	def, err := compileRef("#/$defs/Duration")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainText(s) {
			return
		}
		var d config.Duration
		decoded := d.UnmarshalYAML(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}) == nil
		if decoded && !matchDef(def, s) {
			t.Fatalf("config accepts the duration %q but the schema does not", s)
		}
	})
}

// FuzzSizePattern checks that the schema accepts every string that
// config.ParseSize accepts.
func FuzzSizePattern(f *testing.F) {
	for _, s := range []string{"64KiB", "10MiB", "1GB", "65536", "-1", "5 kb", "1b", "1K", "2 MiB", "-0k", "-1b", "+7", "1.5MiB", "-2", "KiB", "${SIZE}"} {
		f.Add(s)
	}
	def, err := compileRef("#/$defs/Size")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainText(s) {
			return
		}
		if _, err := config.ParseSize(s); err == nil && !matchDef(def, s) {
			t.Fatalf("config accepts the size %q but the schema does not", s)
		}
	})
}

// TestDurationSizePatterns pins what the schema accepts and refuses.
func TestDurationSizePatterns(t *testing.T) {
	dur, err := compileRef("#/$defs/Duration")
	if err != nil {
		t.Fatal(err)
	}
	size, err := compileRef("#/$defs/Size")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		def  *jsonschema.Schema
		in   string
		want bool
	}{
		{dur, "10s", true}, {dur, "1h30m", true}, {dur, "0", true}, {dur, "30", true}, {dur, "${T:-5s}", true},
		{dur, "10", true}, {dur, "ten seconds", false}, {dur, "1.5", false}, {dur, "5d", false}, {dur, "", false},
		{size, "64KiB", true}, {size, "10mb", true}, {size, "-1", true}, {size, "${S}", true},
		{size, "1.5MiB", false}, {size, "-2", false}, {size, "10 MiBs", false}, {size, "", false},
	} {
		if got := matchDef(c.def, c.in); got != c.want {
			t.Errorf("%s %q: accepted %v, want %v", c.def.Location, c.in, got, c.want)
		}
	}
}
