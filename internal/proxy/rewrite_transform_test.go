package proxy

import (
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
)

// transformRecord is the record of a request matched by /users/{id}.
func transformRecord() *request.Record {
	rec := &request.Record{Path: "/users/42", RequestID: "rid-1", ClientIP: netip.MustParseAddr("192.0.2.9"),
		Consumer: &consumer.Consumer{ID: "c-1"}, Claims: map[string]any{"tenant": "acme corp"}}
	rec.Params.Add("id", "42")
	return rec
}

// applyRewrite compiles rw for match and applies it to a request for target.
func applyRewrite(t testing.TB, rw *config.Rewrite, match config.Match, target string, rec *request.Record) (path, rawQuery string) {
	t.Helper()
	c, err := CompileRewrite(rw, match)
	if err != nil {
		t.Fatalf("CompileRewrite: %v", err)
	}
	in := httptest.NewRequest("GET", target, nil)
	out := in.Clone(in.Context())
	out.URL.RawQuery = in.URL.RawQuery
	c.apply(&httputil.ProxyRequest{In: in, Out: out}, rec)
	return out.URL.EscapedPath(), out.URL.RawQuery
}

func TestRewritePathTemplateAndPrefix(t *testing.T) {
	t.Parallel()
	users := config.Match{Path: "/users/{id}"}
	tests := []struct {
		desc  string
		rw    *config.Rewrite
		match config.Match
		want  string
	}{
		{"path template", &config.Rewrite{Path: "/v2/accounts/{id}"}, users, "/v2/accounts/42"},
		{"path template and prefix", &config.Rewrite{Path: "/accounts/{id}", Prefix: "/internal"}, users, "/internal/accounts/42"},
		{"prefix alone", &config.Rewrite{Prefix: "/internal"}, users, "/internal/users/42"},
		{"prefix after strip", &config.Rewrite{StripPrefix: "/users", Prefix: "/v2"}, config.Match{PathPrefix: "/users"}, "/v2/42"},
		{"prefix after regex", &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "^/users/(.*)$", Replacement: "/u/$1"}, Prefix: "/v2"},
			config.Match{PathPrefix: "/users"}, "/v2/u/42"},
		{"constant path", &config.Rewrite{Path: "/health"}, config.Match{PathPrefix: "/"}, "/health"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got, _ := applyRewrite(t, tc.rw, tc.match, "/users/42", transformRecord()); got != tc.want {
				t.Errorf("path = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRewriteTransformCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rw   *config.Rewrite
		want string
	}{
		{&config.Rewrite{Path: "/v2/{nope}"}, `rewrite.path: position 4: {nope} is not a parameter of the route's match.path "/users/{id}"`},
		{&config.Rewrite{Path: "/v2/../{id}"}, "rewrite.path: position 4: dot segment"},
		{&config.Rewrite{Prefix: "/a?b"}, "rewrite.prefix: position 2: '?' is not allowed"},
		{&config.Rewrite{Prefix: "/{id}"}, "rewrite.prefix: position 1: {id} is not a parameter"},
		{&config.Rewrite{Query: &config.QueryRewrite{Set: map[string]string{"t": "${nope}"}}}, "rewrite.query.set.t: position 0: ${nope}: unknown placeholder"},
		{&config.Rewrite{Query: &config.QueryRewrite{Add: map[string]string{"t": "${claim:}"}}}, "rewrite.query.add.t: position 0: ${claim:}: "},
	}
	for _, tc := range tests {
		_, err := CompileRewrite(tc.rw, config.Match{Path: "/users/{id}"})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CompileRewrite(%+v) error = %v, want it to contain %q", tc.rw, err, tc.want)
		}
	}
}

