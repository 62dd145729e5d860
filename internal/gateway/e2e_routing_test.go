package gateway_test

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"
)

// e2eRoutingConfig has one respond route per precedence case; each answers with
// its own name, so the body tells which route matched.
const e2eRoutingConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  # exact vs template vs prefix vs regex
  - {name: users-exact, match: {path: /users/me}, respond: {body: users-exact}}
  - {name: users-template, match: {path: "/users/{id}", methods: [GET]}, respond: {body: users-template}}
  - {name: users-prefix, match: {path_prefix: /users}, respond: {body: users-prefix}}
  - {name: users-regex, match: {path_regex: "^/users/[0-9]+$"}, respond: {body: users-regex}}
  - {name: rx, match: {path_regex: "^/rx-[0-9]+$"}, respond: {body: rx}}
  - {name: rx-high, priority: 5, match: {path_regex: "^/rx-1"}, respond: {body: rx-high}}
  - {name: deep-template, match: {path: "/t/{a}/x"}, respond: {body: deep-template}}
  - {name: deep-static, match: {path: "/t/b/{c}"}, respond: {body: deep-static}}
  - {name: rest, match: {path: "/t/{all...}"}, respond: {body: rest}}

  # hosts
  - {name: host-exact, match: {hosts: [api.example.com], path_prefix: /h}, respond: {body: host-exact}}
  - {name: host-wild, match: {hosts: ["*.example.com"], path_prefix: /h}, respond: {body: host-wild}}
  - {name: host-wild-svc, match: {hosts: ["*.svc.example.com"], path_prefix: /h}, respond: {body: host-wild-svc}}
  - {name: host-any, match: {path_prefix: /h}, respond: {body: host-any}}
  - {name: host-any-exact, match: {path: /h/x}, respond: {body: host-any-exact}}

  # methods
  - {name: m-post, match: {path: /m, methods: [POST, PUT]}, respond: {body: m-post}}
  - {name: m-any, match: {path: /m}, respond: {body: m-any}}
  - {name: m-head, match: {path: /mh, methods: [HEAD]}, respond: {body: m-head}}

  # headers
  - {name: hdr-plain, match: {path: /hdr}, respond: {body: hdr-plain}}
  - {name: hdr-blue, match: {path: /hdr, headers: {X-Tenant: blue}}, respond: {body: hdr-blue}}
  - {name: hdr-blue-get, match: {path: /hdr, methods: [GET], headers: {x-tenant: blue}}, respond: {body: hdr-blue-get}}

  # query
  - {name: q-plain, match: {path: /q}, respond: {body: q-plain}}
  - {name: q-v2, match: {path: /q, query: {v: "2"}}, respond: {body: q-v2}}
  - {name: q-space, match: {path: /q, query: {s: "a b"}}, respond: {body: q-space}}

  # priority
  - {name: p-low, priority: 1, match: {path: /p}, respond: {body: p-low}}
  - {name: p-high, priority: 10, match: {path: /p}, respond: {body: p-high}}
  - {name: p-zero, match: {path: /p, headers: {X-P: "1"}}, respond: {body: p-zero}}
  - {name: prio-prefix, priority: 100, match: {path_prefix: /prio}, respond: {body: prio-prefix}}
  - {name: prio-exact, match: {path: /prio/x}, respond: {body: prio-exact}}

  # templates that proxy
  - {name: items, match: {path: "/items/{id}/detail"}, upstream: rec}
  - {name: files, match: {path: "/files/{rest...}"}, upstream: rec}
