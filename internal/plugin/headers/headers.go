// Package headers implements the "headers" plugin, which removes, renames,
// sets and appends request and response headers.
//
// Each side (request, response) applies its operations in a fixed order:
// remove, rename, set, add. Values are templates (package template): they
// may take values from the request, such as ${header:X-Tenant}, ${claim:sub}
// or ${request_id}; the older spelling $request_id still expands to the
// request ID. A value with placeholders that renders empty, or would carry a
// control character, is not sent: set removes the header and add adds
// nothing. Setting Host on the request side sets the request's Host
// (http.Request.Host), which the proxy sends upstream unless the route's
// rewrite.host says otherwise.
package headers

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/template"
)

// RequestIDVar is the older spelling of ${request_id} in values; it still
// expands to the request ID.
const RequestIDVar = "$request_id"

func init() {
	plugin.Register(plugin.Spec{Name: "headers", Phase: plugin.PhaseTransform, New: func() plugin.Plugin { return new(Headers) }})
}

// Headers is the configuration of one "headers" plugin instance.
type Headers struct {
	// Request lists the operations applied to the request before it is
	// passed on.
	Request Ops `yaml:"request"`
	// Response lists the operations applied to the response headers just
	// before they are sent to the client.
	Response Ops `yaml:"response"`

	req, resp ops
	// parseErrs are the template errors Provision found, for Validate.
	parseErrs []error
	// host is the value of request.set.Host, applied to http.Request.Host.
	host    string
	setHost bool
}

// Ops is the set of header operations for one side of the exchange. They run
// in the order remove, rename, set, add.
type Ops struct {
	// Set replaces every value of the named header with the given value, a
	// template such as "${claim:sub}" (see the README's templates table).
	// A value with placeholders that renders empty, or would contain a
	// control character, removes the header instead.
	Set map[string]string `yaml:"set" secret:"values"`
	// Add appends a value to the named header, keeping existing values. The
	// value is a template; one with placeholders that renders empty, or
	// would contain a control character, adds nothing.
	Add map[string]string `yaml:"add" secret:"values"`
	// Remove deletes the named headers.
	Remove []string `yaml:"remove"`
	// Rename moves the values of a header (the key) to a new name (the value),
	// replacing any values already under the new name. Absent headers are
	// ignored.
	Rename map[string]string `yaml:"rename"`
}

func (o *Ops) empty() bool {
	return len(o.Set) == 0 && len(o.Add) == 0 && len(o.Remove) == 0 && len(o.Rename) == 0
}

// ops is the precomputed form of Ops, with canonical header names.
type ops struct {
	remove []string
	rename []renameOp
	set    []valueOp
	add    []valueOp
	// dynamic reports whether any value has placeholders.
	dynamic bool
}

func (o *ops) empty() bool {
	return len(o.remove) == 0 && len(o.rename) == 0 && len(o.set) == 0 && len(o.add) == 0
}

type renameOp struct{ from, to string }

// valueOp is one header value to set or add.
type valueOp struct {
	name string
	// static is the shared, read-only value (len == cap == 1) when the value
	// has no placeholders; nil otherwise.
	static []string
	// tmpl renders the value when static is nil.
	tmpl *template.Template
}

// Provision canonicalises header names and parses the value templates.
func (p *Headers) Provision(plugin.Context) error {
	p.parseErrs = nil
	p.req = compile(&p.Request, true, "request", &p.parseErrs)
	p.resp = compile(&p.Response, false, "response", &p.parseErrs)
	for k, v := range p.Request.Set {
		if strings.EqualFold(k, "host") {
			p.host, p.setHost = v, true
		}
	}
	return nil
}

