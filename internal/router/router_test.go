package router

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// specs builds specs whose Index is their position.
func specs(list ...Spec) []Spec {
	for i := range list {
		list[i].Index = i
	}
	return list
}

func mustBuild(t testing.TB, s []Spec) *Table {
	t.Helper()
	tab, err := Build(s)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return tab
}

// req is one request of a matching test; target is "path?query".
type req struct {
	desc    string
	method  string
	host    string
	target  string
	headers map[string][]string
	want    string            // route name; "" means no match
	params  map[string]string // expected captures, when non-nil
}

func newRequest(t testing.TB, method, host, target string, headers map[string][]string) (*http.Request, string, string) {
	t.Helper()
	if method == "" {
		method = http.MethodGet
	}
	rawPath, rawQuery, _ := strings.Cut(target, "?")
	r := &http.Request{
		Method: method,
		Host:   host,
		URL:    &url.URL{Path: rawPath, RawQuery: rawQuery},
		Header: http.Header{},
	}
	for k, vs := range headers {
		r.Header[http.CanonicalHeaderKey(k)] = vs
	}
	p, _, err := NormalizePath(rawPath)
	if err != nil {
		t.Fatalf("NormalizePath(%q): %v", rawPath, err)
	}
	return r, NormalizeHost(host), p
}

func runCases(t *testing.T, s []Spec, cases []req) {
	t.Helper()
	tab := mustBuild(t, s)
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r, host, path := newRequest(t, tc.method, tc.host, tc.target, tc.headers)
			var ps request.Params
			ps.Add("stale", "value")
			idx, ok := tab.Match(r, host, path, &ps)
			got := ""
			if ok {
				got = s[idx].Name
			}
			if got != tc.want {
				t.Fatalf("%s %s%s: matched %q, want %q", r.Method, tc.host, tc.target, got, tc.want)
			}
			if !ok && ps.N != 0 {
				t.Fatalf("no match but %d params", ps.N)
			}
			if tc.params != nil {
				if ps.N != len(tc.params) {
					t.Fatalf("captured %d params %v, want %v", ps.N, ps.Arr[:ps.N], tc.params)
				}
				for k, v := range tc.params {
					if g, _ := ps.Get(k); g != v {
						t.Fatalf("param %q = %q, want %q", k, g, v)
					}
				}
			}
		})
	}
}

