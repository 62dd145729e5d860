package plugin

import "net/http"

// HeaderHook is called once with the response headers, just before they
// are sent.
type HeaderHook interface {
	BeforeHeaders(h http.Header)
}

// HeaderWriter wraps a ResponseWriter so a plugin can change the response
// headers at the last moment: its hook runs once, before the final status is
// written, before the first body byte, or before the first flush. It keeps
// streaming and upgrades working: Flush and Unwrap reach the connection
// through http.ResponseController.
type HeaderWriter struct {
	http.ResponseWriter
	hook HeaderHook
	done bool
}

// Reset points the writer at w with hook, ready for a new request.
func (w *HeaderWriter) Reset(rw http.ResponseWriter, hook HeaderHook) {
	w.ResponseWriter, w.hook, w.done = rw, hook, false
}

// Finish runs the hook if nothing was written (the server's implicit empty
// 200 then carries the changes).
func (w *HeaderWriter) Finish() { w.before() }

func (w *HeaderWriter) before() {
	if !w.done {
		w.done = true
		w.hook.BeforeHeaders(w.ResponseWriter.Header())
	}
}

// WriteHeader runs the hook before the final (non-1xx) status is written.
func (w *HeaderWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols || code < 100 {
		w.before()
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write runs the hook if the headers are not sent yet.
func (w *HeaderWriter) Write(b []byte) (int, error) {
	w.before()
	return w.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client.
func (w *HeaderWriter) Flush() { _ = w.FlushError() }

// FlushError sends buffered data to the client and reports failures; it is
// what http.ResponseController.Flush calls.
func (w *HeaderWriter) FlushError() error {
	w.before()
	return http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer for http.ResponseController.
func (w *HeaderWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
