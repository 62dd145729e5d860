package config

import (
	"sort"
	"strings"
)

// One pass over a config reports every mistake in it. Decoding, validation
// and the gateway's build each check what the stage before them left intact:
// a part of the file (one route, one upstream, one plugin, one listener, one
// consumer, one settings block) that already has an error is skipped by the
// later stages, so a mistake is reported once, where it is, and never again
// as a follow-on error somewhere else.

// Problems returns the errors ParseAll found in c (nil for a config from
// Parse, which never returns one with problems).
func (c *Config) Problems() Errors { return c.problems }

// Covered reports whether an earlier stage already reported an error in the
// part of the config that path belongs to, or at an ancestor of path. A later
// stage skips such a part and drops its errors about it.
func (c *Config) Covered(path string) bool {
	if c == nil || len(c.problems) == 0 {
		return false
	}
	return covered(c.problems, path)
}

// Touches reports whether an earlier stage reported an error at path,
// inside it, or at an ancestor of it: a narrower test than Covered, for a
// later check of one setting (a route's match) that is independent of the
// rest of its part.
func (c *Config) Touches(path string) bool {
	if c == nil {
		return false
	}
	for _, p := range c.problems {
		if p.Path == "" || isAncestor(p.Path, path) || isAncestor(path, p.Path) {
			return true
		}
	}
	return false
}

// Merge returns c's problems together with later, a later stage's errors,
// minus those about parts already covered, each error once and sorted by
// line; it returns nil when there are none.
func (c *Config) Merge(later Errors) error {
	out := make(Errors, 0, len(c.problems)+len(later))
	out = append(out, c.problems...)
	for _, e := range later {
		if !covered(c.problems, e.Path) {
			out = append(out, e)
		}
	}
	out = out.Tidy()
	if len(out) == 0 {
		return nil
	}
	return out
}

func covered(prior Errors, path string) bool {
	part := partOf(path)
	for _, p := range prior {
		if p.Path == "" || partOf(p.Path) == part || isAncestor(p.Path, path) {
			return true
		}
	}
	return false
}

// isAncestor reports whether path a is path b or contains it ("routes" and
// "routes[2]" contain "routes[2].match.path").
func isAncestor(a, b string) bool {
	if !strings.HasPrefix(b, a) {
		return false
	}
	return len(b) == len(a) || b[len(a)] == '.' || b[len(a)] == '['
}

// partOf names the independent part of the config a path lies in: one
// upstream ("upstreams.api"), route ("routes[2]"), route plugin
// ("routes[2].plugins[0]"), global plugin ("plugins[1]"), consumer
// ("consumers[0]") or listener ("server.listen[1]"); any other path belongs
// to its settings block, named by its first two segments ("server.limits",
// "tracing.endpoint").
func partOf(path string) string {
	segs := splitPath(path)
	n := 2
	if len(segs) >= 2 {
		switch segs[0] {
		case "routes":
			if len(segs) >= 4 && segs[2] == "plugins" && strings.HasPrefix(segs[3], "[") {
				n = 4
			} else if isVersionPlugin(segs) {
				n = 7
			}
		case "server":
			if segs[1] == "listen" && len(segs) >= 3 && strings.HasPrefix(segs[2], "[") {
				n = 3
			}
		}
	}
	if n > len(segs) {
		n = len(segs)
	}
	var b strings.Builder
	for i, s := range segs[:n] {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// Tidy returns es with each error (same path and message) once, sorted by
// line; errors without a line come last, and errors on one line keep their
// order.
func (es Errors) Tidy() Errors {
	type key struct{ path, msg string }
	seen := make(map[key]bool, len(es))
	out := make(Errors, 0, len(es))
	for _, e := range es {
		k := key{e.Path, e.Msg}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		li, lj := out[i].Line, out[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	return out
}
