package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/request"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// parseQuery decodes the query string.
func parseQuery(raw string) (url.Values, error) { return url.ParseQuery(raw) }

// hasBody reports whether r carries a body (announced or chunked).
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// mediaType is the lower-case media type of r's Content-Type, without
// parameters; "" when there is none.
func mediaType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(ct)
		}
	}
	return ct
}

// isJSONType reports whether a concrete media type is JSON.
func isJSONType(typ string) bool {
	return typ == "application/json" || strings.HasSuffix(typ, "+json") && strings.IndexByte(typ, '/') > 0
}

// pick returns the content entry for a request media type: an exact
// match, then type/*, then */*; nil when none accepts it.
func (rb *requestBody) pick(typ string) *media {
	var wild, any *media
	for i := range rb.media {
		m := &rb.media[i]
		switch {
		case m.typ == typ:
			return m
		case m.typ == "*/*":
			any = m
		case strings.HasSuffix(m.typ, "/*") && strings.HasPrefix(typ, m.typ[:len(m.typ)-1]):
			wild = m
		}
	}
	if wild != nil {
		return wild
	}
	return any
}

// checkBody validates an operation's request body. It reports false when
// it has answered the request itself (413, 415, unreadable body).
func (v *Validation) checkBody(w http.ResponseWriter, r *http.Request, rb *requestBody, rep *report) bool {
	if !hasBody(r) {
		if rb.required {
			rep.add(fieldError{Location: "body", Detail: "request body is required"})
		}
		return true
	}
	typ := mediaType(r)
	m := rb.pick(typ)
	if m == nil || typ == "" {
		v.unsupported(w, r, typ, rb.accepted)
		return false
	}
	if m.schema == nil || !isJSONType(typ) {
		return true // described, not validated (forms, binary, text)
	}
	return v.validateJSON(w, r, m.schema, rep)
}

// checkBodyOnly is the json_schema mode: every request with a body is
// validated against the schema.
func (v *Validation) checkBodyOnly(w http.ResponseWriter, r *http.Request) bool {
	var rep report
	if !hasBody(r) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodDelete:
			return true
		}
		rep.add(fieldError{Location: "body", Detail: "request body is required"})
	} else if typ := mediaType(r); !isJSONType(typ) {
		v.unsupported(w, r, typ, "application/json")
		return false
	} else if !v.validateJSON(w, r, v.schema, &rep) {
		return false
	}
	return v.verdict(w, r, &rep)
}

// unsupported answers 415 for a request media type (typ, "" for none).
func (v *Validation) unsupported(w http.ResponseWriter, r *http.Request, typ, accepted string) {
	v.rejected[reasonMediaType].Inc()
	if typ == "" {
		typ = "none"
	}
	writeProblem(w, r, http.StatusUnsupportedMediaType, "Unsupported media type", "Content-Type "+typ+" is not accepted; the API accepts "+accepted, nil, "")
}

// validateJSON reads r's body (bounded), gives r a body that replays it,
// and validates it as JSON against s. It reports false when it has
// answered the request itself.
func (v *Validation) validateJSON(w http.ResponseWriter, r *http.Request, s *jsonschema.Schema, rep *report) bool {
	buf, status, msg := v.readBody(r)
	if status != 0 {
		if status == http.StatusRequestEntityTooLarge {
			v.rejected[reasonTooLarge].Inc()
			writeProblem(w, r, status, "Request body too large", msg, nil, "")
		} else {
			v.rejected[reasonInvalid].Inc()
			writeProblem(w, r, status, "Unreadable request body", msg, nil, "")
		}
		return false
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf))
	if err != nil {
		rep.add(fieldError{Location: "body", Detail: "not valid JSON: " + jsonError(err)})
		return true
	}
	if path, bad := badNumber(doc, 0); bad {
		rep.add(fieldError{Location: "body", Pointer: numberPointer(path), Detail: numberOutOfRange})
		return true
	}
	if err := validate(s, doc); err != nil {
		rep.schemaErrors("body", "", err)
	}
	return true
}

// jsonError describes a JSON syntax error with its offset, never quoting
// more of the input than one character.
func jsonError(err error) string {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return se.Error() + " at byte " + strconv.FormatInt(se.Offset, 10)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of input"
	}
	return err.Error()
}

// readBody reads r's body up to max_body and replaces it with the bytes
// read, with a matching Content-Length (a chunked body becomes one of
// known length). status is non-zero when the body cannot be used: 413
// when over max_body, 400 when the client's body failed.
func (v *Validation) readBody(r *http.Request) (buf []byte, status int, msg string) {
	if r.ContentLength > v.maxBody {
		return nil, http.StatusRequestEntityTooLarge, v.tooLarge
	}
	buf, over, err := readAll(r.Body, r.ContentLength, v.maxBody)
	if over {
		return nil, http.StatusRequestEntityTooLarge, v.tooLarge
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, "the request body is larger than the gateway accepts"
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, http.StatusRequestTimeout, "the request body did not arrive in time"
		}
		return nil, http.StatusBadRequest, "the request body could not be read"
	}
	body := r.Body
	r.Body = request.Replay(buf, body, false)
	r.ContentLength = int64(len(buf))
	r.TransferEncoding = nil
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return buf, 0, ""
}

// readAll reads rd to its end, sized for an announced length (-1 when
// unknown); over is true as soon as more than max bytes arrive. Reading up
// to EOF, not just the announced length, lets the client's body report its
// end (the gateway lifts the body read deadline there).
func readAll(rd io.Reader, length, max int64) (buf []byte, over bool, err error) {
	size := int64(512)
	if length >= 0 {
		size = length + 1
	}
	buf = make([]byte, 0, min(size, max+1))
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > max {
			return nil, true, nil
		}
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
