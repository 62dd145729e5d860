package admin

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden admin answers")

// writeErrorsYAML has routes and consumers whose errors a write can cause
// elsewhere, and upstream names where one is a prefix of another.
const writeErrorsYAML = `upstreams:
  api: {targets: [{url: "http://127.0.0.1:1"}]}
  api.v2: {targets: [{url: "http://127.0.0.1:2"}]}
routes:
  - {name: a, match: {path: /a}, upstream: api}
  - {name: b, match: {path: /b}, upstream: api}
  - {name: c, match: {path: /c}, upstream: api.v2}
consumers:
  - {name: alice, credentials: {key_auth: [{key: alice-key-123}]}}
  - {name: bob, credentials: {key_auth: [{key: bob-key-4567}]}}
`

// adminDo sends one admin request with If-Match set to the running
// revision unless ifMatch is given ("" sends none).
func adminDo(t *testing.T, srv *httptest.Server, m *fakeManager, method, path, body string, ifMatch ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(ifMatch) == 0 {
		req.Header.Set("If-Match", `"`+m.RunningConfig().Hash+`"`)
	}
	for _, v := range ifMatch {
		if v != "" {
			req.Header.Add("If-Match", v)
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestWriteErrorGolden checks the whole JSON answer to refused writes
// that config.Parse refuses (the gateway's tests cover build errors)
// against testdata/<name>.golden (go test -run TestWriteErrorGolden
// -update rewrites them): errors inside the body carry a JSON pointer into
// it, errors the change causes elsewhere a config path, syntax errors a
// line and column, and nothing is HTML-escaped.
func TestWriteErrorGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, path, body string
		status                   int
	}{
		{"put-route-invalid", "PUT", "/routes/new",
			`{"match": {"path": "nope", "hosts": ["ok.example", "a b"]}, "upstream": "missing"}`, 400},
		{"put-route-replace-invalid", "PUT", "/routes/b",
			`{"match": {"path": "/b", "pth": 1}, "respond": {"status": 700}}`, 400},
		{"put-route-key-escaping", "PUT", "/routes/new",
			`{"match": {"path": "/q", "query": {"a.b/c~d": {"x": 1}}}, "respond": {}}`, 400},
		{"put-route-syntax", "PUT", "/routes/new",
			"{\n  \"match\": {\"path\": \"/x\"},\n  \"respond\": {\"body\": \"é\",}\n}", 400},
		{"put-route-truncated", "PUT", "/routes/new", `{"respond": `, 400},
		{"put-route-trailing", "PUT", "/routes/new", `{"respond": {}} {}`, 400},
		{"put-route-empty", "PUT", "/routes/new", "  \n", 400},
		{"put-route-not-object", "PUT", "/routes/new", `[1]`, 400},
		{"put-route-duplicate-key", "PUT", "/routes/new", `{"respond": {"status": 200, "status": 201}}`, 400},
		{"put-route-name-mismatch", "PUT", "/routes/new", `{"name": "<other>", "respond": {}}`, 400},
		{"put-route-html", "PUT", "/routes/%3Ca%26b%3E",
			`{"match": {"path": "/x"}, "upstream": "<up>&"}`, 400},
		{"put-upstream-invalid", "PUT", "/upstreams/api",
			`{"targets": [{"url": "http://127.0.0.1:1"}, {"url": "ftp://x", "weight": -1}], "balancer": "nope"}`, 400},
		{"put-upstream-no-targets", "PUT", "/upstreams/new", `{"targets": []}`, 400},
		{"put-plugins-not-array", "PUT", "/plugins", `{"name": "request_id"}`, 400},
		{"delete-upstream-in-use", "DELETE", "/upstreams/api", "", 409},
		{"delete-upstream-in-use-one", "DELETE", "/upstreams/api.v2", "", 409},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newFakeManager(t, writeErrorsYAML)
			srv := httptest.NewServer(Handler(m))
			defer srv.Close()
			before := m.RunningConfig().Hash
			status, body := adminDo(t, srv, m, tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Errorf("%s %s = %d, want %d\n%s", tc.method, tc.path, status, tc.status, body)
			}
			if m.RunningConfig().Hash != before {
				t.Errorf("a refused write changed the config")
			}
			for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
				if strings.Contains(body, esc) {
					t.Errorf("answer has HTML escaping %s:\n%s", esc, body)
				}
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("answer is not JSON: %v\n%s", err, body)
			}
			if s, _ := v["error"].(string); s == "" {
				t.Errorf("answer has no human error string:\n%s", body)
			}
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if body != string(want) {
				t.Errorf("answer differs from %s:\n%s\nwant:\n%s", golden, body, want)
			}
		})
	}
}

