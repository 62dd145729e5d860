package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// errTooManyHeaders is the error of a response with more header fields than
// the upstream's max_response_header_count; it maps to 502.
var errTooManyHeaders = errors.New("upstream response has too many header fields")

// errBodyIdle ends the body of a response whose upstream sent nothing for
// longer than the body idle timeout.
var errBodyIdle = &bodyIdleError{}

type bodyIdleError struct{}

func (*bodyIdleError) Error() string   { return "upstream body idle timeout" }
func (*bodyIdleError) Timeout() bool   { return true }
func (*bodyIdleError) Temporary() bool { return true }

// headerFields counts the fields (values) of h.
func headerFields(h http.Header) int {
	n := 0
	for _, v := range h {
		n += len(v)
	}
	return n
}

// removeHopByHop deletes the hop-by-hop headers of h (the shared
// httpx.HopByHop set), and those named in its Connection header.
func removeHopByHop(h http.Header) {
	httpx.Tokens(h["Connection"], func(tok string) bool {
		h.Del(tok)
		return true
	})
	for _, k := range httpx.HopByHop {
		delete(h, k)
	}
}

// interimWriter gives interim (1xx) responses the hop-by-hop cleanup final
// responses get. The reverse proxy copies an upstream's 1xx headers into the
// response writer as they arrive (httputil.ReverseProxy's Got1xxResponse
// hook) and writes them without filtering; this writer cleans them, and
// drops a 1xx over the header count limit, before they reach the client.
// 101 is a final response for this purpose and passes through.
type interimWriter struct {
	http.ResponseWriter
	maxFields int
}

func (w *interimWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		h := w.ResponseWriter.Header()
		removeHopByHop(h)
		if headerFields(h) > w.maxFields {
			// Not forwarded; the reverse proxy clears the header map after
			// writing an interim response, and so does this writer.
			clear(h)
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap returns the underlying writer for http.ResponseController.
func (w *interimWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush sends buffered data to the client.
func (w *interimWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

var interimWriters = sync.Pool{New: func() any { return new(interimWriter) }}

// monoEpoch anchors the monotonic clock readings of body reads.
var monoEpoch = time.Now()

func monoNow() int64 { return int64(time.Since(monoEpoch)) }

// endBody ends a target's in-flight count (and releases the attempt's
// context) when the response body is closed. With an idle timeout it also
// watches every read of the body: a read that waits longer than the timeout
// for the upstream closes the upstream body, which closes the connection
// (HTTP/1) or resets the stream (HTTP/2), and fails with errBodyIdle, so the
// reverse proxy aborts the client's response.
type endBody struct {
	io.ReadCloser
	st     *upstream.TargetState
	cancel context.CancelCauseFunc
	once   sync.Once

	idle      time.Duration
	tmu       sync.Mutex // guards timer, set after the timer is created
	timer     *time.Timer
	readSince atomic.Int64 // monoNow() when the pending read began; 0: none
	stalled   atomic.Bool
	closed    atomic.Bool
	rec       *request.Record
	stalls    *observe.Counter
}

func (b *endBody) Read(p []byte) (int, error) {
	if b.idle == 0 {
		return b.ReadCloser.Read(p)
	}
	b.readSince.Store(monoNow())
	n, err := b.ReadCloser.Read(p)
	b.readSince.Store(0)
	if err != nil && b.stalled.Load() {
		if b.rec != nil {
			b.rec.ErrorMsg = errBodyIdle.Error()
		}
		return n, errBodyIdle
	}
	return n, err
}

// watch runs when the idle timer fires: it aborts the body if a read has
// been waiting for the whole timeout, and re-arms the timer otherwise.
func (b *endBody) watch() {
	b.tmu.Lock()
	if b.closed.Load() {
		b.tmu.Unlock()
		return
	}
	since := b.readSince.Load()
	if since == 0 {
		// No read pending: the reverse proxy is busy writing to the client.
		b.timer.Reset(b.idle)
		b.tmu.Unlock()
		return
	}
	if waited := time.Duration(monoNow() - since); waited < b.idle {
		b.timer.Reset(b.idle - waited)
		b.tmu.Unlock()
		return
	}
	b.tmu.Unlock()
	b.stalled.Store(true)
	if b.stalls != nil {
		b.stalls.Inc()
	}
	// Closing an unfinished body closes its HTTP/1 connection or resets its
	// HTTP/2 stream, which ends the pending read.
	_ = b.ReadCloser.Close()
}

func (b *endBody) Close() error {
	if b.idle > 0 {
		b.tmu.Lock()
		b.closed.Store(true)
		b.timer.Stop()
		b.tmu.Unlock()
	}
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		b.st.End()
		if b.cancel != nil {
			b.cancel(nil)
		}
	})
	return err
}

// endBodyRW keeps an upgraded (101) connection writable for the reverse proxy.
type endBodyRW struct {
	endBody
	w io.Writer
}

func (b *endBodyRW) Write(p []byte) (int, error) { return b.w.Write(p) }

// wrapBody wraps a response body; idle > 0 arms the body idle timeout,
// which an upgraded connection never gets.
func wrapBody(rc io.ReadCloser, st *upstream.TargetState, cancel context.CancelCauseFunc, idle time.Duration, rec *request.Record, stalls *observe.Counter) io.ReadCloser {
	if rw, ok := rc.(io.ReadWriteCloser); ok {
		return &endBodyRW{endBody: endBody{ReadCloser: rc, st: st, cancel: cancel}, w: rw}
	}
	b := &endBody{ReadCloser: rc, st: st, cancel: cancel}
	if idle > 0 && rc != http.NoBody {
		b.idle, b.rec, b.stalls = idle, rec, stalls
		b.tmu.Lock()
		b.timer = time.AfterFunc(idle, b.watch)
		b.tmu.Unlock()
	}
	return b
}

// Interface guards.
var (
	_ http.ResponseWriter = (*interimWriter)(nil)
	_ io.ReadCloser       = (*endBody)(nil)
	_ io.ReadWriteCloser  = (*endBodyRW)(nil)
	_ net.Error           = (*bodyIdleError)(nil)
)
