// Package admin serves the admin listener: liveness and readiness now, the
// config and status API later. It depends on the small Controller interface
// rather than on the gateway, which satisfies it.
package admin

import (
	"encoding/json"
	"net/http"

	"github.com/portico-gw/portico/internal/observe"
)

// Controller is what the admin API needs from the running gateway.
type Controller interface {
	// Ready reports whether a config is loaded and the listeners are up.
	Ready() bool
	// Info returns a small status document (config source, route count).
	Info() map[string]any
}

// Handler returns the admin HTTP handler.
func Handler(c Controller) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !c.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready"})
			return
		}
		body := map[string]any{"status": "ready"}
		for k, v := range c.Info() {
			body[k] = v
		}
		writeJSON(w, http.StatusOK, body)
	})
	mux.Handle("GET /metrics", observe.DefaultMetrics.Handler())
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"counters": observe.DefaultStats.Snapshot()})
	})
	for _, path := range []string{"/healthz", "/readyz", "/stats"} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
