package jwt

import (
	"encoding/json"
	"strconv"
	"strings"

	gojwt "github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/consumer"
)

// claimHas reports whether a claim equals want, or is a list containing it.
func claimHas(v any, want string) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if scalarString(e) == want {
				return true
			}
		}
		return false
	case nil:
		return false
	default:
		return scalarString(x) == want
	}
}

// scalarString renders a string, number or boolean claim; other values
// render as a string no config value can equal.
func scalarString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	}
	return "\x00"
}

// hasScopes reports whether every required scope is in scope or scp.
func (p *JWT) hasScopes(claims gojwt.MapClaims) bool {
	for _, want := range p.RequiredScopes {
		if !containsScope(claims["scope"], want) && !containsScope(claims["scp"], want) {
			return false
		}
	}
	return true
}

func containsScope(v any, want string) bool {
	switch x := v.(type) {
	case string:
		for x != "" {
			var f string
			f, x, _ = strings.Cut(x, " ")
			if f == want {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// identify maps verified claims to a consumer.
func (p *JWT) identify(claims gojwt.MapClaims) (*consumer.Consumer, bool) {
	claim := p.ConsumerClaim
	if claim == "" {
		claim = "sub"
	}
	name, _ := claims[claim].(string)
	if name == "" {
		return nil, false
	}
	if p.ConsumerClaim != "" {
		if c, ok := p.consumers.ByName(name); ok {
			return c, true
		}
		if !p.AllowUnknownConsumers {
			return nil, false
		}
	}
	c := &consumer.Consumer{Name: name, ID: name}
	if p.GroupsClaim != "" {
		c.Groups = groupsOf(claims[p.GroupsClaim])
		c.GroupsHeader = strings.Join(c.Groups, ", ")
	}
	return c, true
}

// groupsOf reads a list claim or a space- or comma-separated string.
func groupsOf(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = append(out, strings.FieldsFunc(x, func(r rune) bool { return r == ' ' || r == ',' })...)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	}
	for _, g := range out {
		if !validHeaderValue(g) {
			return nil
		}
	}
	return out
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
