package router

import (
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidPath is wrapped by every error NormalizePath returns, so callers
// can answer 400 for all of them with one errors.Is check.
var ErrInvalidPath = errors.New("invalid request path")

// Byte classes of the raw request path.
const (
	clsBad    uint8 = iota // rejected: control bytes, space, '\', '?', '#'
	clsKeep                // kept as is: unreserved, sub-delims, ':' and '@'
	clsEncode              // allowed, but canonically percent-encoded
	clsPct                 // start of a percent-escape
	clsSlash               // segment separator
)

var pathClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c < 0x20 || c == 0x7F || c == ' ' || c == '\\' || c == '?' || c == '#':
			t[c] = clsBad
		case isUnreserved(byte(c)) || strings.IndexByte("!$&'()*+,;=:@", byte(c)) >= 0:
			t[c] = clsKeep
		case c == '%':
			t[c] = clsPct
		case c == '/':
			t[c] = clsSlash
		default:
			t[c] = clsEncode
		}
	}
	return t
}()

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// isSpecial reports whether a decoded byte is one that must stay encoded and
// be flagged: '/', '\', NUL, ';', '%', '?', '#'.
func isSpecial(c byte) bool {
	switch c {
	case '/', '\\', 0, ';', '%', '?', '#':
		return true
	}
	return false
}

// unhex returns the value of an ASCII hex digit and whether it is upper case
// (digits count as upper case), or ok=false for anything else.
func unhex(c byte) (v byte, upper, ok bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, false, true
	}
	return 0, false, false
}

const upperHex = "0123456789ABCDEF"

func badByte(c byte) error {
	switch c {
	case '\\':
		return fmt.Errorf("%w: raw backslash", ErrInvalidPath)
	case ' ':
		return fmt.Errorf("%w: raw space", ErrInvalidPath)
	case '?', '#':
		return fmt.Errorf("%w: raw %q", ErrInvalidPath, c)
	}
	return fmt.Errorf("%w: control byte 0x%02X", ErrInvalidPath, c)
}

var errBadEscape = fmt.Errorf("%w: malformed percent-encoding", ErrInvalidPath)

// NormalizePath returns the canonical form of raw, the still-encoded path of
// the request line, following the policy in the package documentation.
// encodedSpecial reports whether the result contains %2F, %5C, %00, %3B, %25,
// %3F or %23. When raw is already canonical it is returned without copying.
func NormalizePath(raw string) (path string, encodedSpecial bool, err error) {
	if raw == "" || raw[0] != '/' {
		return "", false, fmt.Errorf("%w: must start with /", ErrInvalidPath)
	}
	// One scan validates raw, decides whether it is already canonical and
	// collects encodedSpecial for that case.
	normal := true
	segStart := 1
	for i := 1; i < len(raw); i++ {
		c := raw[i]
		switch pathClass[c] {
		case clsKeep:
		case clsSlash:
			if !segOK(raw[segStart:i], false) {
				normal = false
			}
			if dotParam(raw[segStart:i]) {
				return "", false, errDotParam
			}
			segStart = i + 1
		case clsPct:
			if i+2 >= len(raw) {
				return "", false, errBadEscape
			}
			hi, u1, ok1 := unhex(raw[i+1])
			lo, u2, ok2 := unhex(raw[i+2])
			if !ok1 || !ok2 {
				return "", false, errBadEscape
			}
			v := hi<<4 | lo
			if !u1 || !u2 || isUnreserved(v) {
				normal = false
			}
			if isSpecial(v) {
				encodedSpecial = true
			}
			i += 2
		case clsEncode:
			normal = false
		default:
			return "", false, badByte(c)
		}
	}
	if dotParam(raw[segStart:]) {
		return "", false, errDotParam
	}
	if normal && segOK(raw[segStart:], true) {
		return raw, encodedSpecial, nil
	}
	path, err = normalizeSlow(raw)
	if err != nil {
		return "", false, err
	}
	return path, hasSpecial(path), nil
}

// errDotParam rejects a dot segment carrying a path parameter ("..;x" or
// ".;"): some backends (Tomcat, Jetty) strip the parameter and then treat the
// segment as "..", which would climb out of the route the gateway matched.
var errDotParam = fmt.Errorf("%w: dot segment with a path parameter", ErrInvalidPath)

// dotParam reports whether seg is "." or ".." followed by ";".
func dotParam(seg string) bool {
	return strings.HasPrefix(seg, "..;") || strings.HasPrefix(seg, ".;")
}

// segOK reports whether a segment may appear as is in a canonical path: no
// dot segments, and empty only as the last one (the trailing slash).
func segOK(seg string, last bool) bool {
	return seg != "." && seg != ".." && (seg != "" || last)
}

