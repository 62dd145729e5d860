package bodytransform

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

func build(t testing.TB, src string) *BodyTransform {
	t.Helper()
	return plugintest.MustBuild[*BodyTransform](t, Name, src)
}

// withRecord gives r a gateway record with a request ID, a path
// parameter, a consumer with claims and a client IP.
func withRecord(r *http.Request) *http.Request {
	rec := &request.Record{RequestID: "req-1", Route: "users", Consumer: &consumer.Consumer{Name: "alice"},
		Claims: map[string]any{"sub": "u-7", "roles": []any{"admin"}}, ClientIP: netip.MustParseAddr("192.0.2.9")}
	rec.Params.Add("id", "42")
	return r.WithContext(request.WithRecord(r.Context(), rec))
}

// seen is the next handler: it keeps the request it got and its body.
type seen struct {
	n      int
	body   string
	length int64
	header http.Header
	te     []string
}

func (s *seen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.n++
	b, _ := io.ReadAll(r.Body)
	s.body, s.length, s.header, s.te = string(b), r.ContentLength, r.Header.Clone(), r.TransferEncoding
	w.WriteHeader(http.StatusNoContent)
}

func post(body, ct string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/users/42?page=2", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	r.Header.Set("X-Tenant", "acme")
	r.Header.Set("Authorization", "Bearer secret")
	return withRecord(r)
}

// TestBodyTransformConfigErrors: every invalid config is refused with a
// message naming the field.
func TestBodyTransformConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, Name, []plugintest.ConfigError{
		{Desc: "empty", Config: "{}", Want: []string{"nothing to do"}},
		{Desc: "unknown field", Config: "{request: {jq: .}, jqq: 1}", Want: []string{"jqq"}},
		{Desc: "syntax error", Config: "{request: {jq: '{a: .b'}}", Want: []string{"request.jq: syntax error at line 1, column"}},
		{Desc: "syntax error line", Config: "{response: {jq: \".a |\\n | .b\"}}", Want: []string{"response.jq: syntax error at line 2"}},
		{Desc: "unknown variable", Config: "{request: {jq: '$nope'}}", Want: []string{"request.jq", "$nope", "$params"}},
		{Desc: "unknown function", Config: "{request: {jq: 'frobnicate'}}", Want: []string{"request.jq", "frobnicate"}},
		{Desc: "empty program", Config: "{request: {jq: ' '}}", Want: []string{"request.jq is empty"}},
		{Desc: "conversion without change", Config: "{request: {from: json}}", Want: []string{"request.jq is required unless from and to differ"}},
		{Desc: "bad from", Config: "{request: {from: xml, jq: .}}", Want: []string{`request.from must be json or form; got "xml"`}},
		{Desc: "bad to", Config: "{request: {to: yaml, jq: .}}", Want: []string{"request.to"}},
		{Desc: "response jq missing", Config: "{response: {decompress: true}}", Want: []string{"response.jq is required"}},
		{Desc: "bad status", Config: "{response: {jq: ., statuses: [200, 6xx]}}", Want: []string{"response.statuses[1]", "6xx"}},
		{Desc: "partial status", Config: "{response: {jq: ., statuses: [206]}}", Want: []string{"response.statuses[0]: 206 responses are never transformed"}},
		{Desc: "bad policy", Config: "{request: {jq: .}, on_oversize: drop}", Want: []string{`on_oversize must be reject or pass; got "drop"`}},
		{Desc: "bad invalid policy", Config: "{request: {jq: .}, on_invalid: ignore}", Want: []string{"on_invalid"}},
		{Desc: "max body too big", Config: "{request: {jq: .}, max_body: 65MiB}", Want: []string{"max_body must be between 1 byte and 64MiB"}},
		{Desc: "timeout too long", Config: "{request: {jq: .}, timeout: 11s}", Want: []string{"timeout must be between"}},
		{Desc: "map from 304", Config: "{status_map: [{from: 304, to: 200}]}", Want: []string{"status_map[0].from: 304 cannot be mapped"}},
		{Desc: "map from 1xx", Config: "{status_map: [{from: 1xx, to: 200}]}", Want: []string{"status_map[0].from"}},
		{Desc: "map from text", Config: "{status_map: [{from: oops, to: 200}]}", Want: []string{"status_map[0].from", "oops"}},
		{Desc: "map twice", Config: "{status_map: [{from: 404, to: 200}, {from: 404, to: 410}]}", Want: []string{"status_map[1].from: 404 is mapped twice"}},
		{Desc: "map to bad", Config: "{status_map: [{from: 404, to: 99}]}", Want: []string{"status_map[0].to must be a status 200–599"}},
		{Desc: "map body on 204", Config: "{status_map: [{from: 404, to: 204, body: '{}'}]}", Want: []string{"status_map[0].body: a 204 response has no body"}},
		{Desc: "map body not json", Config: "{status_map: [{from: 404, to: 200, body: 'nope'}]}", Want: []string{"status_map[0].body: not valid JSON"}},
		{Desc: "map content type", Config: "{status_map: [{from: 404, to: 200, body: x, content_type: 'text plain'}]}", Want: []string{"status_map[0].content_type"}},
		{Desc: "map content type without body", Config: "{status_map: [{from: 404, to: 200, content_type: text/plain}]}", Want: []string{"status_map[0].content_type: needs a body"}},
	})
	for _, src := range []string{
		"{request: {jq: .}}",
		"{request: {from: form}}",
		"{request: {to: form, jq: '{a: 1}'}}",
		"{response: {jq: '{data: .}', statuses: [2xx, 404], decompress: true}, max_body: 64KiB, timeout: 50ms, on_oversize: pass, on_invalid: pass}",
		"{status_map: [{from: 5xx, to: 502, body: '{\"error\": \"x\"}'}, {from: 503, to: 503}, {from: 404, to: 200, body: hi, content_type: text/plain}]}",
	} {
		if _, _, err := plugintest.Build[*BodyTransform](t, Name, src); err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
}

