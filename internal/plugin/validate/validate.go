// Package validate is the `request_validation` plugin: it checks requests
// against an OpenAPI 3.0 or 3.1 document (path, query, header and cookie
// parameters, JSON request bodies) or a JSON Schema (the JSON body only)
// and answers the ones that do not conform with an RFC 9457
// application/problem+json document naming each failing field, so the
// upstream never sees them.
//
// The document is read and compiled when the config is built, and read
// again on every reload (compiled again when it or a file it references
// changed; instances built from the same files share it, see shared.go);
// requests only walk the compiled path table and run the compiled
// schemas. Schemas are validated with
// github.com/santhosh-tekuri/jsonschema/v6: OpenAPI 3.1 schemas as JSON
// Schema 2020-12, OpenAPI 3.0 schemas as draft 4 with "nullable".
//
// It runs in plugin.PhaseValidate: after authentication, authorisation,
// rate limits and fault injection, before transformations, so it sees the
// request as the client sent it.
package validate

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

// RejectedMetric counts rejected requests, labelled by route and reason
// ("invalid", "unknown_operation", "too_large", "media_type").
const RejectedMetric = "portico_request_validation_rejected_total"

// DefaultMaxBody is the default bound on a validated body.
const DefaultMaxBody = 1 << 20

func init() {
	plugin.Register(plugin.Spec{Name: "request_validation", Phase: plugin.PhaseValidate, New: func() plugin.Plugin { return new(Validation) }})
}

// Validation validates requests against an OpenAPI document or a JSON
// Schema. Exactly one of openapi and json_schema is required.
type Validation struct {
	// OpenAPI is the OpenAPI 3.0 or 3.1 document (YAML or JSON) requests
	// are checked against: the operation is found by the request's method
	// and normalised path (before the route's rewrite), then its path,
	// query, header and cookie parameters and its JSON request body are
	// validated. A relative name is relative to the config file's
	// directory. $refs may name other local files (relative to the
	// document); network references are refused.
	OpenAPI string `yaml:"openapi"`
	// JSONSchema is a JSON Schema file (YAML or JSON; draft 4 to 2020-12,
	// by its $schema, default 2020-12) the JSON body of every request with
	// a body is checked against. Bodiless GET, HEAD, OPTIONS and DELETE
	// requests pass; other requests need a body.
	JSONSchema string `yaml:"json_schema"`
	// MaxBody is the largest body read for validation; a larger one is
	// answered 413. Default 1MiB.
	MaxBody config.Size `yaml:"max_body"`
	// BasePath (openapi only) is removed from the request path before it
	// is looked up in the document's paths, e.g. /api/v1 when the document's paths
	// start below it (the document's servers are not consulted). A
	// request outside it matches no operation.
	BasePath string `yaml:"base_path"`
	// Unmatched (openapi only) says what happens to a request the document
	// describes no operation for: "reject" (default: 404, or 405 with Allow when the
	// path exists but the method does not) or "pass" (sent on
	// unvalidated).
	Unmatched string `yaml:"unmatched"`
	// Skip turns off parts of the openapi check: any of path, query,
	// headers, cookies, body.
	Skip []string `yaml:"skip"`

	api      *api
	schema   *jsonschema.Schema
	maxBody  int64
	tooLarge string // detail of a 413
	release  func()
	base     string
	pass     bool
	skip     parts
	rejected [4]*observe.Counter
}

// parts are the parts of a request that can be skipped.
type parts struct{ path, query, headers, cookies, body bool }

// Rejection reasons, indexes of Validation.rejected.
const (
	reasonInvalid = iota
	reasonUnmatched
	reasonTooLarge
	reasonMediaType
)

// Provision loads and compiles the document.
func (v *Validation) Provision(ctx plugin.Context) error {
	if (v.OpenAPI == "") == (v.JSONSchema == "") {
		return errors.New("exactly one of openapi and json_schema is required, e.g. openapi: specs/orders.yaml")
	}
	if v.JSONSchema != "" && (v.BasePath != "" || v.Unmatched != "" || len(v.Skip) > 0) {
		return errors.New("base_path, unmatched and skip apply to openapi only; json_schema validates the body of every request")
	}
	v.maxBody = int64(v.MaxBody)
	if v.maxBody == 0 {
		v.maxBody = DefaultMaxBody
	}
	if v.maxBody < 0 {
		return errors.New("max_body must be a positive size, e.g. 1MiB")
	}
	v.tooLarge = fmt.Sprintf("the request body is larger than %d bytes", v.maxBody)
	switch v.Unmatched {
	case "", "reject":
	case "pass":
		v.pass = true
	default:
		return fmt.Errorf("unmatched must be reject or pass; got %q", v.Unmatched)
	}
	for _, s := range v.Skip {
		switch s {
		case "path":
			v.skip.path = true
		case "query":
			v.skip.query = true
		case "headers":
			v.skip.headers = true
		case "cookies":
			v.skip.cookies = true
		case "body":
			v.skip.body = true
		default:
			return fmt.Errorf("skip: %q is not one of path, query, headers, cookies, body", s)
		}
	}
	if v.BasePath != "" {
		if !strings.HasPrefix(v.BasePath, "/") {
			return fmt.Errorf("base_path %q must start with /", v.BasePath)
		}
		v.base = strings.TrimRight(v.BasePath, "/")
	}
	reasons := [...]string{"invalid", "unknown_operation", "too_large", "media_type"}
	for i, r := range reasons {
		v.rejected[i] = ctx.Stats().Counter(RejectedMetric, fmt.Sprintf("route=%q,reason=%q", ctx.Route(), r))
	}
	field, name := "openapi", v.OpenAPI
	if v.JSONSchema != "" {
		field, name = "json_schema", v.JSONSchema
	}
	c, release, err := acquire(ctx, field, resolveFile(ctx.ConfigDir(), name))
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	v.api, v.schema, v.release = c.api, c.schema, release
	return nil
}

