// Package schema generates the JSON Schema (draft 2020-12) of Portico's
// config file from the Go types it decodes into: internal/config's Config
// and, for each registered plugin, the plugin's own config type. Editors
// (yaml-language-server in VS Code, JetBrains IDEs) use it to complete and
// check configs.
//
// Descriptions come from the Go doc comments, so generation needs the
// source tree; the result is committed as schema/portico.schema.json and
// embedded in the binary from there (`portico schema`). Regenerate it with
//
//	go generate ./internal/schema
package schema

//go:generate go run ./gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"

	"github.com/invopop/jsonschema"
	orderedmap "github.com/pb33f/ordered-map/v2"
	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
	_ "github.com/portico-gw/portico/internal/plugin/all" // registers every bundled plugin
	"github.com/portico-gw/portico/internal/plugin/auth/hmacauth"
	"github.com/portico-gw/portico/internal/plugin/auth/introspection"
	"github.com/portico-gw/portico/internal/plugin/auth/oidclogin"
	"github.com/portico-gw/portico/internal/plugin/bodytransform"
	"github.com/portico-gw/portico/internal/plugin/quota"
	"github.com/portico-gw/portico/internal/plugin/ratelimit"
	"github.com/portico-gw/portico/internal/upstream"
)

// ID is the schema's $id: where the committed file is published.
const ID = "https://raw.githubusercontent.com/portico-gw/portico/main/schema/portico.schema.json"

// File is the committed schema's path relative to the module root.
const File = "schema/portico.schema.json"

// modulePath is the import path of the module root.
const modulePath = "github.com/portico-gw/portico"

// commentDirs are the source directories (relative to the module root)
// whose doc comments describe config types.
var commentDirs = []string{"internal/config", "internal/plugin", "internal/redisclient"}

// EnvPattern matches a string holding a ${VAR} or ${VAR:-default}
// reference: such a string is accepted wherever a scalar is, since it
// takes its field's type only once expanded.
const EnvPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// durationPattern matches what config.Duration accepts as a string: a Go
// duration ("250ms", "1h30m", "0"), an integer number of seconds, or a
// ${VAR} reference. Like sizePattern it leaves out the surrounding white
// space the decoder trims, which a plain YAML scalar cannot have.
const durationPattern = `^[-+]?((([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+|[0-9]+)$|` + EnvPattern

// sizePattern matches what config.Size accepts as a string: an integer
// with an optional unit (b, k/kb/kib, m/mb/mib, g/gb/gib, any case), -1
// (unlimited), or a ${VAR} reference.
const sizePattern = `^(-1 *[Bb]?|(\+?[0-9]+|-0+) *([KkMmGg]([Ii]?[Bb])?|[Bb])?)$|` + EnvPattern

var (
	durationType   = reflect.TypeOf(config.Duration(0))
	sizeType       = reflect.TypeOf(config.Size(0))
	stringListType = reflect.TypeOf(config.StringList(nil))
	pluginSpecType = reflect.TypeOf(config.PluginSpec{})
	yamlNodeType   = reflect.TypeOf(yaml.Node{})
	configPkg      = durationType.PkgPath()
)