// TestBodyTransformRequest: the upstream receives the transformed body
// with a matching Content-Length and Content-Type, never chunked.
func TestBodyTransformRequest(t *testing.T) {
	t.Parallel()
	type tc struct {
		desc, cfg, body, ct string
		want, wantCT        string
	}
	plugintest.RunCases(t, []tc{
		{"keep and drop", `{request: {jq: '{name, age}'}}`, `{"name":"a","age":3,"password":"x"}`, "application/json",
			`{"age":3,"name":"a"}`, "application/json"},
		{"rename", `{request: {jq: '{full_name: .name}'}}`, `{"name":"a"}`, "application/json; charset=utf-8",
			`{"full_name":"a"}`, "application/json; charset=utf-8"},
		{"wrap", `{request: {jq: '{data: .}'}}`, `[1,2]`, "application/vnd.api+json", `{"data":[1,2]}`, "application/vnd.api+json"},
		{"map arrays", `{request: {jq: '{tags: [.tags[] | ascii_downcase]}'}}`, `{"tags":["A","Bc"]}`, "application/json",
			`{"tags":["a","bc"]}`, "application/json"},
		{"inject", `{request: {jq: '. + {account: $params.id, by: $consumer, sub: $claims.sub, rid: $request_id, route: $route, ip: $client_ip, page: $query.page, tenant: $headers["x-tenant"], auth: $headers.authorization, m: $method, p: $path}'}}`,
			`{"x":1}`, "application/json",
			`{"account":"42","auth":null,"by":"alice","ip":"192.0.2.9","m":"POST","p":"/users/42","page":"2","rid":"req-1","route":"users","sub":"u-7","tenant":"acme","x":1}`, "application/json"},
		{"big numbers kept", `{request: {jq: '{n: .n}'}}`, `{"n":123456789012345678901234567890}`, "application/json",
			`{"n":123456789012345678901234567890}`, "application/json"},
		{"form to json", `{request: {from: form}}`, `a=1&b=x+y&b=z`, "application/x-www-form-urlencoded",
			`{"a":"1","b":["x y","z"]}`, "application/json"},
		{"form to json with jq", `{request: {from: form, jq: '{n: (.a | tonumber)}'}}`, `a=5`, "application/x-www-form-urlencoded",
			`{"n":5}`, "application/json"},
		{"json to form", `{request: {to: form, jq: '{a: .a, b: .b, n: null, t: true}'}}`, `{"a":"x&y","b":[1,"two"]}`, "application/json",
			`a=x%26y&b=1&b=two&t=true`, "application/x-www-form-urlencoded"},
	}, func(c tc) string { return c.desc }, func(t *testing.T, c tc) {
		next := &seen{}
		w := httptest.NewRecorder()
		build(t, c.cfg).Wrap(next).ServeHTTP(w, post(c.body, c.ct))
		if next.n != 1 || next.body != c.want {
			t.Fatalf("upstream got %q (%d calls, answer %d %s), want %q", next.body, next.n, w.Code, w.Body, c.want)
		}
		if next.length != int64(len(c.want)) || next.header.Get("Content-Length") != strconv.Itoa(len(c.want)) {
			t.Errorf("length %d / %q, want %d", next.length, next.header.Get("Content-Length"), len(c.want))
		}
		if got := next.header.Get("Content-Type"); got != c.wantCT {
			t.Errorf("Content-Type %q, want %q", got, c.wantCT)
		}
	})
}

