package gateway

import (
	"bufio"
	"net"
	"net/http"

	"github.com/portico-gw/portico/internal/request"
)

// responseWriter records the status and bytes written for the access log.
// It exposes Flush and Unwrap so http.ResponseController reaches the
// connection for streaming and upgrades.
type responseWriter struct {
	w      http.ResponseWriter
	rec    *request.Record
	wrote  bool
	hijack bool
}

func (w *responseWriter) Header() http.Header { return w.w.Header() }

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.rec.Status = code
		if code >= 200 || code == http.StatusSwitchingProtocols {
			w.wrote = true
		}
	}
	w.w.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.w.Write(b)
	w.rec.BytesOut += int64(n)
	return n, err
}

// Flush sends buffered data to the client at once.
func (w *responseWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.w).Flush()
}

// Hijack hands the connection over for protocol upgrades.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.w).Hijack()
	if err == nil {
		w.hijack = true
	}
	return c, brw, err
}

// Unwrap returns the underlying writer for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.w }

func (w *responseWriter) hijacked() bool { return w.hijack }