// enums lists, per type and YAML key, the fixed set of values the code
// accepts (each checked where the comment says). The values stay legal
// alongside a ${VAR} reference.
func enums() map[reflect.Type]map[string][]any {
	return map[reflect.Type]map[string][]any{
		// config.validate
		reflect.TypeOf(config.Server{}): {"path_params": {"reject", "strip", "allow"}},
		// config.validate; 1.2 and 1.3 unquoted are YAML numbers, which
		// decode into the string field all the same.
		reflect.TypeOf(config.TLS{}): {
			"min_version": {"1.2", "1.3", 1.2, 1.3},
			"client_auth": {"request", "require"},
		},
		reflect.TypeOf(config.Log{}):       {"level": {"debug", "info", "warn", "error"}},
		reflect.TypeOf(config.AccessLog{}): {"format": {"json", "text"}},
		// config.validateTracing
		reflect.TypeOf(config.Tracing{}): {
			"exporter": {"otlp_http", "otlp_grpc", "none"},
			"sampler":  {"always", "never", "ratio", "parent_ratio"},
		},
		// config.validateUpstream; upstream.newBalancer
		reflect.TypeOf(config.Upstream{}): {
			"protocol": {"http1", "http2", "h2c"},
			"balancer": stringsToAny(upstream.BalancerNames()),
		},
		// upstream.defaultHealthCheck
		reflect.TypeOf(config.HealthCheck{}): {"type": {"http", "tcp", "grpc"}},
		// config.validateRoute
		reflect.TypeOf(config.Redirect{}): {"status": {301, 302, 303, 307, 308}},
		// ratelimit.RateLimit.Validate, compileLimit
		reflect.TypeOf(ratelimit.RateLimit{}): {
			"backend":        {"local", "redis"},
			"redis_mode":     {"exact", "lease"},
			"on_redis_error": {"fail_open", "fail_closed", "local"},
			"headers":        {"ietf", "x", "both", "none"},
		},
		reflect.TypeOf(ratelimit.Limit{}): {"algorithm": {"gcra", "sliding_window"}},
		// quota.Quota.Provision
		reflect.TypeOf(quota.Quota{}): {
			"period":         {"day", "month"},
			"on_anonymous":   {"deny", "allow"},
			"on_redis_error": {"fail_open", "fail_closed"},
		},
		// hmacauth.HMACAuth.Validate
		reflect.TypeOf(hmacauth.HMACAuth{}): {"on_redis_error": {"fail_closed", "local"}},
		// introspection.Introspection.Provision
		reflect.TypeOf(introspection.Introspection{}): {"client_auth": {"basic", "none"}},
		// oidclogin.OIDCLogin.check
		reflect.TypeOf(oidclogin.OIDCLogin{}): {"unauthenticated_action": {"redirect", "deny"}},
		// bodytransform.BodyTransform.Validate, compileRequest
		reflect.TypeOf(bodytransform.BodyTransform{}):    {"on_oversize": {"reject", "pass"}, "on_invalid": {"reject", "pass"}},
		reflect.TypeOf(bodytransform.RequestTransform{}): {"from": {"json", "form"}, "to": {"json", "form"}},
	}
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Generate returns the schema, pretty-printed with a final newline. root is
// the module root; it must be the working directory or lie above it (go
// generate and go test run in this package's directory, root "../..").
func Generate(root string) ([]byte, error) {
	r, err := newReflector(root)
	if err != nil {
		return nil, err
	}
	s := r.Reflect(&config.Config{})
	s.ID = jsonschema.ID(ID)
	s.Title = "Portico configuration"
	defs := s.Definitions

	if err := addPluginDefs(r, defs); err != nil {
		return nil, err
	}
	for k, d := range scalarDefs() {
		if err := addDef(defs, k, d); err != nil {
			return nil, err
		}
	}
	if err := applyEnums(r, defs); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// addPluginDefs adds one definition per plugin config type and the
// PluginSpec definition that selects among them by name.
func addPluginDefs(r *reflector, defs jsonschema.Definitions) error {
	// Plugin configs: one definition per plugin config type, which the
	// plugin spec refers to.
	r.ExpandedStruct = false
	names := plugin.Names()
	var cases []*jsonschema.Schema
	for _, name := range names {
		t, _ := plugin.ConfigType(name)
		ps := r.ReflectFromType(t)
		for k, d := range ps.Definitions {
			if err := addDef(defs, k, d); err != nil {
				return err
			}
		}
		cases = append(cases, &jsonschema.Schema{
			If: &jsonschema.Schema{
				Properties: props("name", &jsonschema.Schema{Const: name}),
				Required:   []string{"name"},
			},
			Then: &jsonschema.Schema{Properties: props("config", &jsonschema.Schema{Ref: ps.Ref})},
		})
	}
	spec := &jsonschema.Schema{
		Type:        "object",
		Description: r.comment(pluginSpecType, ""),
		Properties: props(
			"name", &jsonschema.Schema{Enum: stringsToAny(names), Description: r.comment(pluginSpecType, "Name")},
			"config", &jsonschema.Schema{Type: "object", Description: r.comment(pluginSpecType, "Config")},
		),
		Required:             []string{"name"},
		AdditionalProperties: jsonschema.FalseSchema,
		AllOf:                cases,
	}
	return addDef(defs, "PluginSpec", spec)
}

// scalarDefs are the definitions of the config's own scalar types.
func scalarDefs() map[string]*jsonschema.Schema {
	return map[string]*jsonschema.Schema{
		"Duration": {
			Description: `A duration: "250ms", "10s", "1m30s", "2h" (units ns, us, ms, s, m, h), or an integer number of seconds.`,
			Extras:      map[string]any{"type": []string{"integer", "string"}},
			Pattern:     durationPattern,
			Examples:    []any{"250ms", "10s", "1m30s", 30},
		},
		"Size": {
			Description: `A byte count: an integer, or a string with a unit: "64KiB", "10MiB", "1GB" (b; k, kib, m, mib, g, gib are powers of 1024; kb, mb, gb powers of 1000; any case). -1 means unlimited where the field says so.`,
			Extras:      map[string]any{"type": []string{"integer", "string"}},
			Minimum:     "-1",
			Pattern:     sizePattern,
			Examples:    []any{"64KiB", "10MiB", 65536},
		},
		"StringList": {
			Description: "One string, or a list of strings.",
			AnyOf: []*jsonschema.Schema{
				{Type: "string"},
				{Type: "array", Items: &jsonschema.Schema{Type: "string"}},
			},
		},
	}
}

// addDef adds d under name, which two plugins may share only with the
// same definition.
func addDef(defs jsonschema.Definitions, name string, d *jsonschema.Schema) error {
	if old, ok := defs[name]; ok {
		a, _ := json.Marshal(old)
		b, _ := json.Marshal(d)
		if !bytes.Equal(a, b) {
			return fmt.Errorf("schema: two different types are both named %s", name)
		}
	}
	defs[name] = d
	return nil
}

func props(kv ...any) *orderedmap.OrderedMap[string, *jsonschema.Schema] {
	p := jsonschema.NewProperties()
	for i := 0; i+1 < len(kv); i += 2 {
		p.Set(kv[i].(string), kv[i+1].(*jsonschema.Schema))
	}
	return p
}

// applyEnums replaces the properties named in enums() by their value set.
func applyEnums(r *reflector, defs jsonschema.Definitions) error {
	for t, fields := range enums() {
		d, ok := defs[r.name(t)]
		if !ok {
			return fmt.Errorf("schema: enum for %v, which the config does not use", t)
		}
		for key, values := range fields {
			p, ok := d.Properties.Get(key)
			if !ok {
				return fmt.Errorf("schema: enum for %v has no field %q", t, key)
			}
			d.Properties.Set(key, &jsonschema.Schema{
				Description: p.Description,
				AnyOf:       []*jsonschema.Schema{{Enum: values}, envString()},
			})
		}
	}
	return nil
}

// envString is a string holding a ${VAR} reference.
func envString() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: EnvPattern}
}

