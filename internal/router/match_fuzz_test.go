package router

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// fuzzSpecs is a fixed table covering every kind of condition. All static
// path segments are already canonical so the reference matcher can compare
// them byte for byte.
var fuzzSpecs = specs(
	Spec{Name: "api-root", Match: config.Match{Hosts: []string{"api.example.com"}, PathPrefix: "/"}},
	Spec{Name: "api-users", Match: config.Match{Hosts: []string{"api.example.com"}, Path: "/users/{id}", Methods: []string{"GET"}}},
	Spec{Name: "api-admin", Priority: 9, Match: config.Match{Hosts: []string{"api.example.com"}, PathPrefix: "/admin/", Headers: map[string]string{"X-Env": "ops"}}},
	Spec{Name: "wild", Match: config.Match{Hosts: []string{"*.example.org"}, PathPrefix: "/w"}},
	Spec{Name: "wild-deep", Match: config.Match{Hosts: []string{"*.b.example.org"}, Path: "/w/{x...}"}},
	Spec{Name: "wild-regex", Match: config.Match{Hosts: []string{"*.example.org", "api.example.com"}, PathRegex: `^/r/[a-z]+$`}},
	Spec{Name: "users", Match: config.Match{Path: "/users"}},
	Spec{Name: "users-slash", Match: config.Match{Path: "/users/"}},
	Spec{Name: "users-me", Match: config.Match{Path: "/users/me", Methods: []string{"GET", "HEAD"}}},
	Spec{Name: "users-id", Match: config.Match{Path: "/users/{id}"}},
	Spec{Name: "users-id-post", Priority: 2, Match: config.Match{Path: "/users/{uid}", Methods: []string{"POST"}}},
	Spec{Name: "users-posts", Match: config.Match{Path: "/users/{id}/posts/{post}"}},
	Spec{Name: "users-posts-hi", Priority: 1, Match: config.Match{Path: "/users/{u}/posts/{p}"}},
	Spec{Name: "users-me-x", Match: config.Match{Path: "/users/me/{x}", Query: map[string]string{"a": "1"}}},
	Spec{Name: "users-prefix", Match: config.Match{PathPrefix: "/users", Methods: []string{"DELETE"}}},
	Spec{Name: "users-prefix-slash", Match: config.Match{PathPrefix: "/users/", Query: map[string]string{"q k": "v w"}}},
	Spec{Name: "files", Match: config.Match{Path: "/files/{p...}", Headers: map[string]string{"X-Env": "prod"}}},
	Spec{Name: "files-one", Match: config.Match{Path: "/files/{name}", Methods: []string{"PUT"}}},
	Spec{Name: "files-x", Match: config.Match{Path: "/files/x/{a}/{b...}"}},
	Spec{Name: "admin", Match: config.Match{PathPrefix: "/admin", Methods: []string{"GET"}}},
	Spec{Name: "admin-regex", Priority: 3, Match: config.Match{PathRegex: "admin"}},
	Spec{Name: "any-regex", Priority: 5, Match: config.Match{PathRegex: `%2F`}},
	Spec{Name: "root-get", Match: config.Match{Path: "/", Methods: []string{"GET"}}},
	Spec{Name: "catch-post", Match: config.Match{Methods: []string{"POST"}, Query: map[string]string{"x": ""}}},
	Spec{Name: "rest-root", Match: config.Match{Path: "/{all...}", Methods: []string{"PATCH"}}},
)

var (
	fuzzTableOnce sync.Once
	fuzzTable     *Table
	fuzzTableErr  error
)

