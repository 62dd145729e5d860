package config

import (
	"strings"
	"testing"
)

// TestStickyCookieNamesDistinct: two cookie-sticky routes may not share a
// cookie name (the default name counts), and distinct names pass.
func TestStickyCookieNamesDistinct(t *testing.T) {
	t.Parallel()
	route := func(name, cookie string) string {
		c := ""
		if cookie != "" {
			c = "name: " + cookie + ", "
		}
		return `
  - name: ` + name + `
    match: {path_prefix: /` + name + `}
    split:
      variants: [{upstream: a, weight: 1}, {upstream: b, weight: 1}]
      sticky: {cookie: {` + c + `secret: "0123456789abcdef0123456789abcdef"}}`
	}
	doc := func(routes ...string) string {
		return "upstreams:\n  a: {targets: [{url: 'http://127.0.0.1:9001'}]}\n  b: {targets: [{url: 'http://127.0.0.1:9002'}]}\nroutes:" + strings.Join(routes, "")
	}
	for _, tc := range []struct {
		desc, src, err string
	}{
		{"default names clash", doc(route("one", ""), route("two", "")), `routes[1].split.sticky.cookie.name: cookie "portico_variant" is already the sticky cookie of route "one"`},
		{"explicit names clash", doc(route("one", "v"), route("two", "v")), `cookie "v" is already the sticky cookie of route "one"`},
		{"distinct names", doc(route("one", "v1"), route("two", "v2")), ""},
	} {
		_, err := Parse([]byte(tc.src), "test", env(nil))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.desc, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.desc, err, tc.err)
		}
	}
}
