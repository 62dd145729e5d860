package validate

import (
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	jskind "github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/portico-gw/portico/internal/request"
)

// Bounds of a problem response, so an answer never grows with the input.
const (
	// MaxErrors is the most field errors one answer lists.
	MaxErrors = 20
	// maxDetail clips each message (and pointer) in bytes.
	maxDetail = 200
)

// ProblemType is the "type" of the gateway's validation problems: the
// README section that documents them.
const ProblemType = "https://github.com/portico-gw/portico#request_validation-phase-validate"

var printer = message.NewPrinter(language.English)

// fieldError is one entry of a problem's "errors" list.
type fieldError struct {
	// Location is path, query, header, cookie or body.
	Location string
	// Name is the parameter's name (parameters only).
	Name string
	// Pointer is the JSON pointer of the failing value in the body (or in
	// an array parameter).
	Pointer string
	Detail  string
}

// report collects the field errors of one request, up to MaxErrors.
type report struct {
	errs    []fieldError
	omitted int
}

func (r *report) add(e fieldError) {
	if len(r.errs) >= MaxErrors {
		r.omitted++
		return
	}
	e.Detail = clip(e.Detail)
	e.Pointer = clip(e.Pointer)
	r.errs = append(r.errs, e)
}

// schemaErrors adds the leaf errors of a schema validation failure.
func (r *report) schemaErrors(location, name string, err error) {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		r.add(fieldError{Location: location, Name: name, Detail: err.Error()})
		return
	}
	r.leaves(location, name, ve, 0)
}

func (r *report) leaves(location, name string, ve *jsonschema.ValidationError, depth int) {
	if len(ve.Causes) > 0 && depth < 32 {
		for _, c := range ve.Causes {
			r.leaves(location, name, c, depth+1)
		}
		return
	}
	ptr := instancePointer(ve.InstanceLocation)
	switch k := ve.ErrorKind.(type) {
	case *jskind.Required:
		for _, m := range k.Missing {
			r.add(fieldError{Location: location, Name: name, Pointer: ptr + "/" + escapeToken(m), Detail: "required property is missing"})
		}
		return
	case *jskind.AdditionalProperties:
		for _, p := range k.Properties {
			r.add(fieldError{Location: location, Name: name, Pointer: ptr + "/" + escapeToken(p), Detail: "property is not allowed"})
		}
		return
	}
	r.add(fieldError{Location: location, Name: name, Pointer: ptr, Detail: leafMessage(ve.ErrorKind)})
}

// leafMessage describes a failed keyword without echoing the client's
// value where the keyword would (enum, const, pattern).
func leafMessage(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *jskind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprintf("%v", jsonText(w))
		}
		return "must be one of " + strings.Join(want, ", ")
	case *jskind.Const:
		return "must be " + jsonText(k.Want)
	case *jskind.Pattern:
		return "does not match pattern " + k.Want
	case *jskind.Format:
		return "is not a valid " + k.Want
	case *jskind.Type:
		return "must be " + strings.Join(k.Want, " or ") + ", got " + k.Got
	case *jskind.Minimum:
		return "must be >= " + ratText(k.Want)
	case *jskind.Maximum:
		return "must be <= " + ratText(k.Want)
	case *jskind.ExclusiveMinimum:
		return "must be > " + ratText(k.Want)
	case *jskind.ExclusiveMaximum:
		return "must be < " + ratText(k.Want)
	case *jskind.MultipleOf:
		return "must be a multiple of " + ratText(k.Want)
	case *jskind.MinLength:
		return "must be at least " + count(k.Want, "character") + " long"
	case *jskind.MaxLength:
		return "must be at most " + count(k.Want, "character") + " long"
	case *jskind.MinItems:
		return "must have at least " + count(k.Want, "item")
	case *jskind.MaxItems:
		return "must have at most " + count(k.Want, "item")
	case *jskind.MinProperties:
		return "must have at least " + count(k.Want, "property")
	case *jskind.MaxProperties:
		return "must have at most " + count(k.Want, "property")
	}
	return k.LocalizedString(printer)
}

// count writes n things: "1 item", "3 items", "2 properties".
func count(n int, thing string) string {
	if n != 1 {
		if t, ok := strings.CutSuffix(thing, "y"); ok {
			thing = t + "ie"
		}
		thing += "s"
	}
	return strconv.Itoa(n) + " " + thing
}

// ratText writes a schema's bound as a plain number.
func ratText(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func jsonText(v any) string {
	if v == nil {
		return "null"
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func instancePointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	var b strings.Builder
	for _, t := range loc {
		b.WriteByte('/')
		b.WriteString(escapeToken(t))
	}
	return b.String()
}

func escapeToken(t string) string {
	if strings.ContainsAny(t, "~/") {
		t = strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1")
	}
	return t
}

// clip bounds s to maxDetail bytes on a rune boundary.
func clip(s string) string { return clipTo(s, maxDetail) }

// clipTo bounds s to n bytes on a rune boundary.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// writeProblem answers with an RFC 9457 problem+json document. allow is
// the Allow header of a 405.
func writeProblem(w http.ResponseWriter, r *http.Request, status int, title, detail string, rep *report, allow string) {
	id := ""
	if rec := request.RecordOf(r); rec != nil {
		id = rec.RequestID
		rec.ErrorMsg = title + ": " + detail
	}
	b := make([]byte, 0, 256)
	b = append(b, `{"type":`...)
	b = appendString(b, ProblemType)
	b = append(b, `,"title":`...)
	b = appendString(b, title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"detail":`...)
	b = appendString(b, clip(detail))
	if rep != nil && len(rep.errs) > 0 {
		b = append(b, `,"errors":[`...)
		for i, e := range rep.errs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"location":`...)
			b = appendString(b, e.Location)
			if e.Name != "" {
				b = append(b, `,"name":`...)
				b = appendString(b, e.Name)
			}
			if e.Pointer != "" || e.Location == "body" {
				b = append(b, `,"pointer":`...)
				b = appendString(b, e.Pointer)
			}
			b = append(b, `,"detail":`...)
			b = appendString(b, e.Detail)
			b = append(b, '}')
		}
		b = append(b, ']')
		if rep.omitted > 0 {
			b = append(b, `,"errors_omitted":`...)
			b = strconv.AppendInt(b, int64(rep.omitted), 10)
		}
	}
	if id != "" {
		b = append(b, `,"request_id":`...)
		b = appendString(b, id)
	}
	b = append(b, "}\n"...)
	if allow != "" {
		w.Header().Set("Allow", allow)
	}
	request.WriteAnswer(w, status, "application/problem+json", id, b)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping HTML-significant
// characters and replacing invalid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == '<' || c == '>' || c == '&' || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