// TestBodyTransformRequestPolicies: oversize, invalid, wrong type,
// compressed and failing bodies are passed or refused as configured.
func TestBodyTransformRequestPolicies(t *testing.T) {
	t.Parallel()
	big := `{"a":"` + strings.Repeat("x", 100) + `"}`
	type tc struct {
		desc, cfg, body, ct string
		chunked             bool
		status              int    // 0: passed to next
		want                string // body next got, or a substring of the error
	}
	const base = `jq: '{b: .a}'`
	plugintest.RunCases(t, []tc{
		{"oversize reject", `{max_body: 64, request: {` + base + `}}`, big, "application/json", false, 413, "larger than 64 bytes"},
		{"oversize reject chunked", `{max_body: 64, request: {` + base + `}}`, big, "application/json", true, 413, "larger than 64 bytes"},
		{"oversize pass", `{max_body: 64, on_oversize: pass, request: {` + base + `}}`, big, "application/json", false, 0, big},
		{"oversize pass chunked", `{max_body: 64, on_oversize: pass, request: {` + base + `}}`, big, "application/json", true, 0, big},
		{"at the limit", `{max_body: 108, request: {` + base + `}}`, big, "application/json", true, 0, `{"b":"` + strings.Repeat("x", 100) + `"}`},
		{"invalid reject", `{request: {` + base + `}}`, `{"a":`, "application/json", false, 400, "request body is not valid JSON"},
		{"trailing garbage", `{request: {` + base + `}}`, `{"a":1} x`, "application/json", false, 400, "not valid JSON"},
		{"invalid pass", `{on_invalid: pass, request: {` + base + `}}`, `{"a":`, "application/json", false, 0, `{"a":`},
		{"wrong type reject", `{request: {` + base + `}}`, `a=1`, "text/plain", false, 415, "request body must be JSON"},
		{"no type reject", `{request: {` + base + `}}`, `{"a":1}`, "", false, 415, "must be JSON"},
		{"wrong type pass", `{on_invalid: pass, request: {` + base + `}}`, `a=1`, "text/plain", false, 0, `a=1`},
		{"form expected", `{request: {from: form}}`, `{"a":1}`, "application/json", false, 415, "must be a form"},
		{"bad form", `{request: {from: form}}`, `a=%zz`, "application/x-www-form-urlencoded", false, 400, "not a valid form"},
		{"jq error", `{request: {jq: '.a.b'}}`, `{"a":"str"}`, "application/json", false, 400, "could not be transformed"},
		{"jq error pass still refused", `{on_invalid: pass, request: {jq: 'error("no")'}}`, `{}`, "application/json", false, 400, "could not be transformed"},
		{"many results", `{request: {jq: '.[]'}}`, `[1,2]`, "application/json", false, 400, "could not be transformed"},
		{"no result", `{request: {jq: 'empty'}}`, `[1,2]`, "application/json", false, 400, "could not be transformed"},
		{"not formable", `{request: {to: form, jq: '{a: {b: 1}}'}}`, `{}`, "application/json", false, 400, "could not be transformed"},
		{"output too large", `{max_body: 64, request: {jq: '[range(100)]'}}`, `{}`, "application/json", false, 500, "transformation failed"},
		{"loop stopped", `{timeout: 20ms, request: {jq: 'def f: f; f'}}`, `{}`, "application/json", false, 500, "timed out"},
		{"loop stopped repeat", `{timeout: 20ms, request: {jq: 'last(repeat(1))'}}`, `{}`, "application/json", false, 500, "timed out"},
		{"empty body untouched", `{request: {` + base + `}}`, ``, "application/json", true, 0, ``},
	}, func(c tc) string { return c.desc }, func(t *testing.T, c tc) {
		next := &seen{}
		r := post(c.body, c.ct)
		if c.chunked {
			r.ContentLength = -1
			r.Body = io.NopCloser(strings.NewReader(c.body))
		}
		w := httptest.NewRecorder()
		build(t, c.cfg).Wrap(next).ServeHTTP(w, r)
		if c.status == 0 {
			if next.n != 1 || next.body != c.want {
				t.Fatalf("upstream got %q (%d calls; answer %d %s), want %q", next.body, next.n, w.Code, w.Body, c.want)
			}
			return
		}
		if next.n != 0 || w.Code != c.status || !strings.Contains(w.Body.String(), c.want) {
			t.Fatalf("answer %d %s (next ran %d times), want %d with %q", w.Code, w.Body, next.n, c.status, c.want)
		}
		if strings.Contains(w.Body.String(), "str") || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("error body %q (%s) echoes input or is not JSON", w.Body, w.Header().Get("Content-Type"))
		}
	})
}

