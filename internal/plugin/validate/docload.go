package validate

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// maxDocBytes bounds a spec or schema file (and each file it references).
const maxDocBytes = 16 << 20

// document is a spec or schema file decoded into JSON values (maps, slices,
// strings, json.Number, bools, nil), with its YAML tree kept for line
// numbers in error messages.
type document struct {
	file string // absolute path
	url  string // file:// URL, the base of its relative $refs
	root *yaml.Node
	data any
}

// fileSums are the files a document was built from, by absolute path,
// with the SHA-256 of what was read.
type fileSums map[string][sha256.Size]byte

// readDocument reads and decodes a YAML or JSON file (JSON is YAML),
// recording it in sums.
func readDocument(file string, sums fileSums) (*document, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxDocBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxDocBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB", abs, maxDocBytes>>20)
	}
	sums[abs] = sha256.Sum256(raw)
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty file", abs)
		}
		// yaml.v3 errors carry "line N".
		return nil, fmt.Errorf("%s: %s", abs, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	data, err := toJSON(&root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	return &document{file: abs, url: fileURL(abs), root: &root, data: data}, nil
}

func fileURL(abs string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
}

// maxDocNodes bounds the values a document expands to, aliases included,
// so a few bytes of nested aliases cannot expand exponentially.
const maxDocNodes = 1 << 20

// toJSON converts a YAML document into the JSON value jsonschema validates
// with: numbers as json.Number, mappings with string keys only.
func toJSON(root *yaml.Node) (any, error) {
	c := converter{budget: maxDocNodes, active: map[*yaml.Node]bool{}}
	return c.value(root, 0)
}

type converter struct {
	budget int
	// active are the alias targets being expanded, to refuse cycles.
	active map[*yaml.Node]bool
}

func (c *converter) value(n *yaml.Node, depth int) (any, error) {
	if depth > 256 {
		return nil, fmt.Errorf("line %d: nested too deeply", n.Line)
	}
	if c.budget--; c.budget < 0 {
		return nil, fmt.Errorf("line %d: the document expands to more than %d values (aliases)", n.Line, maxDocNodes)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0], depth+1)
	case yaml.AliasNode:
		if c.active[n.Alias] {
			return nil, fmt.Errorf("line %d: alias *%s refers to itself", n.Line, n.Value)
		}
		c.active[n.Alias] = true
		defer delete(c.active, n.Alias)
		return c.value(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, e := range n.Content {
			v, err := c.value(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: mapping keys must be plain strings", k.Line)
			}
			v, err := c.value(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		s := strconv.FormatFloat(f, 'g', -1, 64)
		if _, err := strconv.ParseFloat(s, 64); err != nil || strings.ContainsAny(s, "IN") {
			return nil, fmt.Errorf("line %d: %q is not a JSON number", n.Line, n.Value)
		}
		return json.Number(s), nil
	}
	return n.Value, nil
}

// lineOf returns the line of the node at the JSON pointer tokens in the
// document's YAML tree, or of the deepest node found on the way; 0 when
// unknown.
func (d *document) lineOf(tokens ...string) int {
	n := d.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, t := range tokens {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == t {
					next = n.Content[i+1]
					line = n.Content[i].Line
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(t); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// localLoader loads the files a spec's $refs name: local files only. A
// network reference is refused, so loading a config never fetches from
// the network. For an OpenAPI 3.0 document, the files it references get
// the same "nullable" treatment as the document.
type localLoader struct {
	openAPI30 bool
	sums      fileSums
}

func (l localLoader) Load(u string) (any, error) {
	p, err := url.Parse(u)
	if err != nil {
		return nil, err
	}
	if p.Scheme != "file" {
		return nil, fmt.Errorf("remote reference %q refused: specs are loaded from local files only", u)
	}
	d, err := readDocument(filepath.FromSlash(p.Path), l.sums)
	if err != nil {
		return nil, err
	}
	if l.openAPI30 {
		nullable(d.data, 0)
	}
	return d.data, nil
}

// newCompiler returns a schema compiler that reads local files only and
// asserts the formats it knows (date-time, email, uuid, ipv4…; unknown
// formats such as int32 are ignored).
func newCompiler(draft *jsonschema.Draft, openAPI30 bool, sums fileSums) *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(draft)
	c.AssertFormat()
	c.UseLoader(localLoader{openAPI30: openAPI30, sums: sums})
	return c
}

// pointer renders JSON pointer tokens as a URL fragment.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
		b.WriteString(url.PathEscape(t))
	}
	return b.String()
}

// compileError puts a jsonschema compile error (which lists the failed
// metaschema checks on further lines) on one line, bounded.
func compileError(err error) error {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(strings.TrimSpace(l), "- ")
	}
	return errors.New(clipTo(strings.Join(lines, "; "), 600))
}
