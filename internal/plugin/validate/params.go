package validate

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// kind is the JSON type a parameter's text is read as.
type kind uint8

const (
	kindString kind = iota
	kindInteger
	kindNumber
	kindBoolean
	kindArray
	kindObject
)

// kinds is a parameter schema's type and, for an array, its items' type.
type kinds struct{ top, item kind }

// param is one compiled parameter.
type param struct {
	name     string
	in       string // path, query, header, cookie
	canon    string // canonical header name
	required bool
	kinds    kinds
	// sep separates array items in one value; 0 for exploded query
	// arrays (one item per repeated parameter).
	sep    byte
	schema *jsonschema.Schema // nil: any value
}

// setStyle reads style and explode for the parameter's location.
func (p *param) setStyle(m map[string]any, k kinds) error {
	if k.top == kindObject {
		return fmt.Errorf("parameter %q: object parameters are not supported", p.name)
	}
	p.kinds = k
	style, _ := m["style"].(string)
	explode, hasExplode := m["explode"].(bool)
	switch p.in {
	case "query", "cookie":
		if style == "" {
			style = "form"
		}
		if !hasExplode {
			explode = style == "form"
		}
	default:
		if style == "" {
			style = "simple"
		}
	}
	switch style {
	case "form":
		if !explode || p.in == "cookie" {
			p.sep = ','
		}
	case "simple":
		p.sep = ','
	case "spaceDelimited":
		p.sep = ' '
	case "pipeDelimited":
		p.sep = '|'
	default:
		return fmt.Errorf("parameter %q: style %q is not supported", p.name, style)
	}
	return nil
}

// value converts a parameter's raw values to the JSON value its schema
// validates: text that does not parse as the schema's type stays a
// string, for the schema to reject with its own message.
func (p *param) value(raw []string) any {
	if p.kinds.top != kindArray {
		return scalarValue(p.kinds.top, raw[0])
	}
	var items []string
	if p.sep == 0 {
		items = raw
	} else {
		items = strings.Split(raw[0], string(p.sep))
	}
	out := make([]any, len(items))
	for i, s := range items {
		out[i] = scalarValue(p.kinds.item, s)
	}
	return out
}

func scalarValue(k kind, s string) any {
	switch k {
	case kindInteger, kindNumber:
		if isJSONNumber(s) {
			return json.Number(s)
		}
	case kindBoolean:
		switch s {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return s
}

// check validates a parameter's raw values (none when absent).
func (p *param) check(raw []string, rep *report) {
	if len(raw) == 0 {
		if p.required {
			rep.add(fieldError{Location: p.in, Name: p.name, Detail: "required " + p.in + " parameter is missing"})
		}
		return
	}
	if len(raw) > 1 && p.in == "header" && p.kinds.top == kindArray {
		// Header lines of one name are one comma-separated list.
		raw = []string{strings.Join(raw, ",")}
	}
	if len(raw) > 1 && (p.kinds.top != kindArray || p.sep != 0) {
		// Given twice, the upstream might read the value not checked.
		rep.add(fieldError{Location: p.in, Name: p.name, Detail: p.in + " parameter must be given once"})
		return
	}
	if p.schema == nil {
		return
	}
	v := p.value(raw)
	if path, bad := badNumber(v, 0); bad {
		rep.add(fieldError{Location: p.in, Name: p.name, Pointer: numberPointer(path), Detail: numberOutOfRange})
		return
	}
	if err := validate(p.schema, v); err != nil {
		rep.schemaErrors(p.in, p.name, err)
	}
}

// unescapePath decodes a path parameter value, reporting a malformed one.
func unescapePath(p *param, s string, rep *report) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		rep.add(fieldError{Location: "path", Name: p.name, Detail: "malformed percent-encoding"})
		return "", false
	}
	return u, true
}

// isJSONNumber reports whether s is a number in JSON's grammar.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || n > 1 && s[start] == '0' {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