// compile builds the precomputed operations; it ignores what Validate
// rejects, and adds template errors to errs.
func compile(o *Ops, request bool, side string, errs *[]error) ops {
	var c ops
	for _, name := range o.Remove {
		c.remove = append(c.remove, http.CanonicalHeaderKey(name))
	}
	for _, from := range sortedKeys(o.Rename) {
		c.rename = append(c.rename, renameOp{http.CanonicalHeaderKey(from), http.CanonicalHeaderKey(o.Rename[from])})
	}
	for _, name := range sortedKeys(o.Set) {
		if request && strings.EqualFold(name, "host") {
			continue
		}
		if v, err := newValueOp(name, o.Set[name], &c.dynamic); err != nil {
			*errs = append(*errs, fmt.Errorf("%s.set.%s: %w", side, name, err))
		} else {
			c.set = append(c.set, v)
		}
	}
	for _, name := range sortedKeys(o.Add) {
		if v, err := newValueOp(name, o.Add[name], &c.dynamic); err != nil {
			*errs = append(*errs, fmt.Errorf("%s.add.%s: %w", side, name, err))
		} else {
			c.add = append(c.add, v)
		}
	}
	return c
}

// newValueOp parses a value; a value Validate rejects is left static.
func newValueOp(name, value string, dynamic *bool) (valueOp, error) {
	v := valueOp{name: http.CanonicalHeaderKey(name), static: []string{value}[:1:1]}
	if invalidValue(value) != "" {
		return v, nil
	}
	t, err := template.Parse(strings.ReplaceAll(value, RequestIDVar, "${request_id}"))
	if err != nil {
		return v, err
	}
	if !t.IsConstant() {
		v.static, v.tmpl = nil, t
		*dynamic = true
	} else if t.Constant() != value {
		// ${$} escapes.
		v.static = []string{t.Constant()}[:1:1]
	}
	return v, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// apply runs the operations on h; r and rec are the request the templates
// read.
func (o *ops) apply(h http.Header, r *http.Request, rec *request.Record) {
	for _, k := range o.remove {
		delete(h, k)
	}
	for _, rn := range o.rename {
		if v, ok := h[rn.from]; ok {
			delete(h, rn.from)
			h[rn.to] = v
		}
	}
	for i := range o.set {
		v := &o.set[i]
		if v.static != nil {
			h[v.name] = v.static
		} else if s, ok := v.tmpl.Header(r, rec); ok && s != "" {
			h[v.name] = []string{s}
		} else {
			delete(h, v.name)
		}
	}
	for i := range o.add {
		v := &o.add[i]
		old := h[v.name]
		switch {
		case v.static == nil:
			if s, ok := v.tmpl.Header(r, rec); ok && s != "" {
				// append copies when old is a shared value (len == cap).
				h[v.name] = append(old, s)
			}
		case len(old) == 0:
			h[v.name] = v.static
		default:
			h[v.name] = append(old, v.static[0])
		}
	}
}

// Validate checks header names and values.
func (p *Headers) Validate() error {
	if p.Request.empty() && p.Response.empty() {
		return errors.New("nothing to do: configure at least one of request or response set, add, remove or rename")
	}
	var errs []error
	errs = validateOps(errs, "request", &p.Request, true)
	errs = validateOps(errs, "response", &p.Response, false)
	errs = append(errs, p.parseErrs...)
	return errors.Join(errs...)
}

// managed are headers the HTTP layer owns (the shared hop-by-hop set plus
// Content-Length); changing them would break message framing or connection
// handling.
var managed = func() map[string]bool {
	m := map[string]bool{"Content-Length": true}
	for _, h := range httpx.HopByHop {
		m[h] = true
	}
	return m
}()

func validateOps(errs []error, side string, o *Ops, request bool) []error {
	seen := map[string]string{}
	checkName := func(field, name string) bool {
		if !httpx.ValidToken(name) {
			errs = append(errs, fmt.Errorf("%s.%s: %q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", side, field, name))
			return false
		}
		c := http.CanonicalHeaderKey(name)
		if managed[c] {
			errs = append(errs, fmt.Errorf("%s.%s: %s is managed by the gateway and cannot be changed", side, field, c))
			return false
		}
		if c == "Host" && !(request && field == "set") {
			errs = append(errs, fmt.Errorf("%s.%s: Host can only be set, on the request side", side, field))
			return false
		}
		return true
	}
	checkDup := func(field, name string) {
		c := http.CanonicalHeaderKey(name)
		if prev, ok := seen[field+"\x00"+c]; ok && prev != name {
			errs = append(errs, fmt.Errorf("%s.%s: %q and %q name the same header", side, field, prev, name))
		}
		seen[field+"\x00"+c] = name
	}
	for i, name := range o.Remove {
		if checkName(fmt.Sprintf("remove[%d]", i), name) {
			checkDup("remove", name)
		}
	}
	targets := map[string]string{}
	for _, from := range sortedKeys(o.Rename) {
		to := o.Rename[from]
		field := "rename." + from
		if !checkName("rename", from) || !checkName(field, to) {
			continue
		}
		checkDup("rename", from)
		cf, ct := http.CanonicalHeaderKey(from), http.CanonicalHeaderKey(to)
		if cf == ct {
			errs = append(errs, fmt.Errorf("%s.%s: renames the header to itself", side, field))
			continue
		}
		if prev, ok := targets[ct]; ok {
			errs = append(errs, fmt.Errorf("%s.rename: %q and %q are both renamed to %s", side, prev, from, ct))
		}
		targets[ct] = from
	}
	for _, from := range sortedKeys(o.Rename) {
		if _, ok := targets[http.CanonicalHeaderKey(from)]; ok {
			errs = append(errs, fmt.Errorf("%s.rename.%s: %s is also a rename target; chained renames are not supported", side, from, http.CanonicalHeaderKey(from)))
		}
	}
	for _, field := range []string{"set", "add"} {
		m := o.Set
		if field == "add" {
			m = o.Add
		}
		for _, name := range sortedKeys(m) {
			if !checkName(field, name) {
				continue
			}
			checkDup(field, name)
			v := m[name]
			if msg := invalidValue(v); msg != "" {
				errs = append(errs, fmt.Errorf("%s.%s.%s: %s", side, field, name, msg))
				continue
			}
			if http.CanonicalHeaderKey(name) == "Host" {
				if v == "" || strings.ContainsAny(v, " \t/$") {
					errs = append(errs, fmt.Errorf("%s.%s.%s: %q is not a valid host", side, field, name, v))
				}
			}
		}
	}
	return errs
}

// invalidValue describes why v cannot be sent as a header value, or returns "".
func invalidValue(v string) string {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\r' || c == '\n':
			return "value must not contain CR or LF"
		case c == 0:
			return "value must not contain NUL"
		case c < ' ' && c != '\t', c == 0x7f:
			return fmt.Sprintf("value must not contain control character %#02x", c)
		}
	}
	return ""
}