func FuzzMatch(f *testing.F) {
	for _, s := range []struct{ host, path, method, query, env string }{
		{"api.example.com", "/users/1", "GET", "", ""},
		{"API.example.com:443", "/admin/x", "GET", "", "ops"},
		{"a.b.example.org", "/w/x/y", "GET", "", ""},
		{"a.example.org", "/r/abc", "GET", "", ""},
		{"example.org", "/w", "GET", "", ""},
		{"x", "/users/me/posts", "GET", "a=1", ""},
		{"x", "/users/", "GET", "q+k=v%20w", ""},
		{"x", "/users/1", "POST", "", ""},
		{"x", "/users/1/posts/2", "DELETE", "", ""},
		{"x", "/files/a/b", "GET", "", "prod"},
		{"x", "/files/x/1/2/3", "GET", "", ""},
		{"x", "/admin/..%2fsecret", "GET", "", ""},
		{"x", "/%61dmin", "HEAD", "", ""},
		{"x", "/", "POST", "x=&x=1", ""},
		{"x", "//", "PATCH", "", ""},
		{"[::1]:80", "/users/me", "HEAD", "a=1;b", ""},
		{"x", "/x/admin%2f", "PUT", "", ""},
	} {
		f.Add(s.host, s.path, s.method, s.query, s.env)
	}
	f.Fuzz(func(t *testing.T, rawHost, rawPath, method, query, env string) {
		fuzzTableOnce.Do(func() { fuzzTable, fuzzTableErr = Build(fuzzSpecs) })
		if fuzzTableErr != nil {
			t.Fatal(fuzzTableErr)
		}
		path, _, err := NormalizePath(rawPath)
		if err != nil {
			return
		}
		host := NormalizeHost(rawHost)
		r := &http.Request{Method: method, Host: rawHost, URL: &url.URL{RawQuery: query}, Header: http.Header{}}
		if env != "" {
			r.Header["X-Env"] = []string{env}
		}
		var ps request.Params
		idx, ok := fuzzTable.Match(r, host, path, &ps)
		want, wantParams := refMatch(fuzzSpecs, r, host, path)
		if !ok {
			if want >= 0 {
				t.Fatalf("%s %q %q?%s: no match, reference matched %q", method, host, path, query, fuzzSpecs[want].Name)
			}
			return
		}
		if !refMatches(&fuzzSpecs[idx], r, host, path) {
			t.Fatalf("%s %q %q?%s: matched %q whose conditions do not hold", method, host, path, query, fuzzSpecs[idx].Name)
		}
		if idx != want {
			wantName := "<none>"
			if want >= 0 {
				wantName = fuzzSpecs[want].Name
			}
			t.Fatalf("%s %q %q?%s: matched %q, reference %q", method, host, path, query, fuzzSpecs[idx].Name, wantName)
		}
		if ps.N != len(wantParams) {
			t.Fatalf("%q: params %v, want %v", path, ps.Arr[:ps.N], wantParams)
		}
		for i, p := range wantParams {
			if ps.Arr[i] != p {
				t.Fatalf("%q: params %v, want %v", path, ps.Arr[:ps.N], wantParams)
			}
		}
	})
}

func TestReferenceAgreesOnSeeds(t *testing.T) {
	t.Parallel()
	tab := mustBuild(t, fuzzSpecs)
	for _, tc := range []struct{ desc, host, target, method, env string }{
		{desc: "template", host: "x", target: "/users/1", method: "GET"},
		{desc: "host bucket", host: "api.example.com", target: "/users/1", method: "GET"},
		{desc: "host fallthrough", host: "api.example.com", target: "/admin/x", method: "GET"},
		{desc: "wildcard rest", host: "a.b.example.org", target: "/w/x/y", method: "GET"},
		{desc: "backtrack to prefix", host: "x", target: "/users/1/posts", method: "DELETE"},
		{desc: "rest at root", host: "x", target: "/anything/else", method: "PATCH"},
		{desc: "regex", host: "x", target: "/x/admin", method: "GET"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r, host, path := newRequest(t, tc.method, tc.host, tc.target, map[string][]string{"X-Env": {tc.env}})
			var ps request.Params
			idx, ok := tab.Match(r, host, path, &ps)
			want, _ := refMatch(fuzzSpecs, r, host, path)
			if !ok {
				idx = -1
			}
			if idx != want || want < 0 {
				t.Fatalf("Match = %d, reference = %d", idx, want)
			}
		})
	}
}

// refMatch is a slow reference for Table.Match: it tries the host tiers in
// order and, within a tier, picks the best matching route by comparing every
// pair with refLess.
func refMatch(s []Spec, r *http.Request, host, path string) (int, []request.Param) {
	tiers := []string{host}
	for i := 0; i < len(host); i++ {
		if host[i] == '.' {
			if i == 0 || host[i-1] == '.' {
				break
			}
			tiers = append(tiers, "*."+host[i+1:])
		}
	}
	tiers = append(tiers, "")
	for _, tier := range tiers {
		best := -1
		for i := range s {
			if !refInTier(&s[i], tier) || !refPathMatches(&s[i], path) || !refConds(&s[i], r) {
				continue
			}
			if best < 0 || refLess(&s[i], &s[best], path) {
				best = i
			}
		}
		if best >= 0 {
			return best, refParams(&s[best], path)
		}
	}
	return -1, nil
}

// refMatches reports whether every condition of sp holds for the request.
func refMatches(sp *Spec, r *http.Request, host, path string) bool {
	hostOK := len(sp.Match.Hosts) == 0
	for _, h := range sp.Match.Hosts {
		h = strings.ToLower(h)
		if h == host {
			hostOK = true
		}
		if suf, ok := strings.CutPrefix(h, "*."); ok && strings.HasSuffix(host, "."+suf) {
			label := strings.TrimSuffix(host, "."+suf)
			if label != "" && !strings.HasPrefix(label, ".") && !strings.HasSuffix(label, ".") && !strings.Contains(label, "..") {
				hostOK = true
			}
		}
	}
	return hostOK && refPathMatches(sp, path) && refConds(sp, r)
}