// hasSpecial reports whether a canonical path contains an encoded special byte.
func hasSpecial(p string) bool {
	for i := 0; i+2 < len(p); i++ {
		if p[i] == '%' {
			hi, _, _ := unhex(p[i+1])
			lo, _, _ := unhex(p[i+2])
			if isSpecial(hi<<4 | lo) {
				return true
			}
			i += 2
		}
	}
	return false
}

// normalizeSlow builds the canonical form of a raw path that needs changes.
func normalizeSlow(raw string) (string, error) {
	var stack [256]byte
	buf := stack[:0]
	trailing := false
	for i := 1; ; {
		end := strings.IndexByte(raw[i:], '/')
		if end < 0 {
			end = len(raw)
		} else {
			end += i
		}
		start := len(buf)
		buf = append(buf, '/')
		var err error
		buf, err = appendSegment(buf, raw[i:end])
		if err != nil {
			return "", err
		}
		if dotParam(string(buf[start+1:])) {
			return "", errDotParam
		}
		switch s := buf[start+1:]; string(s) {
		case "", ".":
			buf = buf[:start]
			trailing = true
		case "..":
			buf = buf[:start]
			if k := lastSlash(buf); k >= 0 {
				buf = buf[:k]
			}
			trailing = true
		default:
			trailing = false
		}
		if end == len(raw) {
			break
		}
		i = end + 1
	}
	if trailing || len(buf) == 0 {
		buf = append(buf, '/')
	}
	return string(buf), nil
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

// appendSegment appends the canonical encoding of one raw path segment (which
// holds no raw '/') to dst.
func appendSegment(dst []byte, seg string) ([]byte, error) {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch pathClass[c] {
		case clsKeep:
			dst = append(dst, c)
		case clsPct:
			if i+2 >= len(seg) {
				return dst, errBadEscape
			}
			hi, _, ok1 := unhex(seg[i+1])
			lo, _, ok2 := unhex(seg[i+2])
			if !ok1 || !ok2 {
				return dst, errBadEscape
			}
			v := hi<<4 | lo
			if isUnreserved(v) {
				dst = append(dst, v)
			} else {
				dst = append(dst, '%', upperHex[hi], upperHex[lo])
			}
			i += 2
		case clsEncode:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		default:
			return dst, badByte(c)
		}
	}
	return dst, nil
}

// NormalizeHost returns the Host header value h lower-cased, without its port
// and trailing dots, keeping the brackets of an IPv6 literal ("[::1]:80"
// becomes "[::1]"). It allocates only when h has upper-case letters.
func NormalizeHost(h string) string {
	if len(h) > 0 && h[0] == '[' {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			h = h[:i+1]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		h = h[:i]
	}
	for len(h) > 0 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			b := []byte(h)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + ('a' - 'A')
				}
			}
			return string(b)
		}
	}
	return h
}

// PathParamMode is the policy for path parameters (";" in a segment).
type PathParamMode uint8

const (
	// PathParamsReject answers a path with a parameter with 400.
	PathParamsReject PathParamMode = iota
	// PathParamsStrip removes the parameters from every segment.
	PathParamsStrip
	// PathParamsAllow keeps them as part of their segment.
	PathParamsAllow
)

// ParsePathParamMode parses the server.path_params setting.
func ParsePathParamMode(s string) (PathParamMode, error) {
	switch s {
	case "", "reject":
		return PathParamsReject, nil
	case "strip":
		return PathParamsStrip, nil
	case "allow":
		return PathParamsAllow, nil
	}
	return 0, fmt.Errorf("path_params %q must be reject, strip or allow", s)
}

// ErrPathParam is returned by ApplyPathParams for a path it rejects.
var ErrPathParam = fmt.Errorf("%w: path parameter", ErrInvalidPath)

// ApplyPathParams applies mode to path, a result of NormalizePath, and its
// encodedSpecial flag. Servlet containers and similar backends drop ";..."
// from each segment ("/admin;x=1/secret" is "/admin/secret" to them), so a
// route on "/admin" would not see what the backend serves. Reject fails on
// a raw ";" or an encoded "%3B"; Strip removes ";" and what follows it up to
// the end of every segment and normalises the result again, and still fails
// on "%3B" (some backends decode before they strip); Allow returns path
// unchanged. A path without ";" or "%3B" is returned without copying.
func ApplyPathParams(path string, encodedSpecial bool, mode PathParamMode) (string, bool, error) {
	if mode == PathParamsAllow {
		return path, encodedSpecial, nil
	}
	encoded := encodedSpecial && strings.Contains(path, "%3B")
	raw := strings.IndexByte(path, ';') >= 0
	if !raw && !encoded {
		return path, encodedSpecial, nil
	}
	if mode == PathParamsReject || encoded {
		return "", false, ErrPathParam
	}
	b := make([]byte, 0, len(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c != ';' {
			b = append(b, c)
			continue
		}
		for i+1 < len(path) && path[i+1] != '/' {
			i++
		}
	}
	return NormalizePath(string(b))
}
