package router

import (
	"net/http"
	"strings"

	"github.com/portico-gw/portico/internal/request"
)

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
