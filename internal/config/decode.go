package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var nodeType = reflect.TypeOf(yaml.Node{})

// DecodeStrict decodes node into v (a pointer to a struct), failing on unknown
// fields and malformed values. Every error carries its YAML path (prefixed by
// base) and line. Plugins use it to decode their own config sections.
func DecodeStrict(node *yaml.Node, v any, base string) error {
	if node == nil || node.Kind == 0 || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return nil
	}
	l := &errorList{}
	checkNode(l, node, reflect.TypeOf(v).Elem(), base)
	if len(l.errs) > 0 {
		return l.errs
	}
	if err := node.Decode(v); err != nil {
		return yamlErrors(node, base, err)
	}
	return nil
}

// checkNode walks a YAML node against the Go type it will decode into,
// recording unknown fields and values that a typed scalar rejects.
func checkNode(l *errorList, n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType {
		return
	}
	if reflect.PointerTo(t).Implements(reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()) {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		if err := reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: err.Error()})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: "expected a mapping"})
			}
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			p := joinPath(path, k.Value)
			if !ok {
				l.errs = append(l.errs, Error{Path: p, Line: k.Line, Msg: fmt.Sprintf("unknown field %q (known: %s)", k.Value, knownList(fields))})
				continue
			}
			checkNode(l, val, f.Type, p)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkNode(l, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		} else if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: "expected a list"})
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkNode(l, n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value))
			}
		} else if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: "expected a mapping"})
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		if n.Kind != yaml.ScalarNode {
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: "expected an integer"})
		} else if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil && n.Tag != "!!null" {
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("expected an integer, got %q", n.Value)})
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!bool" && n.Tag != "!!null") {
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("expected true or false, got %q", n.Value)})
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: "expected a string"})
		}
	}
}

func joinPath(base, key string) string {
	if base == "" {
		return key
	}
	return base + "." + key
}

// yamlFields maps YAML keys to struct fields, including the fields of
// embedded structs tagged `yaml:",inline"`.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		parts := strings.Split(f.Tag.Get("yaml"), ",")
		tag := parts[0]
		if len(parts) > 1 && parts[1] == "inline" && f.Type.Kind() == reflect.Struct && (f.IsExported() || f.Anonymous) {
			for k, v := range yamlFields(f.Type) {
				m[k] = v
			}
			continue
		}
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		m[tag] = f
	}
	return m
}

func knownList(fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sortStrings(names)
	return strings.Join(names, ", ")
}

var yamlLineRE = regexp.MustCompile(`line (\d+): (.*)`)

// yamlErrors converts errors from the YAML library into located Errors.
func yamlErrors(root *yaml.Node, base string, err error) error {
	var msgs []string
	if te, ok := err.(*yaml.TypeError); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out Errors
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			line, _ := strconv.Atoi(sm[1])
			out = append(out, Error{Path: joinPath(base, pathAtLine(root, line)), Line: line, Msg: sm[2]})
			continue
		}
		out = append(out, Error{Path: base, Msg: m})
	}
	return out
}

// pathAtLine finds the path of the first mapping key or sequence item on line.
func pathAtLine(n *yaml.Node, line int) string {
	if n == nil {
		return ""
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	p, _ := findLine(n, line, "")
	return p
}

func findLine(n *yaml.Node, line int, path string) (string, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinPath(path, k.Value)
			if k.Line == line {
				if sub, ok := findLine(v, line, p); ok {
					return sub, true
				}
				return p, true
			}
			if sub, ok := findLine(v, line, p); ok {
				return sub, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if sub, ok := findLine(c, line, fmt.Sprintf("%s[%d]", path, i)); ok {
				return sub, true
			}
		}
		if n.Line == line {
			return path, true
		}
	case yaml.ScalarNode:
		if n.Line == line {
			return path, true
		}
	}
	return "", false
}

var envRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar value with the
// environment's value ("$$" is a literal "$"). Values are expanded after
// parsing, so a variable can never inject YAML structure.
func expandEnv(l *errorList, n *yaml.Node, path string, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			expandEnv(l, c, path, lookup)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			expandEnv(l, n.Content[i+1], joinPath(path, n.Content[i].Value), lookup)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			expandEnv(l, c, fmt.Sprintf("%s[%d]", path, i), lookup)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		n.Value = envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			sm := envRE.FindStringSubmatch(m)
			if v, ok := lookup(sm[1]); ok && v != "" {
				return v
			}
			if sm[2] != "" {
				return sm[3]
			}
			l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: fmt.Sprintf("environment variable %s is not set (use ${%s:-default} for a fallback)", sm[1], sm[1])})
			return ""
		})
		if n.Style == 0 {
			n.Tag = resolveTag(n.Value)
		}
	}
}

// resolveTag re-derives the implicit tag of a plain scalar after expansion.
func resolveTag(v string) string {
	var x any
	if err := yaml.Unmarshal([]byte(v), &x); err == nil {
		switch x.(type) {
		case int, int64, uint64:
			return "!!int"
		case bool:
			return "!!bool"
		case float64:
			return "!!float"
		case nil:
			return "!!null"
		}
	}
	return "!!str"
}
