package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one configuration problem, located by YAML path and line.
type Error struct {
	// Path is the dotted YAML path, e.g. "routes[1].match.path".
	Path string
	// Line is the 1-based line in the source, or 0 when unknown.
	Line int
	// Msg says what is wrong and, where it helps, what is expected.
	Msg string
}

func (e Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config; it is returned whole so a user
// fixes them all in one pass.
type Errors []Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// errorList accumulates located errors against a document root.
type errorList struct {
	root *yaml.Node
	errs Errors
	// prune makes checkNode collect in bad every value node that cannot
	// decode, so the caller can null it and decode the rest.
	prune bool
	bad   []*yaml.Node
}

// add records msg at path, looking the line up in the document.
func (l *errorList) add(path, format string, args ...any) {
	l.errs = append(l.errs, Error{Path: path, Line: LineOf(l.root, path), Msg: fmt.Sprintf(format, args...)})
}

func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	return l.errs
}

// LineOf returns the line of the node at a dotted path such as
// "routes[2].match.path" in doc, or of its nearest existing ancestor.
func LineOf(doc *yaml.Node, path string) int {
	n := doc
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, part := range splitPath(path) {
		next, keyLine := child(n, part)
		if next == nil {
			if keyLine > 0 {
				return keyLine
			}
			return line
		}
		n, line = next, keyLine
		if line == 0 {
			line = n.Line
		}
	}
	return line
}

// splitPath splits "a.b[2].c" into ["a", "b", "[2]", "c"].
func splitPath(p string) []string {
	var out []string
	for _, seg := range strings.Split(p, ".") {
		for seg != "" {
			i := strings.IndexByte(seg, '[')
			switch {
			case i < 0:
				out = append(out, seg)
				seg = ""
			case i > 0:
				out = append(out, seg[:i])
				seg = seg[i:]
			default:
				j := strings.IndexByte(seg, ']')
				if j < 0 {
					out = append(out, seg)
					seg = ""
					continue
				}
				out = append(out, seg[:j+1])
				seg = seg[j+1:]
			}
		}
	}
	return out
}

// child returns the child node named by one path part and the line of its key.
func child(n *yaml.Node, part string) (*yaml.Node, int) {
	switch {
	case strings.HasPrefix(part, "[") && n.Kind == yaml.SequenceNode:
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || i < 0 || i >= len(n.Content) {
			return nil, 0
		}
		return n.Content[i], n.Content[i].Line
	case n.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == part {
				return n.Content[i+1], n.Content[i].Line
			}
		}
	}
	return nil, 0
}

// MapValue returns the value of key in the mapping node n, or nil when n is
// not a mapping or has no such key.
func MapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// Interface guards.
var (
	_ error = Error{}
	_ error = Errors(nil)
)