func TestMatchPathPrecedence(t *testing.T) {
	t.Parallel()
	s := specs(
		Spec{Name: "users-exact", Match: config.Match{Path: "/users"}},
		Spec{Name: "users-slash", Match: config.Match{Path: "/users/"}},
		Spec{Name: "users-me", Match: config.Match{Path: "/users/me"}},
		Spec{Name: "users-id", Match: config.Match{Path: "/users/{id}"}},
		Spec{Name: "users-id-posts", Match: config.Match{Path: "/users/{id}/posts"}},
		Spec{Name: "users-me-any", Match: config.Match{Path: "/users/me/{what}"}},
		Spec{Name: "files-static", Match: config.Match{Path: "/files/readme"}},
		Spec{Name: "files-one", Match: config.Match{Path: "/files/{name}"}},
		Spec{Name: "files-rest", Match: config.Match{Path: "/files/{path...}"}},
		Spec{Name: "users-prefix", Priority: 100, Match: config.Match{PathPrefix: "/users"}},
		Spec{Name: "api", Match: config.Match{PathPrefix: "/api"}},
		Spec{Name: "api-v1", Match: config.Match{PathPrefix: "/api/v1"}},
		Spec{Name: "api-v1-slash", Match: config.Match{PathPrefix: "/api/v1/"}},
		Spec{Name: "root", Match: config.Match{PathPrefix: "/"}},
		Spec{Name: "regex-never", Priority: 1000, Match: config.Match{PathRegex: "."}},
		Spec{Name: "root-slash", Match: config.Match{Path: "/"}},
		Spec{Name: "orgs-rest-deep", Match: config.Match{Path: "/orgs/{org}/repos/{rest...}"}},
		Spec{Name: "orgs-rest", Match: config.Match{Path: "/orgs/{all...}"}},
	)
	runCases(t, s, []req{
		{desc: "exact static", target: "/users", want: "users-exact"},
		{desc: "trailing slash is a different exact path", target: "/users/", want: "users-slash"},
		{desc: "static beats param", target: "/users/me", want: "users-me", params: map[string]string{}},
		{desc: "param", target: "/users/42", want: "users-id", params: map[string]string{"id": "42"}},
		{desc: "param keeps encoding", target: "/users/a%2fb", want: "users-id", params: map[string]string{"id": "a%2Fb"}},
		{desc: "param gets decoded unreserved", target: "/users/%61b", want: "users-id", params: map[string]string{"id": "ab"}},
		{desc: "static segment first beats later static", target: "/users/me/posts", want: "users-me-any", params: map[string]string{"what": "posts"}},
		{desc: "param then static", target: "/users/7/posts", want: "users-id-posts", params: map[string]string{"id": "7"}},
		{desc: "template does not match deeper", target: "/users/7/posts/1", want: "users-prefix"},
		{desc: "param needs non-empty segment", target: "/users/7/", want: "users-prefix"},
		{desc: "static file", target: "/files/readme", want: "files-static"},
		{desc: "one segment param beats rest", target: "/files/x.txt", want: "files-one", params: map[string]string{"name": "x.txt"}},
		{desc: "rest captures slashes", target: "/files/a/b/c", want: "files-rest", params: map[string]string{"path": "a/b/c"}},
		{desc: "rest keeps trailing slash", target: "/files/a/", want: "files-rest", params: map[string]string{"path": "a/"}},
		{desc: "rest needs one byte", target: "/files/", want: "root"},
		{desc: "rest needs the slash", target: "/files", want: "root"},
		{desc: "exact beats higher priority prefix", target: "/users/me", want: "users-me"},
		{desc: "prefix below templates", target: "/users/1/2/3", want: "users-prefix"},
		{desc: "prefix segment boundary", target: "/usersx", want: "root"},
		{desc: "prefix matches itself", target: "/api", want: "api"},
		{desc: "prefix matches below", target: "/api/x", want: "api"},
		{desc: "prefix without slash matches bare", target: "/api/v1", want: "api-v1"},
		{desc: "slash prefix beats shorter", target: "/api/v1/", want: "api-v1-slash"},
		{desc: "slash prefix deep", target: "/api/v1/users/1", want: "api-v1-slash"},
		{desc: "prefix boundary deeper", target: "/api/v10", want: "api"},
		{desc: "root prefix catches rest", target: "/other/thing", want: "root"},
		{desc: "regex after root prefix", target: "/zzz", want: "root"},
		{desc: "exact root", target: "/", want: "root-slash"},
		{desc: "normalised before matching", target: "/api/../users", want: "users-exact"},
		{desc: "param then rest", target: "/orgs/acme/repos/a/b", want: "orgs-rest-deep", params: map[string]string{"org": "acme", "rest": "a/b"}},
		{desc: "rest at shallower node", target: "/orgs/acme/teams/a", want: "orgs-rest", params: map[string]string{"all": "acme/teams/a"}},
		{desc: "deep template falls back to rest", target: "/orgs/acme/repos/", want: "orgs-rest", params: map[string]string{"all": "acme/repos/"}},
	})
}

