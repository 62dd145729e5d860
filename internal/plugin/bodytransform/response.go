package bodytransform

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// respSide is the compiled response side.
type respSide struct {
	prog       *program
	decompress bool
	statuses   statusTable
}

// compileResponse checks and compiles the response side.
func compileResponse(c *ResponseTransform) (*respSide, error) {
	s := &respSide{decompress: c.Decompress}
	var errs []error
	if c.JQ == "" {
		errs = append(errs, errors.New("response.jq is required"))
	} else {
		p, err := compileProgram("response.jq", c.JQ)
		errs = append(errs, err)
		s.prog = p
	}
	t, err := compileStatuses(c.Statuses)
	s.statuses = t
	return s, errors.Join(append(errs, err)...)
}

// Content encodings the response side decodes.
const (
	encIdentity = iota
	encGzip
	encDeflate
)

// Response messages (the client sees them in the gateway's JSON error).
const (
	msgRespTooLarge = "upstream response too large to transform"
	msgRespInvalid  = "upstream response could not be read for transformation"
	msgRespFailed   = "upstream response could not be transformed"
	msgRespTimeout  = "upstream response transformation timed out"
)

// entityHeaders describe the upstream body; they are removed when the body
// is replaced by a status_map body or an error.
var entityHeaders = []string{
	"Content-Encoding", "Content-Range", "Content-Disposition", "Content-Language", "Content-Location",
	"Etag", "Last-Modified", "Accept-Ranges", "Content-Md5", "Digest", "Content-Digest", "Repr-Digest", "Trailer",
}

// Writer states.
const (
	stNew     = iota // nothing decided yet
	stPass           // streaming straight through
	stBuffer         // collecting the body to transform
	stDiscard        // answered already; upstream bytes are dropped
)

// respWriter decides at WriteHeader whether the response is transformed:
// only then does it buffer; everything else streams through.
type respWriter struct {
	http.ResponseWriter
	b        *BodyTransform
	r        *http.Request
	state    int
	code     int
	enc      int
	buf      []byte
	trailers []string
}

var writers = sync.Pool{New: func() any { return new(respWriter) }}

// bufPool keeps response buffers up to maxPooled bytes.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooled = 256 << 10

type handler struct {
	b    *BodyTransform
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := h.b
	if b.req != nil && hasBody(r) && !h.transformRequest(w, r) {
		return
	}
	if !b.wrapWriter {
		h.next.ServeHTTP(w, r)
		return
	}
	rw := writers.Get().(*respWriter)
	*rw = respWriter{ResponseWriter: w, b: b, r: r}
	h.next.ServeHTTP(rw, r)
	// A panic (an aborted upstream body) skips this: nothing buffered is
	// sent, and the writer is left to the garbage collector.
	rw.finish()
	if rw.buf != nil && cap(rw.buf) <= maxPooled {
		p := bufPool.Get().(*[]byte)
		*p = rw.buf[:0]
		bufPool.Put(p)
	}
	*rw = respWriter{}
	writers.Put(rw)
}

