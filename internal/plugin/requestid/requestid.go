// Package requestid implements the "request_id" plugin, which controls how a
// request's ID is read from the client, forwarded upstream and echoed back.
//
// The gateway core assigns every request an ID (request.Record.RequestID),
// taking a valid incoming X-Request-Id or generating one, and always forwards
// it upstream as X-Request-Id. This plugin can read the ID from another
// header, forward it under that header as well, refuse client-supplied IDs,
// and echo the ID on the response.
package requestid

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

// DefaultHeader is the header the ID is read from, forwarded and echoed under
// unless configured otherwise.
const DefaultHeader = "X-Request-Id"

func init() {
	plugin.Register(plugin.Spec{Name: "request_id", Phase: plugin.PhaseInit, New: func() plugin.Plugin { return new(RequestID) }})
}

// RequestID is the configuration of one "request_id" plugin instance.
type RequestID struct {
	// Header names the header the ID is read from, set on the upstream
	// request and echoed on the response. Default: X-Request-Id.
	Header string `yaml:"header"`
	// TrustIncoming accepts a valid ID sent by the client; when false every
	// request gets a freshly generated ID. Default: true.
	TrustIncoming *bool `yaml:"trust_incoming"`
	// Echo sets the ID on the response under Header. Default: true.
	Echo *bool `yaml:"echo"`

	header string
	// custom reports whether header differs from X-Request-Id, in which case
	// the core has not read the incoming ID from it.
	custom bool
	trust  bool
	echo   bool
}

// Provision applies defaults and canonicalises the header name.
func (p *RequestID) Provision(plugin.Context) error {
	p.header = DefaultHeader
	if p.Header != "" {
		p.header = http.CanonicalHeaderKey(p.Header)
	}
	p.custom = p.header != DefaultHeader
	p.trust = p.TrustIncoming == nil || *p.TrustIncoming
	p.echo = p.Echo == nil || *p.Echo
	return nil
}

// reserved are headers whose values the HTTP layer or the proxy owns, with
// the shared hop-by-hop set (httpx.HopByHop).
var reserved = map[string]bool{"Content-Length": true, "Host": true, "Content-Type": true}

// Validate checks the header name.
func (p *RequestID) Validate() error {
	if p.Header == "" {
		return nil
	}
	for i := 0; i < len(p.Header); i++ {
		if !httpx.IsTokenChar(p.Header[i]) {
			return fmt.Errorf("header: %q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~ only)", p.Header)
		}
	}
	if c := http.CanonicalHeaderKey(p.Header); reserved[c] || httpx.IsHopByHop(c) {
		return fmt.Errorf("header: %s cannot carry the request ID", c)
	}
	return nil
}

// Wrap returns the handler that settles the request ID, calls next and
// echoes the ID on the response.
func (p *RequestID) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, next) })
}

// serve runs the plugin for one request, then next.
func (p *RequestID) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := request.RecordOf(r)
	prev := ""
	if rec != nil {
		prev = rec.RequestID
	}
	var id string
	switch {
	case !p.trust:
		id = request.NewID()
	case !p.custom && prev != "":
		// The core already took a valid X-Request-Id or generated an ID.
		id = prev
	default:
		if v := r.Header[p.header]; len(v) > 0 && request.ValidID(v[0]) {
			id = v[0]
		} else {
			id = request.NewID()
		}
	}
	if rec != nil {
		rec.RequestID = id
	}

	// One backing array serves the request and the response value.
	var vals []string
	if v := r.Header[p.header]; len(v) != 1 || v[0] != id {
		vals = []string{id, id}
		r.Header[p.header] = vals[0:1:1]
	}
	if p.custom && id != prev {
		// Keep a core-set X-Request-Id in step with the new ID.
		if v := r.Header[DefaultHeader]; len(v) == 1 && v[0] == prev {
			r.Header[DefaultHeader] = r.Header[p.header][0:1:1]
		}
	}
	if !p.echo {
		next.ServeHTTP(w, r)
		return
	}
	if vals == nil {
		vals = r.Header[p.header][0:1:1]
	} else {
		vals = vals[1:2:2]
	}
	rw := writerPool.Get().(*responseWriter)
	rw.name, rw.value = p.header, vals
	rw.Reset(w, rw)
	next.ServeHTTP(rw, r)
	rw.Finish()
	*rw = responseWriter{}
	writerPool.Put(rw)
}

var writerPool = sync.Pool{New: func() any { return new(responseWriter) }}

// responseWriter sets the echoed ID just before the response headers are
// written, replacing any value the upstream sent under the same name. It is
// recycled when ServeHTTP returns.
type responseWriter struct {
	plugin.HeaderWriter
	name  string
	value []string
}

// BeforeHeaders sets the ID.
func (w *responseWriter) BeforeHeaders(h http.Header) { h[w.name] = w.value }

// Interface guards.
var (
	_ plugin.Plugin       = (*RequestID)(nil)
	_ plugin.Validator    = (*RequestID)(nil)
	_ http.ResponseWriter = (*responseWriter)(nil)
	_ plugin.HeaderHook   = (*responseWriter)(nil)
)