func TestMatchConditionOrder(t *testing.T) {
	t.Parallel()
	s := specs(
		Spec{Name: "x-plain", Match: config.Match{Path: "/x"}},
		Spec{Name: "x-post", Match: config.Match{Path: "/x", Methods: []string{"POST"}}},
		Spec{Name: "x-canary", Priority: -5, Match: config.Match{Path: "/x", Headers: map[string]string{"X-Env": "canary"}}},
		Spec{Name: "x-two", Priority: -10, Match: config.Match{Path: "/x", Methods: []string{"PUT"}, Query: map[string]string{"v": "2"}}},
		Spec{Name: "y-low", Priority: 1, Match: config.Match{Path: "/y"}},
		Spec{Name: "y-high", Priority: 2, Match: config.Match{Path: "/y", Hosts: nil, Methods: nil}},
		Spec{Name: "z-a", Match: config.Match{Path: "/z", Headers: map[string]string{"A": "1"}}},
		Spec{Name: "z-b", Match: config.Match{Path: "/z", Headers: map[string]string{"B": "1"}}},
		Spec{Name: "p-prefix", Priority: 100, Match: config.Match{PathPrefix: "/p"}},
		Spec{Name: "p-exact", Match: config.Match{Path: "/p/q"}},
		Spec{Name: "p-template", Match: config.Match{Path: "/p/{x}"}},
		Spec{Name: "t-a", Match: config.Match{Path: "/t/{a}"}},
		Spec{Name: "t-b", Priority: 3, Match: config.Match{Path: "/t/{b}"}},
	)
	runCases(t, s, []req{
		{desc: "no conditions", target: "/x", want: "x-plain"},
		{desc: "method condition first", method: "POST", target: "/x", want: "x-post"},
		{desc: "header condition", target: "/x", headers: map[string][]string{"X-Env": {"canary"}}, want: "x-canary"},
		{desc: "equal condition count, higher priority", method: "POST", target: "/x", headers: map[string][]string{"X-Env": {"canary"}}, want: "x-post"},
		{desc: "more conditions beat priority", method: "PUT", target: "/x?v=2", headers: map[string][]string{"X-Env": {"canary"}}, want: "x-two"},
		{desc: "partial conditions fall back", method: "PUT", target: "/x?v=3", want: "x-plain"},
		{desc: "higher priority", target: "/y", want: "y-high"},
		{desc: "config order breaks full ties", target: "/z", headers: map[string][]string{"A": {"1"}, "B": {"1"}}, want: "z-a"},
		{desc: "second of tie", target: "/z", headers: map[string][]string{"B": {"1"}}, want: "z-b"},
		{desc: "priority does not beat exact", target: "/p/q", want: "p-exact"},
		{desc: "priority does not beat template", target: "/p/r", want: "p-template"},
		{desc: "prefix below", target: "/p/r/s", want: "p-prefix"},
		{desc: "same shape template priority", target: "/t/1", want: "t-b", params: map[string]string{"b": "1"}},
	})
}

func TestMatchBacktracking(t *testing.T) {
	t.Parallel()
	s := specs(
		Spec{Name: "get-user", Match: config.Match{Path: "/users/{id}", Methods: []string{"GET"}}},
		Spec{Name: "users-prefix", Match: config.Match{PathPrefix: "/users"}},
		Spec{Name: "a-x-c", Match: config.Match{Path: "/a/{x}/c", Methods: []string{"GET"}}},
		Spec{Name: "a-b-y", Match: config.Match{Path: "/a/b/{y}", Methods: []string{"POST"}}},
		Spec{Name: "a-rest", Match: config.Match{Path: "/a/{r...}", Methods: []string{"DELETE"}}},
		Spec{Name: "r-get", Match: config.Match{Path: "/r", Methods: []string{"GET"}}},
		Spec{Name: "r-regex", Match: config.Match{PathRegex: "^/r$"}},
		Spec{Name: "deep-prefix", Match: config.Match{PathPrefix: "/d/e/f", Methods: []string{"PUT"}}},
		Spec{Name: "mid-prefix", Match: config.Match{PathPrefix: "/d/e/", Methods: []string{"PUT", "PATCH"}}},
		Spec{Name: "top-prefix", Match: config.Match{PathPrefix: "/d"}},
	)
	runCases(t, s, []req{
		{desc: "template wins for GET", target: "/users/1", want: "get-user", params: map[string]string{"id": "1"}},
		{desc: "POST backtracks to prefix", method: "POST", target: "/users/1", want: "users-prefix", params: map[string]string{}},
		{desc: "static branch fails, param branch holds", target: "/a/b/c", want: "a-x-c", params: map[string]string{"x": "b"}},
		{desc: "static branch holds", method: "POST", target: "/a/b/c", want: "a-b-y", params: map[string]string{"y": "c"}},
		{desc: "both fail, rest holds", method: "DELETE", target: "/a/b/c", want: "a-rest", params: map[string]string{"r": "b/c"}},
		{desc: "nothing holds", method: "PUT", target: "/a/b/c", want: ""},
		{desc: "exact fails, regex holds", method: "POST", target: "/r", want: "r-regex"},
		{desc: "deepest prefix", method: "PUT", target: "/d/e/f/g", want: "deep-prefix"},
		{desc: "middle prefix", method: "PATCH", target: "/d/e/f/g", want: "mid-prefix"},
		{desc: "top prefix", method: "GET", target: "/d/e/f/g", want: "top-prefix"},
		{desc: "slash prefix needs slash", method: "PATCH", target: "/d/e", want: "top-prefix"},
	})
}

