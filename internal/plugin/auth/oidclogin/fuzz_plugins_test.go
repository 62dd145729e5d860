package oidclogin

import (
	"net/http"
	"testing"
)

// FuzzSessionCookie: any Cookie header is read without panicking, and only
// a value sealed with the key opens.
func FuzzSessionCookie(f *testing.F) {
	s, err := newSealer([]byte(testSecret), "https://idp.example", "c")
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.seal(purposeSession, "portico_session", &session{Sub: "alice", Expires: 1})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []string{
		"portico_session=" + good, "portico_session_0=" + good[:10] + "; portico_session_1=" + good[10:],
		"portico_session=a; portico_session=b", "portico_session_0=x; portico_session_0=y", "other=1",
		"portico_session=", "portico_session=%zz", "; ;=;", "portico_session_7=abc",
	} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, cookie string) {
		r, _ := http.NewRequest(http.MethodGet, "http://gw/", nil)
		r.Header["Cookie"] = []string{cookie}
		_ = duplicateCookie(r, "portico_session")
		v, ok := readChunked(r, "portico_session")
		if !ok {
			return
		}
		var got session
		// Only sessions for alice are ever sealed with this key.
		if err := s.open(purposeSession, "portico_session", v, &got); err == nil && got.Sub != "alice" {
			t.Fatalf("a value that was not sealed opened: %q", v)
		}
	})
}
