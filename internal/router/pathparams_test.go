package router

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// Issue 9 items 4 and 5.

// pathParamSeeds are paths with path parameters in every position and form;
// FuzzNormalizePath and FuzzApplyPathParams start from them.
var pathParamSeeds = []string{
	"/admin;x=1/secret", "/admin;/secret", "/admin;", "/admin/;", "/admin/;x", "/;x/admin",
	"/admin%3Bx=1/secret", "/admin%3b/secret", "/admin%3B", "/%61dmin;jsessionid=1/secret",
	"/admin;a;b/secret;c", "/a;x/..;/admin", "/a/.;x/admin", "/a;x/../admin", "/admin;x%2F../secret",
	"/admin;%2e%2e/secret", "//admin;x//secret", "/admin;x=/", "/;", "/;/;/", "/a%25;3B/b",
}

func TestApplyPathParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		reject      string // "" = ok
		strip       string // "!" = error
		allowSameAs string
	}{
		{in: "/admin/secret", strip: "/admin/secret"},
		{in: "/admin;x=1/secret", reject: "!", strip: "/admin/secret"},
		{in: "/admin;/secret", reject: "!", strip: "/admin/secret"},
		{in: "/admin;", reject: "!", strip: "/admin"},
		{in: "/admin/;", reject: "!", strip: "/admin/"},
		{in: "/;x/admin", reject: "!", strip: "/admin"},
		{in: "/admin;a;b/secret;c", reject: "!", strip: "/admin/secret"},
		{in: "/%61dmin;jsessionid=1/secret", reject: "!", strip: "/admin/secret"},
		{in: "/a;x/../admin", strip: "/admin"}, // the segment is gone before the check
		{in: "/admin%3Bx=1/secret", reject: "!", strip: "!"},
		{in: "/admin%3b/secret", reject: "!", strip: "!"},
		{in: "/admin%253B/secret", strip: "/admin%253B/secret"},
	}
	for _, tc := range tests {
		norm, special, err := NormalizePath(tc.in)
		if err != nil {
			t.Fatalf("NormalizePath(%q): %v", tc.in, err)
		}
		_, _, err = ApplyPathParams(norm, special, PathParamsReject)
		if (err != nil) != (tc.reject == "!") {
			t.Errorf("reject %q: err = %v", tc.in, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidPath) {
			t.Errorf("reject %q: %v does not wrap ErrInvalidPath", tc.in, err)
		}
		got, _, err := ApplyPathParams(norm, special, PathParamsStrip)
		if tc.strip == "!" {
			if err == nil {
				t.Errorf("strip %q = %q, want an error", tc.in, got)
			}
		} else if err != nil || got != tc.strip {
			t.Errorf("strip %q = %q, %v; want %q", tc.in, got, err, tc.strip)
		}
		got, gotSpecial, err := ApplyPathParams(norm, special, PathParamsAllow)
		if err != nil || got != norm || gotSpecial != special {
			t.Errorf("allow %q = %q, %v", tc.in, got, err)
		}
	}
	for _, in := range []string{"/a/..;/admin", "/a/.;x/admin", "/admin;%2e%2e/x/..;y"} {
		if _, _, err := NormalizePath(in); err == nil {
			t.Errorf("NormalizePath(%q) accepts a dot segment with a parameter", in)
		}
	}
	for _, m := range []string{"", "reject", "strip", "allow"} {
		if _, err := ParsePathParamMode(m); err != nil {
			t.Errorf("ParsePathParamMode(%q): %v", m, err)
		}
	}
	if _, err := ParsePathParamMode("drop"); err == nil {
		t.Error("ParsePathParamMode accepts drop")
	}
}