func TestMatchHosts(t *testing.T) {
	t.Parallel()
	s := specs(
		Spec{Name: "api", Match: config.Match{Hosts: []string{"API.example.com"}, PathPrefix: "/"}},
		Spec{Name: "only", Match: config.Match{Hosts: []string{"only.example.com"}, Path: "/only"}},
		Spec{Name: "wild-org", Match: config.Match{Hosts: []string{"*.example.org"}}},
		Spec{Name: "wild-b", Match: config.Match{Hosts: []string{"*.b.example.org"}, PathPrefix: "/"}},
		Spec{Name: "wild-only", Match: config.Match{Hosts: []string{"*.example.com"}, Path: "/wild"}},
		Spec{Name: "v6", Match: config.Match{Hosts: []string{"[::1]"}, Path: "/"}},
		Spec{Name: "multi", Match: config.Match{Hosts: []string{"one.test", "two.test."}, Path: "/m"}},
		Spec{Name: "any-exact", Match: config.Match{Path: "/health"}},
		Spec{Name: "any", Match: config.Match{PathPrefix: "/"}},
	)
	runCases(t, s, []req{
		{desc: "exact host", host: "api.example.com", target: "/health", want: "api"},
		{desc: "exact host upper case and port", host: "API.Example.COM:8443", target: "/x", want: "api"},
		{desc: "exact host trailing dot", host: "api.example.com.", target: "/x", want: "api"},
		{desc: "one label wildcard", host: "a.example.org", target: "/x", want: "wild-org"},
		{desc: "several labels wildcard", host: "x.y.example.org", target: "/x", want: "wild-org"},
		{desc: "longest wildcard suffix first", host: "a.b.example.org", target: "/x", want: "wild-b"},
		{desc: "deeper under longest suffix", host: "x.a.b.example.org", target: "/x", want: "wild-b"},
		{desc: "wildcard apex is the shorter wildcard", host: "b.example.org", target: "/x", want: "wild-org"},
		{desc: "apex not matched", host: "example.org", target: "/x", want: "any"},
		{desc: "empty label not matched", host: "a..example.org", target: "/x", want: "any"},
		{desc: "leading dot not matched", host: ".example.org", target: "/x", want: "any"},
		{desc: "wildcard upper case", host: "A.Example.ORG:80", target: "/x", want: "wild-org"},
		{desc: "exact bucket falls through to any", host: "only.example.com", target: "/health", want: "any-exact"},
		{desc: "exact bucket falls through to wildcard", host: "only.example.com", target: "/wild", want: "wild-only"},
		{desc: "exact bucket own route", host: "only.example.com", target: "/only", want: "only"},
		{desc: "ipv6 literal with port", host: "[::1]:8080", target: "/", want: "v6"},
		{desc: "multiple hosts first", host: "one.test", target: "/m", want: "multi"},
		{desc: "multiple hosts second", host: "two.test", target: "/m", want: "multi"},
		{desc: "unknown host", host: "other.test", target: "/health", want: "any-exact"},
		{desc: "empty host", host: "", target: "/health", want: "any-exact"},
	})
}

