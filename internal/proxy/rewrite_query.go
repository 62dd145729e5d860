package proxy

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/template"
)

// QueryRewrite is a route's compiled rewrite.query. Names are compared
// decoded; parameters no operation touches keep their bytes.
type QueryRewrite struct {
	remove []string
	rename []queryRename
	// setNames are the names of set, for dropping their old values.
	setNames []string
	set, add []queryValue
}

type queryRename struct {
	from, to string
	// esc is to query-escaped.
	esc string
}

type queryValue struct {
	// esc is the name query-escaped.
	esc  string
	tmpl *template.Template
}

// CompileQuery compiles a rewrite.query; template errors name their field.
func CompileQuery(q *config.QueryRewrite) (*QueryRewrite, error) {
	if q == nil {
		return nil, nil
	}
	out := &QueryRewrite{remove: slices.Clone(q.Remove)}
	for _, from := range slices.Sorted(maps.Keys(q.Rename)) {
		to := q.Rename[from]
		out.rename = append(out.rename, queryRename{from: from, to: to, esc: url.QueryEscape(to)})
	}
	var err error
	if out.set, err = compileQueryValues("set", q.Set); err != nil {
		return nil, err
	}
	if out.add, err = compileQueryValues("add", q.Add); err != nil {
		return nil, err
	}
	out.setNames = slices.Sorted(maps.Keys(q.Set))
	return out, nil
}

func compileQueryValues(field string, m map[string]string) ([]queryValue, error) {
	var out []queryValue
	for _, name := range slices.Sorted(maps.Keys(m)) {
		t, err := template.Parse(m[name])
		if err != nil {
			return nil, fmt.Errorf("rewrite.query.%s.%s: %w", field, name, err)
		}
		out = append(out, queryValue{esc: url.QueryEscape(name), tmpl: t})
	}
	return out, nil
}

// Apply returns the rewritten raw query. It returns raw itself when no
// operation applies, and allocates only the result otherwise (and a
// percent-encoded name it has to decode).
func (q *QueryRewrite) Apply(raw string, r *http.Request, rec *request.Record) string {
	if q == nil {
		return raw
	}
	// present marks the renames whose source parameter occurs: they
	// replace the values already under their target.
	var present uint64
	if len(q.rename) > 0 {
		for rest := raw; rest != ""; {
			var kv string
			kv, rest, _ = strings.Cut(rest, "&")
			name, _, _ := strings.Cut(kv, "=")
			name = decodeName(name)
			for i := range q.rename {
				if q.rename[i].from == name {
					present |= 1 << i
				}
			}
		}
	}
	var buf [512]byte
	b := buf[:0]
	changed := false
	for rest := raw; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		k, v, hasEq := strings.Cut(kv, "=")
		name := decodeName(k)
		if q.drops(name, present) {
			changed = true
			continue
		}
		if len(b) > 0 {
			b = append(b, '&')
		}
		if i := q.renameIndex(name); i >= 0 {
			changed = true
			b = append(b, q.rename[i].esc...)
			if hasEq {
				b = append(b, '=')
				b = append(b, v...)
			}
			continue
		}
		b = append(b, kv...)
	}
	for _, ops := range [][]queryValue{q.set, q.add} {
		for i := range ops {
			var ok bool
			if b, ok = ops[i].append(b, r, rec); ok {
				changed = true
			}
		}
	}
	if !changed {
		return raw
	}
	return string(b)
}

// append appends "&name=value" (without '&' at the start) unless the
// value, having placeholders, renders empty.
func (qv *queryValue) append(b []byte, r *http.Request, rec *request.Record) ([]byte, bool) {
	n := len(b)
	if n > 0 {
		b = append(b, '&')
	}
	b = append(b, qv.esc...)
	b = append(b, '=')
	m := len(b)
	b = qv.tmpl.AppendQuery(b, r, rec)
	if len(b) == m && !qv.tmpl.IsConstant() {
		return b[:n], false
	}
	return b, true
}

// drops reports whether a parameter called name is removed: by remove, by
// set (which replaces it, also when a rename moves it there), or as the
// target of a rename whose source is present.
func (q *QueryRewrite) drops(name string, present uint64) bool {
	if slices.Contains(q.remove, name) || slices.Contains(q.setNames, name) {
		return true
	}
	if i := q.renameIndex(name); i >= 0 && slices.Contains(q.setNames, q.rename[i].to) {
		return true
	}
	for i := range q.rename {
		if present&(1<<i) != 0 && q.rename[i].to == name {
			return true
		}
	}
	return false
}

func (q *QueryRewrite) renameIndex(name string) int {
	for i := range q.rename {
		if q.rename[i].from == name {
			return i
		}
	}
	return -1
}

// decodeName decodes a raw parameter name; it allocates only when the name
// is escaped, and returns a name that does not decode as written.
func decodeName(k string) string {
	if !strings.ContainsAny(k, "%+") {
		return k
	}
	if u, err := url.QueryUnescape(k); err == nil {
		return u
	}
	return k
}