// Wrap returns the handler that applies the request operations, calls next,
// and applies the response operations before the response headers are sent.
func (p *Headers) Wrap(next http.Handler) http.Handler {
	return &handler{p: p, next: next, reqOps: !p.req.empty(), respOps: !p.resp.empty()}
}

type handler struct {
	p       *Headers
	next    http.Handler
	reqOps  bool
	respOps bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := h.p
	if h.reqOps {
		var rec *request.Record
		if p.req.dynamic {
			rec = request.RecordOf(r)
		}
		p.req.apply(r.Header, r, rec)
	}
	if p.setHost {
		r.Host = p.host
	}
	if !h.respOps {
		h.next.ServeHTTP(w, r)
		return
	}
	rw := writerPool.Get().(*responseWriter)
	rw.ops, rw.r = &p.resp, r
	rw.Reset(w, rw)
	h.next.ServeHTTP(rw, r)
	// A handler that never wrote still gets an implicit 200 from the server
	// with the header map as it is now.
	rw.Finish()
	*rw = responseWriter{}
	writerPool.Put(rw)
}

var writerPool = sync.Pool{New: func() any { return new(responseWriter) }}

// responseWriter applies the response operations once, just before the
// response headers are written. It is recycled when ServeHTTP returns.
type responseWriter struct {
	plugin.HeaderWriter
	ops *ops
	r   *http.Request
}

// BeforeHeaders applies the response operations.
func (w *responseWriter) BeforeHeaders(h http.Header) {
	var rec *request.Record
	if w.ops.dynamic {
		rec = request.RecordOf(w.r)
	}
	w.ops.apply(h, w.r, rec)
}

// Interface guards.
var (
	_ plugin.Plugin       = (*Headers)(nil)
	_ plugin.Validator    = (*Headers)(nil)
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ plugin.HeaderHook   = (*responseWriter)(nil)
)
