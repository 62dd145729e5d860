package validate

import (
	"errors"
	"fmt"
	"net/textproto"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// methods are the operation fields of an OpenAPI path item, in the order
// of their index in pathItem.ops.
var methods = [...]string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// methodIndex returns the index of an HTTP method in methods, or -1.
func methodIndex(m string) int {
	switch m {
	case "GET":
		return 0
	case "PUT":
		return 1
	case "POST":
		return 2
	case "DELETE":
		return 3
	case "OPTIONS":
		return 4
	case "HEAD":
		return 5
	case "PATCH":
		return 6
	case "TRACE":
		return 7
	}
	return -1
}

// api is a compiled OpenAPI document: the path table and, per path and
// method, what a request must satisfy.
type api struct {
	paths *node
}

// pathItem is one templated path of the document.
type pathItem struct {
	template string
	ops      [len(methods)]*operation
	// allow is the Allow header of a 405 for this path.
	allow string
}

// operation is what one method on one path requires of a request.
type operation struct {
	pathParams []*param // in template order
	query      []*param
	headers    []*param
	cookies    []*param
	body       *requestBody
}

// requestBody is an operation's requestBody.
type requestBody struct {
	required bool
	media    []media
	// accepted lists the media types for a 415's detail.
	accepted string
}

// media is one entry of a requestBody's content map.
type media struct {
	// typ is the lower-case media range: "application/json",
	// "application/*" or "*/*".
	typ    string
	schema *jsonschema.Schema // nil: the body is not validated
}

// openAPI is the loading state of one document.
type openAPI struct {
	doc    *document
	root   map[string]any
	comp   *jsonschema.Compiler
	is30   bool
	params map[string]*param // compiled parameters by resolved location
}

// loadOpenAPI reads, resolves and compiles an OpenAPI 3.0 or 3.1 document,
// recording the files it reads in sums.
func loadOpenAPI(file string, sums fileSums) (*api, error) {
	doc, err := readDocument(file, sums)
	if err != nil {
		return nil, err
	}
	root, ok := doc.data.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: not an OpenAPI document (the top level is not a mapping)", doc.file)
	}
	version, _ := root["openapi"].(string)
	o := &openAPI{doc: doc, root: root, params: map[string]*param{}}
	switch {
	case strings.HasPrefix(version, "3.0."):
		o.is30 = true
		// OpenAPI 3.0 schemas are a JSON Schema draft 4/5 dialect whose
		// "nullable: true" becomes a "null" type here.
		nullable(root, 0)
		o.comp = newCompiler(jsonschema.Draft4, true, sums)
	case strings.HasPrefix(version, "3.1."):
		o.comp = newCompiler(jsonschema.Draft2020, false, sums)
	default:
		return nil, fmt.Errorf("%s line %d: openapi version %q is not supported; want 3.0.x or 3.1.x", doc.file, doc.lineOf("openapi"), version)
	}
	if err := o.comp.AddResource(doc.url, root); err != nil {
		return nil, fmt.Errorf("%s: %w", doc.file, compileError(err))
	}
	paths, ok := root["paths"].(map[string]any)
	if !ok || len(paths) == 0 {
		return nil, fmt.Errorf("%s line %d: the document has no paths", doc.file, doc.lineOf("paths"))
	}
	a := &api{paths: &node{}}
	keys := make([]string, 0, len(paths))
	for k := range paths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		item, err := o.pathItem(k, paths[k])
		if err != nil {
			return nil, fmt.Errorf("%s line %d: paths.%s: %w", doc.file, errorLine(err, doc.lineOf("paths", k)), k, err)
		}
		if err := a.paths.insert(k, item); err != nil {
			return nil, fmt.Errorf("%s line %d: paths.%s: %w", doc.file, doc.lineOf("paths", k), k, err)
		}
	}
	return a, nil
}

// nullable rewrites OpenAPI 3.0's "nullable: true" next to a "type" into
// a type list with "null", for the draft 4 validator, and drops empty
// "required" lists, which OpenAPI 3.0 tools write and draft 4 forbids.
func nullable(v any, depth int) {
	if depth > 256 {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		if r, ok := v["required"].([]any); ok && len(r) == 0 {
			delete(v, "required")
		}
		if n, _ := v["nullable"].(bool); n {
			if t, ok := v["type"].(string); ok {
				v["type"] = []any{t, "null"}
			}
			if e, ok := v["enum"].([]any); ok {
				v["enum"] = append(e, nil)
			}
		}
		for _, c := range v {
			nullable(c, depth+1)
		}
	case []any:
		for _, c := range v {
			nullable(c, depth+1)
		}
	}
}

