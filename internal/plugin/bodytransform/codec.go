package bodytransform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/itchyny/gojq"
)

// Body formats.
const (
	formatJSON = "json"
	formatForm = "form"
)

const (
	contentTypeJSON = "application/json"
	contentTypeForm = "application/x-www-form-urlencoded"
)

var (
	errInvalidJSON = errors.New("body is not valid JSON")
	errInvalidForm = errors.New("body is not a valid form")
	errNotFormable = errors.New("the result cannot be sent as a form: it must be an object of strings, numbers, booleans, nulls and arrays of those")
)

// mediaType returns the media type of a Content-Type value, without
// parameters or surrounding space (not lower-cased).
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.TrimSpace(ct)
}

// isJSON reports whether a Content-Type names JSON: application/json or
// any type with the +json suffix.
func isJSON(ct string) bool {
	mt := mediaType(ct)
	if strings.EqualFold(mt, contentTypeJSON) {
		return true
	}
	return len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json") && strings.IndexByte(mt, '/') > 0
}

// isForm reports whether a Content-Type names a URL-encoded form.
func isForm(ct string) bool { return strings.EqualFold(mediaType(ct), contentTypeForm) }

// decodeJSON parses exactly one JSON value; numbers keep their digits
// (json.Number, which gojq reads).
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errInvalidJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errInvalidJSON
	}
	return v, nil
}

// decodeForm parses a URL-encoded form into an object: a name given once
// maps to its string value, a repeated name to an array of strings.
func decodeForm(b []byte) (any, error) {
	vals, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, errInvalidForm
	}
	m := make(map[string]any, len(vals))
	for k, v := range vals {
		if len(v) == 1 {
			m[k] = v[0]
			continue
		}
		a := make([]any, len(v))
		for i, s := range v {
			a[i] = s
		}
		m[k] = a
	}
	return m, nil
}

// encodeJSON writes v as compact JSON (no final newline). A value of a type
// gojq does not produce (which only a variable could carry in) is an error,
// not a panic.
func encodeJSON(v any) (out []byte, err error) {
	defer func() {
		if x := recover(); x != nil {
			out, err = nil, errUnsupportedGo
		}
	}()
	return gojq.Marshal(v)
}

// encodeForm writes an object as a URL-encoded form, names sorted.
func encodeForm(v any) ([]byte, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errNotFormable
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b []byte
	add := func(k string, x any) error {
		s, ok, err := formScalar(x)
		if err != nil || !ok {
			return err
		}
		if len(b) > 0 {
			b = append(b, '&')
		}
		b = append(b, url.QueryEscape(k)...)
		b = append(b, '=')
		b = append(b, url.QueryEscape(s)...)
		return nil
	}
	for _, k := range keys {
		if a, isArr := m[k].([]any); isArr {
			for _, x := range a {
				if err := add(k, x); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(k, m[k]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// formScalar renders a form value; ok is false for null (left out).
func formScalar(x any) (s string, ok bool, err error) {
	switch v := x.(type) {
	case nil:
		return "", false, nil
	case string:
		return v, true, nil
	case bool:
		return strconv.FormatBool(v), true, nil
	case int:
		return strconv.Itoa(v), true, nil
	case json.Number:
		return v.String(), true, nil
	case *big.Int:
		return v.String(), true, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return "", false, fmt.Errorf("%w (got a non-finite number)", errNotFormable)
		}
		return strconv.FormatFloat(v, 'f', -1, 64), true, nil
	}
	return "", false, errNotFormable
}