func TestMatchMethodsHeadersQuery(t *testing.T) {
	t.Parallel()
	s := specs(
		Spec{Name: "get", Match: config.Match{Path: "/m", Methods: []string{"GET"}}},
		Spec{Name: "get-post", Match: config.Match{Path: "/m2", Methods: []string{"GET", "POST", "GET"}}},
		Spec{Name: "hdr", Match: config.Match{Path: "/h", Headers: map[string]string{"x-env": "canary"}}},
		Spec{Name: "hdr-empty", Match: config.Match{Path: "/he", Headers: map[string]string{"X-Flag": ""}}},
		Spec{Name: "q", Match: config.Match{Path: "/q", Query: map[string]string{"v": "2"}}},
		Spec{Name: "q-enc", Match: config.Match{Path: "/qe", Query: map[string]string{"my key": "a b&c"}}},
		Spec{Name: "q-flag", Match: config.Match{Path: "/qf", Query: map[string]string{"debug": ""}}},
		Spec{Name: "q-two", Match: config.Match{PathPrefix: "/q2", Query: map[string]string{"a": "1", "b": "2"}}},
	)
	runCases(t, s, []req{
		{desc: "method match", target: "/m", want: "get"},
		{desc: "method mismatch", method: "POST", target: "/m", want: ""},
		{desc: "HEAD does not match GET", method: "HEAD", target: "/m", want: ""},
		{desc: "method case-sensitive", method: "get", target: "/m", want: ""},
		{desc: "method in list", method: "POST", target: "/m2", want: "get-post"},
		{desc: "header present", target: "/h", headers: map[string][]string{"X-Env": {"canary"}}, want: "hdr"},
		{desc: "header name case-insensitive", target: "/h", headers: map[string][]string{"x-ENV": {"canary"}}, want: "hdr"},
		{desc: "header absent", target: "/h", want: ""},
		{desc: "header other value", target: "/h", headers: map[string][]string{"X-Env": {"prod"}}, want: ""},
		{desc: "header value case-sensitive", target: "/h", headers: map[string][]string{"X-Env": {"Canary"}}, want: ""},
		{desc: "header first value decides", target: "/h", headers: map[string][]string{"X-Env": {"prod", "canary"}}, want: ""},
		{desc: "empty header value present", target: "/he", headers: map[string][]string{"X-Flag": {""}}, want: "hdr-empty"},
		{desc: "empty header value absent", target: "/he", want: ""},
		{desc: "query present", target: "/q?v=2", want: "q"},
		{desc: "query among others", target: "/q?a=1&v=2&b=3", want: "q"},
		{desc: "query absent", target: "/q", want: ""},
		{desc: "query other key", target: "/q?vv=2", want: ""},
		{desc: "query other value", target: "/q?v=3", want: ""},
		{desc: "query value prefix", target: "/q?v=22", want: ""},
		{desc: "query first occurrence decides", target: "/q?v=1&v=2", want: ""},
		{desc: "query first occurrence holds", target: "/q?v=2&v=1", want: "q"},
		{desc: "query encoded value", target: "/q?v=%32", want: "q"},
		{desc: "query encoded key", target: "/q?%76=2", want: "q"},
		{desc: "query plus and escapes", target: "/qe?my+key=a%20b%26c", want: "q-enc"},
		{desc: "query raw ampersand splits", target: "/qe?my+key=a+b&c", want: ""},
		{desc: "query bad escape pair skipped", target: "/q?v=%zz&v=2", want: "q"},
		{desc: "query semicolon pair skipped", target: "/q?v=2;x=1", want: ""},
		{desc: "query semicolon pair skipped then valid", target: "/q?v=1;x&v=2", want: "q"},
		{desc: "query flag without value", target: "/qf?debug", want: "q-flag"},
		{desc: "query flag with empty value", target: "/qf?debug=", want: "q-flag"},
		{desc: "query flag with value", target: "/qf?debug=1", want: ""},
		{desc: "query two conditions", target: "/q2/x?b=2&a=1", want: "q-two"},
		{desc: "query one of two", target: "/q2/x?a=1", want: ""},
	})
}

