package httpx

import (
	"net/http"
	"testing"
)

// The shared sets are compared against canonical names, so every entry must
// be canonical already.
func TestSharedSetsCanonical(t *testing.T) {
	for _, h := range HopByHop {
		if c := http.CanonicalHeaderKey(h); c != h || !IsHopByHop(h) {
			t.Errorf("HopByHop entry %q: canonical %q", h, c)
		}
	}
	for _, h := range IdentityHeaders {
		if c := http.CanonicalHeaderKey(h); c != h || !IsIdentityHeader(h) {
			t.Errorf("IdentityHeaders entry %q: canonical %q", h, c)
		}
		if IsHopByHop(h) {
			t.Errorf("%q is in both sets", h)
		}
	}
	for _, h := range ForeignIdentityHeaders {
		if c := http.CanonicalHeaderKey(h); c != h || !IsIdentityHeader(h) {
			t.Errorf("ForeignIdentityHeaders entry %q: canonical %q", h, c)
		}
	}
	for _, h := range []string{"X-Consumer-Id", "X-Consumer-Custom-Id", "X-Userinfo", "X-Authenticated-By"} {
		if !IsIdentityHeader(h) {
			t.Errorf("IsIdentityHeader(%q) = false", h)
		}
	}
	for _, h := range []string{"x-consumer-id", "X-Consumer", "Authorization", ""} {
		if IsIdentityHeader(h) {
			t.Errorf("IsIdentityHeader(%q) = true", h)
		}
	}
}

func TestValidToken(t *testing.T) {
	for _, s := range []string{"X-Api-Key", "a", "!#$%&'*+-.^_`|~", "GET", "websocket", "0"} {
		if !ValidToken(s) {
			t.Errorf("ValidToken(%q) = false", s)
		}
	}
	for _, s := range []string{"", " ", "X Key", "a:b", "a\r\nb", "é", "a/b", "(x)", "\"q\"", "a\x00", "a\x7f"} {
		if ValidToken(s) {
			t.Errorf("ValidToken(%q) = true", s)
		}
	}
}
