package plugintest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/plugin/auth"
)

// EchoIdentity copies the identity headers an auth plugin set on r into
// the response headers h as X-Got-Consumer, X-Got-Consumer-Id,
// X-Got-Anonymous and X-Got-Credential, for a test upstream to report
// what reached it.
func EchoIdentity(h http.Header, r *http.Request) {
	h.Set("X-Got-Consumer", r.Header.Get(auth.HeaderConsumerUsername))
	h.Set("X-Got-Consumer-Id", r.Header.Get(auth.HeaderConsumerID))
	h.Set("X-Got-Anonymous", r.Header.Get(auth.HeaderAnonymous))
	h.Set("X-Got-Credential", r.Header.Get(auth.HeaderCredential))
}

// HeadersEqual reports an error for each header of want whose first value
// in h differs ("" stands for absent).
func HeadersEqual(t testing.TB, h http.Header, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got := h.Get(k); got != w {
			t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
}

// ExpectAnswer checks the answer w of an auth plugin's handler: the status
// (fatal when it differs), the headers of want as HeadersEqual does, and
// for a 401 the gateway's error body.
func ExpectAnswer(t testing.TB, w *httptest.ResponseRecorder, status int, want map[string]string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status = %d, want %d (body %q)", w.Code, status, w.Body.String())
	}
	HeadersEqual(t, w.Header(), want)
	if status == http.StatusUnauthorized && !strings.Contains(w.Body.String(), `"error":"unauthorized"`) {
		t.Errorf("body = %q", w.Body.String())
	}
}

// HeadersAbsent reports an error for each of names that h holds.
func HeadersAbsent(t testing.TB, h http.Header, names []string) {
	t.Helper()
	for _, k := range names {
		if v, ok := h[k]; ok {
			t.Errorf("%s present: %q", k, v)
		}
	}
}
