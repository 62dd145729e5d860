// Package layering holds the test that keeps Portico's package layering: each
// internal package may import only the Portico packages listed for it below,
// so imports point downward and nothing reaches up into the gateway, the
// admin API or the CLI. A new package, or a new import between packages,
// needs a line here, which is where the layering is reviewed.
package layering

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/portico-gw/portico/"

// allowed maps a package (path below the module, or a prefix ending in "/"
// for every package under it) to the Portico packages its non-test files
// may import. A pattern ending in "/" allows every package under it.
var allowed = map[string][]string{
	// Leaves.
	"internal/httpx":                nil,
	"internal/observe":              nil,
	"internal/buildinfo":            nil,
	"internal/echo":                 nil,
	"internal/usage":                nil,
	"internal/config":               {"internal/httpx"},
	"internal/consumer":             {"internal/config"},
	"internal/plugin/auth/claims":   {"internal/httpx"},
	"internal/plugin/auth/ttlcache": nil,
	"internal/plugin/bodytransform": {"internal/plugin", "internal/config", "internal/request"},
	"internal/plugin/compression":   {"internal/plugin", "internal/config", "internal/request"},
	"internal/plugin/cache":         {"internal/plugin", "internal/config", "internal/observe", "internal/request", "internal/httpx", "internal/reqkey", "internal/httpcache", "internal/httpcache/rediscache", "internal/redisclient"},
	"internal/observe/tracing":      {"internal/config"},
	"internal/request":              {"internal/consumer", "internal/observe/tracing"},
	"internal/reqkey":               {"internal/request", "internal/httpx"},
	"internal/httpcache":            {"internal/httpx"},
	"internal/httpcache/rediscache": {"internal/httpcache", "internal/redisclient"},
	"internal/template":             {"internal/request", "internal/reqkey"},
	"internal/redisclient":          {"internal/config", "internal/observe", "internal/usage"},
	"internal/router":               {"internal/config", "internal/observe", "internal/request", "internal/httpx"},
	"internal/upstream":             {"internal/config", "internal/observe", "internal/request", "internal/httpx", "internal/reqkey", "internal/usage"},
	"internal/proxy":                {"internal/config", "internal/observe", "internal/observe/tracing", "internal/request", "internal/httpx", "internal/upstream", "internal/template"},
	"internal/plugin":               {"internal/config", "internal/consumer", "internal/observe", "internal/request", "internal/httpx", "internal/usage"},
	"internal/control":              {"internal/config"},
	"internal/admin":                {"internal/control", "internal/config", "internal/observe", "internal/admin/dashboard", "internal/httpx", "internal/request"},
	"internal/admin/dashboard":      nil,
	"internal/gateway":              {"internal/config", "internal/observe/", "internal/observe", "internal/request", "internal/httpx", "internal/consumer", "internal/router", "internal/upstream", "internal/proxy", "internal/plugin", "internal/plugin/", "internal/buildinfo", "internal/usage", "internal/control", "internal/reqkey"},
	"internal/schema":               {"internal/config", "internal/upstream", "internal/plugin", "internal/plugin/"},
	"internal/schema/gen":           {"internal/schema"},
	// Plugins: the plugin contract and the shared leaves, never the
	// gateway, router, proxy, upstream or admin.
	"internal/plugin/": {"internal/plugin", "internal/plugin/", "internal/config", "internal/consumer", "internal/observe", "internal/request", "internal/httpx", "internal/redisclient", "internal/reqkey", "internal/template", "internal/usage"},
	// Test support may use anything below the CLI.
	"internal/testutil/": {"internal/"},
	"internal/testutil":  {"internal/"},
	"internal/layering":  nil,
}

// rule returns the allow-list for pkg: its own entry, else the longest
// "prefix/" entry covering it.
func rule(pkg string) ([]string, bool) {
	if r, ok := allowed[pkg]; ok {
		return r, true
	}
	best := ""
	for k := range allowed {
		if strings.HasSuffix(k, "/") && strings.HasPrefix(pkg, k) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return nil, false
	}
	return allowed[best], true
}

func permits(list []string, imp string) bool {
	return slices.ContainsFunc(list, func(a string) bool {
		if strings.HasSuffix(a, "/") {
			return strings.HasPrefix(imp, a)
		}
		return imp == a
	})
}

// TestLayering parses the imports of every non-test Go file under internal/
// and checks each Portico import against the allow-list.
func TestLayering(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	seen := map[string]bool{}
	checked := 0
	err := filepath.WalkDir(filepath.Join(root, "internal"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		list, ok := rule(pkg)
		if !ok {
			if !seen[pkg] {
				t.Errorf("package %s has no layering rule: add it to allowed in this file", pkg)
			}
			seen[pkg] = true
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, is := range f.Imports {
			imp := strings.Trim(is.Path.Value, `"`)
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			checked++
			if !permits(list, imp) {
				t.Errorf("%s/%s imports %s, which the layering does not allow for %s", pkg, filepath.Base(path), imp, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Fatalf("only %d Portico imports checked; is the module path %q right?", checked, module)
	}
}

// TestModulePath checks the module path the test matches imports against.
func TestModulePath(t *testing.T) {
	out, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil || !strings.HasPrefix(string(out), "module "+strings.TrimSuffix(module, "/")) {
		t.Fatalf("go.mod does not declare module %s: %v", module, err)
	}
}
