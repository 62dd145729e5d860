package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/proxy"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// A route with versions runs in two steps: versionSelect, in front of the
// route's plugin chain, reads the request's version, records it (and the
// path without the version segment) and answers unknown, missing and
// retired versions; versionDispatch, the route's terminal, hands the
// request to the chosen version's own plugins and forwarder. So the
// route's plugins, the version's plugins and the upstream all see the
// same path. Everything is built once per config; a request does a few
// comparisons and allocates nothing here.

// versionSet is a route's compiled versions.
type versionSet struct {
	sources  []versionSource
	versions []apiVersion
	// def is the index of the default version, -1 for none.
	def int
	// prefix is match.path_prefix without its trailing "/": the path
	// source's version is the segment after it.
	prefix string
	strip  bool
	clock  func() time.Time
	// required and unknown are the 400 messages for a request without a
	// version and for one naming no known version.
	required, unknown string
	// vary is the Vary value naming the request headers the version is
	// read from (nil when none is), clipped so that appending copies.
	vary []string
}

type sourceKind uint8

const (
	sourcePath sourceKind = iota
	sourceKey
	sourceMedia
)

// versionSource is one entry of versions.from.
type versionSource struct {
	kind sourceKind
	// key reads a header, query parameter or cookie (sourceKey).
	key reqkey.Key
	// media is the vendor media type with a trailing "." (sourceMedia),
	// and notAcceptable its 406 message.
	media, notAcceptable string
}

// apiVersion is one compiled version.
type apiVersion struct {
	name, upstream string
	// handler is the version's plugin chain ending in its forwarder.
	handler http.Handler
	// deprecation, sunset and link are the response header values of a
	// deprecated version (nil when not sent), clipped so that appending
	// to them copies.
	deprecation, sunset, link []string
	// goneAt, when set, is the sunset from which the version answers 410
	// with goneMsg.
	goneAt  time.Time
	goneMsg string
}

// versionSelect chooses the request's version in front of the route's
// plugin chain (next).
type versionSelect struct {
	set  *versionSet
	next http.Handler
}

func (h *versionSelect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	vs := h.set
	if vs.vary != nil {
		w.Header()["Vary"] = vs.vary
	}
	rec := request.RecordOf(r)
	path := rec.PathOf(r)
	i, byPath, status, msg := vs.versionOf(r, rec, path)
	if status != 0 {
		if msg == vs.required && isPreflight(r) {
			// A CORS preflight carries no version header: the route's
			// plugins (cors) answer it; the version terminal refuses it
			// if none does.
			h.next.ServeHTTP(w, r)
			return
		}
		request.WriteError(w, r, status, msg)
		return
	}
	v := &vs.versions[i]
	if rec != nil {
		rec.Version = v.name
		if byPath && vs.strip {
			rec.Path = vs.stripVersion(path, v.name)
		}
	}
	if v.deprecation != nil {
		hdr := w.Header()
		hdr["Deprecation"] = v.deprecation
		if v.sunset != nil {
			hdr["Sunset"] = v.sunset
		}
		if v.link != nil {
			hdr["Link"] = v.link
		}
	}
	if !v.goneAt.IsZero() && !vs.clock().Before(v.goneAt) {
		request.WriteError(w, r, http.StatusGone, v.goneMsg)
		return
	}
	h.next.ServeHTTP(w, r)
}

// versionDispatch is the terminal of a route with versions: it runs the
// version versionSelect chose.
type versionDispatch struct{ set *versionSet }

func (h *versionDispatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rec := request.RecordOf(r); rec != nil && rec.Version != "" {
		for i := range h.set.versions {
			if v := &h.set.versions[i]; v.name == rec.Version {
				rec.Upstream = v.upstream
				v.handler.ServeHTTP(w, r)
				return
			}
		}
	}
	// A preflight no plugin answered.
	request.WriteError(w, r, http.StatusBadRequest, h.set.required)
}

// isPreflight reports whether r is a CORS preflight request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && len(r.Header["Origin"]) > 0 && len(r.Header["Access-Control-Request-Method"]) > 0
}

