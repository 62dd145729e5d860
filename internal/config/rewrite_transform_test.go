package config

import (
	"strings"
	"testing"
)

func TestRewriteTransformValidation(t *testing.T) {
	t.Parallel()
	head := "upstreams:\n  u:\n    targets: [{url: http://127.0.0.1:1}]\nroutes:\n  - name: r\n    upstream: u\n"
	tests := []struct {
		desc, route string
		want        []string // substrings of the error; none: valid
	}{
		{"path template", "    match: {path: '/users/{id}'}\n    rewrite: {path: '/v2/accounts/{id}', prefix: /internal}\n", nil},
		{"query ops", "    match: {path_prefix: /}\n    rewrite: {query: {remove: [debug], rename: {q: search}, set: {t: '${claim:t}'}, add: {r: '${request_id}'}}}\n", nil},
		{"path with strip_prefix", "    match: {path_prefix: /users}\n    rewrite: {path: /x, strip_prefix: /users}\n",
			[]string{"routes[0].rewrite.path", "without strip_prefix, replace_prefix and regex"}},
		{"path with regex", "    match: {path: '/u/{id}'}\n    rewrite: {path: '/x/{id}', regex: {pattern: a, replacement: b}}\n",
			[]string{"routes[0].rewrite.path", "without strip_prefix"}},
		{"relative path", "    match: {path_prefix: /}\n    rewrite: {path: x}\n", []string{"routes[0].rewrite.path", "must start with /"}},
		{"params without match.path", "    match: {path_prefix: /u}\n    rewrite: {path: '/x/{id}'}\n",
			[]string{"routes[0].rewrite.path", "need a match.path template"}},
		{"prefix with trailing slash", "    match: {path_prefix: /}\n    rewrite: {prefix: /internal/}\n",
			[]string{"routes[0].rewrite.prefix", "must start with / and not end with /"}},
		{"empty query", "    match: {path_prefix: /}\n    rewrite: {query: {}}\n", []string{"routes[0].rewrite.query", "nothing to do"}},
		{"bad names", "    match: {path_prefix: /}\n    rewrite: {query: {remove: ['a b'], set: {'x=y': v}}}\n",
			[]string{"routes[0].rewrite.query.remove[0]", `"a b" may not contain`, "routes[0].rewrite.query.set.x=y"}},
		{"rename chain", "    match: {path_prefix: /}\n    rewrite: {query: {rename: {a: b, b: c}}}\n",
			[]string{"routes[0].rewrite.query.rename.b", "chained renames"}},
		{"two renames to one", "    match: {path_prefix: /}\n    rewrite: {query: {rename: {a: c, b: c}}}\n",
			[]string{"routes[0].rewrite.query.rename.b", `"a" and "b" are both renamed to "c"`}},
		{"rename to itself", "    match: {path_prefix: /}\n    rewrite: {query: {rename: {a: a}}}\n",
			[]string{"routes[0].rewrite.query.rename.a", "to itself"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(head+tc.route), "test.yaml", env(nil))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
