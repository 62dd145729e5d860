package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

var (
	nodeType = reflect.TypeOf(yaml.Node{})
	digitsRE = regexp.MustCompile(`^[-+]?[0-9]+$`)
)

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
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		checkUnmarshaler(l, n, t, path)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		checkStruct(l, n, t, path)
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkNode(l, c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
			}
		} else if !isNull(n) {
			l.reject(n, path, "expected a list, got "+Describe(n))
		}
	case reflect.Map:
		checkMap(l, n, t, path)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8,
		reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		checkInt(l, n, t, path)
	case reflect.Float64, reflect.Float32:
		if !checkScalar(n, "!!float", "!!int") {
			l.reject(n, path, scalarMsg(n, "a number"))
		}
	case reflect.Bool:
		if !checkScalar(n, "!!bool") {
			l.reject(n, path, scalarMsg(n, "true or false"))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			l.reject(n, path, "expected a string, got "+Describe(n))
		}
	case reflect.Interface:
		// Any YAML value decodes into an interface.
	default:
		l.reject(n, path, "this value cannot be set from YAML")
	}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// reject records msg about the value n at path and, when pruning, marks n
// to be nulled.
func (l *errorList) reject(n *yaml.Node, path, msg string) {
	l.errs = append(l.errs, Error{Path: path, Line: n.Line, Msg: msg})
	if l.prune {
		l.bad = append(l.bad, n)
	}
}

// checkUnmarshaler runs a type's own UnmarshalYAML on n; the errors it
// returns are placed below path.
func checkUnmarshaler(l *errorList, n *yaml.Node, t reflect.Type, path string) {
	if isNull(n) {
		return
	}
	err := reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n)
	if err == nil {
		return
	}
	var es Errors
	if !errors.As(err, &es) {
		l.reject(n, path, err.Error())
		return
	}
	for _, e := range es {
		if e.Line == 0 {
			e.Line = n.Line
		}
		l.errs = append(l.errs, Error{Path: joinPath(path, e.Path), Line: e.Line, Msg: e.Msg})
	}
	if l.prune {
		l.bad = append(l.bad, n)
	}
}

// mapping reports whether n is a mapping, rejecting it unless it is null.
func (l *errorList) mapping(n *yaml.Node, path string) bool {
	if n.Kind == yaml.MappingNode {
		return true
	}
	if !isNull(n) {
		l.reject(n, path, "expected a mapping (key: value lines), got "+Describe(n))
	}
	return false
}

func checkStruct(l *errorList, n *yaml.Node, t reflect.Type, path string) {
	if !l.mapping(n, path) {
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
}

func checkMap(l *errorList, n *yaml.Node, t reflect.Type, path string) {
	if !l.mapping(n, path) {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode {
			l.errs = append(l.errs, Error{Path: path, Line: k.Line, Msg: "expected a name as the key, got " + Describe(k)})
			if l.prune {
				l.bad = append(l.bad, n)
			}
			return
		}
		checkNode(l, n.Content[i+1], t.Elem(), joinPath(path, k.Value))
	}
}

func checkInt(l *errorList, n *yaml.Node, t reflect.Type, path string) {
	if !checkScalar(n, "!!int") {
		if n.Tag == "!!float" && digitsRE.MatchString(n.Value) {
			l.reject(n, path, fmt.Sprintf("integer %s is out of range", n.Value))
			return
		}
		l.reject(n, path, scalarMsg(n, "an integer"))
		return
	}
	if n.Tag != "!!int" {
		return
	}
	var err error
	if t.Kind() >= reflect.Uint && t.Kind() <= reflect.Uint64 {
		_, err = strconv.ParseUint(n.Value, 0, t.Bits())
	} else {
		_, err = strconv.ParseInt(n.Value, 0, t.Bits())
	}
	if err != nil {
		l.reject(n, path, fmt.Sprintf("integer %s is out of range", n.Value))
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// Describe names a YAML value the way an error message shows it to a user:
// "a mapping", "a list", "the string \"200\"", "the integer 5", "true".
func Describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "nothing"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:37] + "..."
	}
	switch n.Tag {
	case "!!null":
		return "nothing (an empty value)"
	case "!!int":
		return "the integer " + v
	case "!!float":
		return "the number " + v
	case "!!bool":
		return "the boolean " + v
	}
	return fmt.Sprintf("the string %q", v)
}

// checkScalar reports whether n is a scalar the YAML decoder will accept for
// a field whose value must carry one of tags (or be null). A quoted scalar
// that held a ${VAR} reference (see expandEnv) is re-tagged here from its
// expanded value, so "${PORT}" decodes as the field's type; a quoted literal
// such as "50" stays a string and is rejected.
func checkScalar(n *yaml.Node, tags ...string) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	if n.Tag == "!!null" {
		return true
	}
	if n.Tag == envStrTag {
		rt := resolveTag(n.Value)
		for _, t := range tags {
			if rt == t {
				n.Tag = rt
				return true
			}
		}
		return false
	}
	for _, t := range tags {
		if n.Tag == t {
			return true
		}
	}
	return false
}

