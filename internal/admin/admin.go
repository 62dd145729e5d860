// Package admin serves the admin listener: liveness and readiness, metrics,
// and the JSON config and status API (read the running config, routes,
// upstream health and consumers; create, replace and delete routes,
// upstreams, consumers and global plugins). It depends on the small
// Controller and Manager interfaces rather than on the gateway, which
// satisfies them.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"

	"github.com/portico-gw/portico/internal/admin/dashboard"
	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/control"
	"github.com/portico-gw/portico/internal/observe"
)

// Controller is what the health and metrics endpoints need from the
// running gateway.
type Controller interface {
	// Ready reports whether a config is loaded and the listeners are up.
	Ready() bool
	// Info returns a small status document (config source, route count).
	Info() map[string]any
	// Metrics is the gateway's registry, served at /metrics.
	Metrics() *observe.Metrics
	// Stats are the gateway's counters, served at /stats.
	Stats() *observe.Stats
}

// Manager is what the config API needs on top of Controller. When the
// Controller given to Handler implements it, the API endpoints are served.
type Manager interface {
	Controller
	// RunningConfig returns the config in force, or nil before the first.
	RunningConfig() *config.Config
	// TargetStatus reports the runtime state of one target of an upstream.
	TargetStatus(upstream, url string) TargetStatus
	// Update changes the config: under one lock it checks that ifMatch
	// matches the running revision (else *PreconditionFailedError), lets edit change
	// a copy of the running config's unexpanded document, then loads and
	// applies the result exactly like a file reload (config.Errors on
	// failure, nothing changed) and, when persisting, writes it back to the
	// config file (*PersistError on failure, after rolling back). It
	// returns the new revision. ifMatch is IfMatch.Matches of the request.
	Update(ifMatch func(revision string) bool, edit EditFunc) (revision string, err error)
	// Version describes the build and the process.
	Version() VersionInfo
	// History lists the most recent applied config revisions, oldest first.
	History() []Revision
	// Plugins lists the registered plugin kinds, sorted by name.
	Plugins() []PluginKind
	// PluginConfigType resolves a plugin name to the type its config
	// decodes into, whose fields tagged `secret` are redacted.
	PluginConfigType(name string) (reflect.Type, bool)
	// PurgeCache removes stored responses from the running caches (no
	// config change); *PurgeError for a purge it cannot carry out.
	PurgeCache(ctx context.Context, p CachePurge) (CachePurgeResult, error)
}

// The types the Manager interface speaks in live in package control, which
// the gateway imports to satisfy it.
type (
	// Revision is one applied config, for the revision history.
	Revision = control.Revision
	// EditFunc changes a copy of the running config's YAML document.
	EditFunc = control.EditFunc
	// TargetStatus is the runtime state of one upstream target.
	TargetStatus = control.TargetStatus
	// VersionInfo describes the running build.
	VersionInfo = control.VersionInfo
	// PluginKind is one registered plugin.
	PluginKind = control.PluginKind
	// PreconditionFailedError is returned by Update when If-Match does not
	// name the running revision.
	PreconditionFailedError = control.PreconditionFailedError
	// ConflictError is returned by Update when the change cannot be made
	// safely.
	ConflictError = control.ConflictError
	// PersistError is returned by Update when the new config was applied
	// but could not be written back (it was rolled back).
	PersistError = control.PersistError
	// CachePurge selects the stored responses a purge removes.
	CachePurge = control.CachePurge
	// CachePurgeResult is what a purge removed.
	CachePurgeResult = control.CachePurgeResult
	// PurgeError is returned by PurgeCache for a purge it cannot carry out.
	PurgeError = control.PurgeError
)

// NotFoundError is returned by an edit when the named object does not exist.
type NotFoundError struct{ Kind, Name string }

func (e *NotFoundError) Error() string { return e.Kind + " " + quote(e.Name) + " not found" }

// maxBody bounds a write request's JSON body.
const maxBody = 1 << 20

// endpoint is one API route of the admin mux; the table is also what the
// OpenAPI test checks against the document.
type endpoint struct {
	method, path string
	// public endpoints need no token.
	public bool
	// write endpoints need If-Match.
	write bool
	read  func(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config)
	edit  func(r *http.Request) (*change, error)
}