// WriteHeader maps the status and decides whether the body is transformed.
func (w *respWriter) WriteHeader(code int) {
	if w.state != stNew {
		if w.state == stPass {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	if code < 200 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	b := w.b
	if code < len(b.mapIndex) {
		if i := b.mapIndex[code]; i != 0 {
			mp := &b.mappings[i-1]
			if mp.hasBody {
				w.answerConstant(mp)
				return
			}
			code = mp.to
		}
	}
	w.decide(code)
}

// answerConstant sends a status_map body in place of the upstream's.
func (w *respWriter) answerConstant(mp *mapping) {
	h := w.Header()
	for _, k := range entityHeaders {
		delete(h, k)
	}
	h["Content-Type"] = mp.contentType
	h["Content-Length"] = mp.length
	w.state = stDiscard
	w.ResponseWriter.WriteHeader(mp.to)
	if w.r.Method != http.MethodHead {
		_, _ = w.ResponseWriter.Write(mp.body)
	}
}

// decide starts passing or buffering a response with status code.
func (w *respWriter) decide(code int) {
	b, side, h := w.b, w.b.resp, w.Header()
	w.state = stPass
	if side == nil || !side.statuses.has(code) || neverTransformed(code) || !isJSON(h.Get("Content-Type")) {
		if code == http.StatusNotModified && side != nil {
			weakenETag(h)
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.r.Method == http.MethodHead {
		// No body to transform, but the headers describe the transformed
		// GET response: its length is unknown here.
		delete(h, "Content-Length")
		delete(h, "Accept-Ranges")
		weakenETag(h)
		w.ResponseWriter.WriteHeader(code)
		return
	}
	switch ce := h.Get("Content-Encoding"); {
	case ce == "" || strings.EqualFold(ce, "identity"):
	case side.decompress && (strings.EqualFold(ce, "gzip") || strings.EqualFold(ce, "x-gzip")):
		w.enc = encGzip
	case side.decompress && strings.EqualFold(ce, "deflate"):
		w.enc = encDeflate
	default:
		w.passOrFail(code, b.passBad, msgRespInvalid, nil)
		return
	}
	size := int64(-1)
	if cl := h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			size = n
		}
	}
	if size > b.maxBody {
		w.passOrFail(code, b.passOver, msgRespTooLarge, nil)
		return
	}
	w.code, w.state = code, stBuffer
	if t := h["Trailer"]; len(t) > 0 {
		w.trailers = t
		delete(h, "Trailer")
	}
	if p := bufPool.Get().(*[]byte); *p != nil {
		w.buf = *p
		*p = nil
		bufPool.Put(p)
	}
	if size > 0 && int64(cap(w.buf)) < size {
		w.buf = make([]byte, 0, size)
	}
}

// passOrFail sends the response untouched (pass) with what was buffered,
// or answers 502 with msg and drops the upstream body.
func (w *respWriter) passOrFail(code int, pass bool, msg string, buffered []byte) {
	if pass {
		w.state = stPass
		w.ResponseWriter.WriteHeader(code)
		if len(buffered) > 0 {
			_, _ = w.ResponseWriter.Write(buffered)
		}
		return
	}
	w.fail(msg, "")
}

// fail answers 502 and drops the rest of the upstream body.
func (w *respWriter) fail(msg, detail string) {
	h := w.Header()
	for _, k := range entityHeaders {
		delete(h, k)
	}
	w.state = stDiscard
	reject(w.ResponseWriter, w.r, http.StatusBadGateway, msg, detail)
}

// Write passes, buffers or drops body bytes.
func (w *respWriter) Write(p []byte) (int, error) {
	if w.state == stNew {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case stPass:
		return w.ResponseWriter.Write(p)
	case stBuffer:
		if int64(len(w.buf)+len(p)) > w.b.maxBody {
			if !w.b.passOver {
				w.fail(msgRespTooLarge, "")
				return len(p), nil
			}
			w.passOrFail(w.code, true, "", w.buf)
			return w.ResponseWriter.Write(p)
		}
		w.buf = append(w.buf, p...)
	}
	return len(p), nil
}

// Flush sends what is written so far; a buffered response is held back.
func (w *respWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (w *respWriter) FlushError() error {
	if w.state == stNew {
		w.WriteHeader(http.StatusOK)
	}
	if w.state != stPass {
		return nil
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish transforms and sends a buffered response.
func (w *respWriter) finish() {
	if w.state != stBuffer {
		return
	}
	b, h := w.b, w.Header()
	// Trailer values the upstream sent were copied into the header map
	// while the body was buffered; a transformed body has none.
	for _, k := range w.trailers {
		for _, name := range strings.Split(k, ",") {
			delete(h, http.CanonicalHeaderKey(strings.TrimSpace(name)))
		}
	}
	for k := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			delete(h, k)
		}
	}
	raw := w.buf
	if len(raw) == 0 {
		w.passOrFail(w.code, true, "", nil)
		return
	}
	body := raw
	if w.enc != encIdentity {
		var err error
		if body, err = decode(raw, w.enc, b.maxBody); err != nil {
			pass, msg := b.passBad, msgRespInvalid
			if errors.Is(err, errOutputTooBig) {
				pass, msg = b.passOver, msgRespTooLarge
			}
			w.passOrFail(w.code, pass, msg, raw)
			return
		}
	}
	in, err := decodeJSON(body)
	if err != nil {
		w.passOrFail(w.code, b.passBad, msgRespInvalid, raw)
		return
	}
	v, err := b.resp.prog.run(w.r, in, b.timeout)
	if err != nil {
		msg := msgRespFailed
		if errors.Is(err, errTimeout) {
			msg = msgRespTimeout
		}
		w.fail(msg, err.Error())
		return
	}
	out, err := encodeJSON(v)
	if err != nil {
		w.fail(msgRespFailed, err.Error())
		return
	}
	if int64(len(out)) > b.maxBody {
		w.fail(msgRespFailed, errOutputTooBig.Error())
		return
	}
	if w.enc != encIdentity {
		delete(h, "Content-Encoding")
	}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	delete(h, "Accept-Ranges")
	for _, k := range digestHeaders {
		delete(h, k)
	}
	weakenETag(h)
	w.state = stPass
	w.ResponseWriter.WriteHeader(w.code)
	_, _ = w.ResponseWriter.Write(out)
}

// weakenETag marks a strong ETag weak: the transformed body is not the
// upstream's bytes, but it is derived from that representation, so weak
// comparison (If-None-Match) keeps revalidation through the gateway
// working.
func weakenETag(h http.Header) {
	if v := h["Etag"]; len(v) == 1 && strings.HasPrefix(v[0], `"`) {
		h["Etag"] = []string{"W/" + v[0]}
	}
}

// decode decompresses a gzip or deflate (zlib) body of at most max bytes
// decoded; a larger one fails with errOutputTooBig.
func decode(raw []byte, enc int, max int64) ([]byte, error) {
	var zr io.ReadCloser
	var err error
	if enc == encGzip {
		zr, err = gzip.NewReader(bytes.NewReader(raw))
	} else {
		zr, err = zlib.NewReader(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out, err := readUpTo(zr, -1, max+1)
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > max {
		return nil, errOutputTooBig
	}
	return out, nil
}

// Interface guards.
var (
	_ http.ResponseWriter = (*respWriter)(nil)
	_ http.Flusher        = (*respWriter)(nil)
	_ http.Handler        = (*handler)(nil)
)
