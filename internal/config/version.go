package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/httpx"
)

// Versions serves several versions of one API on a route: each request's
// version is read from the sources in From, and the version decides the
// upstream and the extra plugins.
type Versions struct {
	// From lists where the version is read, in order of precedence; the
	// first source that gives a value decides. Sources: "path" (the path
	// segment right after match.path_prefix, or the first segment without
	// one), "header:<Name>", "query:<name>", "cookie:<name>" and
	// "media_type:<type>" (the Accept header's vendor media type, e.g.
	// media_type:application/vnd.acme reads v2 from
	// application/vnd.acme.v2+json). Required.
	From StringList `yaml:"from"`
	// Default is the version of a request no source gives a version for.
	// Unset, such a request gets 400 "API version required".
	Default string `yaml:"default"`
	// StripPath removes the version segment from the path the upstream
	// receives (and that plugins see) when the path source gave the
	// version: /orders/v1/items is sent as /orders/items. Default true.
	StripPath *bool `yaml:"strip_path"`
	// List are the versions, each with its upstream; names are unique.
	List []Version `yaml:"list"`
}

// Version is one version of a versioned route.
type Version struct {
	// Name is the version as clients send it (v1, 2024-06-01): letters,
	// digits, '.', '_' and '-', at most 64 characters. Required.
	Name string `yaml:"name"`
	// Upstream names the defined upstream this version's requests go to.
	// Required.
	Upstream string `yaml:"upstream"`
	// Plugins run for this version only, after the route's (and the
	// global) plugins, ordered by phase among themselves.
	Plugins []PluginSpec `yaml:"plugins"`
	// Deprecated marks the version deprecated: its responses carry
	// Deprecation, Sunset and Link headers.
	Deprecated *Deprecation `yaml:"deprecated"`
}

// Deprecation describes a deprecated version and its retirement.
type Deprecation struct {
	// Date is when the version was (or will be) deprecated, sent as
	// "Deprecation: @<unix seconds>" (RFC 9745): a date (2026-06-01, UTC
	// midnight) or an RFC 3339 time. Required.
	Date string `yaml:"date"`
	// Sunset is when the version stops being served, sent as the Sunset
	// header (RFC 8594, an HTTP-date); same formats as date, not before it.
	Sunset string `yaml:"sunset"`
	// Link is a page about the deprecation (migration guide), sent as
	// Link: <url>; rel="deprecation". An absolute http(s) URL.
	Link string `yaml:"link"`
	// SunsetLink is a page about the sunset, sent as
	// Link: <url>; rel="sunset". An absolute http(s) URL.
	SunsetLink string `yaml:"sunset_link"`
	// GoneAfterSunset answers the version's requests with 410 Gone from
	// the sunset time on, instead of proxying them. Needs sunset.
	GoneAfterSunset bool `yaml:"gone_after_sunset"`
}

// Version sources of Versions.From that are not request keys.
const (
	VersionFromPath      = "path"
	VersionFromMediaType = "media_type:"
)

// MaxVersionName is the longest version name.
const MaxVersionName = 64

// Strip reports whether the path source's version segment is removed from
// the forwarded path.
func (v *Versions) Strip() bool { return v.StripPath == nil || *v.StripPath }

// ParseVersionDate parses a deprecation or sunset date: 2006-01-02 (UTC
// midnight) or RFC 3339.
func ParseVersionDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2026-06-01) or an RFC 3339 time (2026-06-01T12:00:00Z)", s)
	}
	return t.UTC(), nil
}