func FuzzApplyPathParams(f *testing.F) {
	for _, s := range pathParamSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		norm, special, err := NormalizePath(raw)
		if err != nil {
			return
		}
		hasParam := strings.Contains(norm, ";") || strings.Contains(norm, "%3B")
		if _, _, err := ApplyPathParams(norm, special, PathParamsReject); (err != nil) != hasParam {
			t.Fatalf("reject %q (%q): err = %v", raw, norm, err)
		}
		out, outSpecial, err := ApplyPathParams(norm, special, PathParamsStrip)
		if strings.Contains(norm, "%3B") {
			if err == nil {
				t.Fatalf("strip %q (%q) = %q, want an error for %%3B", raw, norm, out)
			}
			return
		}
		if err != nil {
			// Only a dot segment that carried a parameter may fail.
			return
		}
		if strings.Contains(out, ";") {
			t.Fatalf("strip %q (%q) = %q still has a parameter", raw, norm, out)
		}
		again, againSpecial, err := NormalizePath(out)
		if err != nil || again != out || againSpecial != outSpecial {
			t.Fatalf("strip %q = %q is not canonical: %q %v", raw, out, again, err)
		}
		if !hasParam && out != norm {
			t.Fatalf("strip changed %q to %q without a parameter", norm, out)
		}
	})
}

// strictSpecs are routes with header and query conditions over catch-alls.
var strictSpecs = specs(
	Spec{Name: "v2", Match: config.Match{PathPrefix: "/api", Query: map[string]string{"version": "v2"}}},
	Spec{Name: "hv2", Match: config.Match{PathPrefix: "/api", Headers: map[string]string{"X-Version": "v2"}}},
	Spec{Name: "api", Match: config.Match{PathPrefix: "/api"}},
	Spec{Name: "deeper", Match: config.Match{PathPrefix: "/api/deeper"}},
	Spec{Name: "other", Match: config.Match{PathPrefix: "/other", Query: map[string]string{"a b": "c"}}},
)

func TestMatchRequestStrict(t *testing.T) {
	t.Parallel()
	tab := mustBuild(t, strictSpecs)
	tests := []struct {
		desc, target string
		header       []string // X-Version values
		want         string   // route, "" no match, "!" ambiguous
	}{
		{desc: "single value", target: "/api?version=v2", want: "v2"},
		{desc: "other value", target: "/api?version=v1", want: "api"},
		{desc: "repeated, matching first", target: "/api?version=v2&version=v1", want: "!"},
		{desc: "repeated, matching last", target: "/api?version=v1&version=v2", want: "!"},
		{desc: "repeated, same value", target: "/api?version=v2&version=v2", want: "!"},
		{desc: "repeated in another case", target: "/api?version=v2&Version=v1", want: "!"},
		{desc: "repeated encoded", target: "/api?version=v2&%76ersion=v1", want: "!"},
		{desc: "another case alone", target: "/api?VERSION=v2", want: "api"},
		{desc: "semicolon", target: "/api?version=v2;version=v1", want: "!"},
		{desc: "semicolon elsewhere", target: "/api?version=v2&x=1;y=2", want: "!"},
		{desc: "malformed escape in the value", target: "/api?version=v2%zz", want: "!"},
		{desc: "malformed escape elsewhere", target: "/api?version=v2&x=%zz", want: "!"},
		{desc: "malformed escape at the end", target: "/api?version=v2&x=%4", want: "!"},
		{desc: "other name repeated", target: "/api?x=1&x=2&version=v2", want: "v2"},
		{desc: "other name repeated, no condition holds", target: "/api?x=1&x=2", want: "api"},
		{desc: "longer prefix wins before the condition is examined", target: "/api/deeper?version=v2&version=v1", want: "deeper"},
		{desc: "header once", target: "/api", header: []string{"v2"}, want: "hv2"},
		{desc: "header repeated", target: "/api", header: []string{"v2", "v1"}, want: "!"},
		{desc: "header repeated, matching last", target: "/api", header: []string{"v1", "v2"}, want: "!"},
		{desc: "plus is a space in keys", target: "/other?a+b=c", want: "other"},
		{desc: "plus key repeated as escape", target: "/other?a+b=c&a%20b=d", want: "!"},
		{desc: "no route", target: "/none?version=v2&version=v1", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			p, q, _ := strings.Cut(tc.target, "?")
			r := &http.Request{Method: "GET", URL: &url.URL{Path: p, RawQuery: q}, Header: http.Header{}}
			if tc.header != nil {
				r.Header["X-Version"] = tc.header
			}
			var ps request.Params
			idx, res := tab.MatchRequest(r, "x", p, &ps)
			got := ""
			switch res {
			case Matched:
				got = strictSpecs[idx].Name
			case Ambiguous:
				got = "!"
			}
			if got != tc.want {
				t.Fatalf("MatchRequest(%s) = %q, want %q", tc.target, got, tc.want)
			}
			lidx, ok := tab.Match(r, "x", p, &ps)
			if res == Matched && (!ok || lidx != idx) {
				t.Fatalf("Match disagrees with MatchRequest: %d %v", lidx, ok)
			}
		})
	}
}

