package template

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/request"
)

func recWith(kv ...string) *request.Record {
	rec := &request.Record{}
	for i := 0; i+1 < len(kv); i += 2 {
		rec.Params.Add(kv[i], kv[i+1])
	}
	return rec
}

func TestPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc, src, match string
		rec              *request.Record
		want             string
	}{
		{"params", "/v2/accounts/{id}", "/users/{id}", recWith("id", "42"), "/v2/accounts/42"},
		{"reordered", "/{b}/{a}", "/x/{a}/{b}", recWith("a", "1", "b", "2"), "/2/1"},
		{"inside a segment", "/u-{id}.json", "/users/{id}", recWith("id", "7"), "/u-7.json"},
		{"rest", "/files/{path}", "/static/{path...}", recWith("path", "a/b/c.txt"), "/files/a/b/c.txt"},
		{"rest written with dots", "/files/{path...}", "/static/{path...}", recWith("path", "a/b"), "/files/a/b"},
		{"escapes kept", "/x/{id}", "/y/{id}", recWith("id", "caf%C3%A9%2F"), "/x/caf%C3%A9%2F"},
		{"constant", "/health", "", nil, "/health"},
		{"trailing slash", "/v2/{id}/", "/u/{id}", recWith("id", "1"), "/v2/1/"},
		{"no record", "/v2/{id}", "/u/{id}", nil, "/v2/"},
		// Values the router never produces are still made safe.
		{"slash in a segment value", "/x/{id}", "/y/{id}", recWith("id", "a/../b"), "/x/a%2F..%2Fb"},
		{"query in a value", "/x/{id}", "/y/{id}", recWith("id", "a?b=1#f"), "/x/a%3Fb=1%23f"},
		{"dot-dot value", "/x/{id}/z", "/y/{id}", recWith("id", ".."), "/x/%2E%2E/z"},
		{"dot value", "/x/{id}", "/y/{id}", recWith("id", "."), "/x/%2E"},
		{"dots across values", "/x/{a}{b}", "/y/{a}/{b}", recWith("a", ".", "b", "."), "/x/%2E%2E"},
		{"dot segments in a rest value", "/x/{p}", "/y/{p...}", recWith("p", "a/../../etc"), "/x/a/%2E%2E/%2E%2E/etc"},
		{"encoded dot", "/x/{id}", "/y/{id}", recWith("id", "%2E%2e"), "/x/%252E%252e"},
		{"bad escape", "/x/{id}", "/y/{id}", recWith("id", "100%"), "/x/100%25"},
		{"control bytes", "/x/{id}", "/y/{id}", recWith("id", "a\r\n b"), "/x/a%0D%0A%20b"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			p, err := ParsePath(tc.src, tc.match)
			if err != nil {
				t.Fatalf("ParsePath(%q, %q): %v", tc.src, tc.match, err)
			}
			if got := string(p.AppendPath(nil, tc.rec)); got != tc.want {
				t.Errorf("AppendPath = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParsePathErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ src, match, err string }{
		{"v2/{id}", "/u/{id}", "must start with /"},
		{"/v2/{nope}", "/u/{id}", `position 4: {nope} is not a parameter of the route's match.path "/u/{id}"`},
		{"/v2/{id}", "", "is not a parameter"},
		{"/v2/{id", "/u/{id}", `position 4: "{" without a closing "}"`},
		{"/v2/{a-b}", "/u/{id}", "parameter name must be letters, digits and _"},
		{"/v2/${header:X}", "/u/{id}", "position 4: ${...} placeholders are not supported in a path"},
		{"/v2/../{id}", "/u/{id}", `position 4: dot segment ".." is not allowed`},
		{"/v2/.", "", `dot segment "."`},
		{"/v2//x", "", "empty segment"},
		{"/v2?x=1", "", `position 3: '?' is not allowed in a path`},
		{"/v2#x", "", "'#' is not allowed"},
		{"/a b", "", "' ' is not allowed"},
		{"/a%2", "", "position 2: '%' must start a %XX escape"},
		{"/a%2E", "", "%2E encodes an unreserved character"},
		{"/" + strings.Repeat("a", MaxLen), "", "longer than"},
	}
	for _, tc := range tests {
		_, err := ParsePath(tc.src, tc.match)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParsePath(%q, %q) error = %v, want it to contain %q", tc.src, tc.match, err, tc.err)
		}
	}
}

func TestPathDoesNotAllocate(t *testing.T) {
	p, err := ParsePath("/v2/accounts/{id}/orders/{order}", "/users/{id}/orders/{order}")
	if err != nil {
		t.Fatal(err)
	}
	rec := recWith("id", "42", "order", "o-1")
	var buf [128]byte
	if n := testing.AllocsPerRun(100, func() { _ = p.AppendPath(buf[:0], rec) }); n != 0 {
		t.Errorf("AppendPath: %v allocations, want 0", n)
	}
}
