package schema

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
	embedded "github.com/portico-gw/portico/schema"
)

// TestSchemaFieldsMatchDecoder checks, for every struct type the config and
// the plugin configs decode into, that its schema definition lists exactly
// the keys the strict decoder accepts (the decoder's rule: the yaml tag's
// name, else the lower-cased field name; `,inline` structs merged; "-" and
// unexported fields left out) and refuses any other.
func TestSchemaFieldsMatchDecoder(t *testing.T) {
	type object struct {
		Properties           map[string]json.RawMessage `json:"properties"`
		AdditionalProperties *bool                      `json:"additionalProperties"`
	}
	var doc struct {
		object
		Defs map[string]object `json:"$defs"`
	}
	if err := json.Unmarshal(embedded.JSON, &doc); err != nil {
		t.Fatal(err)
	}
	r := &reflector{}
	seen := map[reflect.Type]bool{}
	var visit func(t reflect.Type)
	check := func(st reflect.Type) {
		name := r.name(st)
		def, ok := doc.Defs[name]
		if st == reflect.TypeOf(config.Config{}) {
			def, ok = doc.object, true // the root
		}
		if !ok {
			t.Errorf("no definition %q for %v", name, st)
			return
		}
		if def.AdditionalProperties == nil || *def.AdditionalProperties {
			t.Errorf("%s: additionalProperties is not false", name)
		}
		want := decoderKeys(st)
		var got []string
		for k := range def.Properties {
			got = append(got, k)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: schema keys %v, decoder keys %v", name, got, want)
		}
	}
	visit = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] || ty == pluginSpecType || ty == yamlNodeType {
			return
		}
		seen[ty] = true
		check(ty)
		eachField(ty, func(_ string, f reflect.StructField) { visit(f.Type) })
	}
	visit(reflect.TypeOf(config.Config{}))
	for _, name := range plugin.Names() {
		ty, _ := plugin.ConfigType(name)
		visit(ty)
	}
	if len(seen) < 40 {
		t.Fatalf("only %d struct types visited", len(seen))
	}
}

// decoderKeys lists, sorted, the YAML keys the strict decoder accepts for
// struct type t. JWT's custom decoder accepts exactly its inline fields.
func decoderKeys(t reflect.Type) []string {
	var keys []string
	eachField(t, func(k string, _ reflect.StructField) { keys = append(keys, k) })
	sort.Strings(keys)
	return keys
}

// eachField calls fn with each YAML key of struct type t and its field,
// following config.DecodeStrict's rule.
func eachField(t reflect.Type, fn func(string, reflect.StructField)) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		parts := strings.Split(f.Tag.Get("yaml"), ",")
		if len(parts) > 1 && parts[1] == "inline" && f.Type.Kind() == reflect.Struct {
			eachField(f.Type, fn)
			continue
		}
		if parts[0] == "-" || !f.IsExported() {
			continue
		}
		key := parts[0]
		if key == "" {
			key = strings.ToLower(f.Name)
		}
		fn(key, f)
	}
}
