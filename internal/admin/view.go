package admin

import (
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// Redacted replaces every secret value in admin API responses.
const Redacted = config.Redacted

// fallbackSecretKeys are redacted wherever they appear inside a plugin
// config, as a safety net behind the `secret` struct tags that plugins
// declare on their config types (which is what redaction is based on).
var fallbackSecretKeys = map[string]bool{"secret": true, "password": true, "client_secret": true, "cookie_secret": true, "token": true}

// toGeneric renders a config value (a struct with yaml tags) as plain JSON
// data with the YAML field names; null fields are left out.
func toGeneric(v any) any {
	b, err := yaml.Marshal(v)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	var out any
	if err := yaml.Unmarshal(b, &out); err != nil {
		return map[string]any{"error": err.Error()}
	}
	return jsonable(out)
}

// redacted renders v (a config value) in generic form with every secret
// replaced: fields tagged secret on the config types and on each plugin's
// config type, credentials in URLs, and the fallback key names inside
// plugin configs.
func redacted(v any, plugins config.PluginTypes) any {
	doc := config.Redact(reflect.TypeOf(v), toGeneric(v), plugins)
	redactFallback(doc, false)
	return doc
}

// jsonable converts decoded YAML into values encoding/json accepts and
// drops null map entries.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if e == nil {
				delete(x, k)
				continue
			}
			x[k] = jsonable(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			if e != nil {
				m[fmt.Sprint(k)] = jsonable(e)
			}
		}
		return m
	case []any:
		for i := range x {
			x[i] = jsonable(x[i])
		}
		return x
	}
	return v
}

// redactFallback redacts fallbackSecretKeys inside every plugin config
// ("config" of an object with a "name") below v; inPlugin is true below one.
func redactFallback(v any, inPlugin bool) {
	switch x := v.(type) {
	case map[string]any:
		_, named := x["name"].(string)
		for k, e := range x {
			if inPlugin && fallbackSecretKeys[strings.ToLower(k)] && e != nil && e != "" {
				x[k] = Redacted
				continue
			}
			redactFallback(e, inPlugin || (named && k == "config"))
		}
	case []any:
		for _, e := range x {
			redactFallback(e, inPlugin)
		}
	}
}

// configView is the whole running config with every secret redacted.
func configView(cfg *config.Config, plugins config.PluginTypes) map[string]any {
	doc, _ := redacted(cfg, plugins).(map[string]any)
	if doc == nil {
		doc = map[string]any{}
	}
	return doc
}

// routeView is one route in config form (secrets redacted).
func routeView(r *config.Route, plugins config.PluginTypes) map[string]any {
	m, _ := redacted(r, plugins).(map[string]any)
	if m == nil {
		m = map[string]any{"name": r.Name}
	}
	return m
}

func getConfig(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	writeJSON(w, http.StatusOK, map[string]any{"revision": cfg.Hash, "source": cfg.Source, "config": configView(cfg, m.PluginConfigType)})
}

func getRoutes(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	writeList(w, cfg.Hash, "routes", cfg.Routes, func(rt *config.Route) map[string]any { return routeView(rt, m.PluginConfigType) })
}

func getRoute(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	writeNamed(w, "route", r.PathValue("name"), cfg.Routes, func(rt *config.Route) string { return rt.Name },
		func(rt *config.Route) map[string]any { return routeView(rt, m.PluginConfigType) })
}

// writeList answers with the views of the items that are set, under key.
func writeList[T, V any](w http.ResponseWriter, revision, key string, items []*T, view func(*T) V) {
	out := make([]V, 0, len(items))
	for _, it := range items {
		if it != nil {
			out = append(out, view(it))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"revision": revision, key: out})
}

// writeNamed answers with the view of the item called name, or 404.
func writeNamed[T, V any](w http.ResponseWriter, kind, name string, items []*T, nameOf func(*T) string, view func(*T) V) {
	for _, it := range items {
		if it != nil && nameOf(it) == name {
			writeJSON(w, http.StatusOK, view(it))
			return
		}
	}
	writeError(w, &NotFoundError{Kind: kind, Name: name})
}