// scalarMsg describes why n is not a valid value of the wanted kind.
func scalarMsg(n *yaml.Node, want string) string {
	if n.Kind != yaml.ScalarNode {
		return fmt.Sprintf("expected %s, got %s", want, Describe(n))
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && n.Tag == "!!str" && resolveTag(n.Value) != "!!str" {
		return fmt.Sprintf("expected %s, got %s (remove the quotes)", want, Describe(n))
	}
	return fmt.Sprintf("expected %s, got %s", want, Describe(n))
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

// yamlErrors converts errors from the YAML library into located Errors in
// plain words (see humanYAML).
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
			out = append(out, Error{Path: joinPath(base, pathAtLine(root, line, errValue(sm[2]))), Line: line, Msg: humanYAML(sm[2], root == nil)})
			continue
		}
		out = append(out, Error{Path: base, Msg: humanYAML(m, root == nil)})
	}
	return out
}

var (
	typeErrRE = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `([^`]*)`)? into (\\S+)")
	yamlTagRE = regexp.MustCompile(`!!(\w+)`)
)

// humanYAML rewrites a YAML library message for a user: type errors
// ("cannot unmarshal !!str `200` into int") become "expected an integer, got
// the string \"200\"", syntax errors are said to be YAML syntax, and no tag
// (!!map) or library wording is left.
func humanYAML(m string, syntax bool) string {
	if sm := typeErrRE.FindStringSubmatch(m); sm != nil {
		got := Describe(&yaml.Node{Kind: yaml.ScalarNode, Tag: sm[1], Value: sm[2]})
		switch sm[1] {
		case "!!map":
			got = "a mapping"
		case "!!seq":
			got = "a list"
		}
		return "expected " + goTypeWord(sm[3]) + ", got " + got
	}
	m = strings.ReplaceAll(m, "unmarshal", "decode")
	m = yamlTagRE.ReplaceAllStringFunc(m, func(t string) string {
		switch t {
		case "!!map":
			return "mapping"
		case "!!seq":
			return "list"
		case "!!str":
			return "string"
		case "!!int":
			return "integer"
		case "!!float":
			return "number"
		case "!!bool":
			return "boolean"
		case "!!null":
			return "empty value"
		}
		return strings.TrimPrefix(t, "!!")
	})
	if syntax {
		return "invalid YAML: " + m
	}
	return m
}

// goTypeWord names the kind of value a Go type holds ("int" → "an integer").
func goTypeWord(t string) string {
	t = strings.TrimLeft(t, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	case strings.HasSuffix(t, "Duration"):
		return "a duration such as 10s or 250ms"
	case strings.HasSuffix(t, "Size"):
		return "a size such as 65536 or 10MiB"
	}
	return "a mapping (key: value lines)"
}

var errValueRE = regexp.MustCompile("^cannot unmarshal \\S+ `([^`]*)`")

// errValue returns the value a YAML type error quotes ("cannot unmarshal
// !!str `50` into int"), which the library cuts to 7 bytes and "..." when
// long, or "" when the message quotes none.
func errValue(msg string) string {
	if sm := errValueRE.FindStringSubmatch(msg); sm != nil {
		return sm[1]
	}
	return ""
}

// pathAtLine finds the path of the value on line that a YAML error is about.
// Several keys share a line in a flow mapping ({addr: x, max_connections: y}),
// so the scalar whose value the error quotes is preferred; without one, the
// first mapping key or sequence item on the line is used.
func pathAtLine(n *yaml.Node, line int, value string) string {
	if n == nil {
		return ""
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if value != "" {
		if p, ok := findValue(n, line, value, ""); ok {
			return p
		}
	}
	p, _ := findLine(n, line, "")
	return p
}

// findValue finds the path of the first scalar on line whose value is value
// (or starts with it, when the quoted value was cut to "abcdefg...").
func findValue(n *yaml.Node, line int, value, path string) (string, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if p, ok := findValue(n.Content[i+1], line, value, joinPath(path, n.Content[i].Value)); ok {
				return p, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p, ok := findValue(c, line, value, fmt.Sprintf("%s[%d]", path, i)); ok {
				return p, true
			}
		}
	case yaml.ScalarNode:
		if n.Line != line {
			return "", false
		}
		if n.Value == value {
			return path, true
		}
		if cut, ok := strings.CutSuffix(value, "..."); ok && len(n.Value) > 10 && strings.HasPrefix(n.Value, cut) {
			return path, true
		}
	}
	return "", false
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

// envStrTag marks a quoted scalar that held a ${VAR} reference until
// checkNode, which knows the field's type, gives it its final tag. It is a
// string tag to the YAML library, so the value decodes as a string (its value
// unchanged) wherever checkNode has not re-tagged it.
const envStrTag = "tag:yaml.org,2002:str"

// templateVars are the placeholders of request templates (headers values,
// rewrite.query values) that look like environment references: ${ip},
// ${request_id}… are left for the template, not read from the environment.
// It mirrors template.Vars (a test checks that they agree).
var templateVars = map[string]bool{"consumer": true, "consumer_name": true, "ip": true, "route": true,
	"method": true, "path": true, "host": true, "request_id": true}

var envRE = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar value with the
// environment's value ("$$" is a literal "$"), but for the templateVars. Values are expanded after
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
		expanded := false
		n.Value = envRE.ReplaceAllStringFunc(n.Value, func(m string) string {
			if m == "$$" {
				return "$"
			}
			sm := envRE.FindStringSubmatch(m)
			if templateVars[sm[1]] {
				return m
			}
			expanded = true
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
		} else if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && n.Tag == "!!str" && expanded {
			// Quoting is how a reference is written inside a flow mapping,
			// not a type: checkNode decodes the value as the field's type.
			n.Tag = envStrTag
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
