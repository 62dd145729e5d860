package router

import (
	"fmt"
	"net/http"
	"net/textproto"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// Spec is one route to compile: its conditions and the opaque Index that
// Match returns so the caller can find the route's handler.
type Spec struct {
	Name     string
	Priority int          // higher wins ties between equally specific routes
	Match    config.Match // Hosts, Path, PathPrefix, PathRegex, Methods, Headers, Query
	Index    int          // opaque; returned by Match so the caller finds its handler
}

// Table is a compiled, immutable route table. It is safe for concurrent use
// and Match on it does not allocate.
type Table struct {
	exact map[string]*bucket // exact host name → routes
	wild  map[string]*bucket // "*.example.org" is stored under "example.org"
	any   *bucket            // routes without hosts
	n     int
}

// bucket holds the routes of one host condition.
type bucket struct {
	root  node
	regex []*route
}

// mapThreshold is the fan-out above which a trie node indexes its static
// children with a map instead of scanning them.
const mapThreshold = 8

// node is one segment position of the path trie.
type node struct {
	parent    *node
	seg       string
	static    []*node
	staticMap map[string]*node
	param     *node    // "{name}" child
	rest      []*route // "{name...}" routes ending here
	exact     []*route // routes whose path ends at this node
	prefix    []*route // path_prefix ending here without a trailing slash
	prefixSl  []*route // path_prefix ending here with a trailing slash ("/" at the root)
}

type headerCond struct{ key, value string }
type queryCond struct{ key, value string }

// route is the compiled form of a Spec.
type route struct {
	index    int
	priority int
	order    int // position in the Build argument
	nconds   int
	methods  []string
	headers  []headerCond
	query    []queryCond
	params   []string // param names in capture order
	re       *regexp.Regexp
}

// Len returns the number of routes in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}

// Result is the outcome of MatchRequest.
type Result uint8

const (
	// NoMatch: no route's conditions hold.
	NoMatch Result = iota
	// Matched: the returned index is the route.
	Matched
	// Ambiguous: a candidate route matches on a header or query parameter
	// that the request carries in a form a backend may read differently
	// (see the package documentation); the request must be rejected.
	Ambiguous
)

// Match finds the route for r following the package's precedence rules and
// returns its Index. host must come from NormalizeHost and path from
// NormalizePath; the method, headers and query are read from r. params is
// reset and then receives the captured template parameters. Match reads a
// repeated header or query parameter by its first value; the gateway uses
// MatchRequest, which rejects such requests instead.
func (t *Table) Match(r *http.Request, host, path string, params *request.Params) (index int, ok bool) {
	return t.match(r, host, path, params, nil)
}

// MatchRequest is Match with strict conditions: when a candidate route
// examined before the winner (or the winner itself) matches on a header
// that the request repeats, or on a query parameter while the query repeats
// that name (ASCII case-insensitively), holds a malformed escape or a ";",
// the result is Ambiguous. Otherwise it agrees with Match.
func (t *Table) MatchRequest(r *http.Request, host, path string, params *request.Params) (int, Result) {
	amb := false
	idx, ok := t.match(r, host, path, params, &amb)
	switch {
	case amb:
		params.Reset()
		return -1, Ambiguous
	case ok:
		return idx, Matched
	}
	return -1, NoMatch
}

// match implements Match (amb nil) and MatchRequest (amb not nil).
func (t *Table) match(r *http.Request, host, path string, params *request.Params, amb *bool) (index int, ok bool) {
	params.Reset()
	if t == nil || len(path) == 0 || path[0] != '/' {
		return -1, false
	}
	if b := t.exact[host]; b != nil {
		if rt := b.match(r, path, params, amb); rt != nil {
			return rt.index, true
		}
	}
	if len(t.wild) > 0 {
		for i := 0; i < len(host); i++ {
			if host[i] != '.' {
				continue
			}
			if i == 0 || host[i-1] == '.' {
				break // an empty label never matches a wildcard
			}
			if b := t.wild[host[i+1:]]; b != nil {
				if rt := b.match(r, path, params, amb); rt != nil {
					return rt.index, true
				}
			}
		}
	}
	if t.any != nil {
		if rt := t.any.match(r, path, params, amb); rt != nil {
			return rt.index, true
		}
	}
	return -1, false
}

func (b *bucket) match(r *http.Request, path string, params *request.Params, amb *bool) *route {
	if rt := b.root.matchPath(r, path, 0, 0, params, amb); rt != nil {
		params.N = len(rt.params)
		for i, name := range rt.params {
			params.Arr[i].Key = name
		}
		return rt
	}
	params.N = 0
	// Prefixes: walk the static segments as deep as they go, then try each
	// node's prefixes on the way back up, so longer prefixes come first.
	n := &b.root
	pos := 0
	for pos < len(path) {
		seg, end := nextSegment(path, pos)
		c := n.child(seg)
		if c == nil {
			break
		}
		n, pos = c, end
	}
	more := pos < len(path)
	for ; n != nil; n = n.parent {
		if more {
			for _, rt := range n.prefixSl {
				if rt.conds(r, amb) {
					return rt
				}
			}
		}
		for _, rt := range n.prefix {
			if rt.conds(r, amb) {
				return rt
			}
		}
		more = true
	}
	for _, rt := range b.regex {
		if rt.re.MatchString(path) && rt.conds(r, amb) {
			return rt
		}
	}
	return nil
}

// nextSegment returns the segment that starts after the '/' at path[pos] and
// the index where it ends.
func nextSegment(path string, pos int) (string, int) {
	end := strings.IndexByte(path[pos+1:], '/')
	if end < 0 {
		end = len(path)
	} else {
		end += pos + 1
	}
	return path[pos+1 : end], end
}

func (n *node) child(seg string) *node {
	if n.staticMap != nil {
		return n.staticMap[seg]
	}
	for _, c := range n.static {
		if c.seg == seg {
			return c
		}
	}
	return nil
}

// matchPath searches the exact and template routes below n depth-first, static
// children before the parameter child before rest routes, and returns the
// first route whose conditions hold. k is the number of values captured so far
// in params.Arr.
func (n *node) matchPath(r *http.Request, path string, pos, k int, params *request.Params, amb *bool) *route {
	if pos == len(path) {
		for _, rt := range n.exact {
			if rt.conds(r, amb) {
				return rt
			}
		}
		return nil
	}
	seg, end := nextSegment(path, pos)
	if c := n.child(seg); c != nil {
		if rt := c.matchPath(r, path, end, k, params, amb); rt != nil {
			return rt
		}
	}
	if n.param != nil && seg != "" && k < request.MaxParams {
		params.Arr[k].Value = seg
		if rt := n.param.matchPath(r, path, end, k+1, params, amb); rt != nil {
			return rt
		}
	}
	if len(n.rest) > 0 && pos+1 < len(path) && k < request.MaxParams {
		for _, rt := range n.rest {
			if rt.conds(r, amb) {
				params.Arr[k].Value = path[pos+1:]
				return rt
			}
		}
	}
	return nil
}

// conds reports whether the method, header and query conditions hold. With
// amb not nil they are strict: a condition on a repeated header or on an
// ambiguous query sets *amb and fails.
func (rt *route) conds(r *http.Request, amb *bool) bool {
	if len(rt.methods) > 0 {
		ok := false
		for _, m := range rt.methods {
			if m == r.Method {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, h := range rt.headers {
		vs := r.Header[h.key]
		if amb != nil && len(vs) > 1 {
			*amb = true
			return false
		}
		if len(vs) == 0 || vs[0] != h.value {
			return false
		}
	}
	if len(rt.query) > 0 {
		raw := ""
		if r.URL != nil {
			raw = r.URL.RawQuery
		}
		for _, q := range rt.query {
			if amb != nil {
				ok, ambiguous := queryOnly(raw, q.key, q.value)
				if ambiguous {
					*amb = true
					return false
				}
				if !ok {
					return false
				}
			} else if !queryHas(raw, q.key, q.value) {
				return false
			}
		}
	}
	return true
}

// queryOnly reports whether key occurs in the raw query exactly once with
// the given value. ambiguous is true when backends may read the query
// differently from the router: key occurs more than once (also in another
// ASCII case, which some frameworks merge), or the query holds a ";" (a
// separator for some) or a malformed escape (decoded leniently by some).
func queryOnly(raw, key, value string) (ok, ambiguous bool) {
	if strings.IndexByte(raw, ';') >= 0 {
		return false, true
	}
	seen := false
	for raw != "" {
		var pair string
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		k, v := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		keq, kfold, kvalid := queryKeyEqual(k, key)
		veq, vvalid := queryEqual(v, value)
		if !kvalid || !vvalid {
			return false, true
		}
		if !kfold {
			continue
		}
		if seen {
			return false, true
		}
		seen = true
		ok = keq && veq
	}
	return ok, false
}

// queryKeyEqual decodes the query key enc on the fly and compares it with
// want, exactly (eq) and ASCII case-insensitively (fold).
func queryKeyEqual(enc, want string) (eq, fold, valid bool) {
	eq, fold = true, true
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(enc) {
				return false, false, false
			}
			hi, _, ok1 := unhex(enc[i+1])
			lo, _, ok2 := unhex(enc[i+2])
			if !ok1 || !ok2 {
				return false, false, false
			}
			c = hi<<4 | lo
			i += 2
		}
		if j >= len(want) {
			eq, fold = false, false
		} else if w := want[j]; w != c {
			eq = false
			if lower(w) != lower(c) {
				fold = false
			}
		}
		j++
	}
	if j != len(want) {
		eq, fold = false, false
	}
	return eq, fold, true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

// queryHas reports whether the first valid occurrence of key in the raw query
// has the given value, with url.ParseQuery's decoding and skipping rules.
func queryHas(raw, key, value string) bool {
	for raw != "" {
		var pair string
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		keq, kvalid := queryEqual(k, key)
		if !kvalid {
			continue
		}
		veq, vvalid := queryEqual(v, value)
		if !vvalid || !keq {
			continue
		}
		return veq
	}
	return false
}

// queryEqual decodes the query component enc on the fly and compares it with
// want. valid is false when enc has a malformed escape.
func queryEqual(enc, want string) (eq, valid bool) {
	eq, _, valid = queryKeyEqual(enc, want)
	return eq, valid
}

// Path condition kinds.
const (
	kindPath = iota
	kindPrefix
	kindRegex
)

// Template segment kinds, in precedence order.
const (
	segStatic = iota
	segParam
	segRest
)

type tseg struct {
	kind int
	val  string // canonical static segment or param name
}

// SpecError is the Build error about one spec: specs[Spec] is invalid, or
// matches exactly the same requests as an earlier spec.
type SpecError struct {
	// Spec is the position of the spec in the slice given to Build.
	Spec int
	// Label names the route in Error ("" when Err names it already).
	Label string
	// Err says what is wrong.
	Err error
}

func (e *SpecError) Error() string {
	if e.Label == "" {
		return e.Err.Error()
	}
	return e.Label + ": " + e.Err.Error()
}

func (e *SpecError) Unwrap() error { return e.Err }

// Build compiles specs into a Table. It reports the first invalid route by
// name: a malformed path or template, a duplicate or excess parameter, a bad
// regular expression or host, or two routes that match exactly the same
// requests with the same priority.
func Build(specs []Spec) (*Table, error) {
	t := &Table{n: len(specs)}
	seen := make(map[string]string, len(specs))
	for i := range specs {
		s := &specs[i]
		label := routeLabel(s, i)
		rt, segs, kind, hosts, key, err := compile(s, i)
		if err != nil {
			return nil, &SpecError{Spec: i, Label: label, Err: err}
		}
		if prev, dup := seen[key]; dup {
			return nil, &SpecError{Spec: i, Err: fmt.Errorf("routes %s and %s match exactly the same requests", prev, label)}
		}
		seen[key] = label
		if len(hosts) == 0 {
			if t.any == nil {
				t.any = newBucket()
			}
			t.any.add(rt, kind, segs)
			continue
		}
		for _, h := range hosts {
			m := &t.exact
			if strings.HasPrefix(h, "*.") {
				m, h = &t.wild, h[2:]
			}
			if *m == nil {
				*m = make(map[string]*bucket)
			}
			b := (*m)[h]
			if b == nil {
				b = newBucket()
				(*m)[h] = b
			}
			b.add(rt, kind, segs)
		}
	}
	for _, b := range t.exact {
		b.finish()
	}
	for _, b := range t.wild {
		b.finish()
	}
	if t.any != nil {
		t.any.finish()
	}
	return t, nil
}

func routeLabel(s *Spec, i int) string {
	if s.Name != "" {
		return strconv.Quote(s.Name)
	}
	return fmt.Sprintf("#%d", i)
}

func newBucket() *bucket { return &bucket{} }

// add places rt in the trie (or the regex list) of b.
func (b *bucket) add(rt *route, kind int, segs []tseg) {
	if kind == kindRegex {
		b.regex = append(b.regex, rt)
		return
	}
	n := &b.root
	if kind == kindPrefix {
		slash := false
		if len(segs) > 0 && segs[len(segs)-1].val == "" {
			segs, slash = segs[:len(segs)-1], true
		}
		for _, sg := range segs {
			n = n.staticChild(sg.val)
		}
		if slash {
			n.prefixSl = append(n.prefixSl, rt)
		} else {
			n.prefix = append(n.prefix, rt)
		}
		return
	}
	for _, sg := range segs {
		switch sg.kind {
		case segStatic:
			n = n.staticChild(sg.val)
		case segParam:
			if n.param == nil {
				n.param = &node{parent: n}
			}
			n = n.param
		case segRest:
			n.rest = append(n.rest, rt)
			return
		}
	}
	n.exact = append(n.exact, rt)
}

func (n *node) staticChild(seg string) *node {
	for _, c := range n.static {
		if c.seg == seg {
			return c
		}
	}
	c := &node{parent: n, seg: seg}
	n.static = append(n.static, c)
	return c
}

// finish sorts every candidate list into match order and indexes wide nodes.
func (b *bucket) finish() {
	b.root.finish()
	sort.SliceStable(b.regex, func(i, j int) bool {
		x, y := b.regex[i], b.regex[j]
		if x.priority != y.priority {
			return x.priority > y.priority
		}
		return before(x, y)
	})
}

func (n *node) finish() {
	for _, l := range [][]*route{n.rest, n.exact, n.prefix, n.prefixSl} {
		sortRoutes(l)
	}
	if len(n.static) > mapThreshold {
		n.staticMap = make(map[string]*node, len(n.static))
		for _, c := range n.static {
			n.staticMap[c.seg] = c
		}
	}
	for _, c := range n.static {
		c.finish()
	}
	if n.param != nil {
		n.param.finish()
	}
}

// sortRoutes orders routes that share a path condition: more conditions
// first, then higher priority, then configuration order.
func sortRoutes(l []*route) {
	sort.SliceStable(l, func(i, j int) bool {
		x, y := l[i], l[j]
		if x.nconds != y.nconds {
			return x.nconds > y.nconds
		}
		if x.priority != y.priority {
			return x.priority > y.priority
		}
		return before(x, y)
	})
}

// before is the final tie-break: more conditions, then Index, then position.
func before(x, y *route) bool {
	if x.nconds != y.nconds {
		return x.nconds > y.nconds
	}
	if x.index != y.index {
		return x.index < y.index
	}
	return x.order < y.order
}

// compile validates one spec and returns its compiled route, its path
// segments, its path kind, its normalised hosts and a key identifying exactly
// the requests (and priority) it matches.
func compile(s *Spec, order int) (rt *route, segs []tseg, kind int, hosts []string, key string, err error) {
	m := &s.Match
	rt = &route{index: s.Index, priority: s.Priority, order: order}
	var kb strings.Builder
	fmt.Fprintf(&kb, "p%d", s.Priority)

	n := 0
	for _, p := range []string{m.Path, m.PathPrefix, m.PathRegex} {
		if p != "" {
			n++
		}
	}
	if n > 1 {
		return nil, nil, 0, nil, "", fmt.Errorf("use only one of path, path_prefix and path_regex")
	}
	switch {
	case m.Path != "":
		kind = kindPath
		segs, rt.params, err = parseTemplate(m.Path, true)
		if err != nil {
			return nil, nil, 0, nil, "", fmt.Errorf("path %q: %w", m.Path, err)
		}
	case m.PathRegex != "":
		kind = kindRegex
		rt.re, err = regexp.Compile(m.PathRegex)
		if err != nil {
			return nil, nil, 0, nil, "", fmt.Errorf("path_regex %q: %w", m.PathRegex, err)
		}
		fmt.Fprintf(&kb, "|r%q", m.PathRegex)
	default:
		kind = kindPrefix
		p := m.PathPrefix
		if p == "" {
			p = "/"
		}
		segs, _, err = parseTemplate(p, false)
		if err != nil {
			return nil, nil, 0, nil, "", fmt.Errorf("path_prefix %q: %w", m.PathPrefix, err)
		}
	}
	if kind != kindRegex {
		fmt.Fprintf(&kb, "|k%d", kind)
		for _, sg := range segs {
			switch sg.kind {
			case segStatic:
				fmt.Fprintf(&kb, "/s%q", sg.val)
			case segParam:
				kb.WriteString("/{}")
			case segRest:
				kb.WriteString("/{...}")
			}
		}
	}

	// Hosts.
	hostSet := map[string]bool{}
	for _, h := range m.Hosts {
		nh, err := normHostCond(h)
		if err != nil {
			return nil, nil, 0, nil, "", err
		}
		if !hostSet[nh] {
			hostSet[nh] = true
			hosts = append(hosts, nh)
		}
	}
	sorted := append([]string(nil), hosts...)
	sort.Strings(sorted)
	fmt.Fprintf(&kb, "|h%q", sorted)

	// Methods.
	methodSet := map[string]bool{}
	for _, meth := range m.Methods {
		if meth == "" || strings.ContainsAny(meth, " \t/") {
			return nil, nil, 0, nil, "", fmt.Errorf("method %q is not a valid method token", meth)
		}
		if !methodSet[meth] {
			methodSet[meth] = true
			rt.methods = append(rt.methods, meth)
		}
	}
	sorted = append([]string(nil), rt.methods...)
	sort.Strings(sorted)
	fmt.Fprintf(&kb, "|m%q", sorted)
	if len(rt.methods) > 0 {
		rt.nconds++
	}

	// Headers.
	for name, v := range m.Headers {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			return nil, nil, 0, nil, "", fmt.Errorf("header name %q is not valid", name)
		}
		ck := textproto.CanonicalMIMEHeaderKey(name)
		if ck == "Host" {
			return nil, nil, 0, nil, "", fmt.Errorf("match the Host header with hosts, not headers")
		}
		dup := false
		for _, h := range rt.headers {
			if h.key == ck {
				if h.value != v {
					return nil, nil, 0, nil, "", fmt.Errorf("header %q is given twice with different values", ck)
				}
				dup = true
			}
		}
		if !dup {
			rt.headers = append(rt.headers, headerCond{ck, v})
		}
	}
	sort.Slice(rt.headers, func(i, j int) bool { return rt.headers[i].key < rt.headers[j].key })
	for _, h := range rt.headers {
		fmt.Fprintf(&kb, "|H%q=%q", h.key, h.value)
	}

	// Query.
	for k, v := range m.Query {
		if k == "" {
			return nil, nil, 0, nil, "", fmt.Errorf("query parameter name must not be empty")
		}
		rt.query = append(rt.query, queryCond{k, v})
	}
	sort.Slice(rt.query, func(i, j int) bool { return rt.query[i].key < rt.query[j].key })
	for _, q := range rt.query {
		fmt.Fprintf(&kb, "|Q%q=%q", q.key, q.value)
	}
	rt.nconds += len(rt.headers) + len(rt.query)
	return rt, segs, kind, hosts, kb.String(), nil
}

// normHostCond validates and normalises one configured host.
func normHostCond(h string) (string, error) {
	name := h
	wild := strings.HasPrefix(h, "*.")
	if wild {
		name = h[2:]
	}
	lower := strings.TrimRight(strings.ToLower(name), ".")
	if NormalizeHost(name) != lower {
		return "", fmt.Errorf("host %q must not include a port", h)
	}
	if lower == "" || strings.ContainsAny(lower, "*/ \t?#@") || strings.Contains(lower, "..") || lower[0] == '.' {
		return "", fmt.Errorf("host %q must be a name or a *.suffix wildcard", h)
	}
	if wild {
		return "*." + lower, nil
	}
	return lower, nil
}

// parseTemplate splits a configured path into canonical segments. With
// templates false (path_prefix), braces are not allowed.
func parseTemplate(p string, templates bool) (segs []tseg, names []string, err error) {
	if !strings.HasPrefix(p, "/") {
		return nil, nil, fmt.Errorf("must start with /")
	}
	parts := strings.Split(p[1:], "/")
	for i, part := range parts {
		last := i == len(parts)-1
		if part == "" && !last {
			return nil, nil, fmt.Errorf("empty segment (\"//\") is not allowed")
		}
		if strings.ContainsAny(part, "{}") {
			if !templates {
				return nil, nil, fmt.Errorf("path_prefix cannot contain {parameters}")
			}
			name, rest, err := parseParam(part)
			if err != nil {
				return nil, nil, err
			}
			if rest && !last {
				return nil, nil, fmt.Errorf("{%s...} must be the last segment", name)
			}
			for _, n := range names {
				if n == name {
					return nil, nil, fmt.Errorf("duplicate parameter name %q", name)
				}
			}
			names = append(names, name)
			if len(names) > request.MaxParams {
				return nil, nil, fmt.Errorf("more than %d parameters", request.MaxParams)
			}
			k := segParam
			if rest {
				k = segRest
			}
			segs = append(segs, tseg{kind: k, val: name})
			continue
		}
		b, err := appendSegment(nil, part)
		if err != nil {
			return nil, nil, fmt.Errorf("segment %q: %w", part, err)
		}
		seg := string(b)
		if seg == "." || seg == ".." {
			return nil, nil, fmt.Errorf("dot segment %q is not allowed", part)
		}
		segs = append(segs, tseg{kind: segStatic, val: seg})
	}
	return segs, names, nil
}

// parseParam parses "{name}" or "{name...}".
func parseParam(part string) (name string, rest bool, err error) {
	if len(part) < 2 || part[0] != '{' || part[len(part)-1] != '}' {
		return "", false, fmt.Errorf("bad template segment %q: a parameter must be a whole segment, {name} or {name...}", part)
	}
	name = part[1 : len(part)-1]
	if strings.HasSuffix(name, "...") {
		name, rest = name[:len(name)-3], true
	}
	if name == "" {
		return "", false, fmt.Errorf("bad template segment %q: empty parameter name", part)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return "", false, fmt.Errorf("bad template segment %q: parameter name must be letters, digits and _", part)
		}
	}
	return name, rest, nil
}
