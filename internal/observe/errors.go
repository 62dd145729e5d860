package observe

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
	b := make([]byte, 0, 48+len(msg)+len(id))
	b = append(b, `{"error":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, id)
	b = append(b, "}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	if id != "" {
		h.Set("X-Request-Id", id)
	}
	h.Del("Content-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
