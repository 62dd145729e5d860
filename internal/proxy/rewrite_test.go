package proxy

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

func strPtr(s string) *string { return &s }

// TestRewritePath pins the upstream path produced by each rewrite form and
// their combination, compiled from config the way a route is.
func TestRewritePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		rw    *config.Rewrite
		match config.Match
		in    string
		want  string
	}{
		{desc: "no rewrite", rw: nil, in: "/users/1", want: "/users/1"},
		{desc: "empty rewrite", rw: &config.Rewrite{}, in: "/users/1", want: "/users/1"},

		{desc: "strip below prefix", rw: &config.Rewrite{StripPrefix: "/users"}, in: "/users/1", want: "/1"},
		{desc: "strip deeper", rw: &config.Rewrite{StripPrefix: "/users"}, in: "/users/1/posts", want: "/1/posts"},
		{desc: "strip exact", rw: &config.Rewrite{StripPrefix: "/users"}, in: "/users", want: "/"},
		{desc: "strip exact with slash", rw: &config.Rewrite{StripPrefix: "/users"}, in: "/users/", want: "/"},
		{desc: "strip not inside a segment", rw: &config.Rewrite{StripPrefix: "/users"}, in: "/usersx", want: "/usersx"},
		{desc: "strip not inside a segment deeper", rw: &config.Rewrite{StripPrefix: "/users"}, in: "/usersx/1", want: "/usersx/1"},
		{desc: "strip only at start", rw: &config.Rewrite{StripPrefix: "/users"}, in: "/api/users/1", want: "/api/users/1"},
		{desc: "strip prefix with trailing slash", rw: &config.Rewrite{StripPrefix: "/users/"}, in: "/users/1", want: "/1"},
		{desc: "strip prefix with trailing slash exact", rw: &config.Rewrite{StripPrefix: "/users/"}, in: "/users", want: "/"},
		{desc: "strip multi-segment", rw: &config.Rewrite{StripPrefix: "/api/v1"}, in: "/api/v1/items", want: "/items"},
		{desc: "strip multi-segment not v10", rw: &config.Rewrite{StripPrefix: "/api/v1"}, in: "/api/v10/items", want: "/api/v10/items"},
		{desc: "strip keeps escapes", rw: &config.Rewrite{StripPrefix: "/files"}, in: "/files/a%2Fb", want: "/a%2Fb"},

		{desc: "replace below prefix", rw: &config.Rewrite{ReplacePrefix: strPtr("/api/v2")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1/users", want: "/api/v2/users"},
		{desc: "replace exact", rw: &config.Rewrite{ReplacePrefix: strPtr("/api/v2")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1", want: "/api/v2"},
		{desc: "replace exact keeps trailing slash", rw: &config.Rewrite{ReplacePrefix: strPtr("/api/v2")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1/", want: "/api/v2/"},
		{desc: "replace not inside a segment", rw: &config.Rewrite{ReplacePrefix: strPtr("/api/v2")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1x/users", want: "/v1x/users"},
		{desc: "replacement with trailing slash", rw: &config.Rewrite{ReplacePrefix: strPtr("/api/v2/")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1/users", want: "/api/v2/users"},
		{desc: "replacement with trailing slash exact", rw: &config.Rewrite{ReplacePrefix: strPtr("/api/v2/")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1", want: "/api/v2"},
		{desc: "match prefix with trailing slash", rw: &config.Rewrite{ReplacePrefix: strPtr("/api/v2")}, match: config.Match{PathPrefix: "/v1/"},
			in: "/v1/users", want: "/api/v2/users"},
		{desc: "replace with empty removes prefix", rw: &config.Rewrite{ReplacePrefix: strPtr("")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1/users", want: "/users"},
		{desc: "replace with empty exact gives root", rw: &config.Rewrite{ReplacePrefix: strPtr("")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1", want: "/"},
		{desc: "replace with root removes prefix", rw: &config.Rewrite{ReplacePrefix: strPtr("/")}, match: config.Match{PathPrefix: "/v1"},
			in: "/v1/users", want: "/users"},
		{desc: "replace a root prefix", rw: &config.Rewrite{ReplacePrefix: strPtr("/api")}, match: config.Match{PathPrefix: "/"},
			in: "/users/1", want: "/api/users/1"},

		{desc: "regex with group", rw: &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "^/old/(.*)$", Replacement: "/new/$1"}},
			in: "/old/a/b", want: "/new/a/b"},
		{desc: "regex no match leaves path", rw: &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "^/old/(.*)$", Replacement: "/new/$1"}},
			in: "/other", want: "/other"},
		{desc: "regex result gets leading slash", rw: &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "^/u/([0-9]+)$", Replacement: "users/$1"}},
			in: "/u/42", want: "/users/42"},
		{desc: "regex reorders groups", rw: &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "^/v([0-9]+)/(.*)$", Replacement: "/${2}/v$1"}},
			in: "/v3/items", want: "/items/v3"},
		{desc: "regex replaces every match", rw: &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "/+", Replacement: "/"}},
			in: "/a//b///c", want: "/a/b/c"},

		{desc: "strip then regex", rw: &config.Rewrite{StripPrefix: "/api", Regex: &config.RegexRewrite{Pattern: "^/v([0-9]+)/(.*)$", Replacement: "/$2/version-$1"}},
			in: "/api/v2/users", want: "/users/version-2"},
		{desc: "strip then regex on the exact prefix", rw: &config.Rewrite{StripPrefix: "/api", Regex: &config.RegexRewrite{Pattern: "^/$", Replacement: "/index"}},
			in: "/api", want: "/index"},
		{desc: "replace then regex", rw: &config.Rewrite{ReplacePrefix: strPtr("/new"), Regex: &config.RegexRewrite{Pattern: "^/new/(.*)$", Replacement: "/new/v2/$1"}},
			match: config.Match{PathPrefix: "/old"}, in: "/old/x", want: "/new/v2/x"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			rw, err := CompileRewrite(tc.rw, tc.match)
			if err != nil {
				t.Fatalf("CompileRewrite: %v", err)
			}
			if got := rw.Path(tc.in); got != tc.want {
				t.Fatalf("Path(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestCompileRewriteHost checks the Host header policies and the rejection
// of hosts that could not be sent as a header value.
func TestCompileRewriteHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc       string
		host       string
		wantPolicy int
		wantHost   string
		wantErr    bool
	}{
		{desc: "default preserves", host: "", wantPolicy: HostPreserve},
		{desc: "preserve", host: "preserve", wantPolicy: HostPreserve},
		{desc: "upstream", host: "upstream", wantPolicy: HostUpstream},
		{desc: "literal name", host: "api.internal", wantPolicy: HostLiteral, wantHost: "api.internal"},
		{desc: "literal with port", host: "api.internal:8443", wantPolicy: HostLiteral, wantHost: "api.internal:8443"},
		{desc: "literal IPv6", host: "[::1]:8080", wantPolicy: HostLiteral, wantHost: "[::1]:8080"},
		{desc: "space", host: "bad host", wantErr: true},
		{desc: "slash", host: "host/path", wantErr: true},
		{desc: "CRLF", host: "host\r\nX-Evil: 1", wantErr: true},
		{desc: "tab", host: "host\tx", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			rw, err := CompileRewrite(&config.Rewrite{Host: tc.host}, config.Match{})
			if tc.wantErr {
				if err == nil {
					t.Fatalf("CompileRewrite(host %q) = %+v, want error", tc.host, rw)
				}
				if !strings.Contains(err.Error(), "rewrite.host") {
					t.Fatalf("error %q does not name rewrite.host", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rw.HostPolicy != tc.wantPolicy || rw.Host != tc.wantHost {
				t.Fatalf("policy %d host %q, want %d %q", rw.HostPolicy, rw.Host, tc.wantPolicy, tc.wantHost)
			}
		})
	}
}

// TestCompileRewriteBadRegex checks that an invalid pattern is reported
// against rewrite.regex.pattern.
func TestCompileRewriteBadRegex(t *testing.T) {
	t.Parallel()
	_, err := CompileRewrite(&config.Rewrite{Regex: &config.RegexRewrite{Pattern: "(unclosed", Replacement: "/x"}}, config.Match{})
	if err == nil || !strings.Contains(err.Error(), "rewrite.regex.pattern") {
		t.Fatalf("err = %v, want a rewrite.regex.pattern error", err)
	}
}