func refInTier(sp *Spec, tier string) bool {
	if tier == "" {
		return len(sp.Match.Hosts) == 0
	}
	for _, h := range sp.Match.Hosts {
		if strings.ToLower(h) == tier {
			return true
		}
	}
	return false
}

func refConds(sp *Spec, r *http.Request) bool {
	m := &sp.Match
	if len(m.Methods) > 0 {
		ok := false
		for _, meth := range m.Methods {
			ok = ok || meth == r.Method
		}
		if !ok {
			return false
		}
	}
	for k, v := range m.Headers {
		if vs := r.Header.Values(k); len(vs) == 0 || vs[0] != v {
			return false
		}
	}
	q := r.URL.Query()
	for k, v := range m.Query {
		if vs, ok := q[k]; !ok || vs[0] != v {
			return false
		}
	}
	return true
}

var refRegexps sync.Map

func refRegexp(expr string) *regexp.Regexp {
	if re, ok := refRegexps.Load(expr); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile(expr)
	refRegexps.Store(expr, re)
	return re
}

// refKinds returns the per-segment kinds of a template (0 static, 1 param,
// 2 rest) if it matches path, or ok=false.
func refKinds(tmpl, path string) (kinds []int, ok bool) {
	ts := strings.Split(tmpl[1:], "/")
	ps := strings.Split(path[1:], "/")
	for i, t := range ts {
		switch {
		case strings.HasSuffix(t, "...}"):
			if i >= len(ps) || strings.Join(ps[i:], "/") == "" {
				return nil, false
			}
			return append(kinds, 2), true
		case strings.HasPrefix(t, "{"):
			if i >= len(ps) || ps[i] == "" {
				return nil, false
			}
			kinds = append(kinds, 1)
		default:
			if i >= len(ps) || ps[i] != t {
				return nil, false
			}
			kinds = append(kinds, 0)
		}
	}
	return kinds, len(ts) == len(ps)
}

func refPathMatches(sp *Spec, path string) bool {
	m := &sp.Match
	switch {
	case m.Path != "":
		_, ok := refKinds(m.Path, path)
		return ok
	case m.PathRegex != "":
		return refRegexp(m.PathRegex).MatchString(path)
	}
	p := m.PathPrefix
	if p == "" {
		p = "/"
	}
	return path == p || strings.HasPrefix(path, p) && (strings.HasSuffix(p, "/") || path[len(p)] == '/')
}

func refParams(sp *Spec, path string) []request.Param {
	if sp.Match.Path == "" {
		return nil
	}
	var out []request.Param
	ts := strings.Split(sp.Match.Path[1:], "/")
	ps := strings.Split(path[1:], "/")
	for i, t := range ts {
		if name, ok := strings.CutSuffix(strings.TrimPrefix(t, "{"), "...}"); ok {
			out = append(out, request.Param{Key: name, Value: strings.Join(ps[i:], "/")})
		} else if strings.HasPrefix(t, "{") {
			out = append(out, request.Param{Key: strings.Trim(t, "{}"), Value: ps[i]})
		}
	}
	return out
}

func refNConds(sp *Spec) int {
	n := len(sp.Match.Headers) + len(sp.Match.Query)
	if len(sp.Match.Methods) > 0 {
		n++
	}
	return n
}

// refLess reports whether a takes precedence over b, both matching path.
func refLess(a, b *Spec, path string) bool {
	class := func(s *Spec) int {
		switch {
		case s.Match.Path != "":
			return 0
		case s.Match.PathRegex != "":
			return 2
		}
		return 1
	}
	ca, cb := class(a), class(b)
	if ca != cb {
		return ca < cb
	}
	switch ca {
	case 0:
		ka, _ := refKinds(a.Match.Path, path)
		kb, _ := refKinds(b.Match.Path, path)
		for i := 0; i < len(ka) && i < len(kb); i++ {
			if ka[i] != kb[i] {
				return ka[i] < kb[i]
			}
		}
	case 1:
		pa, pb := a.Match.PathPrefix, b.Match.PathPrefix
		if pa == "" {
			pa = "/"
		}
		if pb == "" {
			pb = "/"
		}
		if len(pa) != len(pb) {
			return len(pa) > len(pb)
		}
	case 2:
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
	}
	if na, nb := refNConds(a), refNConds(b); na != nb {
		return na > nb
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Index < b.Index
}
