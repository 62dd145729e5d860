package reqkey

import (
	"net/http"

	"github.com/portico-gw/portico/internal/request"
)

// Append appends the request's key as text, for the key names of a shared
// store such as Redis, and returns the extended buffer.
//
// Parts are separated by '|'. A value is written as it is, with '%', '|',
// '{' and '}' percent-encoded (%25, %7C, %7B, %7D), so parts cannot run
// into each other and the text is safe inside a Redis Cluster hash tag. An
// ip part is written "ip:<addr>"; a missing value "%ip:<addr>", which no
// encoded value can equal, since an encoded value's '%' is always followed
// by two upper-case hex digits.
func (k Key) Append(dst []byte, r *http.Request, rec *request.Record) []byte {
	for i := range k.parts {
		if i > 0 {
			dst = append(dst, '|')
		}
		p := &k.parts[i]
		if p.kind == kindIP {
			dst = append(dst, "ip:"...)
			dst = ClientIP(r, rec).AppendTo(dst)
			continue
		}
		if v, ok := p.value(r, rec); ok {
			dst = AppendEscaped(dst, v)
		} else {
			dst = append(dst, "%ip:"...)
			dst = ClientIP(r, rec).AppendTo(dst)
		}
	}
	return dst
}

// Render returns Append's text as a string; the string is its only
// allocation for keys up to 128 bytes.
func (k Key) Render(r *http.Request, rec *request.Record) string {
	var buf [128]byte
	return string(k.Append(buf[:0], r, rec))
}

// AppendEscaped appends s with '%', '|', '{' and '}' percent-encoded.
func AppendEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', '|', '{', '}':
			dst = append(dst, '%', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// Escape returns s with '%', '|', '{' and '}' percent-encoded, as Append
// writes values.
func Escape(s string) string { return string(AppendEscaped(nil, s)) }
