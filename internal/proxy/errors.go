package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/upstream"
)

// StatusClientClosed is logged when the client went away before the response.
const StatusClientClosed = 499

// Classify is the one place that maps a forwarding error to a status and a
// client-safe message: a request body over the limit → 413, a client that
// stalled its body → 408, a client that went away → 499, no target or an
// open circuit breaker → 503, an upstream timeout → 504, anything else from
// the transport → 502.
func Classify(r *http.Request, err error) (int, string) {
	rec := request.RecordOf(r)
	var mbe *http.MaxBytesError
	var bodyErr error
	if rec != nil {
		bodyErr = rec.BodyErr()
	}
	var gmt *GRPCMessageTooLarge
	if errors.As(err, &gmt) || errors.As(bodyErr, &gmt) {
		return http.StatusRequestEntityTooLarge, msgGRPCTooLarge
	}
	if errors.As(err, &mbe) {
		return request.BodyReadStatus(err)
	}
	if bodyErr != nil {
		if status, msg := request.BodyReadStatus(bodyErr); status != http.StatusBadRequest || r.Context().Err() == nil {
			return status, msg
		}
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		return StatusClientClosed, "client closed request"
	}
	if deadlinePassed(r.Context()) {
		// The request's own deadline (grpc-timeout, route or upstream
		// timeout) has passed: whatever the transport reports — often the
		// backend resetting the stream as its copy of the deadline fires,
		// possibly before the gateway's timer has run — the answer is a
		// timeout.
		return http.StatusGatewayTimeout, "upstream timed out"
	}
	switch {
	case errors.Is(err, upstream.ErrNoTarget):
		return http.StatusServiceUnavailable, "no upstream target available"
	case errors.Is(err, upstream.ErrOverloaded):
		return http.StatusServiceUnavailable, "upstream overloaded"
	case request.IsTimeout(err):
		return http.StatusGatewayTimeout, "upstream timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return http.StatusBadGateway, "upstream connection refused"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return http.StatusBadGateway, "upstream connection failed"
	}
	if errors.Is(err, upstream.ErrAmbiguousFraming) {
		return http.StatusBadGateway, "upstream response framing invalid"
	}
	if errors.Is(err, errTooManyHeaders) || headerTooLarge(err) {
		return http.StatusBadGateway, "upstream response header too large"
	}
	return http.StatusBadGateway, "upstream request failed"
}

// deadlinePassed reports whether ctx's deadline has been reached, even if
// the timer that cancels ctx has not run yet.
func deadlinePassed(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// headerTooLarge reports the transport's errors for a response header
// block over max_response_header_bytes (HTTP/1 and HTTP/2); the standard
// library exports no value for them.
func headerTooLarge(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "server response headers exceeded") || strings.Contains(msg, "response header list larger than")
}

// WriteError classifies err and writes the JSON error response. A client that
// has gone away gets no body; its status is still recorded as 499.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := Classify(r, err)
	if status == StatusClientClosed {
		if rec := request.RecordOf(r); rec != nil {
			rec.Status, rec.ErrorMsg = status, msg
		}
		return
	}
	request.WriteError(w, r, status, msg)
}