// resolve follows local $refs ("#/…") from v at loc, returning the object
// found and its location.
func (o *openAPI) resolve(v any, loc []string) (map[string]any, []string, error) {
	for range 32 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, loc, fmt.Errorf("%s: expected a mapping", pointer(loc...))
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, loc, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil, loc, fmt.Errorf("%s: $ref %q: only references within the document (#/…) are supported here", pointer(loc...), ref)
		}
		loc = splitPointer(ref[1:])
		v = o.lookup(loc)
		if v == nil {
			return nil, loc, fmt.Errorf("$ref %q does not resolve", ref)
		}
	}
	return nil, loc, fmt.Errorf("%s: $ref chain too long", pointer(loc...))
}

// lookup returns the value at the pointer tokens, or nil.
func (o *openAPI) lookup(tokens []string) any {
	var v any = o.root
	for _, t := range tokens {
		switch c := v.(type) {
		case map[string]any:
			v = c[t]
		case []any:
			var i int
			if _, err := fmt.Sscanf(t, "%d", &i); err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

// splitPointer splits a JSON pointer ("/a/b~1c") into unescaped tokens.
func splitPointer(p string) []string {
	if p == "" || p == "/" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	return parts
}

// compile compiles the schema at the pointer tokens of the document.
func (o *openAPI) compile(loc []string) (*jsonschema.Schema, error) {
	s, err := o.comp.Compile(o.doc.url + "#" + pointer(loc...))
	if err != nil {
		return nil, &lineError{line: o.doc.lineOf(loc...), err: compileError(err)}
	}
	return s, nil
}

// lineError is a problem at a known line of the document, deeper than
// the path entry it is reported under.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return e.err.Error() }

// errorLine is the line to report err at: its own, else the path entry's.
func errorLine(err error, entry int) int {
	if le, ok := errors.AsType[*lineError](err); ok && le.line > 0 {
		return le.line
	}
	return entry
}

// pathItem compiles one entry of paths.
func (o *openAPI) pathItem(template string, v any) (*pathItem, error) {
	m, loc, err := o.resolve(v, []string{"paths", template})
	if err != nil {
		return nil, err
	}
	names, err := templateParams(template)
	if err != nil {
		return nil, err
	}
	shared, err := o.paramList(m["parameters"], append(loc[:len(loc):len(loc)], "parameters"))
	if err != nil {
		return nil, err
	}
	item := &pathItem{template: template}
	var allow []string
	for i, meth := range methods {
		opv, ok := m[meth]
		if !ok {
			continue
		}
		opm, ok := opv.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: expected a mapping", meth)
		}
		op, err := o.operation(opm, append(loc[:len(loc):len(loc)], meth), shared, names)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", meth, err)
		}
		item.ops[i] = op
		allow = append(allow, strings.ToUpper(meth))
	}
	if item.ops[5] == nil && item.ops[0] != nil {
		// HEAD is GET without a body.
		item.ops[5] = item.ops[0]
		allow = append(allow, "HEAD")
	}
	item.allow = strings.Join(allow, ", ")
	return item, nil
}

// operation compiles one operation of a path item; shared are the path
// item's parameters, which the operation's own override by name and in.
func (o *openAPI) operation(m map[string]any, loc []string, shared []*param, names []string) (*operation, error) {
	own, err := o.paramList(m["parameters"], append(loc[:len(loc):len(loc)], "parameters"))
	if err != nil {
		return nil, err
	}
	all := append([]*param(nil), own...)
	for _, s := range shared {
		overridden := false
		for _, p := range own {
			if p.in == s.in && strings.EqualFold(p.name, s.name) {
				overridden = true
			}
		}
		if !overridden {
			all = append(all, s)
		}
	}
	op := &operation{pathParams: make([]*param, len(names))}
	for _, p := range all {
		switch p.in {
		case "path":
			i := indexOf(names, p.name)
			if i < 0 {
				return nil, fmt.Errorf("path parameter %q is not in the path template", p.name)
			}
			op.pathParams[i] = p
		case "query":
			op.query = append(op.query, p)
		case "header":
			op.headers = append(op.headers, p)
		case "cookie":
			op.cookies = append(op.cookies, p)
		}
	}
	if rb, ok := m["requestBody"]; ok {
		if op.body, err = o.requestBody(rb, append(loc[:len(loc):len(loc)], "requestBody")); err != nil {
			return nil, fmt.Errorf("requestBody: %w", err)
		}
	}
	return op, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// paramList compiles a parameters list.
func (o *openAPI) paramList(v any, loc []string) ([]*param, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("parameters: expected a list")
	}
	var out []*param
	for i, e := range list {
		p, err := o.param(e, append(loc[:len(loc):len(loc)], fmt.Sprint(i)))
		if err != nil {
			return nil, fmt.Errorf("parameters[%d]: %w", i, err)
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// ignoredHeaders are header parameters OpenAPI says to ignore.
var ignoredHeaders = map[string]bool{"Accept": true, "Content-Type": true, "Authorization": true}

// param compiles one parameter; nil for one OpenAPI says to ignore.
func (o *openAPI) param(v any, loc []string) (*param, error) {
	m, loc, err := o.resolve(v, loc)
	if err != nil {
		return nil, err
	}
	key := pointer(loc...)
	if p, ok := o.params[key]; ok {
		return p, nil
	}
	p := &param{}
	p.name, _ = m["name"].(string)
	p.in, _ = m["in"].(string)
	p.required, _ = m["required"].(bool)
	if p.name == "" {
		return nil, &lineError{line: o.doc.lineOf(loc...), err: errors.New("name is required")}
	}
	switch p.in {
	case "path":
		if !p.required {
			return nil, &lineError{line: o.doc.lineOf(loc...), err: fmt.Errorf("path parameter %q must be required: true", p.name)}
		}
	case "header":
		p.canon = textproto.CanonicalMIMEHeaderKey(p.name)
		if ignoredHeaders[p.canon] {
			return nil, nil
		}
	case "query", "cookie":
	default:
		return nil, &lineError{line: o.doc.lineOf(loc...), err: fmt.Errorf("in: %q is not one of path, query, header, cookie", p.in)}
	}
	if _, ok := m["content"]; ok {
		return nil, &lineError{line: o.doc.lineOf(loc...), err: fmt.Errorf("parameter %q: parameters described with content (not schema) are not supported", p.name)}
	}
	sch, ok := m["schema"]
	if !ok {
		o.params[key] = p
		return p, nil // any value
	}
	if err := p.setStyle(m, o.schemaKind(sch, 0)); err != nil {
		return nil, &lineError{line: o.doc.lineOf(loc...), err: err}
	}
	if p.schema, err = o.compile(append(loc[:len(loc):len(loc)], "schema")); err != nil {
		return nil, err
	}
	o.params[key] = p
	return p, nil
}

// schemaKind is the JSON type a parameter's string is converted to, read
// from the schema's type (local references followed).
func (o *openAPI) schemaKind(v any, depth int) kinds {
	m, _, err := o.resolve(v, nil)
	if err != nil || depth > 8 {
		return kinds{}
	}
	k := kinds{top: typeOf(m["type"])}
	if k.top == kindArray {
		if it, ok := m["items"]; ok {
			k.item = o.schemaKind(it, depth+1).top
		}
	}
	return k
}

// typeOf maps a schema's type (a name or, in 3.1, a list) to a kind.
func typeOf(t any) kind {
	var names []any
	switch t := t.(type) {
	case string:
		names = []any{t}
	case []any:
		names = t
	}
	for _, n := range names {
		switch n {
		case "integer":
			return kindInteger
		case "number":
			return kindNumber
		case "boolean":
			return kindBoolean
		case "array":
			return kindArray
		case "object":
			return kindObject
		case "string":
			return kindString
		}
	}
	return kindString
}

// requestBody compiles an operation's requestBody.
func (o *openAPI) requestBody(v any, loc []string) (*requestBody, error) {
	m, loc, err := o.resolve(v, loc)
	if err != nil {
		return nil, err
	}
	rb := &requestBody{}
	rb.required, _ = m["required"].(bool)
	content, _ := m["content"].(map[string]any)
	if len(content) == 0 {
		return nil, fmt.Errorf("content is required")
	}
	keys := make([]string, 0, len(content))
	for k := range content {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		typ := strings.ToLower(strings.TrimSpace(k))
		if i := strings.IndexByte(typ, ';'); i >= 0 {
			typ = strings.TrimSpace(typ[:i])
		}
		md := media{typ: typ}
		mm, _ := content[k].(map[string]any)
		if _, ok := mm["schema"]; ok && isJSON(typ) {
			if md.schema, err = o.compile(append(loc[:len(loc):len(loc)], "content", k, "schema")); err != nil {
				return nil, err
			}
		}
		rb.media = append(rb.media, md)
	}
	rb.accepted = strings.Join(keys, ", ")
	return rb, nil
}

// isJSON reports whether a lower-case media type (or range) is JSON:
// application/json, any +json type, or a range that admits them.
func isJSON(typ string) bool {
	return typ == "application/json" || strings.HasSuffix(typ, "+json") || typ == "application/*" || typ == "*/*"
}

// templateParams returns the parameter names of a path template in order.
func templateParams(template string) ([]string, error) {
	if !strings.HasPrefix(template, "/") {
		return nil, fmt.Errorf("a path must start with /")
	}
	var names []string
	for seg := range strings.SplitSeq(template[1:], "/") {
		_, name, _, err := splitSegment(seg)
		if err != nil {
			return nil, err
		}
		if name != "" {
			if indexOf(names, name) >= 0 {
				return nil, fmt.Errorf("parameter {%s} appears twice", name)
			}
			names = append(names, name)
		}
	}
	if len(names) > maxPathParams {
		return nil, fmt.Errorf("more than %d path parameters", maxPathParams)
	}
	return names, nil
}