// wrapVersions puts the version choice in front of chain, the plugin chain
// of a route whose terminal is a versionDispatch; other chains are
// returned as they are.
func wrapVersions(terminal, chain http.Handler) http.Handler {
	if d, ok := terminal.(*versionDispatch); ok && chain != nil {
		return &versionSelect{set: d.set, next: chain}
	}
	return chain
}

// versionOf returns the index of the request's version and whether the
// path gave it, or the status (400, 406) and message to answer with. The
// first source in from order that gives a value decides; without one, the
// default version is used.
func (vs *versionSet) versionOf(r *http.Request, rec *request.Record, path string) (idx int, byPath bool, status int, msg string) {
	for i := range vs.sources {
		src := &vs.sources[i]
		switch src.kind {
		case sourcePath:
			seg, ok := vs.pathSegment(path)
			if !ok {
				continue
			}
			if j := vs.index(seg); j >= 0 {
				return j, true, 0, ""
			}
			if looksLikeVersion(seg) {
				return -1, false, http.StatusBadRequest, vs.unknown
			}
		case sourceKey:
			if v, ok := src.key.Value(r, rec); ok {
				if j := vs.index(v); j >= 0 {
					return j, false, 0, ""
				}
				return -1, false, http.StatusBadRequest, vs.unknown
			}
		case sourceMedia:
			j, found := vs.mediaVersion(r.Header["Accept"], src.media)
			if j >= 0 {
				return j, false, 0, ""
			}
			if found {
				return -1, false, http.StatusNotAcceptable, src.notAcceptable
			}
		}
	}
	if vs.def >= 0 {
		return vs.def, false, 0, ""
	}
	return -1, false, http.StatusBadRequest, vs.required
}

// index returns the position of the version called name, or -1.
func (vs *versionSet) index(name string) int {
	for i := range vs.versions {
		if vs.versions[i].name == name {
			return i
		}
	}
	return -1
}

// pathSegment returns the path segment after the prefix.
func (vs *versionSet) pathSegment(path string) (string, bool) {
	if !strings.HasPrefix(path, vs.prefix) {
		return "", false
	}
	rest := path[len(vs.prefix):]
	if len(rest) < 2 || rest[0] != '/' {
		return "", false
	}
	seg := rest[1:]
	if j := strings.IndexByte(seg, '/'); j >= 0 {
		seg = seg[:j]
	}
	return seg, seg != ""
}

// stripVersion removes the version segment name (which pathSegment found)
// from path: /orders/v1/items → /orders/items, /v1 → /. Without a prefix
// it slices path and allocates nothing.
func (vs *versionSet) stripVersion(path, name string) string {
	rest := path[len(vs.prefix)+1+len(name):]
	if vs.prefix == "" {
		if rest == "" {
			return "/"
		}
		return rest
	}
	return vs.prefix + rest
}

// looksLikeVersion reports whether a path segment that names no version
// is meant as one (v or V followed by a digit: v9, V3.1), so the client
// gets 400 instead of another version answering; any other segment is not
// a version and the next source is asked.
func looksLikeVersion(seg string) bool {
	return len(seg) >= 2 && (seg[0] == 'v' || seg[0] == 'V') && seg[1] >= '0' && seg[1] <= '9'
}

// mediaVersion finds a known version in the Accept header lines: the
// first media range of the form <media><version>[+suffix][;params] whose
// version is known. found reports whether any media range of that form
// was present.
func (vs *versionSet) mediaVersion(lines []string, media string) (idx int, found bool) {
	for _, line := range lines {
		for line != "" {
			var item string
			item, line, _ = strings.Cut(line, ",")
			item, _, _ = strings.Cut(item, ";")
			item = strings.TrimSpace(item)
			if len(item) <= len(media) || !strings.EqualFold(item[:len(media)], media) {
				continue
			}
			v, _, _ := strings.Cut(item[len(media):], "+")
			found = true
			if i := vs.index(v); i >= 0 {
				return i, true
			}
		}
	}
	return -1, found
}

