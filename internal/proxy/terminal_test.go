package proxy

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

// TestRespond checks the fixed response: status, configured headers (with a
// default Content-Type only when there is a body), exact Content-Length, and
// no body for HEAD.
func TestRespond(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		cfg        config.Respond
		method     string
		wantHeader map[string]string
		wantBody   string
	}{
		{desc: "text body", cfg: config.Respond{Status: 200, Body: "hello"}, method: http.MethodGet,
			wantHeader: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Content-Length": "5"}, wantBody: "hello"},
		{desc: "custom headers and type", cfg: config.Respond{Status: 403, Body: `{"denied":true}`,
			Headers: map[string]string{"content-type": "application/json", "x-reason": "policy"}}, method: http.MethodPost,
			wantHeader: map[string]string{"Content-Type": "application/json", "X-Reason": "policy", "Content-Length": "15"}, wantBody: `{"denied":true}`},
		{desc: "empty body", cfg: config.Respond{Status: 204}, method: http.MethodGet,
			wantHeader: map[string]string{"Content-Type": "", "Content-Length": "0"}, wantBody: ""},
		{desc: "configured length is overridden", cfg: config.Respond{Status: 200, Body: "abc", Headers: map[string]string{"Content-Length": "999"}},
			method: http.MethodGet, wantHeader: map[string]string{"Content-Length": "3"}, wantBody: "abc"},
		{desc: "HEAD has headers but no body", cfg: config.Respond{Status: 200, Body: "hello"}, method: http.MethodHead,
			wantHeader: map[string]string{"Content-Type": "text/plain; charset=utf-8", "Content-Length": "5"}, wantBody: ""},
		{desc: "unicode body length in bytes", cfg: config.Respond{Status: 503, Body: "maintenance ✓"}, method: http.MethodGet,
			wantHeader: map[string]string{"Content-Length": "15"}, wantBody: "maintenance ✓"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			h := NewRespond(&tc.cfg)
			// Serve twice: the precomputed response must not change.
			for i := range 2 {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(tc.method, "/anything", nil))
				if w.Code != tc.cfg.Status {
					t.Fatalf("#%d status = %d, want %d", i, w.Code, tc.cfg.Status)
				}
				for k, v := range tc.wantHeader {
					if got := w.Header().Get(k); got != v {
						t.Errorf("#%d %s = %q, want %q", i, k, got, v)
					}
				}
				if w.Body.String() != tc.wantBody {
					t.Errorf("#%d body = %q, want %q", i, w.Body.String(), tc.wantBody)
				}
			}
		})
	}
}

// TestRedirect checks the Location built for a fixed URL and for a
// request-derived URL with scheme, host and path replaced, the query kept or
// dropped, and https chosen for TLS requests.
func TestRedirect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		cfg    config.Redirect
		target string
		tls    bool
		want   string
	}{
		{desc: "fixed url keeps query", cfg: config.Redirect{URL: "https://new.example/landing", Status: 301},
			target: "http://old.example/a?x=1&y=2", want: "https://new.example/landing?x=1&y=2"},
		{desc: "fixed url without query", cfg: config.Redirect{URL: "https://new.example/landing", Status: 302},
			target: "http://old.example/a", want: "https://new.example/landing"},
		{desc: "fixed url drop query", cfg: config.Redirect{URL: "https://new.example/landing", Status: 302, DropQuery: true},
			target: "http://old.example/a?x=1", want: "https://new.example/landing"},
		{desc: "fixed url with its own query wins", cfg: config.Redirect{URL: "https://new.example/l?src=old", Status: 302},
			target: "http://old.example/a?x=1", want: "https://new.example/l?src=old"},
		{desc: "fixed url with fragment puts query before it", cfg: config.Redirect{URL: "https://docs.example/page#install", Status: 302},
			target: "http://old.example/a?x=1", want: "https://docs.example/page?x=1#install"},
		{desc: "scheme upgrade", cfg: config.Redirect{Scheme: "https", Status: 308},
			target: "http://example.com/a/b?x=1", want: "https://example.com/a/b?x=1"},
		{desc: "host replaced", cfg: config.Redirect{Host: "new.example:8443", Status: 301},
			target: "http://example.com/a/b?x=1", want: "http://new.example:8443/a/b?x=1"},
		{desc: "path replaced", cfg: config.Redirect{Path: "/new", Status: 302},
			target: "http://example.com/a/b?x=1", want: "http://example.com/new?x=1"},
		{desc: "path replaced and query dropped", cfg: config.Redirect{Path: "/new", DropQuery: true, Status: 302},
			target: "http://example.com/a/b?x=1", want: "http://example.com/new"},
		{desc: "all replaced", cfg: config.Redirect{Scheme: "https", Host: "b.example", Path: "/c", Status: 307},
			target: "http://a.example/x?q=1", want: "https://b.example/c?q=1"},
		{desc: "TLS request keeps https", cfg: config.Redirect{Host: "new.example", Status: 301}, tls: true,
			target: "https://example.com/a?x=1", want: "https://new.example/a?x=1"},
		{desc: "TLS request forced to http", cfg: config.Redirect{Scheme: "http", Status: 301}, tls: true,
			target: "https://example.com/a", want: "http://example.com/a"},
		{desc: "escaped path kept escaped", cfg: config.Redirect{Host: "new.example", Status: 302},
			target: "http://example.com/files/a%2Fb", want: "http://new.example/files/a%2Fb"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			} else {
				r.TLS = nil
			}
			w := httptest.NewRecorder()
			NewRedirect(&tc.cfg).ServeHTTP(w, r)
			if w.Code != tc.cfg.Status {
				t.Fatalf("status = %d, want %d", w.Code, tc.cfg.Status)
			}
			if got := w.Header().Get("Location"); got != tc.want {
				t.Fatalf("Location = %q, want %q", got, tc.want)
			}
			if cl := w.Header().Get("Content-Length"); cl != "0" || w.Body.Len() != 0 {
				t.Fatalf("Content-Length %q, body %q; want empty", cl, w.Body.String())
			}
		})
	}
}
