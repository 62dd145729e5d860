// Claim rendering: a token claim as a text value (an upstream header, a
// request-key part, a template value). jwt, oauth2_introspection and
// oidc_login share it for claims_to_headers, so one claim reaches the
// backend in the same form whichever plugin checked the token.
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
//     give no value.
//
// A value never carries a control character (CR, LF, NUL, DEL and the other
// CTLs except horizontal tab): a claim whose rendering would contain one is
// refused and RenderClaim reports ErrClaimControl, so a token can never
// inject a header. Inside JSON, control characters in strings are escaped
// (\n, \u0000) and so do not count.

package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
)

// ErrClaimControl reports a claim whose header value would contain a control
// character; no header is sent.
var ErrClaimControl = errors.New("claim value contains a control character")

// ErrClaimUnsupported reports a claim value of a type a JSON decoder never
// produces; no header is sent.
var ErrClaimUnsupported = errors.New("claim value cannot be rendered")

// RenderClaim renders a decoded JSON claim value (as produced by encoding/json
// into any, with or without UseNumber) for a header. It returns "" and a nil
// error when the claim gives no header (missing, null, "", []), and "" and
// a non-nil error when the value is refused.
func RenderClaim(v any) (string, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		s = x
	case []any:
		var err error
		if s, err = renderClaimList(x); err != nil {
			return "", err
		}
	default:
		var ok bool
		if s, ok = claimScalar(x); !ok {
			var err error
			if s, err = claimJSON(x); err != nil {
				return "", err
			}
		}
	}
	if hasCTL(s) {
		return "", ErrClaimControl
	}
	return s, nil
}

// RenderClaimJSON renders a raw JSON claim value; nil or empty raw means the
// claim is missing.
func RenderClaimJSON(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", ErrClaimUnsupported
	}
	return RenderClaim(v)
}

// scalar renders numbers and booleans; ok is false for anything else.
func claimScalar(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		return claimNumber(x), true
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
func claimNumber(n json.Number) string {
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

func renderClaimList(x []any) (string, error) {
	var b strings.Builder
	n := 0
	for _, e := range x {
		var es string
		switch v := e.(type) {
		case string:
			if strings.ContainsAny(v, `,"`) {
				return claimJSON(x)
			}
			es = v
		default:
			var ok bool
			if es, ok = claimScalar(v); !ok {
				return claimJSON(x)
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

func claimJSON(v any) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", ErrClaimUnsupported
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// hasControl reports whether s holds a byte a header value must not carry.
func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return true
		}
	}
	return false
}
