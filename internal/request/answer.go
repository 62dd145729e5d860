package request

import (
	"net/http"
	"strconv"
)

// WriteAnswer sends a body the gateway generated itself (an error, a
// problem document) with the headers every such answer carries: its
// Content-Type and Content-Length, Cache-Control: no-store, no
// Content-Encoding left from a plugin, and the request ID when there is
// one.
func WriteAnswer(w http.ResponseWriter, status int, contentType, requestID string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	if requestID != "" {
		h.Set("X-Request-Id", requestID)
	}
	h.Del("Content-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