`

func TestRoutingPrecedence(t *testing.T) {
	// Table test: its length is the table of cases.
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, e2eRoutingConfig, map[string]string{"REC": rec.URL})

	tests := []struct {
		desc   string
		method string
		path   string
		host   string
		header map[string]string
		want   string
		status int // an error status other than 404 when want is ""
	}{
		{desc: "exact beats template", path: "/users/me", want: "users-exact"},
		{desc: "template beats prefix and regex", path: "/users/42", want: "users-template"},
		{desc: "template backtracks to prefix for POST", method: "POST", path: "/users/42", want: "users-prefix"},
		{desc: "template needs a non-empty segment", path: "/users/", want: "users-prefix"},
		{desc: "prefix matches itself", path: "/users", want: "users-prefix"},
		{desc: "prefix matches below", path: "/users/42/orders", want: "users-prefix"},
		{desc: "prefix stops at segment boundary", path: "/usersx", want: ""},
		{desc: "regex when no path or prefix matches", path: "/rx-77", want: "rx"},
		{desc: "regex priority", path: "/rx-12", want: "rx-high"},
		{desc: "regex is unanchored unless anchored", path: "/rx-1abc", want: "rx-high"},
		{desc: "static segment beats param at first difference", path: "/t/b/x", want: "deep-static"},
		{desc: "param then static", path: "/t/a/x", want: "deep-template"},
		{desc: "rest param catches the remainder", path: "/t/a/y/z", want: "rest"},

		{desc: "exact host", path: "/h", host: "api.example.com", want: "host-exact"},
		{desc: "exact host is case-insensitive and port-less", path: "/h", host: "API.Example.COM:8443", want: "host-exact"},
		{desc: "exact host beats an any-host exact path", path: "/h/x", host: "api.example.com", want: "host-exact"},
		{desc: "wildcard one label", path: "/h", host: "web.example.com", want: "host-wild"},
		{desc: "wildcard two labels", path: "/h", host: "a.b.example.com", want: "host-wild"},
		{desc: "longest wildcard suffix first", path: "/h", host: "x.svc.example.com", want: "host-wild-svc"},
		{desc: "wildcard does not match its base", path: "/h", host: "example.com", want: "host-any"},
		{desc: "unknown host falls back to any", path: "/h", host: "other.org", want: "host-any"},
		{desc: "any-host exact path for unknown host", path: "/h/x", host: "other.org", want: "host-any-exact"},
		{desc: "empty label never matches wildcard", path: "/h", host: "a..example.com", want: "host-any"},

		{desc: "method route for POST", method: "POST", path: "/m", want: "m-post"},
		{desc: "method route for PUT", method: "PUT", path: "/m", want: "m-post"},
		{desc: "no method route for GET", path: "/m", want: "m-any"},
		{desc: "method list is case-sensitive", method: "post", path: "/m", want: "m-any"},
		{desc: "HEAD-only route", method: "HEAD", path: "/mh", want: "m-head"},
		{desc: "HEAD does not imply GET", path: "/mh", want: ""},

		{desc: "header and method conditions first", path: "/hdr", header: map[string]string{"X-Tenant": "blue"}, want: "hdr-blue-get"},
		{desc: "header condition without method", method: "POST", path: "/hdr", header: map[string]string{"X-Tenant": "blue"}, want: "hdr-blue"},
		{desc: "header value compares exactly", path: "/hdr", header: map[string]string{"X-Tenant": "Blue"}, want: "hdr-plain"},
		{desc: "header absent", path: "/hdr", want: "hdr-plain"},

		{desc: "query value", path: "/q?v=2", want: "q-v2"},
		{desc: "query value among others", path: "/q?x=1&v=2", want: "q-v2"},
		{desc: "query other value", path: "/q?v=1", want: "q-plain"},
		// A repeated parameter that a route matches on is rejected: the
		// backend might read the other occurrence (see e2e_limits_test.go).
		{desc: "repeated query parameter is rejected", path: "/q?v=3&v=2", status: http.StatusBadRequest},
		{desc: "query plus decodes to space", path: "/q?s=a+b", want: "q-space"},
		{desc: "query percent decodes", path: "/q?s=a%20b", want: "q-space"},
		{desc: "query absent", path: "/q", want: "q-plain"},

		{desc: "higher priority wins among equal routes", path: "/p", want: "p-high"},
		{desc: "more conditions beat priority", path: "/p", header: map[string]string{"X-P": "1"}, want: "p-zero"},
		{desc: "priority never lets a prefix beat an exact path", path: "/prio/x", want: "prio-exact"},
		{desc: "priority prefix elsewhere", path: "/prio/y", want: "prio-prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			req := e2eReq(t, method, tg.URL+tc.path, nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, body := e2eDo(t, req)
			if tc.want == "" {
				want := http.StatusNotFound
				if tc.status != 0 {
					want = tc.status
				}
				e2eCheckError(t, resp.StatusCode, resp.Header, body, want)
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %q", resp.StatusCode, body)
			}
			if method == http.MethodHead {
				if len(body) != 0 {
					t.Errorf("HEAD response has a body: %q", body)
				}
				if got := resp.Header.Get("Content-Length"); got != "6" {
					t.Errorf("HEAD Content-Length = %q, want 6 (len of %q)", got, tc.want)
				}
				return
			}
			if string(body) != tc.want {
				t.Errorf("matched %q, want %q", body, tc.want)
			}
		})
	}
}

func TestRoutingTemplatesProxy(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, e2eRoutingConfig, map[string]string{"REC": rec.URL})

	tests := []struct {
		desc     string
		path     string
		wantPath string
		wantURI  string
	}{
		{desc: "single param", path: "/items/42/detail", wantPath: "/items/42/detail", wantURI: "/items/42/detail"},
		{desc: "param with query", path: "/items/abc/detail?x=1&y=%2F", wantPath: "/items/abc/detail", wantURI: "/items/abc/detail?x=1&y=%2F"},
		{desc: "encoded param stays encoded", path: "/items/caf%C3%A9/detail", wantPath: "/items/café/detail", wantURI: "/items/caf%C3%A9/detail"},
		{desc: "rest param", path: "/files/a/b/c.txt", wantPath: "/files/a/b/c.txt", wantURI: "/files/a/b/c.txt"},
		{desc: "rest param with trailing slash", path: "/files/dir/", wantPath: "/files/dir/", wantURI: "/files/dir/"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, body := e2eGet(t, tg.URL+tc.path)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "rec" {
				t.Fatalf("status %d, backend %q; body %q", resp.StatusCode, resp.Header.Get("X-Backend"), body)
			}
			s := e2eDecodeSeen(t, body)
			if s.Path != tc.wantPath || s.RequestURI != tc.wantURI {
				t.Errorf("backend saw path %q uri %q, want %q %q", s.Path, s.RequestURI, tc.wantPath, tc.wantURI)
			}
		})
	}
}

func TestRoutingNoRouteIsJSON404(t *testing.T) {
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
routes:
  - {name: only, match: {path: /only}, respond: {body: only}}
`, nil)
	tests := []struct {
		desc   string
		method string
		path   string
		reqID  string
	}{
		{desc: "unknown path", method: "GET", path: "/nope"},
		{desc: "unknown path with POST", method: "POST", path: "/nope/deeper"},
		{desc: "exact path with trailing slash", method: "GET", path: "/only/"},
		{desc: "incoming request id is reported", method: "GET", path: "/nope", reqID: "trace-1234.abc"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			req := e2eReq(t, tc.method, tg.URL+tc.path, nil)
			if tc.reqID != "" {
				req.Header.Set("X-Request-Id", tc.reqID)
			}
			resp, body := e2eDo(t, req)
			eb := e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusNotFound)
			switch {
			case tc.reqID != "" && eb.RequestID != tc.reqID:
				t.Errorf("request_id = %q, want the incoming %q", eb.RequestID, tc.reqID)
			case tc.reqID == "" && !e2eHex32.MatchString(eb.RequestID):
				t.Errorf("request_id = %q, want 32 hex digits", eb.RequestID)
			}
		})
	}
}

