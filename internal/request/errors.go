package request

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// WriteError sends the gateway's one error shape,
// {"error": "...", "request_id": "..."}, with the given status and the ID also
// in the X-Request-Id response header. Every error Portico itself generates
// (routing, proxy, plugins) goes through it.
func WriteError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	id := ""
	if rec := RecordOf(r); rec != nil {
		id = rec.RequestID
		rec.ErrorMsg = msg
	}
	if IsGRPC(r) {
		writeGRPCError(w, GRPCCode(status), msg, id)
		return
	}
	b := make([]byte, 0, 48+len(msg)+len(id))
	b = append(b, `{"error":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, id)
	b = append(b, "}\n"...)
	WriteAnswer(w, status, "application/json", id, b)
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// IsGRPC reports whether r is a gRPC call (Content-Type application/grpc…).
func IsGRPC(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= 16 && ct[:16] == "application/grpc" && (len(ct) == 16 || ct[16] == '+' || ct[16] == ';')
}

// GRPCCode maps a gateway error status to the gRPC status code a gRPC
// client expects (the mapping Envoy uses).
func GRPCCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 13 // INTERNAL
	case http.StatusUnauthorized:
		return 16 // UNAUTHENTICATED
	case http.StatusForbidden:
		return 7 // PERMISSION_DENIED
	case http.StatusNotFound:
		return 12 // UNIMPLEMENTED
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return 8 // RESOURCE_EXHAUSTED
	case http.StatusGatewayTimeout, http.StatusRequestTimeout:
		return 4 // DEADLINE_EXCEEDED
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		return 14 // UNAVAILABLE
	}
	return 2 // UNKNOWN
}

// WriteGRPCStatus answers a gRPC call with the given gRPC status code
// (0–16) instead of the one WriteError derives from an HTTP status, and
// records msg for the access log as WriteError does.
func WriteGRPCStatus(w http.ResponseWriter, r *http.Request, code int, msg string) {
	id := ""
	if rec := RecordOf(r); rec != nil {
		id = rec.RequestID
		rec.ErrorMsg = msg
	}
	writeGRPCError(w, code, msg, id)
}

// writeGRPCError answers a gRPC call with a Trailers-Only response: HTTP 200
// with grpc-status and grpc-message in the headers, as gRPC clients expect
// instead of an HTTP error page.
func writeGRPCError(w http.ResponseWriter, code int, msg, id string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", grpcEncode(msg))
	if id != "" {
		h.Set("X-Request-Id", id)
	}
	w.WriteHeader(http.StatusOK)
}

// grpcEncode percent-encodes a grpc-message value as the gRPC spec requires.
func grpcEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7E && c != '%' {
			if b != nil {
				b = append(b, c)
			}
			continue
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)+8), s[:i]...)
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	if b == nil {
		return s
	}
	return string(b)
}
