package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"syscall"

	"github.com/portico-gw/portico/internal/observe"
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
	rec := observe.RecordOf(r)
	var mbe *http.MaxBytesError
	var bodyErr error
	if rec != nil {
		bodyErr = rec.BodyErr()
	}
	if errors.As(err, &mbe) || errors.As(bodyErr, &mbe) {
		return http.StatusRequestEntityTooLarge, "request body too large"
	}
	if bodyErr != nil {
		if isTimeout(bodyErr) {
			return http.StatusRequestTimeout, "request body read timed out"
		}
		if r.Context().Err() == nil {
			return http.StatusBadRequest, "request body could not be read"
		}
	}
	if errors.Is(r.Context().Err(), context.Canceled) {
		return StatusClientClosed, "client closed request"
	}
	switch {
	case errors.Is(err, upstream.ErrNoTarget):
		return http.StatusServiceUnavailable, "no upstream target available"
	case errors.Is(err, upstream.ErrOverloaded):
		return http.StatusServiceUnavailable, "upstream overloaded"
	case isTimeout(err):
		return http.StatusGatewayTimeout, "upstream timed out"
	case errors.Is(err, syscall.ECONNREFUSED):
		return http.StatusBadGateway, "upstream connection refused"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return http.StatusBadGateway, "upstream connection failed"
	}
	return http.StatusBadGateway, "upstream request failed"
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// WriteError classifies err and writes the JSON error response. A client that
// has gone away gets no body; its status is still recorded as 499.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := Classify(r, err)
	if status == StatusClientClosed {
		if rec := observe.RecordOf(r); rec != nil {
			rec.Status, rec.ErrorMsg = status, msg
		}
		return
	}
	observe.WriteError(w, r, status, msg)
}