func TestMatchRegex(t *testing.T) {
	t.Parallel()
	s := specs(
		Spec{Name: "admin-anywhere", Match: config.Match{PathRegex: "/admin"}},
		Spec{Name: "img", Priority: 5, Match: config.Match{PathRegex: `^/img/[0-9]+\.png$`}},
		Spec{Name: "img-any", Priority: 5, Match: config.Match{PathRegex: `^/img/`}},
		Spec{Name: "img-get", Match: config.Match{PathRegex: `^/img/`, Methods: []string{"GET"}}},
		Spec{Name: "img-low", Priority: 5, Match: config.Match{PathRegex: `^/img/`, Methods: []string{"DELETE"}}},
		Spec{Name: "exact", Match: config.Match{Path: "/img/1.png", Methods: []string{"PUT"}}},
		Spec{Name: "tail-prefix", Match: config.Match{PathPrefix: "/tail"}},
		Spec{Name: "tail-regex", Priority: 99, Match: config.Match{PathRegex: "^/tail"}},
		Spec{Name: "admin-end", Priority: 7, Match: config.Match{PathRegex: "/admin$"}},
	)
	runCases(t, s, []req{
		{desc: "unanchored regex", target: "/x/admin/y", want: "admin-anywhere"},
		{desc: "higher priority regex beats config order", target: "/x/admin", want: "admin-end"},
		{desc: "anchored regex", target: "/img/12.png", want: "img"},
		{desc: "config order among equal priority", target: "/img/x", want: "img-any"},
		{desc: "more conditions among equal priority", method: "DELETE", target: "/img/x", want: "img-low"},
		{desc: "exact path beats regex", method: "PUT", target: "/img/1.png", want: "exact"},
		{desc: "prefix beats higher priority regex", target: "/tail/x", want: "tail-prefix"},
		{desc: "regex sees normalised path", target: "/%61dmin/", want: "admin-anywhere"},
		{desc: "no regex matches", target: "/nothing", want: ""},
	})
}

func TestMatchNoPathCondition(t *testing.T) {
	t.Parallel()
	s := specs(
		Spec{Name: "no-path", Priority: 1, Match: config.Match{Methods: []string{"GET"}}},
		Spec{Name: "root-prefix", Match: config.Match{PathPrefix: "/", Methods: []string{"POST"}}},
		Spec{Name: "regex", Match: config.Match{PathRegex: "^/"}},
	)
	runCases(t, s, []req{
		{desc: "no path condition matches any path", target: "/a/b/c", want: "no-path"},
		{desc: "equal to prefix /", method: "POST", target: "/a", want: "root-prefix"},
		{desc: "regex last", method: "PUT", target: "/a", want: "regex"},
	})
}