// reflector is the configured jsonschema.Reflector plus the helpers
// Generate needs.
type reflector struct {
	*jsonschema.Reflector
}

func newReflector(root string) (*reflector, error) {
	r := &reflector{&jsonschema.Reflector{
		FieldNameTag: "yaml",
		// yaml.v3 names an untagged field by its lower-cased Go name.
		KeyNamer: strings.ToLower,
		// Validation, not the schema, says what is required: every
		// field has a default or is checked with its neighbours.
		RequiredFromJSONSchemaTags: true,
		ExpandedStruct:             true,
		Anonymous:                  true,
	}}
	r.Namer = r.name
	r.Mapper = mapType
	if err := r.addComments(root); err != nil {
		return nil, err
	}
	return r, nil
}

// name names the definition of t: config types by their Go name, others
// (plugin configs) qualified by their package ("jwt.JWT").
func (r *reflector) name(t reflect.Type) string {
	if t.Name() == "" || t.PkgPath() == "" || t.PkgPath() == configPkg {
		return t.Name()
	}
	return path.Base(t.PkgPath()) + "." + t.Name()
}

func (r *reflector) comment(t reflect.Type, field string) string {
	k := t.PkgPath() + "." + t.Name()
	if field != "" {
		k += "." + field
	}
	return r.CommentMap[k]
}

// addComments reads the doc comments of the config types. The jsonschema
// library keys them by import path derived from the walked directory, so
// the directories are walked relative to the working directory, and the
// base import path is that of the working directory.
func (r *reflector) addComments(root string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	here, err := filepath.Rel(absRoot, wd)
	if err != nil || here == ".." || strings.HasPrefix(here, ".."+string(filepath.Separator)) {
		return fmt.Errorf("schema: the working directory %s is not inside the module root %s", wd, absRoot)
	}
	up, err := filepath.Rel(wd, absRoot)
	if err != nil {
		return err
	}
	base := path.Join(modulePath, filepath.ToSlash(here))
	for _, dir := range commentDirs {
		if err := r.AddGoComments(base, filepath.Join(up, dir), jsonschema.WithFullComment()); err != nil {
			return fmt.Errorf("schema: reading comments: %w", err)
		}
	}
	for k, v := range r.CommentMap {
		r.CommentMap[k] = reflow(v)
	}
	return nil
}

var lineBreak = regexp.MustCompile(`([^\n])\n([^\n\t ])`)

// reflow joins the lines of each paragraph of a doc comment, since editors
// wrap descriptions themselves; blank lines and indented lines stay.
func reflow(s string) string {
	return lineBreak.ReplaceAllString(strings.TrimSpace(s), "$1 $2")
}

// mapType gives the schema of the types the YAML decoder treats specially;
// nil leaves a type to the reflector.
func mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case durationType:
		return &jsonschema.Schema{Ref: "#/$defs/Duration"}
	case sizeType:
		return &jsonschema.Schema{Ref: "#/$defs/Size"}
	case stringListType:
		return &jsonschema.Schema{Ref: "#/$defs/StringList"}
	case pluginSpecType:
		return &jsonschema.Schema{Ref: "#/$defs/PluginSpec"}
	case yamlNodeType:
		return &jsonschema.Schema{}
	}
	scalar := func(typ string) *jsonschema.Schema {
		// A ${VAR} reference is a string until expanded.
		return &jsonschema.Schema{Extras: map[string]any{"type": []string{typ, "string"}}, Pattern: EnvPattern}
	}
	switch t.Kind() {
	case reflect.Bool:
		return scalar("boolean")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar("integer")
	case reflect.Float32, reflect.Float64:
		return scalar("number")
	case reflect.String:
		// The YAML decoder stores any scalar in a string field: an
		// unquoted 42 or true is the string "42" or "true".
		return &jsonschema.Schema{Extras: map[string]any{"type": []string{"string", "number", "boolean"}}}
	}
	return nil
}
