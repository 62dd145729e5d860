package config

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Secret fields are marked with a `secret` struct tag, on the config types
// here and on plugin config structs alike, and the admin API redacts by
// that mark (see Redact):
//
//	secret:"true"       the value, and every string below it, is a secret
//	secret:"values"     every value of the map is a secret; its keys are not
//	secret:"sensitive"  values of the map whose key looks like a credential
//	                    (see SensitiveName) are secrets
const secretTag = "secret"

// Redacted replaces every secret value the admin API returns.
const Redacted = "REDACTED"

// PluginTypes resolves a plugin name to the type of the value its config is
// decoded into; ok is false for an unknown name.
type PluginTypes func(name string) (t reflect.Type, ok bool)

// Redact replaces, in place, the secrets in doc: the generic form
// (map[string]any, []any, scalars, with YAML field names) of a value of type
// t. Plugin configs (PluginSpec.Config) are redacted by the secret tags of
// the plugin's own config type; in the config of an unknown plugin, the
// values of keys that SensitiveName matches are. Finally credentials in URLs (user:password@) are replaced
// anywhere in doc. It returns the redacted doc.
func Redact(t reflect.Type, doc any, plugins PluginTypes) any {
	doc = redactTyped(t, doc, "", plugins)
	return redactURLs(doc)
}

var (
	pluginSpecType = reflect.TypeOf(PluginSpec{})
	yamlNodeType   = reflect.TypeOf(yaml.Node{})
)

func redactTyped(t reflect.Type, v any, tag string, plugins PluginTypes) any {
	if v == nil {
		return nil
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch tag {
	case "true":
		return redactAll(v)
	case "values", "sensitive":
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				if tag == "values" || SensitiveName(k) {
					m[k] = redactAll(e)
				}
			}
			return m
		}
		return redactAll(v)
	}
	if t == nil {
		return v
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		if t == pluginSpecType {
			name, _ := m["name"].(string)
			if c, ok := m["config"]; ok {
				if pt, known := lookupPlugin(plugins, name); known {
					m["config"] = redactTyped(pt, c, "", plugins)
				} else {
					m["config"] = redactNamed(c)
				}
			}
			return m
		}
		if t == yamlNodeType {
			return redactAll(v)
		}
		redactStruct(t, m, plugins)
		return m
	case reflect.Slice, reflect.Array:
		if s, ok := v.([]any); ok {
			for i := range s {
				s[i] = redactTyped(t.Elem(), s[i], "", plugins)
			}
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				m[k] = redactTyped(t.Elem(), e, "", plugins)
			}
		}
	case reflect.Interface:
		// Free-form data: nothing is known about it.
	}
	return v
}

// redactStruct redacts the fields of struct type t found in m.
func redactStruct(t reflect.Type, m map[string]any, plugins PluginTypes) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, inline := yamlFieldName(f)
		if name == "-" || (!f.IsExported() && !(inline && f.Anonymous)) {
			continue
		}
		if inline {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				redactStruct(ft, m, plugins)
			}
			continue
		}
		if v, ok := m[name]; ok {
			m[name] = redactTyped(f.Type, v, f.Tag.Get(secretTag), plugins)
		}
	}
}

// yamlFieldName returns the YAML key of a struct field as yaml.v3 derives
// it, and whether the field is inlined.
func yamlFieldName(f reflect.StructField) (string, bool) {
	tag := f.Tag.Get("yaml")
	name, opts, _ := strings.Cut(tag, ",")
	if strings.Contains(","+opts+",", ",inline,") {
		return "", true
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name, false
}

func lookupPlugin(plugins PluginTypes, name string) (reflect.Type, bool) {
	if plugins == nil {
		return nil, false
	}
	return plugins(name)
}

// redactNamed redacts, at any depth, the values of keys that SensitiveName
// matches: all that can be done for a config whose type is unknown.
func redactNamed(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if SensitiveName(k) {
				x[k] = redactAll(e)
			} else {
				x[k] = redactNamed(e)
			}
		}
	case []any:
		for i := range x {
			x[i] = redactNamed(x[i])
		}
	}
	return v
}

// redactAll replaces every non-empty scalar below v.
func redactAll(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case map[string]any:
		for k, e := range x {
			x[k] = redactAll(e)
		}
		return x
	case []any:
		for i := range x {
			x[i] = redactAll(x[i])
		}
		return x
	case string:
		if x == "" {
			return x
		}
	case bool:
		return x
	}
	return Redacted
}

// redactURLs replaces the userinfo of every URL-looking string below v.
func redactURLs(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = redactURLs(e)
		}
	case []any:
		for i := range x {
			x[i] = redactURLs(x[i])
		}
	case string:
		return RedactUserinfo(x)
	}
	return v
}

// RedactUserinfo replaces the user:password@ part of a URL in s with
// REDACTED@; any other string is returned unchanged. It works on the text,
// so a URL that does not parse is covered too.
func RedactUserinfo(s string) string {
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	start := i + 3
	end := len(s)
	if j := strings.IndexAny(s[start:], "/?#"); j >= 0 {
		end = start + j
	}
	at := strings.LastIndexByte(s[start:end], '@')
	if at < 0 {
		return s
	}
	return s[:start] + Redacted + s[start+at:]
}

// SensitiveName reports whether a header, query or map key name looks like
// it carries a credential: Authorization, Proxy-Authorization, Cookie,
// Set-Cookie, or any name containing auth, token, secret, key, password,
// passwd, credential, session or signature (any case).
func SensitiveName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "cookie", "token", "secret", "key", "password", "passwd", "credential", "session", "signature"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// CheckServiceURL validates a URL a plugin or the gateway calls: absolute
// http or https, with a host, and without credentials (user:password@),
// which belong in the plugin's own secret settings where they are redacted
// and never logged. field names the setting in the error. The error never
// repeats a URL that carries credentials.
func CheckServiceURL(field, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s is required", field)
	}
	if RedactUserinfo(raw) != raw {
		return nil, errors.New(field + ": credentials (user:password@) are not allowed in the URL; give them in the plugin's own settings, not in the URL")
	}
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("%s: %q is not an http or https URL: missing scheme, write \"http://%s\" (or https://)", field, raw, strings.TrimPrefix(raw, "//"))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%s: %q is not an http or https URL", field, raw)
	}
	if p := u.Port(); p != "" {
		if err := checkPort(p, false); err != nil {
			return nil, fmt.Errorf("%s: %q: %v", field, raw, err)
		}
	}
	if u.User != nil {
		return nil, errors.New(field + ": credentials (user:password@) are not allowed in the URL; give them in the plugin's own settings, not in the URL")
	}
	return u, nil
}
