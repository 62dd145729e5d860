package bodytransform

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/request"
)

// statusClientClosed is recorded for a client that went away (the
// proxy's 499).
const statusClientClosed = 499

// maxDetail bounds the part of an error detail (which may quote the
// client's input) recorded in the access log.
const maxDetail = 200

// reqSide is the compiled request side.
type reqSide struct {
	prog     *program // nil: convert only
	from, to string
	// contentType is the Content-Type sent upstream when to differs from
	// from; nil keeps the client's.
	contentType []string
}

// compileRequest checks and compiles the request side.
func compileRequest(c *RequestTransform) (*reqSide, error) {
	s := &reqSide{from: c.From, to: c.To}
	if s.from == "" {
		s.from = formatJSON
	}
	if s.to == "" {
		s.to = formatJSON
	}
	var errs []error
	for _, f := range []struct{ field, v string }{{"from", s.from}, {"to", s.to}} {
		if f.v != formatJSON && f.v != formatForm {
			errs = append(errs, fmt.Errorf("request.%s must be json or form; got %q", f.field, f.v))
		}
	}
	if c.JQ == "" && s.from == s.to {
		errs = append(errs, errors.New("request.jq is required unless from and to differ"))
	} else if c.JQ != "" {
		p, err := compileProgram("request.jq", c.JQ)
		if err != nil {
			errs = append(errs, err)
		}
		s.prog = p
	}
	if s.from != s.to {
		s.contentType = []string{contentTypeJSON}
		if s.to == formatForm {
			s.contentType = []string{contentTypeForm}
		}
	}
	return s, errors.Join(errs...)
}

// hasBody reports whether r carries a body.
func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// transformRequest transforms r's body in place. It returns false when it
// has answered the request with an error.
func (h *handler) transformRequest(w http.ResponseWriter, r *http.Request) bool {
	b, side := h.b, h.b.req
	ct := r.Header.Get("Content-Type")
	if !(side.from == formatJSON && isJSON(ct) || side.from == formatForm && isForm(ct)) {
		return b.passBad || reject(w, r, http.StatusUnsupportedMediaType, unsupportedMsg(side.from), "")
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return b.passBad || reject(w, r, http.StatusUnsupportedMediaType, "compressed request bodies cannot be transformed", "")
	}
	if r.ContentLength > b.maxBody {
		return b.passOver || reject(w, r, http.StatusRequestEntityTooLarge, tooLargeMsg(b.maxBody), "")
	}
	buf, err := readUpTo(r.Body, r.ContentLength, b.maxBody+1)
	if err != nil {
		status, msg := request.BodyReadStatus(err)
		return reject(w, r, status, msg, "")
	}
	if len(buf) == 0 {
		// Nothing to transform (an empty chunked body).
		r.Body = request.Replay(nil, r.Body, false)
		return true
	}
	if int64(len(buf)) > b.maxBody {
		if !b.passOver {
			return reject(w, r, http.StatusRequestEntityTooLarge, tooLargeMsg(b.maxBody), "")
		}
		r.Body = request.Replay(buf, r.Body, true)
		return true
	}
	out, fail := side.transform(r, buf, b)
	if fail != nil {
		if fail.unreadable && b.passBad {
			// The body did not parse: forward it as it came.
			r.Body = request.Replay(buf, r.Body, false)
			return true
		}
		return reject(w, r, fail.status, fail.msg, fail.detail)
	}
	setBody(r, out, side.contentType)
	return true
}

// failure is why a request body was not transformed.
type failure struct {
	status      int
	msg, detail string // for the client; for the access log
	// unreadable is set when the body did not parse (on_invalid applies).
	unreadable bool
}

// transform parses buf, runs the program and encodes the result.
func (s *reqSide) transform(r *http.Request, buf []byte, b *BodyTransform) ([]byte, *failure) {
	var in any
	var err error
	if s.from == formatForm {
		in, err = decodeForm(buf)
	} else {
		in, err = decodeJSON(buf)
	}
	if err != nil {
		return nil, &failure{status: http.StatusBadRequest, msg: "request " + err.Error(), unreadable: true}
	}
	v := in
	if s.prog != nil {
		if v, err = s.prog.run(r, in, b.timeout); err != nil {
			switch {
			case errors.Is(err, errTimeout):
				return nil, &failure{status: http.StatusInternalServerError, msg: "request body transformation timed out", detail: err.Error()}
			case errors.Is(err, errClientGone):
				return nil, &failure{status: statusClientClosed, msg: "client closed request"}
			}
			return nil, &failure{status: http.StatusBadRequest, msg: msgReqFailed, detail: err.Error()}
		}
	}
	var out []byte
	if s.to == formatForm {
		out, err = encodeForm(v)
	} else {
		out, err = encodeJSON(v)
	}
	if err != nil {
		return nil, &failure{status: http.StatusBadRequest, msg: msgReqFailed, detail: err.Error()}
	}
	if int64(len(out)) > b.maxBody {
		return nil, &failure{status: http.StatusInternalServerError, msg: "request body transformation failed", detail: errOutputTooBig.Error()}
	}
	return out, nil
}

// msgReqFailed answers a request whose body the program could not
// transform.
const msgReqFailed = "request body could not be transformed"

// setBody replaces r's body with out, sent with a Content-Length.
func setBody(r *http.Request, out []byte, contentType []string) {
	r.Body = request.Replay(out, r.Body, false)
	r.ContentLength = int64(len(out))
	r.TransferEncoding = nil
	h := r.Header
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	for _, k := range digestHeaders {
		delete(h, k)
	}
	if contentType != nil {
		h["Content-Type"] = contentType
	}
}

// digestHeaders describe the bytes of a body; they are dropped when the
// body changes.
var digestHeaders = []string{"Content-Md5", "Digest", "Content-Digest", "Repr-Digest"}

// readUpTo reads at most limit bytes of body; size is the announced
// length (-1 when unknown).
func readUpTo(body io.Reader, size, limit int64) ([]byte, error) {
	capacity := int64(512)
	if size > 0 {
		capacity = min(size+1, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, capacity))
	_, err := buf.ReadFrom(io.LimitReader(body, limit))
	return buf.Bytes(), err
}

func unsupportedMsg(from string) string {
	if from == formatForm {
		return "request body must be a form (Content-Type " + contentTypeForm + ")"
	}
	return "request body must be JSON (Content-Type " + contentTypeJSON + ")"
}

func tooLargeMsg(max int64) string {
	return "request body larger than " + strconv.FormatInt(max, 10) + " bytes cannot be transformed"
}

// reject answers with the gateway's JSON error and records detail (cut
// short) in the access log. It returns false, for the callers' returns.
func reject(w http.ResponseWriter, r *http.Request, status int, msg, detail string) bool {
	request.WriteError(w, r, status, msg)
	if rec := request.RecordOf(r); rec != nil && detail != "" {
		if len(detail) > maxDetail {
			detail = strings.ToValidUTF8(detail[:maxDetail], "") + "…"
		}
		rec.ErrorMsg = msg + ": " + detail
	}
	return false
}