func TestRewriteQuery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		q    config.QueryRewrite
		in   string
		want string
	}{
		{"untouched is byte-identical", config.QueryRewrite{Remove: []string{"x"}}, "a=1;b&c=%zz&&d=+", "a=1;b&c=%zz&&d=+"},
		{"remove every value", config.QueryRewrite{Remove: []string{"debug"}}, "a=1&debug=1&b=2&debug", "a=1&b=2"},
		{"remove by decoded name", config.QueryRewrite{Remove: []string{"a b"}}, "a+b=1&a%20b=2&c=3", "c=3"},
		{"rename keeps the value bytes", config.QueryRewrite{Rename: map[string]string{"q": "search"}}, "q=a%20b&n=1&q", "search=a%20b&n=1&search"},
		{"rename replaces the target", config.QueryRewrite{Rename: map[string]string{"q": "search"}}, "search=old&q=new", "search=new"},
		{"rename of an absent parameter keeps the target", config.QueryRewrite{Rename: map[string]string{"q": "search"}}, "search=old", "search=old"},
		{"rename escapes the new name", config.QueryRewrite{Rename: map[string]string{"q": "a&b"}}, "q=1", "a%26b=1"},
		{"set replaces", config.QueryRewrite{Set: map[string]string{"page": "1"}}, "page=9&x=1&page=8", "x=1&page=1"},
		{"set from templates", config.QueryRewrite{Set: map[string]string{"tenant": "${claim:tenant}", "user": "${param:id}"}}, "tenant=spoof", "tenant=acme+corp&user=42"},
		{"set rendering empty removes", config.QueryRewrite{Set: map[string]string{"u": "${header:X-None}"}}, "u=spoof&a=1", "a=1"},
		{"set constant empty", config.QueryRewrite{Set: map[string]string{"u": ""}}, "a=1", "a=1&u="},
		{"add keeps existing", config.QueryRewrite{Add: map[string]string{"tag": "${consumer}"}}, "tag=a", "tag=a&tag=c-1"},
		{"add to empty query", config.QueryRewrite{Add: map[string]string{"rid": "${request_id}"}}, "", "rid=rid-1"},
		{"add rendering empty adds nothing", config.QueryRewrite{Add: map[string]string{"x": "${query:none}"}}, "a=1", "a=1"},
		{"escaped template value", config.QueryRewrite{Set: map[string]string{"v": "${query:raw}"}}, "raw=a%26b%3Dc", "raw=a%26b%3Dc&v=a%26b%3Dc"},
		{"order remove rename set add", config.QueryRewrite{Remove: []string{"a"}, Rename: map[string]string{"b": "c"},
			Set: map[string]string{"d": "4"}, Add: map[string]string{"c": "5"}}, "a=1&b=2&c=3&d=0&e", "c=2&e&d=4&c=5"},
		{"rename into a set name", config.QueryRewrite{Rename: map[string]string{"b": "c"}, Set: map[string]string{"c": "9"}}, "b=2&x", "x&c=9"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			q := tc.q
			_, got := applyRewrite(t, &config.Rewrite{Query: &q}, config.Match{Path: "/users/{id}"}, "/users/42?"+tc.in, transformRecord())
			if got != tc.want {
				t.Errorf("query = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRewriteQueryAllocations(t *testing.T) {
	rw, err := CompileRewrite(&config.Rewrite{Query: &config.QueryRewrite{Remove: []string{"debug"}, Set: map[string]string{"tenant": "${claim:tenant}"}}},
		config.Match{Path: "/users/{id}"})
	if err != nil {
		t.Fatal(err)
	}
	r, rec := httptest.NewRequest("GET", "/users/42?a=1&debug=1", nil), transformRecord()
	if n := testing.AllocsPerRun(100, func() { _ = rw.Query.Apply("a=1&debug=1", r, rec) }); n != 1 {
		t.Errorf("Apply with a change: %v allocations, want 1", n)
	}
	untouched, _ := CompileQuery(&config.QueryRewrite{Remove: []string{"debug"}})
	if n := testing.AllocsPerRun(100, func() { _ = untouched.Apply("a=1&b=2", r, rec) }); n != 0 {
		t.Errorf("Apply without a change: %v allocations, want 0", n)
	}
}

func benchRewrite(b *testing.B, rw *config.Rewrite, target string) {
	c, err := CompileRewrite(rw, config.Match{Path: "/users/{id}"})
	if err != nil {
		b.Fatal(err)
	}
	in := httptest.NewRequest("GET", target, nil)
	out := in.Clone(in.Context())
	rec := transformRecord()
	pr := &httputil.ProxyRequest{In: in, Out: out}
	b.ReportAllocs()
	for b.Loop() {
		out.URL.RawQuery = in.URL.RawQuery
		c.apply(pr, rec)
	}
}

func BenchmarkRewritePlain(b *testing.B) { benchRewrite(b, &config.Rewrite{}, "/users/42?a=1") }

func BenchmarkRewriteRegex(b *testing.B) {
	benchRewrite(b, &config.Rewrite{Regex: &config.RegexRewrite{Pattern: "^/users/(.*)$", Replacement: "/v2/accounts/$1"}}, "/users/42?a=1")
}

func BenchmarkRewritePathTemplate(b *testing.B) {
	benchRewrite(b, &config.Rewrite{Path: "/v2/accounts/{id}", Prefix: "/internal"}, "/users/42?a=1")
}

func BenchmarkRewriteQuery(b *testing.B) {
	benchRewrite(b, &config.Rewrite{Query: &config.QueryRewrite{Remove: []string{"debug"}, Rename: map[string]string{"q": "search"},
		Set: map[string]string{"tenant": "${claim:tenant}"}, Add: map[string]string{"rid": "${request_id}"}}}, "/users/42?q=x&debug=1&page=2")
}