// Cleanup releases the compiled document.
func (v *Validation) Cleanup() error {
	if v.release != nil {
		v.release()
		v.release = nil
	}
	return nil
}

// resolveFile makes a relative file name relative to dir.
func resolveFile(dir, name string) string {
	if dir == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name)
}

// loadJSONSchema reads and compiles a JSON Schema file, recording the
// files it reads in sums.
func loadJSONSchema(file string, sums fileSums) (*jsonschema.Schema, error) {
	doc, err := readDocument(file, sums)
	if err != nil {
		return nil, err
	}
	c := newCompiler(jsonschema.Draft2020, false, sums)
	if err := c.AddResource(doc.url, doc.data); err != nil {
		return nil, fmt.Errorf("%s: %w", doc.file, compileError(err))
	}
	s, err := c.Compile(doc.url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doc.file, compileError(err))
	}
	return s, nil
}

// Wrap returns the validator.
func (v *Validation) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v.check(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// check validates r; it answers a rejected request itself and reports
// whether r goes on.
func (v *Validation) check(w http.ResponseWriter, r *http.Request) bool {
	if v.api == nil {
		return v.checkBodyOnly(w, r)
	}
	var vals [maxPathParams]string
	path := request.RecordOf(r).PathOf(r)
	var item *pathItem
	if rest, ok := v.trimBase(path); ok {
		item = v.api.paths.match(rest, &vals)
	}
	var op *operation
	if item != nil {
		if i := methodIndex(r.Method); i >= 0 {
			op = item.ops[i]
		}
	}
	if op == nil {
		if v.pass {
			return true
		}
		v.rejected[reasonUnmatched].Inc()
		if item != nil {
			writeProblem(w, r, http.StatusMethodNotAllowed, "Method not allowed", "the API description has no "+r.Method+" operation for "+item.template, nil, item.allow)
		} else {
			writeProblem(w, r, http.StatusNotFound, "Not found", "the API description has no operation for this path", nil, "")
		}
		return false
	}
	var rep report
	v.checkParams(op, r, &vals, &rep)
	if op.body != nil && !v.skip.body {
		if !v.checkBody(w, r, op.body, &rep) {
			return false
		}
	}
	return v.verdict(w, r, &rep)
}

// verdict answers 400 when rep holds errors, and reports whether the
// request goes on.
func (v *Validation) verdict(w http.ResponseWriter, r *http.Request, rep *report) bool {
	if len(rep.errs) == 0 {
		return true
	}
	v.rejected[reasonInvalid].Inc()
	writeProblem(w, r, http.StatusBadRequest, "Request validation failed", detail(rep), rep, "")
	return false
}

// trimBase removes the base path.
func (v *Validation) trimBase(path string) (string, bool) {
	if v.base == "" {
		return path, true
	}
	rest, ok := strings.CutPrefix(path, v.base)
	if !ok || rest != "" && rest[0] != '/' {
		return "", false
	}
	if rest == "" {
		rest = "/"
	}
	return rest, true
}

// checkParams validates the operation's parameters.
func (v *Validation) checkParams(op *operation, r *http.Request, vals *[maxPathParams]string, rep *report) {
	if !v.skip.path {
		for i, p := range op.pathParams {
			if p == nil {
				continue
			}
			if s, ok := unescapePath(p, vals[i], rep); ok {
				one := [1]string{s}
				p.check(one[:], rep)
			}
		}
	}
	if len(op.query) > 0 && !v.skip.query {
		q, err := parseQuery(r.URL.RawQuery)
		if err != nil {
			rep.add(fieldError{Location: "query", Detail: "malformed query string"})
		}
		for _, p := range op.query {
			p.check(q[p.name], rep)
		}
	}
	if !v.skip.headers {
		for _, p := range op.headers {
			p.check(r.Header[p.canon], rep)
		}
	}
	if !v.skip.cookies {
		for _, p := range op.cookies {
			var raw []string
			if c, err := r.Cookie(p.name); err == nil {
				raw = []string{c.Value}
			}
			p.check(raw, rep)
		}
	}
}

// detail is the problem's summary line.
func detail(rep *report) string {
	n := len(rep.errs) + rep.omitted
	if n == 1 {
		return "1 field failed validation"
	}
	return fmt.Sprintf("%d fields failed validation", n)
}

// Interface guards.
var (
	_ plugin.Plugin  = (*Validation)(nil)
	_ plugin.Cleaner = (*Validation)(nil)
)
