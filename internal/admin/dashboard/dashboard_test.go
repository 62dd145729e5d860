package dashboard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/admin/dashboard"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServesFilesWithContentTypes(t *testing.T) {
	h := dashboard.Handler()
	for _, tc := range []struct {
		path, ctype, contains string
	}{
		{"/dashboard/", "text/html; charset=utf-8", "<title>Portico dashboard</title>"},
		{"/dashboard/index.html", "text/html; charset=utf-8", `<script src="app.js"`},
		{"/dashboard/app.js", "text/javascript; charset=utf-8", "portico_requests_total"},
		{"/dashboard/style.css", "text/css; charset=utf-8", ".badge"},
		// Behind http.StripPrefix the prefix is already gone.
		{"/app.js", "text/javascript; charset=utf-8", "portico_upstream_target_up"},
		{"/", "text/html; charset=utf-8", "<title>"},
	} {
		resp := get(t, h, "GET", tc.path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d", tc.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != tc.ctype {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, got, tc.ctype)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", tc.path, got)
		}
		if b := body(t, resp); !strings.Contains(b, tc.contains) {
			t.Errorf("%s: body lacks %q", tc.path, tc.contains)
		}
	}
}

func TestIndexHasRestrictiveCSP(t *testing.T) {
	resp := get(t, dashboard.Handler(), "GET", "/dashboard/")
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
}

func TestHeadAndConditionalGet(t *testing.T) {
	h := dashboard.Handler()
	resp := get(t, h, "HEAD", "/dashboard/app.js")
	if resp.StatusCode != 200 || body(t, resp) != "" {
		t.Fatalf("HEAD: status %d", resp.StatusCode)
	}
	lm := resp.Header.Get("Last-Modified")
	if lm == "" {
		t.Fatal("no Last-Modified")
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/dashboard/app.js", nil)
	req.Header.Set("If-Modified-Since", lm)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("conditional GET: status %d, want 304", rec.Code)
	}
}

func TestRedirectAndErrors(t *testing.T) {
	h := dashboard.Handler()
	resp := get(t, h, "GET", "/dashboard")
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/dashboard/" {
		t.Fatalf("/dashboard: status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/dashboard/missing.js", "/dashboard/static/app.js", "/dashboard/../dashboard.go", "/dashboard/dashboard.go"} {
		if resp := get(t, h, "GET", p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
	resp = get(t, h, "POST", "/dashboard/")
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST: status %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestNoExternalResources: the page works offline and behind strict egress
// rules, so nothing it serves may point at another origin.
func TestNoExternalResources(t *testing.T) {
	h := dashboard.Handler()
	external := regexp.MustCompile(`(?i)https?://|//cdn|["'(]//[a-z0-9]|@import|fonts\.googleapis`)
	for _, p := range []string{"/dashboard/", "/dashboard/app.js", "/dashboard/style.css"} {
		b := body(t, get(t, h, "GET", p))
		if loc := external.FindStringIndex(b); loc != nil {
			lo, hi := max(0, loc[0]-40), min(len(b), loc[1]+40)
			t.Errorf("%s refers to another origin: …%s…", p, b[lo:hi])
		}
	}
}

// TestPageUsesAdminAPI: the script asks the documented endpoints and reads
// the metric names the gateway exports.
func TestPageUsesAdminAPI(t *testing.T) {
	js := body(t, get(t, dashboard.Handler(), "GET", "/dashboard/app.js"))
	for _, want := range []string{
		"'/metrics'", "'/routes'", "'/upstreams'", "'/version'", "'/config/history'",
		"Authorization", "sessionStorage",
		"portico_requests_total", "portico_request_duration_seconds_bucket",
		"portico_upstream_target_up", "portico_upstream_target_requests_in_flight",
		"portico_config_info", "portico_config_reloads_total",
	} {
		if !strings.Contains(js, want) {
			t.Errorf("app.js lacks %s", want)
		}
	}
	html := body(t, get(t, dashboard.Handler(), "GET", "/dashboard/"))
	for _, id := range []string{`id="overview"`, `id="routes"`, `id="upstreams"`, `id="errors"`, `id="config"`, `id="token"`} {
		if !strings.Contains(html, id) {
			t.Errorf("index.html lacks %s", id)
		}
	}
}
