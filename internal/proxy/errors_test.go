package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// timeoutError is a net.Error that reports a timeout, like a read deadline
// expiring on a client connection or a dial timing out.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// pastDeadlineCtx has a deadline in the past but is not done yet: the state
// between a deadline passing and its timer cancelling the context, which
// a loaded machine can stretch.
type pastDeadlineCtx struct{ context.Context }

func (pastDeadlineCtx) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// failingReader returns err on every read.
type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

// refusedDialError dials a port nothing listens on and returns the error.
func refusedDialError(t *testing.T) error {
	t.Helper()
	// Another process may take the freed port between Close and Dial:
	// then try another.
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	t.Fatal("five freed ports in a row accepted a connection")
	return nil
}

// classifyRequest builds a request carrying a gateway record. When bodyErr
// is set, the record's body has already failed with it, as it would after
// the transport tried to read it.
func classifyRequest(t *testing.T, ctx context.Context, bodyErr error) (*http.Request, *request.Record) {
	t.Helper()
	rec := &request.Record{RequestID: "rid-classify"}
	if bodyErr != nil {
		rec.Body = request.NewBody(io.NopCloser(io.MultiReader(strings.NewReader("partial"), failingReader{bodyErr})), nil)
		if _, err := io.Copy(io.Discard, rec.Body); !errors.Is(err, bodyErr) {
			t.Fatalf("body read error = %v, want %v", err, bodyErr)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/upload", nil)
	return r.WithContext(request.WithRecord(ctx, rec)), rec
}

// TestClassify pins the status and message for every class of forwarding
// failure, including the client-side ones told apart through the record's
// body.
func TestClassify(t *testing.T) {
	t.Parallel()
	refused := refusedDialError(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tooLarge := &http.MaxBytesError{Limit: 1024}
	transportBodyErr := func(e error) error { return fmt.Errorf("http: writing request body: %w", e) }

	tests := []struct {
		desc       string
		ctx        context.Context
		bodyErr    error
		noRecord   bool
		err        error
		wantStatus int
		wantMsg    string
	}{
		{desc: "body over the limit", bodyErr: tooLarge, err: transportBodyErr(tooLarge),
			wantStatus: 413, wantMsg: "request body too large"},
		{desc: "body over the limit seen only by the record", bodyErr: tooLarge, err: errors.New("write: broken pipe"),
			wantStatus: 413, wantMsg: "request body too large"},
		{desc: "max bytes error without a record", noRecord: true, err: transportBodyErr(tooLarge),
			wantStatus: 413, wantMsg: "request body too large"},
		{desc: "body read timed out", bodyErr: timeoutError{}, err: transportBodyErr(timeoutError{}),
			wantStatus: 408, wantMsg: "request body read timed out"},
		{desc: "body read deadline as os error", bodyErr: os.ErrDeadlineExceeded, err: errors.New("upstream write failed"),
			wantStatus: 408, wantMsg: "request body read timed out"},
		{desc: "body reset by client", bodyErr: errors.New("connection reset by peer"), err: errors.New("upstream write failed"),
			wantStatus: 400, wantMsg: "request body could not be read"},
		{desc: "body cut short", bodyErr: io.ErrUnexpectedEOF, err: io.ErrUnexpectedEOF,
			wantStatus: 400, wantMsg: "request body could not be read"},
		{desc: "body failed because the client left", ctx: cancelled, bodyErr: errors.New("connection reset by peer"), err: context.Canceled,
			wantStatus: 499, wantMsg: "client closed request"},
		{desc: "client cancelled", ctx: cancelled, err: context.Canceled,
			wantStatus: 499, wantMsg: "client closed request"},
		{desc: "client cancelled during a dial", ctx: cancelled, err: &net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled},
			wantStatus: 499, wantMsg: "client closed request"},
		{desc: "no target", err: upstream.ErrNoTarget,
			wantStatus: 503, wantMsg: "no upstream target available"},
		{desc: "no target wrapped", err: fmt.Errorf("pick: %w", upstream.ErrNoTarget),
			wantStatus: 503, wantMsg: "no upstream target available"},
		{desc: "deadline exceeded", err: context.DeadlineExceeded,
			wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "route deadline on the request context", ctx: expired, err: &url.Error{Op: "Get", URL: "http://u", Err: context.DeadlineExceeded},
			wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "backend reset after the deadline", ctx: expired, err: errors.New("stream error: stream ID 3; CANCEL; received from peer"),
			wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "backend reset after the deadline, timer not yet run", ctx: pastDeadlineCtx{context.Background()},
			err: errors.New("stream error: stream ID 3; CANCEL; received from peer"), wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "connection reset after the deadline, timer not yet run", ctx: pastDeadlineCtx{context.Background()},
			err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "net timeout", err: &net.OpError{Op: "read", Net: "tcp", Err: timeoutError{}},
			wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "dial timeout", err: &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}},
			wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "connection refused", err: refused,
			wantStatus: 502, wantMsg: "upstream connection refused"},
		{desc: "connection refused wrapped by the client", err: &url.Error{Op: "Get", URL: "http://u", Err: refused},
			wantStatus: 502, wantMsg: "upstream connection refused"},
		{desc: "other dial failure", err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("no route to host")},
			wantStatus: 502, wantMsg: "upstream connection failed"},
		{desc: "generic error", err: errors.New("malformed HTTP response"),
			wantStatus: 502, wantMsg: "upstream request failed"},
		{desc: "unexpected EOF from upstream", err: io.ErrUnexpectedEOF,
			wantStatus: 502, wantMsg: "upstream request failed"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var r *http.Request
			if tc.noRecord {
				r = httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
			} else {
				r, _ = classifyRequest(t, ctx, tc.bodyErr)
			}
			status, msg := Classify(r, tc.err)
			if status != tc.wantStatus || msg != tc.wantMsg {
				t.Fatalf("Classify(%v) = %d %q, want %d %q", tc.err, status, msg, tc.wantStatus, tc.wantMsg)
			}
		})
	}
}

