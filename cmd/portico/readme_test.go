package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// A YAML block of the README is checked according to its shape:
//
//   - a whole config (a mapping with any top-level config key: server,
//     upstreams, routes, consumers, plugins, tracing…) is validated exactly
//     as `portico validate` does, as written;
//   - a list of plugin specs (every item a mapping with "name") is validated
//     item by item, each as the only plugin of a route in a minimal config;
//   - a route (a mapping with "match") is validated as the only route of a
//     minimal config that defines the upstream it names;
//   - another tool's file (a mapping with a top-level key of foreignYAMLKeys
//     and none of Portico's: a Kubernetes manifest, a Compose file, a
//     Prometheus or OpenTelemetry Collector config) is only parsed;
//   - a block whose first line is fragmentMarker is only parsed as YAML. It
//     must be listed in partialREADMEBlocks (by the heading of its section),
//     so intentionally partial blocks stay few and deliberate.
//
// Anything else fails: make it one of the shapes above.
const fragmentMarker = "# fragment"

// foreignYAMLKeys are top-level keys of other tools' YAML files that a README
// may show next to Portico's config.
var foreignYAMLKeys = map[string]bool{
	"apiVersion": true, "kind": true, // Kubernetes
	"services":       true,                    // Docker Compose
	"scrape_configs": true,                    // Prometheus
	"receivers":      true, "exporters": true, // OpenTelemetry Collector
}

// partialREADMEBlocks lists the README sections allowed a block marked
// fragmentMarker, with why it cannot be validated.
var partialREADMEBlocks = map[string]string{}

// readmeBlock is one fenced ```yaml block of the README.
type readmeBlock struct {
	line    int    // line of the first YAML line
	section string // the closest heading above it
	text    string
}

// readmeYAMLBlocks returns every ```yaml (or ```yml) block of the README.
func readmeYAMLBlocks(t *testing.T, readme []byte) []readmeBlock {
	t.Helper()
	blocks, err := parseYAMLBlocks(readme)
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	return blocks
}

// parseYAMLBlocks returns the ```yaml (or ```yml) fenced blocks of a
// Markdown document, with the line each starts on and the heading above it.
// A fence opens with a line starting with ``` after optional spaces (a
// fence inside a list item is indented) and closes with a line that is only
// ``` (surrounding spaces allowed); the block's lines lose up to as many
// leading spaces as its opening fence has.
func parseYAMLBlocks(readme []byte) ([]readmeBlock, error) {
	var (
		out     []readmeBlock
		section string
		cur     *readmeBlock
		inFence bool
		indent  int
		body    strings.Builder
	)
	sc := bufio.NewScanner(bytes.NewReader(readme))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		switch {
		case !inFence && strings.HasPrefix(trimmed, "```"):
			inFence, indent = true, len(line)-len(trimmed)
			if lang := strings.TrimSpace(trimmed[3:]); lang == "yaml" || lang == "yml" {
				cur = &readmeBlock{line: n + 1, section: section}
				body.Reset()
			}
		case inFence && strings.TrimSpace(line) == "```":
			inFence = false
			if cur != nil {
				cur.text = body.String()
				out = append(out, *cur)
				cur = nil
			}
		case inFence:
			if cur != nil {
				i := 0
				for i < indent && i < len(line) && line[i] == ' ' {
					i++
				}
				body.WriteString(line[i:])
				body.WriteByte('\n')
			}
		case strings.HasPrefix(line, "#"):
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if inFence {
		return nil, errors.New("ends inside a fenced block")
	}
	return out, nil
}

// topLevelKeys are the YAML names of config.Config's fields.
func topLevelKeys() map[string]bool {
	keys := map[string]bool{}
	ct := reflect.TypeFor[config.Config]()
	for i := range ct.NumField() {
		name, _, _ := strings.Cut(ct.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

// minimalConfig is what plugin and route fragments are embedded in.
const minimalConfig = `
upstreams:
  backend:
    targets: [{url: "http://127.0.0.1:9"}]
routes:
  - name: readme-fragment
    match: {path_prefix: /}
    upstream: backend
    plugins: []
`

// embedPlugin returns minimalConfig with spec as the route's only plugin.
func embedPlugin(t *testing.T, spec *yaml.Node) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(minimalConfig), &doc); err != nil {
		t.Fatal(err)
	}
	route := config.MapValue(doc.Content[0], "routes").Content[0]
	plugins := config.MapValue(route, "plugins")
	plugins.Style = 0
	plugins.Content = []*yaml.Node{spec}
	return marshalNode(t, &doc)
}

// embedRoute returns a config with route as its only route and an upstream
// of the name it proxies to.
func embedRoute(t *testing.T, route *yaml.Node) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(minimalConfig), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	if up := config.MapValue(route, "upstream"); up != nil && up.Value != "backend" {
		ups := config.MapValue(root, "upstreams")
		ups.Content[0].Value = up.Value
	}
	config.MapValue(root, "routes").Content = []*yaml.Node{route}
	return marshalNode(t, &doc)
}

func marshalNode(t *testing.T, n *yaml.Node) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		t.Fatal(err)
	}
	_ = enc.Close()
	return b.Bytes()
}