// apiEndpoints lists the config API, served when the controller is a Manager.
func apiEndpoints() []endpoint {
	return []endpoint{
		{method: "GET", path: "/config", read: getConfig},
		{method: "GET", path: "/routes", read: getRoutes},
		{method: "GET", path: "/routes/{name}", read: getRoute},
		{method: "PUT", path: "/routes/{name}", write: true, edit: putRoute},
		{method: "DELETE", path: "/routes/{name}", write: true, edit: deleteRoute},
		{method: "PUT", path: "/routes/{name}/weights", write: true, edit: putWeights},
		{method: "GET", path: "/upstreams", read: getUpstreams},
		{method: "GET", path: "/upstreams/{name}", read: getUpstream},
		{method: "PUT", path: "/upstreams/{name}", write: true, edit: putUpstream},
		{method: "DELETE", path: "/upstreams/{name}", write: true, edit: deleteUpstream},
		{method: "GET", path: "/consumers", read: getConsumers},
		{method: "GET", path: "/consumers/{name}", read: getConsumer},
		{method: "PUT", path: "/consumers/{name}", write: true, edit: putConsumer},
		{method: "DELETE", path: "/consumers/{name}", write: true, edit: deleteConsumer},
		{method: "GET", path: "/plugins", read: getPlugins},
		{method: "PUT", path: "/plugins", write: true, edit: putPlugins},
		{method: "GET", path: "/version", read: getVersion},
		{method: "GET", path: "/config/history", read: getHistory},
		// No config change: served like a read (no If-Match, no revision).
		{method: "POST", path: "/cache/purge", read: postCachePurge},
	}
}

// baseEndpoints are served for every controller; documented in the
// OpenAPI document like the API.
var baseEndpoints = []endpoint{
	{method: "GET", path: "/healthz", public: true},
	{method: "GET", path: "/readyz", public: true},
	{method: "GET", path: "/metrics"},
	{method: "GET", path: "/stats"},
	{method: "GET", path: "/openapi.json", public: true},
	{method: "GET", path: dashboard.Prefix, public: true},
}

// Handler returns the admin HTTP handler.
func Handler(c Controller) http.Handler {
	mux, _ := newMux(c)
	return newGuard(c, mux)
}

// routeMux is a ServeMux that remembers the endpoint patterns registered
// on it (not the 405 and 404 fallbacks), so a test can check each one is
// documented.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// newMux builds the admin mux and lists its endpoint patterns.
func newMux(c Controller) (http.Handler, []string) {
	m, _ := c.(Manager)
	mux := &routeMux{ServeMux: http.NewServeMux()}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !c.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready"})
			return
		}
		body := map[string]any{"status": "ready"}
		for k, v := range c.Info() {
			body[k] = v
		}
		// The config file's path is shown only to a caller with the token.
		if m != nil {
			if cfg := m.RunningConfig(); cfg != nil {
				if configured, valid := tokenState(cfg, r); configured && valid {
					body["config"] = cfg.Source
				}
			}
		}
		writeJSON(w, http.StatusOK, body)
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(openAPI)
	})
	protect := func(h http.Handler) http.Handler { return h }
	if m != nil {
		protect = func(h http.Handler) http.Handler { return authorize(m, h) }
	}
	mux.Handle("GET /metrics", protect(c.Metrics().Handler()))
	stats := c.Stats()
	mux.Handle("GET /stats", protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"counters": stats.Snapshot()})
	})))
	allowed := map[string][]string{"/healthz": {"GET", "HEAD"}, "/readyz": {"GET", "HEAD"}, "/stats": {"GET", "HEAD"}}
	if m != nil {
		for _, e := range apiEndpoints() {
			mux.Handle(e.method+" "+e.path, protect(apiHandler(m, e)))
			allowed[e.path] = append(allowed[e.path], e.method)
			if e.method == "GET" {
				allowed[e.path] = append(allowed[e.path], "HEAD")
			}
		}
	}
	// The dashboard's static files hold no data (the page calls the API
	// with the token the user enters), so they are served without one.
	mux.Handle(dashboard.Prefix, dashboard.Handler())
	for path, methods := range allowed {
		allow := strings.Join(methods, ", ")
		mux.ServeMux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method not allowed"})
		})
	}
	mux.ServeMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found"})
	})
	return mux, mux.patterns
}

