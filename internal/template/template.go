// Package template is Portico's value templates: text with placeholders
// that take their values from the request being served, parsed once when a
// configuration loads and rendered per request. The headers plugin and the
// route rewrite (query values) use them.
//
// Placeholders reuse the request-key grammar (package reqkey), so a user
// learns one set of names:
//
//	${param:<name>}   a path parameter of the route template, decoded
//	${query:<name>}   the first value of the query parameter, decoded
//	${header:<Name>}  the first value of the request header
//	${cookie:<name>}  the value of the cookie
//	${claim:<name>}   a claim of the token that authenticated the consumer
//	${consumer}       the authenticated consumer's ID
//	${consumer_name}  the authenticated consumer's name
//	${ip}             the client IP (trusted-proxy aware)
//	${route}          the route name
//	${method}         the request method
//	${path}           the normalised request path
//	${host}           the request's Host
//	${request_id}     the request ID
//
// A placeholder with no value (an absent header, no consumer, an anonymous
// consumer) renders as "", or as its default when it has one:
// ${header:X-Tenant|public}. The default is literal text up to the closing
// brace; a name therefore cannot contain '|' or '}'. ${$} is a literal '$'
// (write ${$}{ for a literal "${"); any other '$' is literal text.
//
// Rendering escapes for where the text goes: Header refuses a value holding
// a control character (so no request can inject a header), AppendQuery
// query-escapes the whole value, and path templates (ParsePath) insert
// route parameters as path segments that cannot climb out of their place.
package template

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// MaxLen is the longest template source accepted.
const MaxLen = 4096

// Valid lists the placeholder forms, for messages.
const Valid = "param:<name>, query:<name>, header:<Name>, cookie:<name>, claim:<name>, consumer, consumer_name, ip, route, method, path, host, request_id"

// Vars are the placeholders without a name part. The configuration loader
// leaves ${<var>} for them alone instead of reading an environment variable.
var Vars = []string{"consumer", "consumer_name", "ip", "route", "method", "path", "host", "request_id"}

// kind is what a template part renders.
type kind uint8

const (
	kindLit          kind = iota
	kindKey               // a one-part request key (reqkey.Key.Value)
	kindParam             // a path parameter, decoded
	kindIP                // the client IP
	kindRequestID         // the request ID
	kindConsumerName      // the consumer's name
	kindHost              // the request Host
)

// part is a literal or a placeholder.
type part struct {
	kind kind
	// lit is the literal text (kindLit) or the default of a placeholder.
	lit    string
	hasDef bool
	key    reqkey.Key
	name   string
}

// Template is a parsed value template. It is immutable and safe for
// concurrent use.
type Template struct {
	src   string
	parts []part
	// constant is the rendered text of a template without placeholders.
	constant string
	isConst  bool
	// queryConst is constant query-escaped.
	queryConst string
}

// Parse parses a value template. Errors name the byte position of the bad
// placeholder and the valid forms.
func Parse(src string) (*Template, error) {
	if len(src) > MaxLen {
		return nil, fmt.Errorf("template longer than %d bytes", MaxLen)
	}
	if i := ctlIndex(src); i >= 0 {
		return nil, fmt.Errorf("position %d: control character %#02x is not allowed", i, src[i])
	}
	t := &Template{src: src}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{kind: kindLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); {
		if src[i] != '$' || i+1 >= len(src) || src[i+1] != '{' {
			lit.WriteByte(src[i])
			i++
			continue
		}
		end := strings.IndexByte(src[i+2:], '}')
		if end < 0 {
			return nil, fmt.Errorf("position %d: \"${\" without a closing \"}\" (write ${$}{ for a literal \"${\")", i)
		}
		inner := src[i+2 : i+2+end]
		if inner == "$" {
			lit.WriteByte('$')
		} else {
			p, err := parsePlaceholder(inner)
			if err != nil {
				return nil, fmt.Errorf("position %d: ${%s}: %w", i, inner, err)
			}
			flush()
			t.parts = append(t.parts, p)
		}
		i += end + 3
	}
	flush()
	switch {
	case len(t.parts) == 0:
		t.isConst = true
	case len(t.parts) == 1 && t.parts[0].kind == kindLit:
		t.isConst, t.constant = true, t.parts[0].lit
	}
	if t.isConst {
		t.parts = nil
		t.queryConst = url.QueryEscape(t.constant)
	}
	return t, nil
}

// MustParse is Parse for templates known to be valid; it panics otherwise.
func MustParse(src string) *Template {
	t, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return t
}

