package config

import (
	"fmt"
	"strings"
)

// QueryRewrite changes the query string sent upstream. Operations run in
// the order remove, rename, set, add; parameters they do not touch are sent
// byte for byte as the client wrote them. Names are compared decoded.
type QueryRewrite struct {
	// Remove deletes every value of the named parameters.
	Remove []string `yaml:"remove"`
	// Rename moves the values of a parameter (the key) to a new name (the
	// value), replacing values already under the new name. Absent
	// parameters are ignored.
	Rename map[string]string `yaml:"rename"`
	// Set replaces every value of the named parameter with one value, a
	// template such as "${claim:tenant}" (query-escaped when sent). A
	// value with placeholders that renders empty removes the parameter.
	Set map[string]string `yaml:"set" secret:"values"`
	// Add appends a value to the named parameter, keeping existing values.
	// The value is a template; one with placeholders that renders empty
	// adds nothing.
	Add map[string]string `yaml:"add" secret:"values"`
}

// MaxQueryOps bounds the operations of each kind in a rewrite.query.
const MaxQueryOps = 64

// validateRewriteTransform checks rewrite.path, rewrite.prefix and
// rewrite.query (p is the rewrite's path). Templates are parsed, with their
// own errors, when the route is built.
func validateRewriteTransform(l *errorList, p string, r *Route, rw *Rewrite) {
	if rw.Path != "" {
		if rw.StripPrefix != "" || rw.ReplacePrefix != nil || rw.Regex != nil {
			l.add(p+".path", "path replaces the whole path: use it without strip_prefix, replace_prefix and regex (add a prefix with prefix)")
		}
		if !strings.HasPrefix(rw.Path, "/") {
			l.add(p+".path", "path must start with /")
		}
		if r.Match.Path == "" && strings.Contains(rw.Path, "{") {
			l.add(p+".path", "{parameters} need a match.path template that defines them")
		}
	}
	if rw.Prefix != "" && (!strings.HasPrefix(rw.Prefix, "/") || strings.HasSuffix(rw.Prefix, "/")) {
		l.add(p+".prefix", "prefix must start with / and not end with / (\"/internal\")")
	}
	if q := rw.Query; q != nil {
		validateQueryRewrite(l, p+".query", q)
	}
}

func validateQueryRewrite(l *errorList, p string, q *QueryRewrite) {
	if len(q.Remove) == 0 && len(q.Rename) == 0 && len(q.Set) == 0 && len(q.Add) == 0 {
		l.add(p, "nothing to do: configure at least one of remove, rename, set, add")
	}
	for i, n := range []int{len(q.Remove), len(q.Rename), len(q.Set), len(q.Add)} {
		if n > MaxQueryOps {
			l.add(p+"."+[]string{"remove", "rename", "set", "add"}[i], "at most %d parameters, got %d", MaxQueryOps, n)
		}
	}
	for i, name := range q.Remove {
		checkQueryName(l, fmt.Sprintf("%s.remove[%d]", p, i), name)
	}
	targets := map[string]string{}
	for _, from := range sortedKeys(q.Rename) {
		to := q.Rename[from]
		fp := p + ".rename." + from
		checkQueryName(l, fp, from)
		checkQueryName(l, fp, to)
		if from == to {
			l.add(fp, "renames the parameter to itself")
		}
		if prev, ok := targets[to]; ok {
			l.add(fp, "%q and %q are both renamed to %q", prev, from, to)
		}
		targets[to] = from
	}
	for _, from := range sortedKeys(q.Rename) {
		if _, ok := targets[from]; ok && q.Rename[from] != from {
			l.add(p+".rename."+from, "%q is also a rename target; chained renames are not supported", from)
		}
	}
	for _, name := range sortedKeys(q.Set) {
		checkQueryName(l, p+".set."+name, name)
	}
	for _, name := range sortedKeys(q.Add) {
		checkQueryName(l, p+".add."+name, name)
	}
}

// checkQueryName checks a query parameter name as written in a config.
func checkQueryName(l *errorList, p, name string) {
	if name == "" {
		l.add(p, "parameter name must not be empty")
		return
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f || c == '&' || c == '=' || c == '#' {
			l.add(p, "parameter name %q may not contain spaces, control characters, '&', '=' or '#'", name)
			return
		}
	}
}
