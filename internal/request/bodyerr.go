package request

import (
	"context"
	"errors"
	"net"
	"net/http"
)

// BodyReadStatus maps a failed read of the client's request body to the
// status and client-safe message every reader of it answers with (the
// proxy, body-reading plugins): a body over a size limit
// (http.MaxBytesError) → 413, a client that stalled it past its read
// deadline → 408, anything else → 400.
func BodyReadStatus(err error) (int, string) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge, "request body too large"
	}
	if IsTimeout(err) {
		return http.StatusRequestTimeout, "request body read timed out"
	}
	return http.StatusBadRequest, "request body could not be read"
}

// IsTimeout reports whether err is a deadline: a context deadline or a
// network timeout.
func IsTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}