// authorize requires "Authorization: Bearer <admin.token>" when the running
// config sets a token. The token is read per request, so a reload rotates it.
func authorize(m Manager, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if configured, valid := tokenState(m.RunningConfig(), r); configured && !valid {
			w.Header().Set("WWW-Authenticate", `Bearer realm="portico-admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "unauthorized: send Authorization: Bearer <admin token>"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// apiHandler serves one API endpoint: reads render the running config,
// writes check If-Match and go through Manager.Update.
func apiHandler(m Manager, e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := m.RunningConfig()
		if cfg == nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "no configuration loaded"})
			return
		}
		setETag(w, cfg.Hash)
		if !e.write {
			e.read(w, r, m, cfg)
			return
		}
		ifMatch, present, err := ParseIfMatch(r.Header.Values("If-Match"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "revision": cfg.Hash})
			return
		}
		if !present {
			writeJSON(w, http.StatusPreconditionRequired, map[string]any{
				"error": "If-Match is required: send the revision from the ETag of a GET", "revision": cfg.Hash})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		ch, err := e.edit(r)
		if err != nil {
			writeChangeError(w, err, nil, ifMatch)
			return
		}
		rev, err := m.Update(ifMatch.Matches, ch.apply)
		if err != nil {
			if cur := m.RunningConfig(); cur != nil {
				setETag(w, cur.Hash)
			}
			writeChangeError(w, err, ch, ifMatch)
			return
		}
		setETag(w, rev)
		writeJSON(w, http.StatusOK, map[string]any{"status": "applied", "revision": rev})
	})
}

// writeError maps an error of a read to its status code.
func writeError(w http.ResponseWriter, err error) { writeChangeError(w, err, nil, IfMatch{}) }

// writeChangeError maps Update and edit errors to their status codes. The
// config errors of a refused change are located by JSON pointer in the
// request body where they are in the written item (ch), else by config
// path.
func writeChangeError(w http.ResponseWriter, err error, ch *change, ifMatch IfMatch) {
	var (
		es  config.Errors
		re  *requestError
		pf  *PreconditionFailedError
		cf  *ConflictError
		iu  *UpstreamInUseError
		nf  *NotFoundError
		pe  *PersistError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &pf):
		msg := "precondition failed: the config has changed since that revision"
		if len(ifMatch.Tags) == 0 && ifMatch.Weak > 0 {
			msg = "precondition failed: a weak ETag (W/\"…\") never matches; send the revision as a strong ETag, as in the ETag of a GET"
		}
		writeJSON(w, http.StatusPreconditionFailed, map[string]any{"error": msg, "revision": pf.Current})
	case errors.As(err, &re):
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": re.msg, "errors": re.problems})
	case errors.As(err, &es):
		ps := configProblems(es, ch)
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": invalidConfigMsg(ps), "errors": ps})
	case errors.As(err, &nf):
		writeJSON(w, http.StatusNotFound, map[string]any{"error": nf.Error()})
	case errors.As(err, &iu):
		writeJSON(w, http.StatusConflict, map[string]any{"error": iu.Error(), "routes": iu.Routes})
	case errors.As(err, &cf):
		writeJSON(w, http.StatusConflict, map[string]any{"error": cf.Msg})
	case errors.As(err, &mbe):
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": "request body is too large"})
	case errors.As(err, &pe):
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": pe.Error()})
	default:
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": err.Error()})
	}
}

func setETag(w http.ResponseWriter, rev string) { w.Header().Set("ETag", `"`+rev+`"`) }

// quote renders s as a JSON string, without HTML escaping.
func quote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// writeJSON writes every admin JSON answer: indented, and with <, > and &
// as they are (not \u003c…), since the answers are data, not HTML;
// nosniff keeps a browser from ever reading one as HTML.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Interface guards.
var (
	_ error = (*PreconditionFailedError)(nil)
	_ error = (*ConflictError)(nil)
	_ error = (*PersistError)(nil)
	_ error = (*NotFoundError)(nil)
)
