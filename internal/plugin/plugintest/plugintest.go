// Package plugintest holds what plugin tests share: Build, which turns a
// YAML config into a provisioned plugin, and checks that every plugin
// which wraps the response writer must pass. It is imported by tests only.
package plugintest

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Streaming wraps a terminal handler that writes "first\n", flushes, waits,
// then writes "second\n", serves the result on a real server and sends one
// GET (adjusted by prepare, which may be nil). It fails the test unless the
// flushed chunk reaches the client before the terminal handler finishes and
// http.ResponseController reaches the connection through the wrapper. It
// returns the response headers for plugin-specific checks.
func Streaming(t testing.TB, wrap func(http.Handler) http.Handler, prepare func(*http.Request)) http.Header {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Errorf("SetWriteDeadline through wrapper: %v", err)
		}
		_, _ = io.WriteString(w, "first\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "second\n")
	})))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if prepare != nil {
		prepare(req)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	done := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		done <- line
	}()
	select {
	case line := <-done:
		if line != "first\n" {
			t.Errorf("first chunk = %q", line)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("flushed chunk did not reach the client before the handler finished")
	}
	close(release)
	if rest, _ := io.ReadAll(br); string(rest) != "second\n" {
		t.Errorf("rest = %q", rest)
	}
	return res.Header
}
