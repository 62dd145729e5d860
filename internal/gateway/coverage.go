package gateway

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/router"
)

// routeProbe answers plugin.Context.Covers while a snapshot is built, from
// a route table compiled from every configured route and indexed by config
// position. It is compiled on first use (Build runs on one goroutine) and
// stays nil when the routes do not compile; those errors are reported by
// Build itself.
type routeProbe struct {
	built bool
	table *router.Table
}

// probeTable returns the snapshot's probe table, compiling it once.
func (s *Snapshot) probeTable() *router.Table {
	if !s.probe.built {
		s.probe.built = true
		specs := make([]router.Spec, len(s.cfg.Routes))
		for i, rc := range s.cfg.Routes {
			specs[i] = router.Spec{Name: rc.Name, Priority: rc.Priority, Match: rc.Match, Index: i}
		}
		if t, err := router.Build(specs); err == nil {
			s.probe.table = t
		}
	}
	return s.probe.table
}

// wildcardProbeLabel is the label put in front of a wildcard host
// ("*.example.org") to ask about a request on one of its names.
const wildcardProbeLabel = "portico-probe"

// Covers implements plugin.Context: it routes a synthetic browser GET of
// target through the config's route table. The request carries the
// header values the instance's route requires (a browser that reached the
// route sends them again) and the target's query only.
func (c pluginCtx) Covers(host, target string) plugin.Coverage {
	cv := plugin.Coverage{Covered: true, Host: host}
	if c.rc == nil || c.snap == nil || c.snap.cfg == nil {
		return cv
	}
	cfg, rc := c.snap.cfg, c.rc
	cv.Match = describeMatch(rc.Match)
	cv.PathPrefix = rc.Match.PathPrefix
	rawPath, query, _ := strings.Cut(target, "?")
	path, _, err := router.NormalizePath(rawPath)
	if err != nil {
		cv.Covered = false
		return cv
	}
	cv.Path = path
	idx := slices.Index(cfg.Routes, rc)
	t := c.snap.probeTable()
	if idx < 0 || t == nil {
		return cv
	}
	type probe struct{ shown, host string }
	var probes []probe
	switch {
	case host != "":
		h := router.NormalizeHost(host)
		if len(rc.Match.Hosts) > 0 && !slices.ContainsFunc(rc.Match.Hosts, func(cond string) bool { return hostCovers(cond, h) }) {
			cv.Covered, cv.HostMismatch = false, true
			return cv
		}
		probes = append(probes, probe{host, h})
	case len(rc.Match.Hosts) == 0:
		probes = append(probes, probe{"", ""})
	default:
		for _, cond := range rc.Match.Hosts {
			h := router.NormalizeHost(cond)
			if suffix, ok := strings.CutPrefix(h, "*."); ok {
				h = wildcardProbeLabel + "." + suffix
			}
			probes = append(probes, probe{cond, h})
		}
	}
	hdr := http.Header{}
	for k, v := range rc.Match.Headers {
		hdr.Set(k, v)
	}
	var params request.Params
	for _, p := range probes {
		req := &http.Request{Method: http.MethodGet, Host: p.host, URL: &url.URL{Path: path, RawQuery: query}, Header: hdr}
		i, ok := t.Match(req, p.host, path, &params)
		if ok && i == idx {
			continue
		}
		cv.Covered, cv.Host = false, p.shown
		if ok {
			cv.Winner = cfg.Routes[i].Name
			cv.WinnerPlugins = plugin.Merge(cfg.Plugins, cfg.Routes[i].Plugins)
		}
		return cv
	}
	return cv
}

// hostCovers reports whether the host condition cond (a name or a
// "*.suffix" wildcard of one or more labels) matches the normalised host h.
func hostCovers(cond, h string) bool {
	cond = router.NormalizeHost(cond)
	if suffix, ok := strings.CutPrefix(cond, "*."); ok {
		return strings.HasSuffix(h, "."+suffix) && len(h) > len(suffix)+1
	}
	return cond == h
}

// describeMatch renders a route's match conditions for error messages.
// Header and query values are left out: they may be credentials.
func describeMatch(m config.Match) string {
	var parts []string
	if len(m.Hosts) > 0 {
		parts = append(parts, "hosts ["+strings.Join(m.Hosts, " ")+"]")
	}
	if m.Path != "" {
		parts = append(parts, "path "+m.Path)
	}
	if m.PathPrefix != "" {
		parts = append(parts, "path_prefix "+m.PathPrefix)
	}
	if m.PathRegex != "" {
		parts = append(parts, "path_regex "+m.PathRegex)
	}
	if len(m.Methods) > 0 {
		parts = append(parts, "methods ["+strings.Join(m.Methods, " ")+"]")
	}
	if len(m.Headers) > 0 {
		parts = append(parts, "headers ["+strings.Join(sortedNames(m.Headers), " ")+"]")
	}
	if len(m.Query) > 0 {
		parts = append(parts, "query ["+strings.Join(sortedNames(m.Query), " ")+"]")
	}
	if len(parts) == 0 {
		return "every request"
	}
	return strings.Join(parts, ", ")
}

func sortedNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