// buildVersions builds the terminal of a route with versions: one plugin
// chain and forwarder per version, each on its upstream's pool. The
// versions' plugins are built even when the route failed (they are parts
// of their own, like the route's plugins); it returns nil after adding
// errors when the versions cannot be built.
func (b *Builder) buildVersions(s *Snapshot, rc *config.Route, path string, logger *slog.Logger, errs *located) http.Handler {
	vc := rc.Versions
	failed := s.cfg.Covered(path)
	var rw *proxy.Rewrite
	if !failed {
		var err error
		if rw, err = proxy.CompileRewrite(rc.Rewrite, rc.Match); err != nil {
			errs.add(path+".rewrite", err)
			failed = true
		}
	}
	clock := b.Clock
	if clock == nil {
		clock = time.Now
	}
	vs := &versionSet{def: -1, prefix: strings.TrimSuffix(rc.Match.PathPrefix, "/"), strip: vc.Strip(), clock: clock}
	for i := range vc.List {
		v, ok := b.buildVersion(s, rc, &vc.List[i], fmt.Sprintf("%s.versions.list[%d]", path, i), rw, logger, errs)
		failed = failed || !ok
		vs.versions = append(vs.versions, v)
	}
	if failed || !vs.compileSources(vc, path, errs) {
		return nil
	}
	return &versionDispatch{set: vs}
}

// compileSources compiles the sources, the default and the messages of a
// route whose versions are built; false after adding errors.
func (vs *versionSet) compileSources(vc *config.Versions, path string, errs *located) bool {
	names := make([]string, len(vs.versions))
	for i := range vs.versions {
		names[i] = vs.versions[i].name
	}
	known := strings.Join(names, ", ")
	ok := true
	var where []string
	for i, src := range vc.From {
		vsrc, desc, err := compileVersionSource(src, vs.prefix, known)
		if err != nil {
			errs.add(fmt.Sprintf("%s.versions.from[%d]", path, i), err)
			ok = false
			continue
		}
		vs.sources = append(vs.sources, vsrc)
		where = append(where, desc)
	}
	if vc.Default != "" {
		if vs.def = vs.index(vc.Default); vs.def < 0 {
			errs.add(path+".versions.default", fmt.Errorf("default %q is not one of the versions (%s)", vc.Default, known))
			ok = false
		}
	}
	if vary := varyOf(vc.From); vary != "" {
		vs.vary = []string{vary}
	}
	vs.unknown = "unknown API version (known: " + known + ")"
	vs.required = "API version required (known: " + known + "; send it in " + strings.Join(where, " or ") + ")"
	return ok
}