// targetView is one upstream target with its runtime state.
type targetView struct {
	URL    string `json:"url"`
	Weight int    `json:"weight"`
	TargetStatus
}

// upstreamView is one upstream: its config and its targets' state.
type upstreamView struct {
	Name     string         `json:"name"`
	Balancer string         `json:"balancer"`
	Targets  []targetView   `json:"targets"`
	Config   map[string]any `json:"config"`
}

func newUpstreamView(m Manager, name string, u *config.Upstream) upstreamView {
	v := upstreamView{Name: name, Balancer: u.Balancer, Targets: []targetView{}}
	if v.Balancer == "" {
		v.Balancer = "weighted_round_robin"
	}
	for _, t := range u.Targets {
		v.Targets = append(v.Targets, targetView{URL: config.RedactUserinfo(t.URL), Weight: t.Weight, TargetStatus: m.TargetStatus(name, t.URL)})
	}
	v.Config, _ = redacted(u, m.PluginConfigType).(map[string]any)
	return v
}

func getUpstreams(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	names := make([]string, 0, len(cfg.Upstreams))
	for n, u := range cfg.Upstreams {
		if u != nil {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out := make([]upstreamView, 0, len(names))
	for _, n := range names {
		out = append(out, newUpstreamView(m, n, cfg.Upstreams[n]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"revision": cfg.Hash, "upstreams": out})
}

func getUpstream(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	name := r.PathValue("name")
	u := cfg.Upstreams[name]
	if u == nil {
		writeError(w, &NotFoundError{Kind: "upstream", Name: name})
		return
	}
	writeJSON(w, http.StatusOK, newUpstreamView(m, name, u))
}

// consumerView is a consumer without secrets: credential kinds are counted.
type consumerView struct {
	Name        string            `json:"name"`
	ID          string            `json:"id"`
	Groups      []string          `json:"groups"`
	Metadata    map[string]string `json:"metadata"`
	Credentials map[string]int    `json:"credentials"`
}

func newConsumerView(c *config.Consumer) consumerView {
	v := consumerView{Name: c.Name, ID: c.ID, Groups: c.Groups, Metadata: c.Metadata, Credentials: map[string]int{}}
	if v.ID == "" {
		v.ID = c.Name
	}
	if v.Groups == nil {
		v.Groups = []string{}
	}
	if v.Metadata == nil {
		v.Metadata = map[string]string{}
	}
	cr := c.Credentials
	for kind, n := range map[string]int{"key_auth": len(cr.KeyAuth), "basic_auth": len(cr.BasicAuth), "hmac_auth": len(cr.HMACAuth), "mtls": len(cr.MTLS)} {
		if n > 0 {
			v.Credentials[kind] = n
		}
	}
	return v
}

func getConsumers(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	writeList(w, cfg.Hash, "consumers", cfg.Consumers, newConsumerView)
}

func getConsumer(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	writeNamed(w, "consumer", r.PathValue("name"), cfg.Consumers, func(c *config.Consumer) string { return c.Name }, newConsumerView)
}

func getPlugins(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	kinds := m.Plugins()
	if kinds == nil {
		kinds = []PluginKind{}
	}
	global, _ := redacted(cfg.Plugins, m.PluginConfigType).([]any)
	if global == nil {
		global = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"revision": cfg.Hash, "registered": kinds, "global": global})
}

func getVersion(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	v := m.Version()
	up := time.Since(v.Started)
	writeJSON(w, http.StatusOK, map[string]any{
		"version":        v.Version,
		"go_version":     runtime.Version(),
		"started_at":     v.Started.UTC().Format(time.RFC3339),
		"uptime":         up.Truncate(time.Second).String(),
		"uptime_seconds": int64(up.Seconds()),
		"revision":       cfg.Hash,
		"config_source":  cfg.Source,
	})
}

// getHistory lists the recent config revisions, oldest first.
func getHistory(w http.ResponseWriter, r *http.Request, m Manager, cfg *config.Config) {
	writeJSON(w, http.StatusOK, map[string]any{"history": m.History()})
}
