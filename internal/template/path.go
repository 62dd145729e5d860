package template

import (
	"errors"
	"fmt"
	"strings"

	"github.com/portico-gw/portico/internal/request"
)

// Path is a parsed path template ("/v2/accounts/{id}"): literal path text
// with {name} references to the parameters of the route's match.path
// template. It is immutable and safe for concurrent use.
type Path struct {
	src   string
	parts []pathPart
}

type pathPart struct {
	lit  string
	name string
	// param is set for a parameter reference; rest for one that names a
	// {name...} parameter, whose value spans segments.
	param, rest bool
}

// ParsePath parses a path template against the route's match.path (which
// may be empty: then the template may not reference parameters). The
// template must start with '/'; its literal text must be a path in
// canonical form (unreserved characters, sub-delimiters, ':', '@', '/' and
// %XX escapes), with no "." or ".." segment and no empty segment but a
// trailing slash. A {name} may stand anywhere in a segment ("/u-{id}"),
// and every name must be a parameter of match.path.
func ParsePath(src, matchPath string) (*Path, error) {
	if len(src) > MaxLen {
		return nil, fmt.Errorf("path template longer than %d bytes", MaxLen)
	}
	if !strings.HasPrefix(src, "/") {
		return nil, errors.New("must start with /")
	}
	params, rest := routeParams(matchPath)
	pt := &Path{src: src}
	var lit strings.Builder
	segHasParam := false
	segStart := 0
	endSeg := func(i int) error {
		seg := src[segStart:i]
		if !segHasParam && (seg == "." || seg == "..") {
			return fmt.Errorf("position %d: dot segment %q is not allowed", segStart, seg)
		}
		if seg == "" && !segHasParam && segStart > 0 && i < len(src) {
			return fmt.Errorf("position %d: empty segment (\"//\") is not allowed", segStart)
		}
		return nil
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '/':
			if i > 0 {
				if err := endSeg(i); err != nil {
					return nil, err
				}
			}
			segStart, segHasParam = i+1, false
			lit.WriteByte(c)
		case c == '{':
			if i > 0 && src[i-1] == '$' {
				return nil, fmt.Errorf("position %d: ${...} placeholders are not supported in a path; use {name} for route parameters", i-1)
			}
			end := strings.IndexByte(src[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("position %d: \"{\" without a closing \"}\"", i)
			}
			name := strings.TrimSuffix(src[i+1:i+end], "...")
			if !validParamName(name) {
				return nil, fmt.Errorf("position %d: {%s}: parameter name must be letters, digits and _", i, src[i+1:i+end])
			}
			if !params[name] {
				return nil, fmt.Errorf("position %d: {%s} is not a parameter of the route's match.path %q", i, name, matchPath)
			}
			if lit.Len() > 0 {
				pt.parts = append(pt.parts, pathPart{lit: lit.String()})
				lit.Reset()
			}
			pt.parts = append(pt.parts, pathPart{name: name, param: true, rest: rest[name]})
			segHasParam = true
			i += end
		case c == '%':
			if i+2 >= len(src) || !isHex(src[i+1]) || !isHex(src[i+2]) {
				return nil, fmt.Errorf("position %d: '%%' must start a %%XX escape", i)
			}
			if unreservedEscape(src[i+1], src[i+2]) {
				return nil, fmt.Errorf("position %d: %s encodes an unreserved character; write the character itself", i, src[i:i+3])
			}
			lit.WriteString(src[i : i+3])
			i += 2
		case pathByte(c):
			lit.WriteByte(c)
		default:
			return nil, fmt.Errorf("position %d: %q is not allowed in a path (percent-encode it)", i, c)
		}
	}
	if err := endSeg(len(src)); err != nil {
		return nil, err
	}
	if lit.Len() > 0 {
		pt.parts = append(pt.parts, pathPart{lit: lit.String()})
	}
	return pt, nil
}

// routeParams returns the parameter names of a match.path template, and
// which of them are {name...} parameters.
func routeParams(matchPath string) (params, rest map[string]bool) {
	params, rest = map[string]bool{}, map[string]bool{}
	for _, seg := range strings.Split(matchPath, "/") {
		if len(seg) < 2 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			continue
		}
		name := seg[1 : len(seg)-1]
		if n, ok := strings.CutSuffix(name, "..."); ok {
			name = n
			rest[name] = true
		}
		params[name] = true
	}
	return params, rest
}

// String is the template's source.
func (p *Path) String() string { return p.src }

// AppendPath appends the rendered path, in escaped form, to dst. A
// parameter is inserted as the router matched it (canonical, still
// percent-encoded); any byte that is not allowed in a path segment is
// percent-encoded, and so is '/' in the value of a one-segment {name}. A
// segment of the result that would be "." or ".." (which a router
// parameter never is) has its dots encoded, so a value can never climb out
// of its place or start a query.
func (p *Path) AppendPath(dst []byte, rec *request.Record) []byte {
	start := len(dst)
	for i := range p.parts {
		pp := &p.parts[i]
		if !pp.param {
			dst = append(dst, pp.lit...)
			continue
		}
		var v string
		if rec != nil {
			v, _ = rec.Params.Get(pp.name)
		}
		for j := 0; j < len(v); j++ {
			c := v[j]
			switch {
			case c == '/' && pp.rest:
				dst = append(dst, c)
			case c == '%' && j+2 < len(v) && isHex(v[j+1]) && isHex(v[j+2]) && !unreservedEscape(v[j+1], v[j+2]):
				// An escape the router keeps (it decodes those of
				// unreserved characters, such as %2E).
				dst = append(dst, c)
			case pathByte(c) && c != '/':
				dst = append(dst, c)
			default:
				dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
			}
		}
	}
	if hasDotSegment(dst[start:]) {
		dst = append(dst[:start], encodeDotSegments(dst[start:])...)
	}
	return dst
}

// hasDotSegment reports whether p has a "." or ".." segment.
func hasDotSegment(p []byte) bool {
	segStart := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		if n := i - segStart; (n == 1 || n == 2) && p[segStart] == '.' && p[i-1] == '.' {
			return true
		}
		segStart = i + 1
	}
	return false
}

// unreservedEscape reports whether the escape %hl encodes an unreserved
// character, which a canonical path carries unencoded.
func unreservedEscape(h, l byte) bool {
	v := unhex(h)<<4 | unhex(l)
	return 'a' <= v && v <= 'z' || 'A' <= v && v <= 'Z' || '0' <= v && v <= '9' || v == '-' || v == '.' || v == '_' || v == '~'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// encodeDotSegments returns p with the dots of its "." and ".." segments
// percent-encoded; it returns p itself when it has none.
func encodeDotSegments(p []byte) []byte {
	var out []byte
	segStart := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		seg := string(p[segStart:i])
		if seg == "." || seg == ".." {
			if out == nil {
				out = append([]byte(nil), p[:segStart]...)
			}
			out = append(out, strings.Repeat("%2E", len(seg))...)
		} else if out != nil {
			out = append(out, seg...)
		}
		if i < len(p) && out != nil {
			out = append(out, '/')
		}
		segStart = i + 1
	}
	if out == nil {
		return p
	}
	return out
}

// pathByte reports whether c may stand as it is in a canonical path:
// unreserved characters, sub-delimiters, ':', '@' and '/'.
func pathByte(c byte) bool { return pathBytes[c] }

var pathBytes = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~!$&'()*+,;=:@/", byte(c)) >= 0
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
