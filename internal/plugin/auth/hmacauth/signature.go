package hmacauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/request"
)

// signs reports whether the signed header list covers the required name.
func signs(signed []string, name string) bool {
	if slices.Contains(signed, name) {
		return true
	}
	return name == "date" && slices.Contains(signed, "x-date")
}

// hasBody reports whether the request may carry a body.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// readBody reads the whole body, at most MaxBodyBytes, and puts the bytes
// back on the request for the next handler.
func (p *HMACAuth) readBody(r *http.Request) ([]byte, int) {
	if !hasBody(r) {
		return nil, 0
	}
	limit := int64(p.MaxBodyBytes)
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		status, _ := request.BodyReadStatus(err)
		return nil, status
	}
	if n > limit {
		return nil, http.StatusRequestEntityTooLarge
	}
	body := buf.Bytes()
	r.Body = request.Replay(body, r.Body, false)
	return body, 0
}

// digestMatches checks a Digest header (RFC 3230): a comma-separated list
// of "algorithm=base64". At least one entry must be SHA-256 or SHA-512 and
// every such entry must match the body.
func digestMatches(header string, body []byte) bool {
	checked := false
	for part := range strings.SplitSeq(header, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return false
		}
		var sum []byte
		switch strings.ToUpper(alg) {
		case "SHA-256":
			s := sha256.Sum256(body)
			sum = s[:]
		case "SHA-512":
			s := sha512.Sum512(body)
			sum = s[:]
		default:
			continue
		}
		got, err := base64.StdEncoding.DecodeString(val)
		if err != nil || !hmac.Equal(got, sum) {
			return false
		}
		checked = true
	}
	return checked
}

// signingString builds the string the client signed; ok is false when a
// signed header is absent from the request.
func signingString(r *http.Request, headers []string) ([]byte, bool) {
	var b []byte
	for i, name := range headers {
		if i > 0 {
			b = append(b, '\n')
		}
		b = append(b, name...)
		b = append(b, ": "...)
		switch name {
		case RequestTarget:
			// The origin-form target as received; an absolute-form
			// request line is reduced to its path and query.
			target := r.RequestURI
			if target == "" || target[0] != '/' {
				target = r.URL.RequestURI()
			}
			b = append(b, strings.ToLower(r.Method)...)
			b = append(b, ' ')
			b = append(b, target...)
		case "host":
			if r.Host == "" {
				return nil, false
			}
			b = append(b, r.Host...)
		default:
			vs := r.Header.Values(name)
			if len(vs) == 0 {
				return nil, false
			}
			for j, v := range vs {
				if j > 0 {
					b = append(b, ", "...)
				}
				b = append(b, strings.TrimSpace(v)...)
			}
		}
	}
	return b, true
}

// sigParams are the parameters of an hmac Authorization header.
type sigParams struct {
	keyID        string
	algorithm    string
	headers      []string
	signature    []byte // decoded
	rawSignature string
}

// parseAuthorization parses `hmac k="v", k="v", ...`. found reports whether
// the scheme is hmac; ok whether the parameters are complete and well
// formed. Unknown parameters are ignored; repeated ones are an error.
func parseAuthorization(h string) (sp *sigParams, found, ok bool) {
	const scheme = "hmac"
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return nil, false, false
	}
	rest := h[len(scheme):]
	if rest != "" && rest[0] != ' ' {
		return nil, false, false
	}
	sp = &sigParams{}
	var seen [4]bool
	hdrs := "date"
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, true, false
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		if rest == "" || rest[0] != '"' {
			return nil, true, false
		}
		end := strings.IndexByte(rest[1:], '"')
		if end < 0 {
			return nil, true, false
		}
		val := rest[1 : 1+end]
		rest = strings.TrimLeft(rest[2+end:], " \t")
		if rest != "" {
			if rest[0] != ',' {
				return nil, true, false
			}
			rest = rest[1:]
		}
		idx := -1
		switch key {
		case "username":
			idx, sp.keyID = 0, val
		case "algorithm":
			idx, sp.algorithm = 1, strings.ToLower(val)
		case "headers":
			idx, hdrs = 2, val
		case "signature":
			idx, sp.rawSignature = 3, val
		}
		if idx >= 0 {
			if seen[idx] {
				return nil, true, false
			}
			seen[idx] = true
		}
	}
	if sp.keyID == "" || sp.algorithm == "" || sp.rawSignature == "" {
		return nil, true, false
	}
	for name := range strings.FieldsSeq(hdrs) {
		name = strings.ToLower(name)
		if slices.Contains(sp.headers, name) || len(sp.headers) == maxSignedHeaders {
			return nil, true, false
		}
		sp.headers = append(sp.headers, name)
	}
	if len(sp.headers) == 0 {
		return nil, true, false
	}
	// Strict decoding: one signature has exactly one accepted encoding.
	sig, err := base64.StdEncoding.Strict().DecodeString(sp.rawSignature)
	if err != nil || len(sig) == 0 {
		return nil, true, false
	}
	sp.signature = sig
	return sp, true, true
}
