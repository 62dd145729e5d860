// Package claims renders a token claim as an upstream request header value.
// jwt, oauth2_introspection and oidc_login share it for claims_to_headers,
// so one claim reaches the backend in the same form whichever plugin
// checked the token.
//
// The rule:
//   - a string is sent as it is;
//   - a number in its JSON form without exponent (1700000000, 1.5, never
//     1.7e+09); integers stay integers, of any size;
//   - a boolean as true or false;
//   - an array of strings, numbers and booleans as its elements joined with
//     ", " (the HTTP list syntax). Empty-string elements are left out. If an
//     element contains a comma or a double quote, the list syntax could not
//     be read back, so the whole array is sent as compact JSON instead;
//   - an array holding an object, an array or null, and an object, as
//     compact JSON (no HTML escaping);
//   - a missing claim, null, "" and [] (also an array of only empty strings)
//     give no header.
//
// A header value never carries a control character (CR, LF, NUL, DEL and
// the other CTLs except horizontal tab): a claim whose rendering would
// contain one is not sent at all and Render reports ErrControl, so a token
// can never inject a header. Inside JSON, control characters in strings are
// escaped (\n, \u0000) and so do not count.
package claims

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// ErrControl reports a claim whose header value would contain a control
// character; no header is sent.
var ErrControl = errors.New("claim value contains a control character")

// ErrUnsupported reports a claim value of a type a JSON decoder never
// produces; no header is sent.
var ErrUnsupported = errors.New("claim value cannot be rendered")

// Render renders a decoded JSON claim value (as produced by encoding/json
// into any, with or without UseNumber) for a header. It returns "" and a nil
// error when the claim gives no header (missing, null, "", []), and "" and
// a non-nil error when the value is refused.
func Render(v any) (string, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		s = x
	case []any:
		var err error
		if s, err = renderList(x); err != nil {
			return "", err
		}
	default:
		var ok bool
		if s, ok = scalar(x); !ok {
			var err error
			if s, err = compactJSON(x); err != nil {
				return "", err
			}
		}
	}
	if hasControl(s) {
		return "", ErrControl
	}
	return s, nil
}

// RenderJSON renders a raw JSON claim value; nil or empty raw means the
// claim is missing.
func RenderJSON(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", ErrUnsupported
	}
	return Render(v)
}

// scalar renders numbers and booleans; ok is false for anything else.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return number(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

// number renders a JSON number without exponent. Plain integers are kept
// digit for digit (no float rounding); other forms go through float64.
func number(n json.Number) string {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		return s
	}
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10)
	}
	f, err := n.Float64()
	if err != nil {
		return s
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func renderList(x []any) (string, error) {
	var b strings.Builder
	n := 0
	for _, e := range x {
		var es string
		switch v := e.(type) {
		case string:
			if strings.ContainsAny(v, `,"`) {
				return compactJSON(x)
			}
			es = v
		default:
			var ok bool
			if es, ok = scalar(v); !ok {
				return compactJSON(x)
			}
		}
		if es == "" {
			continue
		}
		if n > 0 {
			b.WriteString(", ")
		}
		b.WriteString(es)
		n++
	}
	return b.String(), nil
}

func compactJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", ErrUnsupported
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// hasControl reports whether s holds a byte a header value must not carry.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}
