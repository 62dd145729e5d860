package introspection

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/request"
)

// doRec runs p on a request with a record and returns the response and
// the recorded auth failure reason.
func doRec(p *Introspection, hdr http.Header) (*httptest.ResponseRecorder, string) {
	r := httptest.NewRequest(http.MethodGet, "http://gw.example/api", nil)
	r.Header = hdr
	rec := &request.Record{}
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	w := httptest.NewRecorder()
	p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })).ServeHTTP(w, r)
	return w, rec.AuthFailure
}

// TestIssuerAudience: with issuer and audiences set, an active token is
// accepted only when the response's iss and aud match, against the
// in-test introspection server.
func TestIssuerAudience(t *testing.T) {
	t.Parallel()
	srv, p, _ := setup(t, `, issuer: "https://idp.example", audiences: [api, other]`)
	srv.set("good", `{"active":true,"sub":"alice","iss":"https://idp.example","aud":"api"}`)
	srv.set("good-list", `{"active":true,"sub":"alice","iss":"https://idp.example","aud":["x","other"]}`)
	srv.set("bad-iss", `{"active":true,"sub":"alice","iss":"https://evil.example","aud":"api"}`)
	srv.set("no-iss", `{"active":true,"sub":"alice","aud":"api"}`)
	srv.set("bad-aud", `{"active":true,"sub":"alice","iss":"https://idp.example","aud":"billing"}`)
	srv.set("bad-aud-list", `{"active":true,"sub":"alice","iss":"https://idp.example","aud":["billing",1]}`)
	srv.set("no-aud", `{"active":true,"sub":"alice","iss":"https://idp.example"}`)
	srv.set("inactive", `{"active":false}`)
	for _, tc := range []struct {
		token  string
		status int
		reason string
	}{
		{"good", 200, ""},
		{"good-list", 200, ""},
		{"bad-iss", 401, reasonIssuer},
		{"no-iss", 401, reasonIssuer},
		{"bad-aud", 401, reasonAudience},
		{"bad-aud-list", 401, reasonAudience},
		{"no-aud", 401, reasonAudience},
		{"inactive", 401, reasonInactive},
	} {
		for range 2 { // the second answer comes from the cache
			w, reason := doRec(p, http.Header{"Authorization": {"Bearer " + tc.token}})
			if w.Code != tc.status || reason != tc.reason {
				t.Errorf("%s: status %d reason %q, want %d %q", tc.token, w.Code, reason, tc.status, tc.reason)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") != challengeInvalid {
				t.Errorf("%s: WWW-Authenticate %q", tc.token, w.Header().Get("WWW-Authenticate"))
			}
		}
	}
}

func TestIssuerAudienceOptional(t *testing.T) {
	t.Parallel()
	srv, p, _ := setup(t, "")
	srv.set("t", `{"active":true,"sub":"alice","iss":"anything","aud":"whatever"}`)
	if w, _ := doRec(p, http.Header{"Authorization": {"Bearer t"}}); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
}

// TestMultipleTokens: two Authorization lines or two tokens joined in one
// line are refused with 400 before the endpoint is asked, even with
// anonymous.
func TestMultipleTokens(t *testing.T) {
	t.Parallel()
	for _, extra := range []string{"", ", anonymous: guest"} {
		srv, p, _ := setup(t, extra)
		srv.set("good", `{"active":true,"sub":"alice"}`)
		for _, h := range []http.Header{
			{"Authorization": {"Bearer good", "Bearer forged"}},
			{"Authorization": {"Bearer forged", "Bearer good"}},
			{"Authorization": {"Bearer good", "Basic YTpi"}},
			{"Authorization": {"Bearer good,forged"}},
			{"Authorization": {"Bearer good, Bearer forged"}},
		} {
			w, reason := doRec(p, h)
			if w.Code != 400 || reason != "multiple" {
				t.Errorf("%q%s: status %d reason %q, want 400 multiple", h["Authorization"], extra, w.Code, reason)
			}
		}
		if n := srv.calls.Load(); n != 0 {
			t.Errorf("endpoint called %d times", n)
		}
	}
}

func TestAudienceConfig(t *testing.T) {
	t.Parallel()
	if _, err := build(t, `{introspection_url: "http://x/i", client_auth: none, audiences: [""]}`, nil); err == nil {
		t.Fatal("empty audience accepted")
	}
}
