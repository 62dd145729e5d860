// Package dashboard serves Portico's built-in web dashboard: a single static
// page (HTML, CSS and plain JavaScript, embedded in the binary) that the
// admin listener mounts at /dashboard/. The page polls the admin API from the
// browser (same origin) and needs nothing from the network beyond it: no
// CDN, no fonts, no build step.
package dashboard

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the dashboard is served under.
const Prefix = "/dashboard/"

//go:embed static/*
var static embed.FS

// contentTypes are the types of the embedded files, set explicitly so they
// do not depend on the host's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// csp allows only same-origin scripts, styles and API calls: the page loads
// nothing from elsewhere and cannot be framed.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// file is one embedded file, read once.
type file struct {
	body        []byte
	contentType string
}

// Handler serves the dashboard's files under /dashboard/: "/dashboard/" is
// index.html, "/dashboard" redirects there. It accepts paths with or without
// the prefix, so it works both mounted on a mux at /dashboard/ and behind
// http.StripPrefix.
func Handler() http.Handler {
	files := map[string]file{}
	entries, _ := fs.ReadDir(static, "static")
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := static.ReadFile("static/" + e.Name())
		if err != nil {
			continue
		}
		ct := contentTypes[path.Ext(e.Name())]
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		files[e.Name()] = file{body: b, contentType: ct}
	}
	modtime := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == strings.TrimSuffix(Prefix, "/") {
			target := Prefix
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p, Prefix), "/")
		if name == "" {
			name = "index.html"
		}
		f, ok := files[name]
		if !ok || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if name == "index.html" {
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Frame-Options", "DENY")
		}
		http.ServeContent(w, r, name, modtime, bytes.NewReader(f.body))
	})
}
