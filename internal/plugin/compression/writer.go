package compression

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// Writer states.
const (
	stNew      = iota // nothing decided yet
	stPass            // streaming through untouched
	stHold            // length unknown: holding up to min_size bytes
	stCompress        // compressing
)

// Headers describing the exact bytes of a body, invalid once compressed.
var digestHeaders = []string{"Content-Md5", "Content-Digest", "Repr-Digest"}

// varyOnly is the Vary value of a response that had none; shared, with no
// spare capacity, so an append copies it.
var varyOnly = []string{"Accept-Encoding"}[:1:1]

// respWriter decides at WriteHeader whether the response is compressed and
// then streams it, through the encoder or untouched. Nothing but the first
// min_size bytes of a response of unknown length is ever held back.
type respWriter struct {
	http.ResponseWriter
	c     *Compression
	r     *http.Request
	enc   int
	state int
	code  int
	buf   []byte
	e     encoder
}

var writers = sync.Pool{New: func() any { return new(respWriter) }}

// maxHeld bounds the hold buffer a pooled writer keeps.
const maxHeld = 64 << 10

func (w *respWriter) reset(rw http.ResponseWriter, c *Compression, r *http.Request, enc int) {
	*w = respWriter{ResponseWriter: rw, c: c, r: r, enc: enc, buf: w.buf[:0]}
}

// release returns the encoder and the writer to their pools. It also runs
// when the handler panicked (an aborted upstream body): the encoder is
// reset before its next use.
func (w *respWriter) release() {
	if w.e != nil {
		putEncoder(w.c.pools[w.enc], w.e)
	}
	buf := w.buf
	if cap(buf) > maxHeld {
		buf = nil
	}
	*w = respWriter{buf: buf[:0]}
	writers.Put(w)
}

// WriteHeader decides how the response is sent. Interim (1xx) responses
// pass; 101 ends the decision (the connection is no longer HTTP).
func (w *respWriter) WriteHeader(code int) {
	if w.state != stNew {
		return
	}
	if code < 200 {
		if code == http.StatusSwitchingProtocols {
			w.state = stPass
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.decide(code)
}

// decide passes, holds or starts compressing a response with status code.
func (w *respWriter) decide(code int) {
	h := w.Header()
	w.state, w.code = stPass, code
	if ce := h["Content-Encoding"]; len(ce) > 0 && !(len(ce) == 1 && equalFold(trim(ce[0]), "identity")) {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	ct := h["Content-Type"]
	compressible := len(ct) > 0 && w.c.types.match(ct[0])
	if code == http.StatusNotModified {
		// Same Vary and ETag as the full response would carry.
		if len(ct) == 0 || compressible {
			addVary(h)
			if w.enc != encNone {
				weakenETag(h)
			}
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !compressible || code == http.StatusNoContent {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	addVary(h)
	if w.enc == encNone || code == http.StatusPartialContent || len(h["Content-Range"]) > 0 ||
		w.r.Method == http.MethodHead || hasToken(h["Cache-Control"], "no-transform") {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if cl := h["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil {
			if n < int64(w.c.minSize) {
				w.ResponseWriter.WriteHeader(code)
				return
			}
			w.start()
			return
		}
	}
	if w.c.minSize == 0 || len(h["Trailer"]) > 0 {
		// A response with trailers is never held: the trailer values
		// must not be in the header map when the header is sent.
		w.start()
		return
	}
	w.state = stHold
}

// start sends the compressed response's header and takes an encoder.
func (w *respWriter) start() {
	h := w.Header()
	h["Content-Encoding"] = encHeader[w.enc]
	delete(h, "Content-Length")
	delete(h, "Accept-Ranges")
	for _, k := range digestHeaders {
		delete(h, k)
	}
	weakenETag(h)
	w.state = stCompress
	w.ResponseWriter.WriteHeader(w.code)
	w.e = getEncoder(w.c.pools[w.enc], w.ResponseWriter)
}

// startHeld starts compressing and compresses the held bytes.
func (w *respWriter) startHeld() error {
	w.start()
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.e.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Write passes, holds or compresses body bytes.
func (w *respWriter) Write(p []byte) (int, error) {
	if w.state == stNew {
		w.WriteHeader(http.StatusOK)
	}
	switch w.state {
	case stCompress:
		return w.e.Write(p)
	case stHold:
		if len(w.buf)+len(p) < w.c.minSize {
			w.buf = append(w.buf, p...)
			return len(p), nil
		}
		if err := w.startHeld(); err != nil {
			return 0, err
		}
		return w.e.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends what is written so far: a stream is never held back, so a
// response still below min_size is compressed from here on.
func (w *respWriter) Flush() { _ = w.FlushError() }

// FlushError is what http.ResponseController.Flush calls.
func (w *respWriter) FlushError() error {
	if w.state == stNew {
		w.WriteHeader(http.StatusOK)
	}
	if w.state == stHold {
		if err := w.startHeld(); err != nil {
			return err
		}
	}
	if w.state == stCompress {
		if err := w.e.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish ends the response: a held (small) body goes out uncompressed with
// its length, a compressed one gets its encoder's final bytes.
func (w *respWriter) finish() {
	switch w.state {
	case stHold:
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(w.buf))}
		w.state = stPass
		w.ResponseWriter.WriteHeader(w.code)
		if len(w.buf) > 0 {
			_, _ = w.ResponseWriter.Write(w.buf)
		}
	case stCompress:
		_ = w.e.Close()
	}
}

// addVary appends Accept-Encoding to Vary unless it is there (or "*").
func addVary(h http.Header) {
	switch v := h["Vary"]; {
	case len(v) == 0:
		h["Vary"] = varyOnly
	case !hasToken(v, "accept-encoding"):
		h["Vary"] = append(v, varyOnly[0])
	}
}

// weakenETag marks a strong ETag weak: the compressed bytes differ from
// the upstream's, but they carry the same representation, so weak
// comparison (If-None-Match) keeps revalidation working.
func weakenETag(h http.Header) {
	if v := h["Etag"]; len(v) == 1 && strings.HasPrefix(v[0], `"`) {
		h["Etag"] = []string{"W/" + v[0]}
	}
}

// Interface guards.
var (
	_ http.ResponseWriter = (*respWriter)(nil)
	_ http.Flusher        = (*respWriter)(nil)
)