// TestWriteErrorsEveryProblemLocated checks each problem of a refused
// write has exactly one kind of location: a pointer (in the body), a path
// (elsewhere in the config) or a line and column (JSON syntax).
func TestWriteErrorsEveryProblemLocated(t *testing.T) {
	t.Parallel()
	m := newFakeManager(t, writeErrorsYAML)
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()
	for _, body := range []string{
		`{"match": {"path": "nope"}, "upstream": "missing", "retry": {"attempts": "x"}}`,
		`{"match": {"path": "/x"}, "respond": {"status": 1}, "redirect": {"status": 200}}`,
		"{\n\n   x",
	} {
		status, out := adminDo(t, srv, m, "PUT", "/routes/new", body)
		if status != 400 {
			t.Fatalf("PUT %s = %d", body, status)
		}
		var v struct {
			Errors []map[string]any `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Errors) == 0 {
			t.Fatalf("PUT %s: %s", body, out)
		}
		for _, e := range v.Errors {
			_, ptr := e["pointer"]
			_, path := e["path"]
			_, line := e["line"]
			if n := btoi(ptr) + btoi(path) + btoi(line); n != 1 || e["message"] == "" {
				t.Errorf("PUT %s: problem %v has %d locations", body, e, n)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestIfMatch checks If-Match semantics on writes: * and lists match, weak
// tags never do, a malformed header is a 400 and a missing one a 428.
func TestIfMatch(t *testing.T) {
	t.Parallel()
	m := newFakeManager(t, writeErrorsYAML)
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()
	n := 0
	put := func(ifMatch ...string) (int, string) {
		n++
		return adminDo(t, srv, m, "PUT", "/routes/r"+string(rune('a'+n)), `{"match": {"path": "/r"}, "respond": {}}`, ifMatch...)
	}
	cur := func() string { return `"` + m.RunningConfig().Hash + `"` }
	tests := []struct {
		desc    string
		ifMatch func() []string
		status  int
		msg     string
	}{
		{"missing", func() []string { return []string{""} }, 428, "If-Match is required"},
		{"blank", func() []string { return []string{" ", ", ,"} }, 428, "If-Match is required"},
		{"star", func() []string { return []string{"*"} }, 200, ""},
		{"list with the current last", func() []string { return []string{`"0000", ` + cur()} }, 200, ""},
		{"list over two header lines", func() []string { return []string{`"0000"`, cur()} }, 200, ""},
		{"list with a comma inside a tag", func() []string { return []string{`"a,b" ,` + cur() + `,`} }, 200, ""},
		{"list without the current", func() []string { return []string{`"0000", "1111"`} }, 412, "has changed"},
		{"weak current", func() []string { return []string{"W/" + cur()} }, 412, "weak ETag"},
		{"weak current and a stale strong one", func() []string { return []string{"W/" + cur() + `, "0000"`} }, 412, "has changed"},
		{"unquoted", func() []string { return []string{strings.Trim(cur(), `"`)} }, 400, "quoted"},
		{"star in a list", func() []string { return []string{"*, " + cur()} }, 400, "cannot be combined"},
	}
	for _, tc := range tests {
		status, body := put(tc.ifMatch()...)
		if status != tc.status || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.desc, status, body, tc.status, tc.msg)
		}
		if status != 200 && !strings.Contains(body, `"revision": "`+m.RunningConfig().Hash+`"`) {
			t.Errorf("%s: the answer does not name the running revision: %s", tc.desc, body)
		}
	}
}