func TestMatchParamsCapacity(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	var target strings.Builder
	want := map[string]string{}
	for i := 0; i < request.MaxParams; i++ {
		fmt.Fprintf(&b, "/{p%d}", i)
		fmt.Fprintf(&target, "/v%d", i)
		want[fmt.Sprintf("p%d", i)] = fmt.Sprintf("v%d", i)
	}
	s := specs(Spec{Name: "max", Match: config.Match{Path: b.String()}})
	runCases(t, s, []req{
		{desc: "sixteen params", target: target.String(), want: "max", params: want},
	})
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	var tooMany strings.Builder
	for i := 0; i <= request.MaxParams; i++ {
		fmt.Fprintf(&tooMany, "/{p%d}", i)
	}
	for _, tc := range []struct {
		desc  string
		specs []Spec
		want  string // substring of the error; "" means success
	}{
		{desc: "valid", specs: []Spec{{Name: "a", Match: config.Match{Path: "/a/{b}"}}}},
		{desc: "empty table", specs: nil},
		{desc: "duplicate exact", want: `routes "a" and "b" match exactly the same requests`, specs: []Spec{
			{Name: "a", Match: config.Match{Path: "/x"}},
			{Name: "b", Match: config.Match{Path: "/x"}},
		}},
		{desc: "duplicate with other param names", want: `routes "a" and "b" match exactly the same requests`, specs: []Spec{
			{Name: "a", Match: config.Match{Path: "/u/{id}"}},
			{Name: "b", Match: config.Match{Path: "/u/{uid}"}},
		}},
		{desc: "duplicate sets in other order", want: `routes "a" and "b" match exactly the same requests`, specs: []Spec{
			{Name: "a", Match: config.Match{Hosts: []string{"x.test", "y.test"}, Methods: []string{"GET", "POST"}, Path: "/x"}},
			{Name: "b", Match: config.Match{Hosts: []string{"Y.test", "x.test"}, Methods: []string{"POST", "GET"}, Path: "/x"}},
		}},
		{desc: "duplicate no path and root prefix", want: "match exactly the same requests", specs: []Spec{
			{Name: "a", Match: config.Match{}},
			{Name: "b", Match: config.Match{PathPrefix: "/"}},
		}},
		{desc: "duplicate headers and query", want: "match exactly the same requests", specs: []Spec{
			{Name: "a", Match: config.Match{Path: "/x", Headers: map[string]string{"x-a": "1"}, Query: map[string]string{"q": "1"}}},
			{Name: "b", Match: config.Match{Path: "/x", Headers: map[string]string{"X-A": "1"}, Query: map[string]string{"q": "1"}}},
		}},
		{desc: "duplicate encoded static", want: "match exactly the same requests", specs: []Spec{
			{Name: "a", Match: config.Match{Path: "/%61"}},
			{Name: "b", Match: config.Match{Path: "/a"}},
		}},
		{desc: "same conditions other priority", specs: []Spec{
			{Name: "a", Match: config.Match{Path: "/x"}},
			{Name: "b", Priority: 1, Match: config.Match{Path: "/x"}},
		}},
		{desc: "prefix and exact differ", specs: []Spec{
			{Name: "a", Match: config.Match{Path: "/x"}},
			{Name: "b", Match: config.Match{PathPrefix: "/x"}},
		}},
		{desc: "unclosed param", want: `"bad": path "/users/{id": bad template segment`, specs: []Spec{{Name: "bad", Match: config.Match{Path: "/users/{id"}}}},
		{desc: "param inside segment", want: "bad template segment", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/users/x{id}"}}}},
		{desc: "empty param", want: "empty parameter name", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/{}"}}}},
		{desc: "empty rest param", want: "empty parameter name", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/{...}"}}}},
		{desc: "bad param name", want: "parameter name must be", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/{a-b}"}}}},
		{desc: "duplicate param", want: `duplicate parameter name "a"`, specs: []Spec{{Name: "bad", Match: config.Match{Path: "/{a}/{a}"}}}},
		{desc: "duplicate param with rest", want: `duplicate parameter name "a"`, specs: []Spec{{Name: "bad", Match: config.Match{Path: "/{a}/{a...}"}}}},
		{desc: "rest not last", want: "{a...} must be the last segment", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/{a...}/b"}}}},
		{desc: "too many params", want: "more than 16 parameters", specs: []Spec{{Name: "bad", Match: config.Match{Path: tooMany.String()}}}},
		{desc: "bad regex", want: `"bad": path_regex "(": error parsing regexp`, specs: []Spec{{Name: "bad", Match: config.Match{PathRegex: "("}}}},
		{desc: "two path kinds", want: "use only one of path, path_prefix and path_regex", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/a", PathPrefix: "/a"}}}},
		{desc: "relative path", want: "must start with /", specs: []Spec{{Name: "bad", Match: config.Match{Path: "a"}}}},
		{desc: "relative prefix", want: "must start with /", specs: []Spec{{Name: "bad", Match: config.Match{PathPrefix: "a"}}}},
		{desc: "double slash", want: "empty segment", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/a//b"}}}},
		{desc: "dot segment", want: "dot segment", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/a/../b"}}}},
		{desc: "encoded dot segment", want: "dot segment", specs: []Spec{{Name: "bad", Match: config.Match{PathPrefix: "/a/%2e"}}}},
		{desc: "bad escape in path", want: "malformed percent-encoding", specs: []Spec{{Name: "bad", Match: config.Match{Path: "/a%zz"}}}},
		{desc: "backslash in path", want: "backslash", specs: []Spec{{Name: "bad", Match: config.Match{Path: `/a\b`}}}},
		{desc: "prefix with braces", want: "path_prefix cannot contain", specs: []Spec{{Name: "bad", Match: config.Match{PathPrefix: "/{a}"}}}},
		{desc: "host with port", want: "must not include a port", specs: []Spec{{Name: "bad", Match: config.Match{Hosts: []string{"a.test:80"}}}}},
		{desc: "bare wildcard", want: "must be a name or a *.suffix wildcard", specs: []Spec{{Name: "bad", Match: config.Match{Hosts: []string{"*"}}}}},
		{desc: "inner wildcard", want: "must be a name or a *.suffix wildcard", specs: []Spec{{Name: "bad", Match: config.Match{Hosts: []string{"a.*.test"}}}}},
		{desc: "empty host", want: "must be a name", specs: []Spec{{Name: "bad", Match: config.Match{Hosts: []string{""}}}}},
		{desc: "empty method", want: "not a valid method", specs: []Spec{{Name: "bad", Match: config.Match{Methods: []string{""}}}}},
		{desc: "host header", want: "with hosts", specs: []Spec{{Name: "bad", Match: config.Match{Headers: map[string]string{"host": "a"}}}}},
		{desc: "conflicting header case", want: "given twice", specs: []Spec{{Name: "bad", Match: config.Match{Headers: map[string]string{"x-a": "1", "X-A": "2"}}}}},
		{desc: "empty query key", want: "query parameter name", specs: []Spec{{Name: "bad", Match: config.Match{Query: map[string]string{"": "1"}}}}},
		{desc: "unnamed route", want: "#1: path", specs: []Spec{{Name: "ok"}, {Match: config.Match{Path: "/{"}}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			tab, err := Build(tc.specs)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				if tab.Len() != len(tc.specs) {
					t.Fatalf("Len() = %d, want %d", tab.Len(), len(tc.specs))
				}
				return
			}
			if err == nil {
				t.Fatalf("Build succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Build error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestMatchNilAndBadInput(t *testing.T) {
	t.Parallel()
	var nilTable *Table
	var ps request.Params
	r := &http.Request{Method: "GET", URL: &url.URL{}, Header: http.Header{}}
	if _, ok := nilTable.Match(r, "", "/", &ps); ok {
		t.Fatal("nil table matched")
	}
	if nilTable.Len() != 0 {
		t.Fatal("nil table has routes")
	}
	tab := mustBuild(t, specs(Spec{Name: "all"}))
	for _, tc := range []struct{ desc, path string }{
		{desc: "empty path", path: ""},
		{desc: "relative path", path: "x"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var ps request.Params
			if _, ok := tab.Match(r, "", tc.path, &ps); ok {
				t.Fatalf("path %q matched", tc.path)
			}
		})
	}
}

// TestMatchAllocs is not parallel: AllocsPerRun refuses to run in parallel
// tests.
func TestMatchAllocs(t *testing.T) {
	var list []Spec
	for i := 0; i < 50; i++ {
		list = append(list,
			Spec{Name: fmt.Sprintf("s%d", i), Match: config.Match{Path: fmt.Sprintf("/svc%d/static", i)}},
			Spec{Name: fmt.Sprintf("t%d", i), Match: config.Match{Path: fmt.Sprintf("/svc%d/users/{id}/posts/{post}", i), Methods: []string{"GET"}}},
			Spec{Name: fmt.Sprintf("p%d", i), Match: config.Match{PathPrefix: fmt.Sprintf("/svc%d/files/", i), Query: map[string]string{"sig": "a b", "v": "1"}, Headers: map[string]string{"x-env": "canary"}}},
			Spec{Name: fmt.Sprintf("w%d", i), Match: config.Match{Hosts: []string{fmt.Sprintf("*.svc%d.example.org", i)}, PathRegex: "^/re/[0-9]+$"}},
		)
	}
	tab := mustBuild(t, specs(list...))
	for _, tc := range []struct {
		desc, method, host, target, want string
	}{
		{desc: "template", method: "GET", host: "api.example.com", target: "/svc7/users/42/posts/9", want: "t7"},
		{desc: "prefix with query", method: "POST", host: "api.example.com", target: "/svc7/files/a/b?v=1&sig=a+b", want: "p7"},
		{desc: "prefix with encoded query", method: "POST", host: "api.example.com", target: "/svc7/files/a/b?v=%31&sig=a%20b", want: "p7"},
		{desc: "wildcard regex", method: "GET", host: "x.y.svc3.example.org", target: "/re/12", want: "w3"},
		{desc: "no match", method: "GET", host: "a.b.c.d", target: "/nope/nope", want: ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r, host, path := newRequest(t, tc.method, tc.host, tc.target, map[string][]string{"X-Env": {"canary"}})
			var ps request.Params
			idx, ok := tab.Match(r, host, path, &ps)
			got := ""
			if ok {
				got = list[idx].Name
			}
			if got != tc.want {
				t.Fatalf("matched %q, want %q", got, tc.want)
			}
			allocs := testing.AllocsPerRun(200, func() {
				tab.Match(r, host, path, &ps)
			})
			if allocs != 0 {
				t.Fatalf("Match: %v allocs/op, want 0", allocs)
			}
		})
	}
}
