package validate

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Bounds on the numbers a request may carry: the schema validator works
// with exact rationals (math/big), whose size grows with a number's digits
// and exponent, and it cannot compare numbers math/big refuses. A number
// beyond them is a validation error, whatever the schema says.
const (
	maxNumberDigits   = 100
	maxNumberExponent = 400
)

// numberOutOfRange is the detail of a number beyond the bounds.
const numberOutOfRange = "number out of range: more than 100 digits or an exponent beyond ±400"

// numberInRange reports whether s, a number in JSON's grammar, is within
// the bounds.
func numberInRange(s string) bool {
	digits, i := 0, 0
	for ; i < len(s) && s[i] != 'e' && s[i] != 'E'; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	if digits > maxNumberDigits {
		return false
	}
	if i == len(s) {
		return true
	}
	e := s[i+1:]
	if len(e) > 0 && (e[0] == '+' || e[0] == '-') {
		e = e[1:]
	}
	if len(e) > 4 {
		// Leading zeros aside, a 5-digit exponent is too large.
		for len(e) > 1 && e[0] == '0' {
			e = e[1:]
		}
		if len(e) > 4 {
			return false
		}
	}
	n, err := strconv.Atoi(e)
	return err == nil && n <= maxNumberExponent
}

// badNumber returns the JSON pointer tokens (innermost last) of the
// first number in v beyond the bounds, and whether there is one.
func badNumber(v any, depth int) ([]string, bool) {
	if depth > 10000 {
		return nil, false
	}
	switch v := v.(type) {
	case json.Number:
		return nil, !numberInRange(string(v))
	case map[string]any:
		for k, c := range v {
			if path, bad := badNumber(c, depth+1); bad {
				return append(path, k), true
			}
		}
	case []any:
		for i, c := range v {
			if path, bad := badNumber(c, depth+1); bad {
				return append(path, strconv.Itoa(i)), true
			}
		}
	}
	return nil, false
}

// numberPointer renders the tokens badNumber returns (innermost last) as
// a JSON pointer.
func numberPointer(rev []string) string {
	tokens := make([]string, len(rev))
	for i, t := range rev {
		tokens[len(rev)-1-i] = t
	}
	return instancePointer(tokens)
}

// errUnvalidatable is reported for a value the schema validator failed on
// (a panic in it): the request is refused rather than passed unchecked.
var errUnvalidatable = errors.New("value could not be validated")

// validate runs s on v, turning a panic of the validator into an error.
func validate(s *jsonschema.Schema, v any) (err error) {
	defer func() {
		if recover() != nil {
			err = errUnvalidatable
		}
	}()
	return s.Validate(v)
}