// validateDoc writes data to a file and runs `portico validate` on it;
// where says which README block it comes from.
func validateDoc(t *testing.T, where, name string, data []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	linkExampleSpecs(t, filepath.Dir(f))
	var stdout, stderr bytes.Buffer
	if code := cmdValidate([]string{"--config", f}, &stdout, &stderr); code != 0 {
		t.Errorf("%s: validate exit %d:\n%s\nvalidated document:\n%s", where, code, stderr.String(), data)
	}
}

// TestREADMEYAMLBlocks checks every YAML block of the README: it parses,
// and whole configs, plugin specs and routes validate as `portico validate`
// would (see the shapes above), offline.
func TestREADMEYAMLBlocks(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeYAMLBlocks(t, readme)
	if len(blocks) < 20 {
		t.Fatalf("found only %d YAML blocks in README.md; is the fence parser broken?", len(blocks))
	}
	top := topLevelKeys()
	w := newExampleWorld(t)
	usedPartial := map[string]bool{}
	for _, b := range blocks {
		name := fmt.Sprintf("line%d", b.line)
		t.Run(name, func(t *testing.T) {
			where := fmt.Sprintf("README.md:%d (%s)", b.line, b.section)
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(b.text), &doc); err != nil {
				t.Fatalf("%s: not valid YAML: %v", where, err)
			}
			if strings.TrimSpace(strings.SplitN(b.text, "\n", 2)[0]) == fragmentMarker {
				if _, ok := partialREADMEBlocks[b.section]; !ok {
					t.Fatalf("%s: marked %q but section %q is not in partialREADMEBlocks; make the block validate instead", where, fragmentMarker, b.section)
				}
				usedPartial[b.section] = true
				return
			}
			if len(doc.Content) == 0 {
				t.Fatalf("%s: empty block", where)
			}
			w.setEnv(t, []byte(b.text))
			checkOffline(t, where, &doc)
			root := doc.Content[0]
			switch {
			case root.Kind == yaml.MappingNode && hasAnyKey(root, top):
				validateDoc(t, where, name+".yaml", []byte(b.text))
			case root.Kind == yaml.SequenceNode && allPluginSpecs(root):
				for i, spec := range root.Content {
					t.Run(fmt.Sprintf("plugin%d", i), func(t *testing.T) {
						validateDoc(t, fmt.Sprintf("%s, plugin %q at line %d", where, config.MapValue(spec, "name").Value, b.line+spec.Line-1),
							name+".yaml", embedPlugin(t, spec))
					})
				}
			case root.Kind == yaml.MappingNode && config.MapValue(root, "match") != nil:
				validateDoc(t, where, name+".yaml", embedRoute(t, root))
			case root.Kind == yaml.MappingNode && hasAnyKey(root, foreignYAMLKeys):
				t.Logf("%s: another tool's YAML; parsed only", where)
			default:
				t.Fatalf("%s: not a whole config, a list of plugin specs or a route; make it one, or mark it %q and list it in partialREADMEBlocks",
					where, fragmentMarker)
			}
		})
	}
	for s := range partialREADMEBlocks {
		if !usedPartial[s] {
			t.Errorf("partialREADMEBlocks lists %q, which has no %q block any more; remove it", s, fragmentMarker)
		}
	}
}

func hasAnyKey(m *yaml.Node, keys map[string]bool) bool {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if keys[m.Content[i].Value] {
			return true
		}
	}
	return false
}

func allPluginSpecs(seq *yaml.Node) bool {
	if len(seq.Content) == 0 {
		return false
	}
	for _, item := range seq.Content {
		if item.Kind != yaml.MappingNode || config.MapValue(item, "name") == nil {
			return false
		}
	}
	return true
}

// FuzzParseYAMLBlocks checks the fence parser on arbitrary Markdown: it
// never panics, and every block it returns is text of the document on the
// lines it reports, between fences.
func FuzzParseYAMLBlocks(f *testing.F) {
	for _, seed := range []string{
		"# T\n\n```yaml\na: 1\n```\n",
		"```yml\n- x\n```\n```sh\necho\n```\n",
		"```yaml\n```\n",
		"```yaml\nunterminated\n",
		"## A\n```\n# not a heading\n```\n### B\n```yaml\n  ```x\n```\n",
		"```yaml\r\nwindows: 1\r\n```\r\n",
		"```yaml   \nk: v\n   ```   \n",
		"- item\n\n  ```yaml\n  a: 1\n   b: 2\n c: 3\n  ```\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		blocks, err := parseYAMLBlocks(doc)
		if err != nil {
			return
		}
		lines := strings.Split(string(doc), "\n")
		for _, b := range blocks {
			if b.line < 2 || b.line > len(lines)+1 {
				t.Fatalf("block line %d out of range (%d lines)", b.line, len(lines))
			}
			if !strings.HasPrefix(strings.TrimLeft(lines[b.line-2], " "), "```") {
				t.Fatalf("block at line %d does not follow a fence: %q", b.line, lines[b.line-2])
			}
			n := strings.Count(b.text, "\n")
			for i, l := range strings.SplitAfter(b.text, "\n")[:n] {
				if got := strings.TrimSuffix(lines[b.line-1+i], "\r"); !strings.HasSuffix(got, strings.TrimSuffix(l, "\n")) ||
					strings.TrimLeft(got[:len(got)-len(l)+1], " ") != "" {
					t.Fatalf("block at line %d, line %d: %q, document has %q", b.line, i, l, got)
				}
			}
		}
	})
}