// e2eNormConfig protects /admin with a respond route while everything else goes
// to a recording upstream that would serve its own /admin if asked.
const e2eNormConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - {name: admin, match: {path_prefix: /admin}, respond: {status: 200, body: admin}}
  - {name: catch-all, match: {path_prefix: /}, upstream: rec}
`

func TestRoutingNormalisationBypass(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, e2eNormConfig, map[string]string{"REC": rec.URL})
	addr := e2eHostPort(tg.URL)

	targets := []string{
		"/admin",
		"/public/..%2fadmin",
		"/public/..%2Fadmin",
		"/public/..%5cadmin",
		"/%61dmin",
		"/%61%64%6D%69%6E",
		"/./admin",
		"//admin",
		"///admin/x",
		"/public/../admin",
		"/public/%2e%2e/admin",
		"/public/%2E%2E/%61dmin",
		"/public/.%2e/admin",
		"/../admin",
		"/%2e%2e/admin",
		"/public/x/../../admin/",
		"/admin/../admin",
		"/admin%2f",
		"/%2fadmin",
		"/public/..%00/admin",
		"/public/..%3b/admin",
	}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			before := rec.all()
			resp := e2eRawDo(t, addr, "GET", e2eRawGet(target, "gw.test"))
			switch {
			case resp.StatusCode == http.StatusBadRequest:
				// Refused outright is fine.
			case resp.StatusCode == http.StatusOK && string(resp.Body) == "admin":
				// Reached the protecting route.
			case resp.StatusCode == http.StatusOK && resp.Header.Get("X-Backend") == "rec":
				s := e2eDecodeSeen(t, resp.Body)
				if e2eTreatedAsAdmin(s.RequestURI) {
					t.Fatalf("%s reached the catch-all upstream as %q, which it serves as /admin", target, s.RequestURI)
				}
			default:
				t.Fatalf("%s: unexpected status %d body %q", target, resp.StatusCode, resp.Body)
			}
			// Whatever the answer, no request the upstream would treat as
			// /admin may have arrived (parallel subtests only add their own).
			for _, s := range rec.all()[len(before):] {
				if e2eTreatedAsAdmin(s.RequestURI) {
					t.Errorf("upstream received %q", s.RequestURI)
				}
			}
		})
	}
}

// e2eTreatedAsAdmin reports whether a backend that decodes and cleans its path
// (as most web frameworks do) would serve uri from its /admin tree.
func e2eTreatedAsAdmin(uri string) bool {
	p := uri
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if dec, err := url.PathUnescape(p); err == nil {
		p = dec
	}
	p = strings.ReplaceAll(p, "\\", "/")
	p = path.Clean("/" + p)
	return p == "/admin" || strings.HasPrefix(p, "/admin/")
}

func TestRoutingUpstreamGetsNormalisedPath(t *testing.T) {
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, e2eNormConfig, map[string]string{"REC": rec.URL})
	addr := e2eHostPort(tg.URL)

	tests := []struct {
		desc    string
		target  string
		wantURI string
	}{
		{desc: "dot segments", target: "/a/./b/../c", wantURI: "/a/c"},
		{desc: "double slashes", target: "/a//b///c", wantURI: "/a/b/c"},
		{desc: "final dot-dot keeps trailing slash", target: "/a/b/..", wantURI: "/a/"},
		{desc: "dot-dot never climbs above root", target: "/../../x", wantURI: "/x"},
		{desc: "unreserved escapes decoded", target: "/%7Euser/%41%2d%5F", wantURI: "/~user/A-_"},
		{desc: "other escapes upper-cased", target: "/caf%c3%a9", wantURI: "/caf%C3%A9"},
		{desc: "reserved escape stays encoded", target: "/x%21y", wantURI: "/x%21y"},
		{desc: "raw non-ASCII is encoded", target: "/caf\xc3\xa9", wantURI: "/caf%C3%A9"},
		{desc: "trailing slash kept", target: "/dir/", wantURI: "/dir/"},
		{desc: "raw query untouched", target: "/a/../q?b=2&a=1&c=%2f&d=x+y&e&f=&g=%C3%A9&b=1", wantURI: "/q?b=2&a=1&c=%2f&d=x+y&e&f=&g=%C3%A9&b=1"},
		{desc: "query with encoded path chars untouched", target: "/q?next=%2Fadmin%2F..%2F&x=%7E", wantURI: "/q?next=%2Fadmin%2F..%2F&x=%7E"},
		{desc: "empty query", target: "/q?", wantURI: "/q?"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp := e2eRawDo(t, addr, "GET", e2eRawGet(tc.target, "gw.test"))
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "rec" {
				t.Fatalf("status %d backend %q body %q", resp.StatusCode, resp.Header.Get("X-Backend"), resp.Body)
			}
			s := e2eDecodeSeen(t, resp.Body)
			if s.RequestURI != tc.wantURI {
				t.Errorf("upstream request URI = %q, want %q", s.RequestURI, tc.wantURI)
			}
		})
	}
}