func parsePlaceholder(inner string) (part, error) {
	spec, def, hasDef := strings.Cut(inner, "|")
	p := part{lit: def, hasDef: hasDef}
	switch spec {
	case "":
		return part{}, errors.New("empty placeholder (valid: " + Valid + ")")
	case "ip":
		p.kind = kindIP
		return p, nil
	case "request_id":
		p.kind = kindRequestID
		return p, nil
	case "consumer_name":
		p.kind = kindConsumerName
		return p, nil
	case "host":
		p.kind = kindHost
		return p, nil
	}
	if name, ok := strings.CutPrefix(spec, "param:"); ok {
		if !validParamName(name) {
			return part{}, fmt.Errorf("parameter name %q must be letters, digits and _ (as in the route's {name})", name)
		}
		p.kind, p.name = kindParam, name
		return p, nil
	}
	if spec != strings.TrimSpace(spec) {
		return part{}, errors.New("spaces around the placeholder name are not allowed")
	}
	if !strings.Contains(spec, ":") && spec != "consumer" && spec != "route" && spec != "method" && spec != "path" {
		return part{}, fmt.Errorf("unknown placeholder %q (valid: %s)", spec, Valid)
	}
	k, err := reqkey.Parse([]string{spec})
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "key[0]: ")
		if strings.HasPrefix(msg, "unknown key part") {
			return part{}, fmt.Errorf("unknown placeholder %q (valid: %s)", spec, Valid)
		}
		return part{}, errors.New(msg)
	}
	p.kind, p.key = kindKey, k
	return p, nil
}

// validParamName reports whether s is a route template parameter name.
func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// String is the template's source.
func (t *Template) String() string { return t.src }

// IsConstant reports whether the template has no placeholders.
func (t *Template) IsConstant() bool { return t.isConst }

// Constant is the text of a template without placeholders ("" otherwise).
func (t *Template) Constant() string { return t.constant }

// Params lists the path parameters the template reads, for checking them
// against the route's match.path.
func (t *Template) Params() []string {
	var names []string
	for i := range t.parts {
		if t.parts[i].kind == kindParam {
			names = append(names, t.parts[i].name)
		}
	}
	return names
}

// Append appends the rendered text, unescaped, to dst. Header and
// AppendQuery are what callers that send the text somewhere use.
func (t *Template) Append(dst []byte, r *http.Request, rec *request.Record) []byte {
	return t.render(dst, r, rec, false)
}

// Header renders the template as a header value. A template without
// placeholders returns its constant without allocating; otherwise the value
// is the one allocation. ok is false when the value would contain a control
// character (CR, LF, NUL, DEL or another CTL but horizontal tab): such a
// value must not be sent.
func (t *Template) Header(r *http.Request, rec *request.Record) (v string, ok bool) {
	if t.isConst {
		return t.constant, true
	}
	var buf [256]byte
	b := t.Append(buf[:0], r, rec)
	if ctlIndex(b) >= 0 {
		return "", false
	}
	return string(b), true
}

// AppendQuery appends the rendered text query-escaped (as url.QueryEscape
// does: a value can never add a parameter or end the query).
func (t *Template) AppendQuery(dst []byte, r *http.Request, rec *request.Record) []byte {
	return t.render(dst, r, rec, true)
}

// render appends the rendered text, query-escaped when query is set.
func (t *Template) render(dst []byte, r *http.Request, rec *request.Record, query bool) []byte {
	if t.isConst {
		if query {
			return append(dst, t.queryConst...)
		}
		return append(dst, t.constant...)
	}
	for i := range t.parts {
		dst = t.parts[i].append(dst, r, rec, query)
	}
	return dst
}

// append appends the part's text, query-escaped when query is set.
func (p *part) append(dst []byte, r *http.Request, rec *request.Record, query bool) []byte {
	if p.kind == kindLit {
		return appendMaybeQuery(dst, p.lit, query)
	}
	if p.kind == kindIP {
		a := reqkey.ClientIP(r, rec)
		if !a.IsValid() {
			return appendMaybeQuery(dst, p.lit, query)
		}
		if !query || a.Zone() == "" {
			// Addresses are digits, hex letters, '.' and ':', which a
			// query value carries as they are.
			return a.AppendTo(dst)
		}
		return appendQueryEscaped(dst, a.String())
	}
	v, ok := p.value(r, rec)
	if !ok {
		v = p.lit
	}
	return appendMaybeQuery(dst, v, query)
}

// value is the placeholder's value; ok is false when it has none. It is not
// used for ip parts.
func (p *part) value(r *http.Request, rec *request.Record) (string, bool) {
	switch p.kind {
	case kindKey:
		return p.key.Value(r, rec)
	case kindParam:
		if rec == nil {
			return "", false
		}
		v, ok := rec.Params.Get(p.name)
		if !ok || v == "" {
			return "", false
		}
		if strings.IndexByte(v, '%') >= 0 {
			if dv, err := url.PathUnescape(v); err == nil {
				v = dv
			}
		}
		return v, true
	case kindRequestID:
		if rec != nil && rec.RequestID != "" {
			return rec.RequestID, true
		}
	case kindConsumerName:
		if _, ok := reqkey.Consumer(rec); ok && rec.Consumer.Name != "" {
			return rec.Consumer.Name, true
		}
	case kindHost:
		if r.Host != "" {
			return r.Host, true
		}
	}
	return "", false
}

func appendMaybeQuery(dst []byte, s string, query bool) []byte {
	if query {
		return appendQueryEscaped(dst, s)
	}
	return append(dst, s...)
}

const upperHex = "0123456789ABCDEF"

// appendQueryEscaped appends s escaped as url.QueryEscape does.
func appendQueryEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// ctlIndex is the index of the first byte a header value must not carry
// (control characters but horizontal tab, and DEL), or -1.
func ctlIndex[T string | []byte](s T) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return i
		}
	}
	return -1
}
