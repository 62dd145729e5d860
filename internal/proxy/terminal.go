package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/config"
)

// Respond is a terminal that answers with a fixed, precomputed response.
type Respond struct {
	status int
	body   []byte
	header http.Header
}

// NewRespond compiles a direct response.
func NewRespond(c *config.Respond) *Respond {
	h := http.Header{}
	for k, v := range c.Headers {
		h.Set(k, v)
	}
	if h.Get("Content-Type") == "" && c.Body != "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("Content-Length", strconv.Itoa(len(c.Body)))
	return &Respond{status: c.Status, body: []byte(c.Body), header: h}
}

// ServeHTTP writes the configured response.
func (d *Respond) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range d.header {
		h[k] = v
	}
	w.WriteHeader(d.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(d.body)
	}
}

// Redirect is a terminal that answers with a Location built from the request.
type Redirect struct {
	c config.Redirect
}

// NewRedirect compiles a redirect.
func NewRedirect(c *config.Redirect) *Redirect { return &Redirect{c: *c} }

// ServeHTTP writes the redirect.
func (d *Redirect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var loc string
	if d.c.URL != "" {
		loc = d.c.URL
		if !d.c.DropQuery && r.URL.RawQuery != "" && !strings.Contains(loc, "?") {
			// The query goes before any fragment of the configured URL.
			if i := strings.IndexByte(loc, '#'); i >= 0 {
				loc = loc[:i] + "?" + r.URL.RawQuery + loc[i:]
			} else {
				loc += "?" + r.URL.RawQuery
			}
		}
	} else {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
		if r.TLS != nil {
			u.Scheme = "https"
		}
		if d.c.Scheme != "" {
			u.Scheme = d.c.Scheme
		}
		if d.c.Host != "" {
			u.Host = d.c.Host
		}
		if d.c.Path != "" {
			u.Path, u.RawPath = d.c.Path, ""
		}
		if d.c.DropQuery {
			u.RawQuery = ""
		}
		loc = u.String()
	}
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(d.c.Status)
}

// Interface guards.
var (
	_ http.Handler = (*Respond)(nil)
	_ http.Handler = (*Redirect)(nil)
)
