package router

import (
	"fmt"
	"net/textproto"
	"regexp"
	"sort"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

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

// compiled is one spec compiled for Build.
type compiled struct {
	rt    *route
	segs  []tseg   // path segments (none for a regex)
	kind  int      // kindPath, kindPrefix or kindRegex
	hosts []string // normalised, without duplicates
	// key identifies exactly the requests (and priority) the spec matches.
	key string
}

// compile validates one spec and compiles it.
func compile(s *Spec, order int) (*compiled, error) {
	m := &s.Match
	c := &compiled{rt: &route{index: s.Index, priority: s.Priority, order: order}}
	var kb strings.Builder
	fmt.Fprintf(&kb, "p%d", s.Priority)
	if err := c.path(m, &kb); err != nil {
		return nil, err
	}
	if err := c.hostConds(m.Hosts, &kb); err != nil {
		return nil, err
	}
	rt := c.rt
	if err := rt.methodConds(m.Methods, &kb); err != nil {
		return nil, err
	}
	if err := rt.headerConds(m.Headers, &kb); err != nil {
		return nil, err
	}
	if err := rt.queryConds(m.Query, &kb); err != nil {
		return nil, err
	}
	rt.nconds += len(rt.headers) + len(rt.query)
	c.key = kb.String()
	return c, nil
}

// path compiles the path condition: exactly one of path, path_prefix and
// path_regex, or the prefix "/".
func (c *compiled) path(m *config.Match, kb *strings.Builder) error {
	n := 0
	for _, p := range []string{m.Path, m.PathPrefix, m.PathRegex} {
		if p != "" {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("use only one of path, path_prefix and path_regex")
	}
	var err error
	switch {
	case m.Path != "":
		c.kind = kindPath
		c.segs, c.rt.params, err = parseTemplate(m.Path, true)
		if err != nil {
			return fmt.Errorf("path %q: %w", m.Path, err)
		}
	case m.PathRegex != "":
		c.kind = kindRegex
		c.rt.re, err = regexp.Compile(m.PathRegex)
		if err != nil {
			return fmt.Errorf("path_regex %q: %w", m.PathRegex, err)
		}
		fmt.Fprintf(kb, "|r%q", m.PathRegex)
		return nil
	default:
		c.kind = kindPrefix
		p := m.PathPrefix
		if p == "" {
			p = "/"
		}
		c.segs, _, err = parseTemplate(p, false)
		if err != nil {
			return fmt.Errorf("path_prefix %q: %w", m.PathPrefix, err)
		}
	}
	fmt.Fprintf(kb, "|k%d", c.kind)
	for _, sg := range c.segs {
		switch sg.kind {
		case segStatic:
			fmt.Fprintf(kb, "/s%q", sg.val)
		case segParam:
			kb.WriteString("/{}")
		case segRest:
			kb.WriteString("/{...}")
		}
	}
	return nil
}

func (c *compiled) hostConds(hosts []string, kb *strings.Builder) error {
	hostSet := map[string]bool{}
	for _, h := range hosts {
		nh, err := normHostCond(h)
		if err != nil {
			return err
		}
		if !hostSet[nh] {
			hostSet[nh] = true
			c.hosts = append(c.hosts, nh)
		}
	}
	writeSorted(kb, "h", c.hosts)
	return nil
}

func (rt *route) methodConds(methods []string, kb *strings.Builder) error {
	methodSet := map[string]bool{}
	for _, meth := range methods {
		if meth == "" || strings.ContainsAny(meth, " \t/") {
			return fmt.Errorf("method %q is not a valid method token", meth)
		}
		if !methodSet[meth] {
			methodSet[meth] = true
			rt.methods = append(rt.methods, meth)
		}
	}
	writeSorted(kb, "m", rt.methods)
	if len(rt.methods) > 0 {
		rt.nconds++
	}
	return nil
}

func (rt *route) headerConds(headers map[string]string, kb *strings.Builder) error {
	for name, v := range headers {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			return fmt.Errorf("header name %q is not valid", name)
		}
		ck := textproto.CanonicalMIMEHeaderKey(name)
		if ck == "Host" {
			return fmt.Errorf("match the Host header with hosts, not headers")
		}
		dup := false
		for _, h := range rt.headers {
			if h.key == ck {
				if h.value != v {
					return fmt.Errorf("header %q is given twice with different values", ck)
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
		fmt.Fprintf(kb, "|H%q=%q", h.key, h.value)
	}
	return nil
}

func (rt *route) queryConds(query map[string]string, kb *strings.Builder) error {
	for k, v := range query {
		if k == "" {
			return fmt.Errorf("query parameter name must not be empty")
		}
		rt.query = append(rt.query, queryCond{k, v})
	}
	sort.Slice(rt.query, func(i, j int) bool { return rt.query[i].key < rt.query[j].key })
	for _, q := range rt.query {
		fmt.Fprintf(kb, "|Q%q=%q", q.key, q.value)
	}
	return nil
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

// writeSorted writes a sorted copy of l to the route key after tag.
func writeSorted(kb *strings.Builder, tag string, l []string) {
	sorted := append([]string(nil), l...)
	sort.Strings(sorted)
	fmt.Fprintf(kb, "|%s%q", tag, sorted)
}
