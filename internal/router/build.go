package router

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

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
		c, err := compile(s, i)
		if err != nil {
			return nil, &SpecError{Spec: i, Label: label, Err: err}
		}
		if prev, dup := seen[c.key]; dup {
			return nil, &SpecError{Spec: i, Err: fmt.Errorf("routes %s and %s match exactly the same requests", prev, label)}
		}
		seen[c.key] = label
		t.add(c)
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

// add places a compiled route in the bucket of each of its hosts, or in the
// bucket for any host.
func (t *Table) add(c *compiled) {
	if len(c.hosts) == 0 {
		if t.any == nil {
			t.any = newBucket()
		}
		t.any.add(c.rt, c.kind, c.segs)
		return
	}
	for _, h := range c.hosts {
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
		b.add(c.rt, c.kind, c.segs)
	}
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

// Interface guard.
var _ error = (*SpecError)(nil)