// writeCounter is a ResponseWriter that counts what was written to it.
type writeCounter struct {
	header      http.Header
	writeHeader int
	bytes       int
}

func (w *writeCounter) Header() http.Header         { return w.header }
func (w *writeCounter) WriteHeader(int)             { w.writeHeader++ }
func (w *writeCounter) Write(p []byte) (int, error) { w.bytes += len(p); return len(p), nil }

// TestWriteError checks that a forwarding error becomes the gateway's JSON
// error with the record's request ID in body and header, and that a client
// that went away gets nothing written while its 499 is recorded.
func TestWriteError(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		desc       string
		ctx        context.Context
		err        error
		wantStatus int
		wantMsg    string
	}{
		{desc: "bad gateway", err: errors.New("boom"), wantStatus: 502, wantMsg: "upstream request failed"},
		{desc: "gateway timeout", err: context.DeadlineExceeded, wantStatus: 504, wantMsg: "upstream timed out"},
		{desc: "no target", err: upstream.ErrNoTarget, wantStatus: 503, wantMsg: "no upstream target available"},
		{desc: "client closed", ctx: cancelled, err: context.Canceled, wantStatus: 499, wantMsg: "client closed request"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			r, rec := classifyRequest(t, ctx, nil)
			if tc.wantStatus == StatusClientClosed {
				w := &writeCounter{header: http.Header{}}
				WriteError(w, r, tc.err)
				if w.writeHeader != 0 || w.bytes != 0 || len(w.header) != 0 {
					t.Fatalf("wrote to a gone client: %d WriteHeader, %d bytes, headers %v", w.writeHeader, w.bytes, w.header)
				}
				if rec.Status != StatusClientClosed || rec.ErrorMsg != tc.wantMsg {
					t.Fatalf("record status %d msg %q, want %d %q", rec.Status, rec.ErrorMsg, StatusClientClosed, tc.wantMsg)
				}
				return
			}
			w := httptest.NewRecorder()
			WriteError(w, r, tc.err)
			if w.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tc.wantStatus)
			}
			var body map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body.String(), err)
			}
			if body["error"] != tc.wantMsg || body["request_id"] != rec.RequestID || len(body) != 2 {
				t.Fatalf("body = %v", body)
			}
			if got := w.Header().Get("X-Request-Id"); got != rec.RequestID {
				t.Fatalf("X-Request-Id = %q, want %q", got, rec.RequestID)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type = %q", ct)
			}
			if rec.ErrorMsg != tc.wantMsg {
				t.Fatalf("record ErrorMsg = %q", rec.ErrorMsg)
			}
		})
	}
}