// TestBodyTransformRequestBodyError: a body the client fails to send is
// answered as the proxy would (413 over the listener limit, else 400).
func TestBodyTransformRequestBodyError(t *testing.T) {
	t.Parallel()
	h := build(t, `{request: {jq: .}}`).Wrap(&seen{})
	r := post(`{"a":"0123456789"}`, "application/json")
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, 5)
	r.ContentLength = -1
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d %s", w.Code, w.Body)
	}
}

// upstream answers with fixed headers, status and body chunks.
type upstream struct {
	status int
	header map[string]string
	chunks []string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for k, v := range u.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(u.status)
	for _, c := range u.chunks {
		_, _ = io.WriteString(w, c)
		http.NewResponseController(w).Flush()
	}
}

// gzipped and deflated compress s as an upstream would.
func gzipped(s string) string {
	return compressed(s, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
}
func deflated(s string) string {
	return compressed(s, func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) })
}

func compressed(s string, newWriter func(io.Writer) io.WriteCloser) string {
	var b bytes.Buffer
	zw := newWriter(&b)
	_, _ = io.WriteString(zw, s)
	_ = zw.Close()
	return b.String()
}

// TestBodyTransformResponse covers the response side and status mapping
// against a recorder: which responses are transformed, and the headers
// of those that are.
func TestBodyTransformResponse(t *testing.T) {
	t.Parallel()
	jsonH := map[string]string{"Content-Type": "application/json", "Etag": `"v1"`, "Accept-Ranges": "bytes"}
	big := `{"a":"` + strings.Repeat("x", 100) + `"}`
	const wrap = `response: {jq: '{data: ., id: $request_id}'}`
	type tc struct {
		desc, cfg, method string
		up                upstream
		status            int
		body              string
		header            map[string]string // "" means absent
	}
	plugintest.RunCases(t, []tc{
		{"transformed", `{` + wrap + `}`, "GET", upstream{200, jsonH, []string{`{"a":`, `1}`}}, 200, `{"data":{"a":1},"id":"req-1"}`,
			map[string]string{"Content-Length": "29", "Etag": `W/"v1"`, "Accept-Ranges": "", "Content-Type": "application/json"}},
		{"weak etag kept", `{` + wrap + `}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Etag": `W/"v1"`}, []string{`1`}}, 200, `{"data":1,"id":"req-1"}`,
			map[string]string{"Etag": `W/"v1"`}},
		{"status not listed", `{` + wrap + `}`, "GET", upstream{404, jsonH, []string{`{"a":1}`}}, 404, `{"a":1}`, map[string]string{"Etag": `"v1"`}},
		{"status listed", `{response: {jq: '.a', statuses: [404]}}`, "GET", upstream{404, jsonH, []string{`{"a":1}`}}, 404, `1`, nil},
		{"not json", `{` + wrap + `}`, "GET", upstream{200, map[string]string{"Content-Type": "text/html"}, []string{`<p>`}}, 200, `<p>`, nil},
		{"invalid json reject", `{` + wrap + `}`, "GET", upstream{200, jsonH, []string{`{"a":`}}, 502, `upstream response could not be read`,
			map[string]string{"Etag": "", "Content-Type": "application/json"}},
		{"invalid json pass", `{on_invalid: pass, ` + wrap + `}`, "GET", upstream{200, jsonH, []string{`{"a":`}}, 200, `{"a":`, map[string]string{"Etag": `"v1"`}},
		{"oversize reject", `{max_body: 64, ` + wrap + `}`, "GET", upstream{200, jsonH, []string{big[:50], big[50:]}}, 502, `too large`, nil},
		{"oversize reject by length", `{max_body: 64, ` + wrap + `}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Length": "107"}, []string{big}}, 502, `too large`, nil},
		{"oversize pass", `{max_body: 64, on_oversize: pass, ` + wrap + `}`, "GET", upstream{200, jsonH, []string{big[:50], big[50:]}}, 200, big, map[string]string{"Etag": `"v1"`}},
		{"oversize pass by length", `{max_body: 64, on_oversize: pass, ` + wrap + `}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Length": "107"}, []string{big}}, 200, big, nil},
		{"program error", `{response: {jq: '.a.b'}}`, "GET", upstream{200, jsonH, []string{`{"a":"x"}`}}, 502, `could not be transformed`, nil},
		{"loop stopped", `{timeout: 20ms, response: {jq: 'def f: f; f'}}`, "GET", upstream{200, jsonH, []string{`{}`}}, 502, `timed out`, nil},
		{"gzip passed", `{on_invalid: pass, ` + wrap + `}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, []string{gzipped(`{"a":1}`)}}, 200, gzipped(`{"a":1}`),
			map[string]string{"Content-Encoding": "gzip"}},
		{"gzip refused", `{` + wrap + `}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, []string{gzipped(`{"a":1}`)}}, 502, `could not be read`,
			map[string]string{"Content-Encoding": ""}},
		{"gzip decompressed", `{response: {jq: '.a', decompress: true}}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, []string{gzipped(`{"a":[1]}`)}}, 200, `[1]`,
			map[string]string{"Content-Encoding": "", "Content-Length": "3"}},
		{"deflate decompressed", `{response: {jq: '.a', decompress: true}}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "deflate"}, []string{deflated(`{"a":2}`)}}, 200, `2`, nil},
		{"br not decoded", `{on_invalid: pass, response: {jq: '.a', decompress: true}}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"}, []string{"zz"}}, 200, `zz`, nil},
		{"gzip bomb", `{max_body: 1KiB, response: {jq: '.', decompress: true}}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, []string{gzipped(`"` + strings.Repeat("a", 100000) + `"`)}}, 502, `too large`, nil},
		{"corrupt gzip", `{response: {jq: '.', decompress: true}}`, "GET", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}, []string{"nope"}}, 502, `could not be read`, nil},
		{"head", `{` + wrap + `}`, "HEAD", upstream{200, map[string]string{"Content-Type": "application/json", "Content-Length": "7", "Etag": `"v1"`}, nil}, 200, ``,
			map[string]string{"Content-Length": "", "Etag": `W/"v1"`}},
		{"204", `{` + wrap + `}`, "GET", upstream{204, map[string]string{"Content-Type": "application/json"}, nil}, 204, ``, nil},
		{"304", `{` + wrap + `}`, "GET", upstream{304, map[string]string{"Etag": `"v1"`}, nil}, 304, ``, map[string]string{"Etag": `W/"v1"`}},
		{"206", `{` + wrap + `}`, "GET", upstream{206, map[string]string{"Content-Type": "application/json", "Content-Range": "bytes 0-3/10"}, []string{`{"a"`}}, 206, `{"a"`,
			map[string]string{"Content-Range": "bytes 0-3/10"}},
		{"empty body", `{` + wrap + `}`, "GET", upstream{200, jsonH, nil}, 200, ``, nil},
		{"map 404 to 200 with body", `{status_map: [{from: 404, to: 200, body: '{"items": []}'}], ` + wrap + `}`, "GET",
			upstream{404, map[string]string{"Content-Type": "text/html", "Etag": `"x"`, "X-Keep": "1"}, []string{"<h1>gone</h1>"}}, 200, `{"items": []}`,
			map[string]string{"Content-Type": "application/json", "Content-Length": "13", "Etag": "", "X-Keep": "1"}},
		{"map 5xx", `{status_map: [{from: 5xx, to: 502, body: '{"error": "upstream unavailable"}'}, {from: 503, to: 503}]}`, "GET",
			upstream{500, map[string]string{"Content-Type": "text/plain"}, []string{"stack trace"}}, 502, `{"error": "upstream unavailable"}`, nil},
		{"exact wins over class", `{status_map: [{from: 5xx, to: 502, body: '{}'}, {from: 503, to: 503}]}`, "GET",
			upstream{503, map[string]string{"Content-Type": "text/plain"}, []string{"busy"}}, 503, `busy`, nil},
		{"map head", `{status_map: [{from: 404, to: 200, body: '[]'}]}`, "HEAD", upstream{404, nil, nil}, 200, ``, map[string]string{"Content-Length": "2"}},
		{"map status only then transform", `{status_map: [{from: 404, to: 200}], ` + wrap + `}`, "GET", upstream{404, jsonH, []string{`{"a":1}`}}, 200, `{"data":{"a":1},"id":"req-1"}`, nil},
		{"304 never mapped", `{status_map: [{from: 3xx, to: 200, body: '{}'}]}`, "GET", upstream{304, nil, nil}, 304, ``, nil},
	}, func(c tc) string { return c.desc }, func(t *testing.T, c tc) {
		w := httptest.NewRecorder()
		r := withRecord(httptest.NewRequest(c.method, "/users/42", nil))
		up := c.up
		build(t, c.cfg).Wrap(&up).ServeHTTP(w, r)
		if w.Code != c.status {
			t.Fatalf("status %d (%s), want %d", w.Code, w.Body, c.status)
		}
		if c.status == 502 && !strings.HasPrefix(c.body, "{") {
			if !strings.Contains(w.Body.String(), c.body) || !strings.Contains(w.Body.String(), `"request_id":"req-1"`) {
				t.Errorf("body %q, want it to mention %q", w.Body, c.body)
			}
		} else if got := w.Body.String(); got != c.body {
			t.Errorf("body %q, want %q", got, c.body)
		}
		plugintest.HeadersEqual(t, w.Header(), c.header)
	})
}

// TestBodyTransformStreaming: a response that is not transformed (SSE)
// streams through, with Flush and ResponseController reaching the
// connection.
func TestBodyTransformStreaming(t *testing.T) {
	t.Parallel()
	b := build(t, `{response: {jq: '{data: .}'}, status_map: [{from: 404, to: 200, body: '{}'}]}`)
	plugintest.Streaming(t, func(next http.Handler) http.Handler {
		return b.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			next.ServeHTTP(w, r)
		}))
	}, nil)
}

// TestBodyTransformClientGone: a program run stops when the client goes
// away.
func TestBodyTransformClientGone(t *testing.T) {
	t.Parallel()
	b := build(t, `{timeout: 10s, request: {jq: 'def f: f; f'}}`)
	ctx, cancel := context.WithCancel(context.Background())
	r := post(`{}`, "application/json").WithContext(ctx)
	r = withRecord(r)
	time.AfterFunc(10*time.Millisecond, cancel)
	start := time.Now()
	w := httptest.NewRecorder()
	b.Wrap(&seen{}).ServeHTTP(w, r)
	if time.Since(start) > 5*time.Second || w.Code != statusClientClosed {
		t.Errorf("status %d after %s", w.Code, time.Since(start))
	}
}

// nullWriter is a reusable ResponseWriter that keeps nothing.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) WriteHeader(int)             {}
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestBodyTransformPassThroughAllocs: a request without a body whose
// response is not transformed (not JSON) costs no allocation.
func TestBodyTransformPassThroughAllocs(t *testing.T) {
	b := build(t, `{request: {jq: .}, response: {jq: '{data: .}'}, status_map: [{from: 404, to: 200, body: '{}'}]}`)
	page := []byte("<p>hello</p>")
	h := b.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(page)
	}))
	w := &nullWriter{h: http.Header{"Content-Type": {"text/html"}}}
	r := withRecord(httptest.NewRequest(http.MethodGet, "/", nil))
	if n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("%v allocations per pass-through request", n)
	}
}

// TestBodyTransformErrorDetail: the client gets a generic message; the
// access log gets the program's error, cut short.
func TestBodyTransformErrorDetail(t *testing.T) {
	t.Parallel()
	b := build(t, `{request: {jq: 'error(.msg)'}}`)
	r := post(`{"msg":"`+strings.Repeat("é", 300)+`"}`, "application/json")
	w := httptest.NewRecorder()
	b.Wrap(&seen{}).ServeHTTP(w, r)
	rec := request.RecordOf(r)
	if w.Code != 400 || strings.Contains(w.Body.String(), "é") {
		t.Errorf("answer %d %.100s", w.Code, w.Body)
	}
	if !strings.HasPrefix(rec.ErrorMsg, "request body could not be transformed: ") || len(rec.ErrorMsg) > 300 || !utf8.ValidString(rec.ErrorMsg) {
		t.Errorf("access log error %q", rec.ErrorMsg)
	}
}

// TestBodyTransformOddClaims: a claim of a type gojq does not know fails
// the exchange cleanly instead of crashing the gateway.
func TestBodyTransformOddClaims(t *testing.T) {
	t.Parallel()
	for _, prog := range []string{`{c: $claims}`, `$claims.n + 1`, `$claims | tojson`} {
		b := build(t, `{request: {jq: '`+prog+`'}, response: {jq: '`+prog+`'}}`)
		r := post(`{}`, "application/json")
		request.RecordOf(r).Claims = map[string]any{"n": int64(5), "ch": make(chan int)}
		w := httptest.NewRecorder()
		b.Wrap(&seen{}).ServeHTTP(w, r)
		if w.Code != 400 {
			t.Errorf("%s: request answer %d %s", prog, w.Code, w.Body)
		}
		w = httptest.NewRecorder()
		r = withRecord(httptest.NewRequest("GET", "/", nil))
		request.RecordOf(r).Claims = map[string]any{"n": int64(5), "ch": make(chan int)}
		b.Wrap(&upstream{200, map[string]string{"Content-Type": "application/json"}, []string{`{}`}}).ServeHTTP(w, r)
		if w.Code != 502 {
			t.Errorf("%s: response answer %d %s", prog, w.Code, w.Body)
		}
	}
}
