package httpcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
)

// Key is a primary cache key: a SHA-256 digest, so its size is fixed
// whatever a client sends.
type Key [sha256.Size]byte

// String returns the key in hex.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// KeyOptions are a route's choices for NewKey, fixed at load time.
type KeyOptions struct {
	// IgnoreQuery lists query parameter names left out of the key (after
	// percent-decoding of unreserved characters; case-sensitive).
	IgnoreQuery []string
}

// NewKey builds the primary key of request r: its method, scheme (https
// when r.TLS is set), host (r.Host, else r.URL.Host; lower-case, without the scheme's default port
// and a trailing dot), normalised path, canonical query and the extra parts
// (for instance a consumer or a header the route keys on).
//
// Normalisation: percent-encoded unreserved characters are decoded, other
// percent-encodings upper-cased, "." and ".." segments removed (RFC 3986
// §6.2.2); in the query "+" reads as "%20", parameters are sorted by name
// then value, empty ones and those in o.IgnoreQuery dropped ("a" and "a=" are
// the same parameter). Every part is
// length-prefixed before hashing, so no two different part lists give the
// same input to the hash.
func NewKey(r *http.Request, o *KeyOptions, extra []string) Key {
	var stack [512]byte
	b := stack[:0]
	b = appendPart(b, r.Method)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	b = appendPart(b, scheme)
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	b = appendHost(b, host, scheme)
	b = appendPath(b, r.URL.EscapedPath())
	b = appendQuery(b, r.URL.RawQuery, o)
	b = binary.AppendUvarint(b, uint64(len(extra)))
	for _, e := range extra {
		b = appendPart(b, e)
	}
	return sha256.Sum256(b)
}

func appendPart(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHost(b []byte, host, scheme string) []byte {
	host = strings.TrimSuffix(host, ":")
	if scheme == "http" {
		host = strings.TrimSuffix(host, ":80")
	} else {
		host = strings.TrimSuffix(host, ":443")
	}
	host = strings.TrimSuffix(host, ".")
	b = binary.AppendUvarint(b, uint64(len(host)))
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return b
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const upperHex = "0123456789ABCDEF"

// appendEscaped appends s with percent-encoding normalised; plus, when
// set, turns "+" into "%20".
func appendEscaped(b []byte, s string, plus bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '+' && plus {
			b = append(b, "%20"...)
			continue
		}
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) { // truncated escape: keep the bytes as they are
			return append(b, s[i:]...)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			b = append(b, c)
			continue
		}
		if d := hi<<4 | lo; unreserved(d) {
			b = append(b, d)
		} else {
			b = append(b, '%', upperHex[hi], upperHex[lo])
		}
		i += 2
	}
	return b
}

// appendPath appends the length-prefixed normalised path.
func appendPath(b []byte, p string) []byte {
	var stack [256]byte
	n := appendEscaped(stack[:0], p, false)
	if bytes.Contains(n, []byte("/.")) || bytes.HasPrefix(n, []byte(".")) {
		n = removeDotSegments(n)
	}
	b = binary.AppendUvarint(b, uint64(len(n)))
	return append(b, n...)
}

// removeDotSegments applies RFC 3986 §5.2.4 to an absolute or relative path.
func removeDotSegments(p []byte) []byte {
	abs := len(p) > 0 && p[0] == '/'
	segs := strings.Split(string(p), "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 || (len(out) == 1 && !abs) {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	res := strings.Join(out, "/")
	if abs && !strings.HasPrefix(res, "/") {
		res = "/" + res
	}
	return []byte(res)
}

// appendQuery appends the canonical query: a count, then each kept
// parameter's name and value, length-prefixed, in sorted order.
func appendQuery(b []byte, q string, o *KeyOptions) []byte {
	if q == "" {
		return append(b, 0)
	}
	var bufStack [512]byte
	var spanStack [16]span
	buf, spans := canonicalQuery(q, o, bufStack[:0], spanStack[:0])
	b = binary.AppendUvarint(b, uint64(len(spans)))
	for _, s := range spans {
		b = binary.AppendUvarint(b, uint64(s.n1-s.n0))
		b = append(b, buf[s.n0:s.n1]...)
		b = binary.AppendUvarint(b, uint64(s.v1-s.n1))
		b = append(b, buf[s.n1:s.v1]...)
	}
	return b
}

// canonicalQuery normalises q's kept parameters into buf and returns their
// spans, sorted by name then value.
func canonicalQuery(q string, o *KeyOptions, buf []byte, spans []span) ([]byte, []span) {
	for q != "" {
		var kv string
		if i := strings.IndexByte(q, '&'); i >= 0 {
			kv, q = q[:i], q[i+1:]
		} else {
			kv, q = q, ""
		}
		if kv == "" {
			continue
		}
		name, value, _ := strings.Cut(kv, "=")
		n0 := len(buf)
		buf = appendEscaped(buf, name, true)
		n1 := len(buf)
		if o != nil && ignored(buf[n0:n1], o.IgnoreQuery) {
			buf = buf[:n0]
			continue
		}
		buf = appendEscaped(buf, value, true)
		spans = append(spans, span{n0, n1, len(buf)})
	}
	sortSpans(spans, buf)
	return buf, spans
}

// URL is the readable form of r's key without method, scheme and extra
// parts: the normalised host (as NewKey), path and canonical query,
// "api.example.com/v1/items?a=1&b=2" (no "?" without a kept parameter). It
// is Entry.Path, matched by Purge.URL exactly and by Purge.Prefix; two
// requests with the same key have the same URL.
func URL(r *http.Request, o *KeyOptions) string {
	var stack [256]byte
	b := stack[:0]
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	b = appendHost(b, host, scheme)
	_, n := binary.Uvarint(b)
	b = b[n:]
	p := appendPath(nil, r.URL.EscapedPath())
	_, n = binary.Uvarint(p)
	b = append(b, p[n:]...)
	if r.URL.RawQuery != "" {
		var bufStack [512]byte
		var spanStack [16]span
		buf, spans := canonicalQuery(r.URL.RawQuery, o, bufStack[:0], spanStack[:0])
		for i, s := range spans {
			if i == 0 {
				b = append(b, '?')
			} else {
				b = append(b, '&')
			}
			b = append(b, buf[s.n0:s.n1]...)
			if s.v1 > s.n1 {
				b = append(b, '=')
				b = append(b, buf[s.n1:s.v1]...)
			}
		}
	}
	return string(b)
}

// span locates one query parameter in a buffer: name buf[n0:n1], value
// buf[n1:v1].
type span struct{ n0, n1, v1 int }

func compareSpans(a, b span, buf []byte) int {
	if c := bytes.Compare(buf[a.n0:a.n1], buf[b.n0:b.n1]); c != 0 {
		return c
	}
	return bytes.Compare(buf[a.n1:a.v1], buf[b.n1:b.v1])
}

// sortSpans sorts by name then value: insertion sort for the usual few
// parameters (no allocation), the library sort for many.
func sortSpans(spans []span, buf []byte) {
	if len(spans) > 24 {
		slices.SortFunc(spans, func(a, b span) int { return compareSpans(a, b, buf) })
		return
	}
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && compareSpans(spans[j-1], spans[j], buf) > 0; j-- {
			spans[j-1], spans[j] = spans[j], spans[j-1]
		}
	}
}

func ignored(name []byte, names []string) bool {
	for _, n := range names {
		if string(name) == n {
			return true
		}
	}
	return false
}
