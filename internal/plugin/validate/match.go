package validate

import (
	"fmt"
	"strings"
)

// maxPathParams bounds the parameters of one path template.
const maxPathParams = 16

// node is one segment level of the path table. A literal segment wins
// over a templated one ("/orders/mine" over "/orders/{id}"), as OpenAPI
// asks; among templated segments the one with the longer literal part
// wins.
type node struct {
	lit    map[string]*node
	params []*paramEdge
	item   *pathItem
}

// paramEdge is a templated segment: prefix{name}suffix.
type paramEdge struct {
	prefix, suffix string
	child          *node
}

// splitSegment splits a template segment into the literal parts around
// its parameter; name is "" for a literal segment.
func splitSegment(seg string) (prefix, name, suffix string, err error) {
	open := strings.IndexByte(seg, '{')
	if open < 0 {
		if strings.IndexByte(seg, '}') >= 0 {
			return "", "", "", fmt.Errorf("unbalanced } in segment %q", seg)
		}
		return seg, "", "", nil
	}
	end := strings.IndexByte(seg[open:], '}')
	if end < 0 {
		return "", "", "", fmt.Errorf("unbalanced { in segment %q", seg)
	}
	end += open
	prefix, name, suffix = seg[:open], seg[open+1:end], seg[end+1:]
	if name == "" || strings.ContainsAny(suffix, "{}") || strings.ContainsAny(name, "{") {
		return "", "", "", fmt.Errorf("segment %q: one {name} per segment is supported", seg)
	}
	return prefix, name, suffix, nil
}

// insert adds a path template.
func (n *node) insert(template string, item *pathItem) error {
	cur := n
	for seg := range strings.SplitSeq(template[1:], "/") {
		prefix, name, suffix, err := splitSegment(seg)
		if err != nil {
			return err
		}
		if name == "" {
			if cur.lit == nil {
				cur.lit = map[string]*node{}
			}
			next := cur.lit[seg]
			if next == nil {
				next = &node{}
				cur.lit[seg] = next
			}
			cur = next
			continue
		}
		var next *node
		for _, e := range cur.params {
			if e.prefix == prefix && e.suffix == suffix {
				next = e.child
			}
		}
		if next == nil {
			next = &node{}
			cur.params = append(cur.params, &paramEdge{prefix: prefix, suffix: suffix, child: next})
			// Longer literal parts first: the more specific template wins.
			for i := len(cur.params) - 1; i > 0; i-- {
				a, b := cur.params[i-1], cur.params[i]
				if len(a.prefix)+len(a.suffix) >= len(b.prefix)+len(b.suffix) {
					break
				}
				cur.params[i-1], cur.params[i] = b, a
			}
		}
		cur = next
	}
	if cur.item != nil {
		return fmt.Errorf("the same path as %s (only parameter names differ)", cur.item.template)
	}
	cur.item = item
	return nil
}

// match finds the path item of path (which starts with "/"), filling vals
// with the raw values of its parameters in template order.
func (n *node) match(path string, vals *[maxPathParams]string) *pathItem {
	if len(path) == 0 || path[0] != '/' {
		return nil
	}
	return n.matchFrom(path[1:], vals, 0)
}

func (n *node) matchFrom(path string, vals *[maxPathParams]string, depth int) *pathItem {
	seg, rest, more := strings.Cut(path, "/")
	if child := n.lit[seg]; child != nil {
		if it := child.next(rest, more, vals, depth); it != nil {
			return it
		}
	}
	for _, e := range n.params {
		if len(seg) <= len(e.prefix)+len(e.suffix) || !strings.HasPrefix(seg, e.prefix) || !strings.HasSuffix(seg, e.suffix) {
			continue
		}
		vals[depth] = seg[len(e.prefix) : len(seg)-len(e.suffix)]
		if it := e.child.next(rest, more, vals, depth+1); it != nil {
			return it
		}
	}
	return nil
}

func (n *node) next(rest string, more bool, vals *[maxPathParams]string, depth int) *pathItem {
	if !more {
		return n.item
	}
	return n.matchFrom(rest, vals, depth)
}
