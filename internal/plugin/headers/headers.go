// Package headers implements the "headers" plugin, which removes, renames,
// sets and appends request and response headers.
//
// Each side (request, response) applies its operations in a fixed order:
// remove, rename, set, add. Values may contain $request_id, which expands to
// the ID of the request being served. Setting Host on the request side sets
// the request's Host (http.Request.Host), which the proxy sends upstream unless
// the route's rewrite.host says otherwise.
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
)

// RequestIDVar is the placeholder that expands to the request ID in values.
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
	// host is the value of request.set.Host, applied to http.Request.Host.
	host    string
	setHost bool
}

// Ops is the set of header operations for one side of the exchange. They run
// in the order remove, rename, set, add.
type Ops struct {
	// Set replaces every value of the named header with the given value.
	Set map[string]string `yaml:"set" secret:"values"`
	// Add appends a value to the named header, keeping existing values.
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
	// dynamic reports whether any value references $request_id.
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
	// has no $request_id; nil otherwise.
	static []string
	// parts is the value split around $request_id when static is nil.
	parts []string
}

// value returns the header value for a request whose ID is id.
func (v *valueOp) value(id string) string {
	if v.static != nil {
		return v.static[0]
	}
	if len(v.parts) == 2 && v.parts[0] == "" && v.parts[1] == "" {
		return id
	}
	return strings.Join(v.parts, id)
}

// Provision canonicalises header names and precomputes values.
func (p *Headers) Provision(plugin.Context) error {
	p.req = compile(&p.Request, true)
	p.resp = compile(&p.Response, false)
	for k, v := range p.Request.Set {
		if strings.EqualFold(k, "host") {
			p.host, p.setHost = v, true
		}
	}
	return nil
}

// compile builds the precomputed operations; it ignores what Validate rejects.
func compile(o *Ops, request bool) ops {
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
		c.set = append(c.set, newValueOp(name, o.Set[name], &c.dynamic))
	}
	for _, name := range sortedKeys(o.Add) {
		c.add = append(c.add, newValueOp(name, o.Add[name], &c.dynamic))
	}
	return c
}

func newValueOp(name, value string, dynamic *bool) valueOp {
	v := valueOp{name: http.CanonicalHeaderKey(name)}
	if strings.Contains(value, RequestIDVar) {
		v.parts = strings.Split(value, RequestIDVar)
		*dynamic = true
	} else {
		v.static = []string{value}[:1:1]
	}
	return v
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// apply runs the operations on h; id is the request ID for $request_id.
func (o *ops) apply(h http.Header, id string) {
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
		} else {
			h[v.name] = []string{v.value(id)}
		}
	}
	for i := range o.add {
		v := &o.add[i]
		old := h[v.name]
		switch {
		case len(old) == 0 && v.static != nil:
			h[v.name] = v.static
		default:
			// append copies when old is a shared value (len == cap).
			h[v.name] = append(old, v.value(id))
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
				if v == "" || strings.ContainsAny(v, " \t/") || strings.Contains(v, RequestIDVar) {
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
		id := ""
		if p.req.dynamic {
			id = requestID(r)
		}
		p.req.apply(r.Header, id)
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

// requestID returns the ID the gateway assigned to r, or "" outside the
// gateway.
func requestID(r *http.Request) string {
	if rec := request.RecordOf(r); rec != nil {
		return rec.RequestID
	}
	return ""
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
	id := ""
	if w.ops.dynamic {
		id = requestID(w.r)
	}
	w.ops.apply(h, id)
}

// Interface guards.
var (
	_ plugin.Plugin       = (*Headers)(nil)
	_ plugin.Validator    = (*Headers)(nil)
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ plugin.HeaderHook   = (*responseWriter)(nil)
)
