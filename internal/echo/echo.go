// Package echo is a tiny HTTP backend that describes each request it gets as
// JSON. The quick-start config proxies to it, and tests use it as a real
// upstream.
package echo

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
)

// Handler answers every request with a JSON description of it: method, path,
// query, host, headers and the size of the body it read.
func Handler(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		host, _ := os.Hostname()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{
			"service":    name,
			"machine":    host,
			"method":     r.Method,
			"path":       r.URL.Path,
			"raw_query":  r.URL.RawQuery,
			"host":       r.Host,
			"headers":    r.Header,
			"body_bytes": n,
			"remote":     r.RemoteAddr,
		})
	})
}