// MatchRequest either agrees with Match or reports ambiguity, and it reports
// ambiguity only for requests that have a repeated or malformed part.
func FuzzMatchRequest(f *testing.F) {
	for _, s := range []struct{ path, query, h1, h2 string }{
		{"/api", "version=v2&version=v1", "", ""},
		{"/api", "version=v2;x", "", ""},
		{"/api", "Version=v1&version=v2", "", ""},
		{"/api", "version=%zz", "", ""},
		{"/api", "", "v2", "v1"},
		{"/other", "a+b=c&a%20b=c", "", ""},
		{"/api/deeper", "version=v2&version=v2", "v2", "v2"},
	} {
		f.Add(s.path, s.query, s.h1, s.h2)
	}
	tab, err := Build(strictSpecs)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rawPath, query, h1, h2 string) {
		path, _, err := NormalizePath(rawPath)
		if err != nil {
			return
		}
		r := &http.Request{Method: "GET", URL: &url.URL{RawQuery: query}, Header: http.Header{}}
		if h1 != "" {
			r.Header["X-Version"] = []string{h1}
			if h2 != "" {
				r.Header["X-Version"] = append(r.Header["X-Version"], h2)
			}
		}
		var ps request.Params
		idx, res := tab.MatchRequest(r, "x", path, &ps)
		lidx, ok := tab.Match(r, "x", path, &ps)
		switch res {
		case Matched:
			if !ok || lidx != idx {
				t.Fatalf("%q?%s: MatchRequest %d, Match %d %v", path, query, idx, lidx, ok)
			}
		case NoMatch:
			if ok {
				t.Fatalf("%q?%s: MatchRequest no match, Match %d", path, query, lidx)
			}
		case Ambiguous:
			vals, perr := url.ParseQuery(query)
			repeated := false
			for k := range vals {
				for k2, v2 := range vals {
					if strings.EqualFold(k, k2) && (k != k2 || len(v2) > 1) {
						repeated = true
					}
				}
			}
			if perr == nil && !repeated && len(r.Header["X-Version"]) < 2 {
				t.Fatalf("%q?%s: ambiguous without a repeated or malformed part", path, query)
			}
		}
	})
}

func TestMatchRequestDoesNotAllocate(t *testing.T) {
	tab := mustBuild(t, strictSpecs)
	r := &http.Request{Method: "GET", URL: &url.URL{RawQuery: "x=1&version=v2"}, Header: http.Header{"X-Version": {"v1"}}}
	var ps request.Params
	if n := testing.AllocsPerRun(100, func() { tab.MatchRequest(r, "x", "/api/x", &ps) }); n != 0 {
		t.Errorf("MatchRequest allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _, _ = ApplyPathParams("/api/x", false, PathParamsStrip) }); n != 0 {
		t.Errorf("ApplyPathParams without parameters allocates %v times", n)
	}
}

func BenchmarkMatchRequest(b *testing.B) {
	tab := mustBuild(b, strictSpecs)
	for _, bc := range []struct{ desc, query string }{
		{desc: "no-query", query: ""},
		{desc: "query-condition", query: "a=1&b=2&version=v2&c=3"},
	} {
		b.Run(bc.desc, func(b *testing.B) {
			r := &http.Request{Method: "GET", URL: &url.URL{RawQuery: bc.query}, Header: http.Header{"X-Version": {"v1"}}}
			var ps request.Params
			b.ReportAllocs()
			for b.Loop() {
				tab.MatchRequest(r, "x", "/api/x", &ps)
			}
		})
	}
}
