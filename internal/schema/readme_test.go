package schema

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// topLevel are the keys of a whole config file.
var topLevel = map[string]bool{"server": true, "admin": true, "log": true, "upstreams": true,
	"routes": true, "consumers": true, "plugins": true, "tracing": true}

// TestSchemaREADME checks every README YAML block written as a whole
// config (a mapping of top-level config keys only) against the schema, so
// what the docs show is never flagged by an editor.
func TestSchemaREADME(t *testing.T) {
	sch := compiledSchema(t)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, m := range yamlBlock.FindAllStringSubmatch(string(readme), -1) {
		var top map[string]any
		if yaml.Unmarshal([]byte(m[1]), &top) != nil || len(top) == 0 {
			continue
		}
		whole := true
		for k := range top {
			whole = whole && topLevel[k]
		}
		if !whole {
			continue
		}
		checked++
		if err := sch.Validate(yamlToJSON(t, m[1])); err != nil {
			first, _, _ := strings.Cut(strings.TrimSpace(m[1]), "\n")
			t.Errorf("README block starting %q does not match the schema:\n%v", first, err)
		}
	}
	if checked < 5 {
		t.Fatalf("only %d README config blocks found", checked)
	}
	t.Logf("%d README config blocks checked", checked)
}