// ValidVersionName reports whether s may name a version.
func ValidVersionName(s string) bool {
	if s == "" || len(s) > MaxVersionName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// usesUpstream reports whether a version sends requests to the upstream
// name; v may be nil.
func (v *Versions) usesUpstream(name string) bool {
	if v == nil {
		return false
	}
	for _, ver := range v.List {
		if ver.Upstream == name {
			return true
		}
	}
	return false
}

// setPaths records the YAML paths of the plugin specs of route p's
// versions.
func (v *Versions) setPaths(p string) {
	if v == nil {
		return
	}
	for i := range v.List {
		for j := range v.List[i].Plugins {
			v.List[i].Plugins[j].Path = fmt.Sprintf("%s.versions.list[%d].plugins[%d]", p, i, j)
		}
	}
}

// validateVersions checks a route's versions at path p (the versions'
// path); r is the route.
func (c *Config) validateVersions(l *errorList, p string, r *Route) {
	v := r.Versions
	validateVersionSources(l, p+".from", v.From, &r.Match)
	names := map[string]int{}
	for i := range v.List {
		c.validateVersion(l, fmt.Sprintf("%s.list[%d]", p, i), &v.List[i], names, i)
	}
	if len(v.List) == 0 {
		l.add(p+".list", "versions need at least one version")
	}
	if _, ok := names[v.Default]; v.Default != "" && !ok {
		l.add(p+".default", "default %q is not one of the versions (%s)", v.Default, strings.Join(versionNames(v.List), ", "))
	}
}

// validateVersionSources checks the from list; m is the route's match.
func validateVersionSources(l *errorList, p string, from StringList, m *Match) {
	if len(from) == 0 {
		l.add(p, "from needs at least one source: path, header:<Name>, query:<name>, cookie:<name> or media_type:<type>")
	}
	seen := map[string]int{}
	for i, src := range from {
		sp := fmt.Sprintf("%s[%d]", p, i)
		if j, dup := seen[src]; dup {
			l.add(sp, "source %q is already from[%d]", src, j)
			continue
		}
		seen[src] = i
		if msg := checkVersionSource(src, m); msg != "" {
			l.add(sp, "%s", msg)
		}
	}
}

// checkVersionSource returns what is wrong with one source ("" if nothing).
func checkVersionSource(src string, m *Match) string {
	kind, name, _ := strings.Cut(src, ":")
	switch {
	case src == VersionFromPath:
		if m.Path != "" || m.PathRegex != "" {
			return "the path source needs match.path_prefix (the version is the segment after it) or no path condition, not match.path or match.path_regex"
		}
	case kind == "header" || kind == "cookie":
		if !httpx.ValidToken(name) {
			return fmt.Sprintf("%s name %q is not a valid token (letters, digits and !#$%%&'*+-.^_`|~)", kind, name)
		}
	case kind == "query":
		if name == "" || strings.ContainsAny(name, " &=#\t") {
			return fmt.Sprintf("query parameter name %q must be non-empty without spaces, '&', '=' or '#'", name)
		}
	case kind+":" == VersionFromMediaType:
		if err := CheckVendorMediaType(name); err != nil {
			return err.Error()
		}
	default:
		return fmt.Sprintf("unknown version source %q (valid: path, header:<Name>, query:<name>, cookie:<name>, media_type:<type>)", src)
	}
	return ""
}

// CheckVendorMediaType checks the base of a media_type source: a
// type/subtype without suffix or parameters, such as application/vnd.acme.
func CheckVendorMediaType(s string) error {
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || !httpx.ValidToken(typ) || !httpx.ValidToken(sub) || strings.ContainsAny(sub, "+/") {
		return fmt.Errorf("media type %q must be a type/subtype without +suffix or parameters, such as application/vnd.acme", s)
	}
	return nil
}

// validateVersion checks one version at p; names maps the names seen so far.
func (c *Config) validateVersion(l *errorList, p string, v *Version, names map[string]int, i int) {
	switch j, dup := names[v.Name]; {
	case !ValidVersionName(v.Name):
		l.add(p+".name", "version name %q must be 1 to %d letters, digits, '.', '_' or '-'", v.Name, MaxVersionName)
	case dup:
		l.add(p+".name", "version %q is already list[%d]", v.Name, j)
	default:
		names[v.Name] = i
	}
	switch {
	case v.Upstream == "":
		l.add(p+".upstream", "version upstream is required")
	case c.Upstreams[v.Upstream] == nil && !c.Covered("upstreams"):
		l.add(p+".upstream", "upstream %q is not defined (defined: %s)", v.Upstream, strings.Join(sortedKeys(c.Upstreams), ", "))
	}
	for j, ps := range v.Plugins {
		if ps.Name == "" {
			l.add(fmt.Sprintf("%s.plugins[%d].name", p, j), "plugin name is required")
		}
	}
	if d := v.Deprecated; d != nil {
		validateDeprecation(l, p+".deprecated", d)
	}
}

// validateDeprecation checks a version's deprecation at p.
func validateDeprecation(l *errorList, p string, d *Deprecation) {
	var date, sunset time.Time
	var err error
	if d.Date == "" {
		l.add(p+".date", "deprecation date is required (e.g. 2026-06-01)")
	} else if date, err = ParseVersionDate(d.Date); err != nil {
		l.add(p+".date", "%v", err)
	}
	if d.Sunset != "" {
		if sunset, err = ParseVersionDate(d.Sunset); err != nil {
			l.add(p+".sunset", "%v", err)
		} else if !date.IsZero() && sunset.Before(date) {
			l.add(p+".sunset", "sunset %s is before the deprecation date %s", d.Sunset, d.Date)
		}
	}
	if d.GoneAfterSunset && d.Sunset == "" {
		l.add(p+".gone_after_sunset", "gone_after_sunset needs a sunset date")
	}
	for _, f := range []struct{ field, url string }{{"link", d.Link}, {"sunset_link", d.SunsetLink}} {
		if f.url != "" && !validLinkURL(f.url) {
			l.add(p+"."+f.field, "%s %q must be an absolute http or https URL without spaces, '<' or '>'", f.field, f.url)
		}
	}
}

// validLinkURL reports whether s can be sent in a Link header.
func validLinkURL(s string) bool {
	if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' {
			return false
		}
	}
	return true
}

// versionNames lists the versions' names in config order.
func versionNames(list []Version) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		out = append(out, v.Name)
	}
	return out
}

// isVersionPlugin reports whether the split path segs is in a version's
// plugin (routes[i].versions.list[j].plugins[k]…), which is a part of its
// own like a route's plugin.
func isVersionPlugin(segs []string) bool {
	return len(segs) >= 7 && segs[2] == "versions" && segs[3] == "list" && strings.HasPrefix(segs[4], "[") &&
		segs[5] == "plugins" && strings.HasPrefix(segs[6], "[")
}