// varyOf returns the Vary value of the request headers the sources read:
// the named headers, Accept for a media type, Cookie for a cookie.
func varyOf(from []string) string {
	var names []string
	for _, src := range from {
		kind, name, _ := strings.Cut(src, ":")
		switch kind {
		case "header":
			name = http.CanonicalHeaderKey(name)
		case "media_type":
			name = "Accept"
		case "cookie":
			name = "Cookie"
		default:
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return strings.Join(names, ", ")
}

// buildVersion builds one version at YAML path p: its plugins, and unless
// the route failed (rw is nil then), its forwarder and deprecation
// headers; ok is false when the version is not usable.
func (b *Builder) buildVersion(s *Snapshot, rc *config.Route, vc *config.Version, p string, rw *proxy.Rewrite, logger *slog.Logger, errs *located) (v apiVersion, ok bool) {
	v = apiVersion{name: vc.Name, upstream: vc.Upstream}
	// The version is the route proxying to the version's upstream:
	// plugins see its timeout, the forwarder its settings.
	vrc := *rc
	vrc.Upstream, vrc.Versions, vrc.Plugins = vc.Upstream, nil, vc.Plugins
	logger = logger.With("version", vc.Name)
	ok = true
	var insts []*plugin.Instance
	for _, ps := range vc.Plugins {
		if s.cfg.Covered(ps.Path) {
			ok = false
			continue
		}
		in, err := plugin.New(ps, b.pluginContext(s, &vrc, ps, logger))
		if err != nil {
			errs.add(ps.Path, err)
			ok = false
			continue
		}
		insts = append(insts, in)
		s.instances = append(s.instances, in)
	}
	if rw == nil {
		return v, false
	}
	if d := vc.Deprecated; d != nil {
		if err := v.deprecate(d); err != nil {
			errs.add(p+".deprecated", err)
			ok = false
		}
	}
	pool := s.pools[vc.Upstream]
	if pool == nil {
		// A defined upstream without a pool failed to build and its own
		// error is reported.
		if _, defined := s.cfg.Upstreams[vc.Upstream]; !defined {
			errs.add(p+".upstream", fmt.Errorf("upstream %q is not available", vc.Upstream))
		}
		return v, false
	}
	v.handler = plugin.Chain(insts, proxy.NewForwarder(pool, forwardOptions(b, &vrc, rw, logger)))
	return v, ok
}

// deprecate precomputes a deprecated version's response headers and 410.
func (v *apiVersion) deprecate(d *config.Deprecation) error {
	date, err := config.ParseVersionDate(d.Date)
	if err != nil {
		return err
	}
	v.deprecation = []string{"@" + strconv.FormatInt(date.Unix(), 10)}
	if d.Sunset != "" {
		sunset, err := config.ParseVersionDate(d.Sunset)
		if err != nil {
			return err
		}
		httpDate := sunset.UTC().Format(http.TimeFormat)
		v.sunset = []string{httpDate}
		if d.GoneAfterSunset {
			v.goneAt = sunset
			v.goneMsg = "API version " + v.name + " is gone since " + httpDate
		}
	}
	if d.Link != "" {
		v.link = append(v.link, "<"+d.Link+`>; rel="deprecation"`)
	}
	if d.SunsetLink != "" {
		v.link = append(v.link, "<"+d.SunsetLink+`>; rel="sunset"`)
	}
	v.deprecation, v.sunset, v.link = slices.Clip(v.deprecation), slices.Clip(v.sunset), slices.Clip(v.link)
	return nil
}

// compileVersionSource compiles one versions.from entry; known lists the
// version names for messages. desc says where the source reads the
// version, for the "version required" message.
func compileVersionSource(src, prefix, known string) (vs versionSource, desc string, err error) {
	if src == config.VersionFromPath {
		return versionSource{kind: sourcePath}, "the path (" + prefix + "/<version>/...)", nil
	}
	if media, ok := strings.CutPrefix(src, config.VersionFromMediaType); ok {
		if err := config.CheckVendorMediaType(media); err != nil {
			return versionSource{}, "", err
		}
		return versionSource{kind: sourceMedia, media: strings.ToLower(media) + ".",
				notAcceptable: "Accept names no known version of " + media + " (known: " + known + ")"},
			"Accept: " + media + ".<version>+json", nil
	}
	kind, name, _ := strings.Cut(src, ":")
	if kind != "header" && kind != "query" && kind != "cookie" {
		return versionSource{}, "", fmt.Errorf("unknown version source %q", src)
	}
	k, err := reqkey.Parse([]string{src})
	if err != nil {
		return versionSource{}, "", err
	}
	return versionSource{kind: sourceKey, key: k}, "the " + name + " " + map[string]string{"header": "header", "query": "query parameter", "cookie": "cookie"}[kind], nil
}

// apiVersionMetrics are one version's request counters on a route with
// versions; name "" counts requests refused before a version was chosen.
type apiVersionMetrics struct {
	name    string
	metrics *observe.VersionMetrics
}

// versionMetrics returns the per-version counters of a route with
// versions (nil for other routes), the refused requests' first.
func (b *Builder) versionMetrics(rc *config.Route) []apiVersionMetrics {
	if rc.Versions == nil {
		return nil
	}
	out := []apiVersionMetrics{{name: "", metrics: b.Metrics.Version(rc.Name, "")}}
	for _, v := range rc.Versions.List {
		out = append(out, apiVersionMetrics{name: v.Name, metrics: b.Metrics.Version(rc.Name, v.Name)})
	}
	return out
}

// countVersion counts a finished request of a route with versions under
// its version.
func (rt *route) countVersion(rec *request.Record) {
	for i := range rt.apiVersions {
		if rt.apiVersions[i].name == rec.Version {
			rt.apiVersions[i].metrics.Count(rec.Status)
			return
		}
	}
}

// versionUpstreamMetrics returns one metrics set per version upstream of
// a route with versions, so the upstream label names the version's.
func (b *Builder) versionUpstreamMetrics(rc *config.Route) []variantMetrics {
	out := make([]variantMetrics, 0, len(rc.Versions.List))
	for _, v := range rc.Versions.List {
		out = append(out, variantMetrics{upstream: v.Upstream, metrics: b.Metrics.Route(rc.Name, v.Upstream)})
	}
	return out
}