// TestParseIfMatch checks the parsed form of If-Match values.
func TestParseIfMatch(t *testing.T) {
	t.Parallel()
	m, present, err := ParseIfMatch([]string{`"a", W/"b"`, ` "c,d" `})
	if err != nil || !present || m.Any || strings.Join(m.Tags, "|") != "a|c,d" || m.Weak != 1 {
		t.Fatalf("= %+v %v %v", m, present, err)
	}
	if !m.Matches("c,d") || m.Matches("b") || m.Matches("") {
		t.Fatal("Matches")
	}
	if m, _, _ := ParseIfMatch([]string{"*"}); !m.Any || !m.Matches("x") || m.Matches("") {
		t.Fatalf("* = %+v", m)
	}
	for _, bad := range []string{strings.Repeat(`"a",`, maxIfMatchTags+1), "\"a\x01\"", `"a"b"`, `W/`, `"a`} {
		if _, present, err := ParseIfMatch([]string{bad}); err == nil || !present {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseIfMatch: any header value parses or is refused, never panics;
// an accepted value matches only its strong tags, or anything for *.
func FuzzParseIfMatch(f *testing.F) {
	for _, s := range []string{`*`, `"a"`, `"a", "b"`, `W/"a"`, `"a,b", W/"c"`, `a`, `"`, `""`, `W/`, `*, "a"`, ` , ,`, "\"\x80\""} {
		f.Add(s, "a")
	}
	f.Fuzz(func(t *testing.T, v, rev string) {
		m, present, err := ParseIfMatch([]string{v})
		if err != nil {
			if !present || !strings.Contains(err.Error(), "If-Match must be") {
				t.Fatalf("%q: present=%v err=%v", v, present, err)
			}
			return
		}
		if !present {
			if strings.Trim(v, " \t,") != "" {
				t.Fatalf("%q: not present", v)
			}
			return
		}
		if m.Matches(rev) && !m.Any && !strings.Contains(v, `"`+rev+`"`) {
			t.Fatalf("%q matches %q", v, rev)
		}
	})
}

// TestPathPointer checks config paths become RFC 6901 pointers into the
// body, keys with dots, brackets, / and ~ included.
func TestPathPointer(t *testing.T) {
	t.Parallel()
	body := &yaml.Node{}
	if err := yaml.Unmarshal([]byte(`{match: {query: {"a.b/c~d": x, "k[1]": y}}, targets: [{url: u}]}`), body); err != nil {
		t.Fatal(err)
	}
	body = body.Content[0]
	ch := &change{body: body, item: "upstreams.api", shadows: []string{"upstreams.api.v2"}}
	for path, want := range map[string]string{
		"upstreams.api":                       "",
		"upstreams.api.targets[0].url":        "/targets/0/url",
		"upstreams.api.match.query.a.b/c~d":   "/match/query/a.b~1c~0d",
		"upstreams.api.match.query.k[1]":      "/match/query/k[1]",
		"upstreams.api.match.query.new.x":     "/match/query/new/x",
		"upstreams.api.targets[9].url":        "/targets/9/url",
		"upstreams.api.targets[x":             "/targets/[x",
		"upstreams.api.v2.targets[0]":         "-",
		"upstreams.apiv2":                     "-",
		"upstreams":                           "-",
		"routes[1].upstream":                  "-",
		"upstreams.api.match..query":          "/match//query",
		"upstreams.api[0]":                    "/0",
		"upstreams.api.targets[0][1]":         "/targets/0/1",
		"upstreams.api.match.query.a.b/c~d.e": "/match/query/a.b~1c~0d/e",
	} {
		got, ok := ch.pointer(path)
		if !ok {
			got = "-"
		}
		if got != want {
			t.Errorf("pointer(%q) = %q, want %q", path, got, want)
		}
	}
	// Before the edit has placed the item, nothing is in the body.
	if p, ok := (&change{body: body}).pointer("routes"); ok {
		t.Errorf("unplaced item: pointer %q", p)
	}
}

// FuzzPathPointer: any config path maps to a pointer without panicking or
// looping, and a path built from pointer tokens maps back to them.
func FuzzPathPointer(f *testing.F) {
	for _, s := range []string{"", ".a", "[0]", ".a.b[2].c", "[", "]", "..", ".a[", ".a/b~c", "[1][2]", ".[x]"} {
		f.Add(s)
	}
	body := &yaml.Node{}
	_ = yaml.Unmarshal([]byte(`{a: {b: [{c: 1}], "x.y": 2, "": 3}, "[": 4}`), body)
	f.Fuzz(func(t *testing.T, rest string) {
		ch := &change{body: body.Content[0], item: "routes[0]"}
		ptr, ok := ch.pointer("routes[0]" + rest)
		if !ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			t.Fatalf("%q not under the item", rest)
		}
		if ok && ptr != "" && ptr[0] != '/' {
			t.Fatalf("%q: pointer %q does not start with /", rest, ptr)
		}
		// Each token must be a valid RFC 6901 escaped token.
		for _, tok := range strings.Split(ptr, "/") {
			for i := 0; i < len(tok); i++ {
				if tok[i] == '~' && (i+1 >= len(tok) || (tok[i+1] != '0' && tok[i+1] != '1')) {
					t.Fatalf("%q: bad escape in %q", rest, ptr)
				}
			}
		}
	})
}

// FuzzReadBody: any body is decoded or refused with a located 400 problem,
// never a panic; a syntax error's line, column and offset lie in the body.
func FuzzReadBody(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": }`, "{\n \"a\": tru\n}", `{"a":1}}`, `{"a":1,"a":2}`, `[1,]`, `"x"`, ``, `{"é": x}`, `{"a": "\x"}`, "{\"a\": [1, {\"b\": null}]}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := httptest.NewRequest("PUT", "/routes/x", bytes.NewReader(b))
		n, err := readBody(r, yaml.MappingNode)
		if err == nil {
			if n == nil || n.Kind != yaml.MappingNode {
				t.Fatalf("%q: node %v", b, n)
			}
			return
		}
		re, ok := err.(*requestError)
		if !ok || len(re.problems) != 1 || re.msg == "" {
			t.Fatalf("%q: %T %v", b, err, err)
		}
		p := re.problems[0]
		if p.Offset != nil {
			if *p.Offset < 0 || *p.Offset > len(b) || p.Line < 1 || p.Column < 1 || p.Line > 1+bytes.Count(b, []byte("\n")) {
				t.Fatalf("%q: located at line %d column %d offset %d", b, p.Line, p.Column, *p.Offset)
			}
		} else if p.Pointer == nil {
			t.Fatalf("%q: problem %+v has no location", b, p)
		}
	})
}

// TestOpenAPIDocumentsWriteErrors checks the OpenAPI document describes
// the answers of refused writes as they are sent: every golden answer
// uses only (and all required) properties of its documented schema, a
// used upstream's 409 is documented, and so are If-Match's rules.
func TestOpenAPIDocumentsWriteErrors(t *testing.T) {
	t.Parallel()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Parameters map[string]struct {
				Description string `json:"description"`
			} `json:"parameters"`
			Responses map[string]json.RawMessage `json:"responses"`
			Schemas   map[string]struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	conforms := func(what string, v map[string]any, schema string) {
		s, ok := doc.Components.Schemas[schema]
		if !ok {
			t.Fatalf("schema %s is not documented", schema)
		}
		for k := range v {
			if _, ok := s.Properties[k]; !ok {
				t.Errorf("%s: property %q is not in schema %s", what, k, schema)
			}
		}
		for _, k := range s.Required {
			if _, ok := v[k]; !ok {
				t.Errorf("%s: required property %q of %s is missing", what, k, schema)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if len(files) == 0 {
		t.Fatal("no golden answers")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		switch {
		case v["errors"] != nil:
			conforms(f, v, "ConfigErrors")
			for _, p := range v["errors"].([]any) {
				conforms(f, p.(map[string]any), "ConfigError")
			}
		case v["routes"] != nil:
			conforms(f, v, "UpstreamInUse")
		default:
			t.Errorf("%s: unexpected answer %s", f, b)
		}
	}
	var del struct {
		Responses map[string]map[string]string `json:"responses"`
	}
	_ = json.Unmarshal(doc.Paths["/upstreams/{name}"]["delete"], &del)
	ref := del.Responses["409"]["$ref"]
	if !strings.HasSuffix(ref, "/UpstreamConflict") || !strings.Contains(string(doc.Components.Responses["UpstreamConflict"]), "#/components/schemas/UpstreamInUse") {
		t.Errorf("DELETE /upstreams/{name} 409 = %q", ref)
	}
	im := doc.Components.Parameters["IfMatch"].Description
	for _, want := range []string{"*", "list", "weak", "428", "412", "400"} {
		if !strings.Contains(im, want) {
			t.Errorf("If-Match description lacks %q: %s", want, im)
		}
	}
}
