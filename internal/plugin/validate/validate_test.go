package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// upstream is the next handler: it records what it was sent.
type upstream struct {
	n      int
	body   []byte
	length int64
	te     []string
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.n++
	u.body, _ = io.ReadAll(r.Body)
	u.length = r.ContentLength
	u.te = r.TransferEncoding
	w.WriteHeader(http.StatusOK)
}

// problem is a decoded problem+json answer.
type problem struct {
	Type, Title, Detail string
	Status              int
	Errors              []struct {
		Location, Name, Pointer, Detail string
	}
	ErrorsOmitted int `json:"errors_omitted"`
}

func build(t testing.TB, src string) *Validation {
	t.Helper()
	return plugintest.MustBuild[*Validation](t, "request_validation", src)
}

// call sends r through v and returns the answer, the decoded problem
// (zero for a non-problem answer) and what the upstream saw.
func call(t testing.TB, v *Validation, r *http.Request) (*httptest.ResponseRecorder, problem, *upstream) {
	t.Helper()
	up := &upstream{}
	w := httptest.NewRecorder()
	v.Wrap(up).ServeHTTP(w, r)
	var p problem
	if w.Code != http.StatusOK {
		if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("status %d with Content-Type %q, want application/problem+json", w.Code, ct)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("problem body %q: %v", w.Body, err)
		}
		if p.Status != w.Code || p.Type != ProblemType || p.Title == "" || p.Detail == "" {
			t.Errorf("problem %+v does not match status %d", p, w.Code)
		}
		if up.n != 0 {
			t.Errorf("a rejected request reached the upstream")
		}
	}
	return w, p, up
}

// req builds a request; body "" means none.
func req(method, target, ctype, body string, header ...string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	r.Header.Set("X-Tenant", "acme")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			r.Header.Del(header[i])
		} else {
			r.Header.Set(header[i], header[i+1])
		}
	}
	return r
}

const validOrder = `{"customer":"ann","note":null,"priority":"high","items":[{"sku":"ABC-1","qty":2}]}`

// want is one expected field error: location, name, pointer and a
// substring of the detail.
type want struct{ loc, name, ptr, detail string }

func hasError(p problem, w want) bool {
	for _, e := range p.Errors {
		if e.Location == w.loc && e.Name == w.name && e.Pointer == w.ptr && strings.Contains(e.Detail, w.detail) {
			return true
		}
	}
	return false
}

type reqCase struct {
	desc   string
	r      func() *http.Request
	status int
	errs   []want
}

// orderCases hold for the OpenAPI 3.0 and 3.1 versions of the spec.
var orderCases = []reqCase{
	{"list ok", func() *http.Request { return req("GET", "/orders?limit=10&status=open&tags=a&tags=b&ids=1,2", "", "") }, 200, nil},
	{"limit too high", func() *http.Request { return req("GET", "/orders?limit=500", "", "") }, 400, []want{{"query", "limit", "", "must be <= 100"}}},
	{"limit not a number", func() *http.Request { return req("GET", "/orders?limit=ten", "", "") }, 400, []want{{"query", "limit", "", "integer"}}},
	{"limit hex", func() *http.Request { return req("GET", "/orders?limit=0x10", "", "") }, 400, []want{{"query", "limit", "", "integer"}}},
	{"status enum", func() *http.Request { return req("GET", "/orders?status=lost", "", "") }, 400, []want{{"query", "status", "", `one of "open", "shipped"`}}},
	{"tags too many", func() *http.Request { return req("GET", "/orders?tags=a&tags=b&tags=c&tags=d", "", "") }, 400, []want{{"query", "tags", "", "must have at most 3 items"}}},
	{"tag too long", func() *http.Request { return req("GET", "/orders?tags=a&tags=abcdefghij", "", "") }, 400, []want{{"query", "tags", "/1", "must be at most 8 characters long"}}},
	{"ids csv item", func() *http.Request { return req("GET", "/orders?ids=1,x,3", "", "") }, 400, []want{{"query", "ids", "/1", "integer"}}},
	{"missing header", func() *http.Request { return req("GET", "/orders", "", "", "X-Tenant", "") }, 400, []want{{"header", "X-Tenant", "", "missing"}}},
	{"bad header", func() *http.Request { return req("GET", "/orders", "", "", "X-Tenant", "ACME") }, 400, []want{{"header", "X-Tenant", "", "pattern"}}},
	{"short cookie", func() *http.Request { return req("GET", "/orders", "", "", "Cookie", "session=abc") }, 400, []want{{"cookie", "session", "", "must be at least 8 characters long"}}},
	{"two problems", func() *http.Request { return req("GET", "/orders?limit=0", "", "", "X-Tenant", "") }, 400, []want{{"query", "limit", "", "1"}, {"header", "X-Tenant", "", "missing"}}},
	{"id ok", func() *http.Request { return req("GET", "/orders/12", "", "") }, 200, nil},
	{"id zero", func() *http.Request { return req("GET", "/orders/0", "", "") }, 400, []want{{"path", "id", "", "must be >= 1"}}},
	{"id text", func() *http.Request { return req("GET", "/orders/abc", "", "") }, 400, []want{{"path", "id", "", "integer"}}},
	{"literal wins", func() *http.Request { return req("GET", "/orders/mine", "", "") }, 200, nil},
	{"suffix segment", func() *http.Request { return req("GET", "/files/report.json", "", "") }, 200, nil},
	{"suffix segment bad", func() *http.Request { return req("GET", "/files/Report.json", "", "") }, 400, []want{{"path", "name", "", "pattern"}}},
	{"head is get", func() *http.Request { return req("HEAD", "/orders/3", "", "") }, 200, nil},
	{"delete bool header", func() *http.Request { return req("DELETE", "/orders/3", "", "", "X-Confirm", "true") }, 200, nil},
	{"delete header not bool", func() *http.Request { return req("DELETE", "/orders/3", "", "", "X-Confirm", "yes") }, 400, []want{{"header", "X-Confirm", "", "boolean"}}},
	{"method not allowed", func() *http.Request { return req("PATCH", "/orders/3", "", "") }, 405, nil},
	{"unknown path", func() *http.Request { return req("GET", "/customers", "", "") }, 404, nil},
	{"trailing slash is another path", func() *http.Request { return req("GET", "/orders/", "", "") }, 404, nil},
	{"post ok", func() *http.Request { return req("POST", "/orders", "application/json", validOrder) }, 200, nil},
	{"post charset", func() *http.Request { return req("POST", "/orders", "Application/JSON; charset=utf-8", validOrder) }, 200, nil},
	{"post text passes", func() *http.Request { return req("POST", "/orders", "text/plain", "anything") }, 200, nil},
	{"post nested errors", func() *http.Request {
		return req("POST", "/orders", "application/json", `{"customer":"","extra":1,"items":[{"sku":"abc","qty":0},{"qty":1}]}`)
	}, 400, []want{
		{"body", "", "/customer", "1"},
		{"body", "", "/extra", "not allowed"},
		{"body", "", "/items/0/sku", "pattern"},
		{"body", "", "/items/0/qty", "must be >= 1"},
		{"body", "", "/items/1/sku", "missing"},
	}},
	{"post missing required", func() *http.Request { return req("POST", "/orders", "application/json", `{"items":[]}`) }, 400, []want{
		{"body", "", "/customer", "missing"}, {"body", "", "/items", "must have at least 1 item"},
	}},
	{"post enum", func() *http.Request {
		return req("POST", "/orders", "application/json", `{"customer":"a","priority":"urgent","items":[{"sku":"ABC-1","qty":1}]}`)
	}, 400, []want{{"body", "", "/priority", `one of "low", "high"`}}},
	{"post exclusive maximum", func() *http.Request {
		return req("POST", "/orders", "application/json", `{"customer":"a","discount":50,"items":[{"sku":"ABC-1","qty":1}]}`)
	}, 400, []want{{"body", "", "/discount", "must be < 50"}}},
	{"post wrong type", func() *http.Request { return req("POST", "/orders", "application/json", `[1,2]`) }, 400, []want{{"body", "", "", "object"}}},
	{"post not json", func() *http.Request { return req("POST", "/orders", "application/json", `{"customer":`) }, 400, []want{{"body", "", "", "not valid JSON"}}},
	{"post trailing garbage", func() *http.Request { return req("POST", "/orders", "application/json", `{} x`) }, 400, []want{{"body", "", "", "not valid JSON"}}},
	{"post no body", func() *http.Request { return req("POST", "/orders", "application/json", "") }, 400, []want{{"body", "", "", "required"}}},
	{"post xml", func() *http.Request { return req("POST", "/orders", "application/xml", "<a/>") }, 415, nil},
	{"post no content type", func() *http.Request { return req("POST", "/orders", "", validOrder) }, 415, nil},
	{"post other json type", func() *http.Request { return req("POST", "/orders", "application/merge-patch+json", validOrder) }, 415, nil},
	{"huge exponent in body", func() *http.Request {
		return req("POST", "/orders", "application/json", `{"customer":"a","discount":1e9999999,"items":[{"sku":"ABC-1","qty":1}]}`)
	}, 400, []want{{"body", "", "/discount", "out of range"}}},
	{"many digits in body", func() *http.Request {
		return req("POST", "/orders", "application/json", `{"customer":"a","items":[{"sku":"ABC-1","qty":1`+strings.Repeat("0", 100)+`}]}`)
	}, 400, []want{{"body", "", "/items/0/qty", "out of range"}}},
	{"huge exponent in query", func() *http.Request { return req("GET", "/orders?limit=1e-99999999", "", "") }, 400, []want{{"query", "limit", "", "out of range"}}},
	{"huge exponent in array item", func() *http.Request { return req("GET", "/orders?ids=1,2e00000000000000400", "", "") }, 200, nil},
	{"query given twice", func() *http.Request { return req("GET", "/orders?limit=1&limit=500", "", "") }, 400, []want{{"query", "limit", "", "given once"}}},
	{"csv array given twice", func() *http.Request { return req("GET", "/orders?ids=1&ids=2", "", "") }, 400, []want{{"query", "ids", "", "given once"}}},
	{"header given twice", func() *http.Request {
		r := req("GET", "/orders", "", "")
		r.Header.Add("X-Tenant", "other")
		return r
	}, 400, []want{{"header", "X-Tenant", "", "given once"}}},
	{"put body optional", func() *http.Request { return req("PUT", "/orders/3", "", "") }, 200, nil},
	{"put body checked", func() *http.Request { return req("PUT", "/orders/3", "application/json", `{}`) }, 400, []want{{"body", "", "/customer", "missing"}}},
}

func TestValidateOpenAPI(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"orders30.yaml", "orders31.yaml"} {
		t.Run(spec, func(t *testing.T) {
			t.Parallel()
			v := build(t, "openapi: testdata/"+spec)
			for _, tc := range orderCases {
				t.Run(tc.desc, func(t *testing.T) {
					w, p, up := call(t, v, tc.r())
					if w.Code != tc.status {
						t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
					}
					if tc.status == 200 && up.n != 1 {
						t.Fatal("a valid request did not reach the upstream")
					}
					for _, e := range tc.errs {
						if !hasError(p, e) {
							t.Errorf("no error %+v in %s", e, w.Body)
						}
					}
				})
			}
		})
	}
}

// TestValidateOpenAPI31: 3.1 keywords (const, type lists, numeric
// exclusiveMaximum) are JSON Schema 2020-12's.
func TestValidateOpenAPI31(t *testing.T) {
	t.Parallel()
	v := build(t, "openapi: testdata/orders31.yaml")
	w, p, _ := call(t, v, req("POST", "/orders", "application/json", `{"customer":"a","source":"app","items":[{"sku":"ABC-1","qty":1}]}`))
	if w.Code != 400 || !hasError(p, want{"body", "", "/source", `must be "web"`}) {
		t.Errorf("const: %d %s", w.Code, w.Body)
	}
	w, _, _ = call(t, v, req("POST", "/orders", "application/json", `{"customer":"a","source":"web","note":null,"items":[{"sku":"ABC-1","qty":1}]}`))
	if w.Code != 200 {
		t.Errorf("valid 3.1 body: %d %s", w.Code, w.Body)
	}
}

// TestValidateProblemShape: the answer is an RFC 9457 document with a
// bounded list of errors that never echoes large client input.
func TestValidateProblemShape(t *testing.T) {
	t.Parallel()
	v := build(t, "openapi: testdata/orders30.yaml")
	var items []string
	for range 50 {
		items = append(items, `{"sku":"`+strings.Repeat("x", 5000)+`","qty":0}`)
	}
	body := `{"customer":"a","items":[` + strings.Join(items, ",") + `]}`
	w, p, _ := call(t, v, req("POST", "/orders", "application/json", body))
	if w.Code != 400 {
		t.Fatalf("status %d", w.Code)
	}
	if len(p.Errors) != MaxErrors || p.ErrorsOmitted != 100-MaxErrors {
		t.Errorf("%d errors listed, %d omitted; want %d and %d", len(p.Errors), p.ErrorsOmitted, MaxErrors, 100-MaxErrors)
	}
	if w.Body.Len() > 8<<10 {
		t.Errorf("problem is %d bytes for a %d-byte body", w.Body.Len(), len(body))
	}
	if strings.Contains(w.Body.String(), "xxxxxxxx") {
		t.Error("the problem echoes the client's value")
	}
	if p.Title != "Request validation failed" || p.Detail != "100 fields failed validation" {
		t.Errorf("title %q detail %q", p.Title, p.Detail)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}

	w, _, _ = call(t, v, req("PATCH", "/orders/1", "", ""))
	if a := w.Header().Get("Allow"); a != "GET, PUT, DELETE, HEAD" {
		t.Errorf("405 Allow %q", a)
	}
}

// TestValidateBodyReplayed: the upstream gets the validated body byte for
// byte with a matching Content-Length, chunked bodies included.
func TestValidateBodyReplayed(t *testing.T) {
	t.Parallel()
	v := build(t, "{openapi: testdata/orders30.yaml, max_body: 1KiB}")
	body := "  " + validOrder + "\n"
	for _, chunked := range []bool{false, true} {
		r := req("POST", "/orders", "application/json", body)
		if chunked {
			r.Body = io.NopCloser(strings.NewReader(body))
			r.ContentLength = -1
			r.TransferEncoding = []string{"chunked"}
		}
		w, _, up := call(t, v, r)
		if w.Code != 200 || string(up.body) != body || up.length != int64(len(body)) || len(up.te) != 0 {
			t.Errorf("chunked=%v: status %d, upstream got %q (length %d, te %v)", chunked, w.Code, up.body, up.length, up.te)
		}
		if r.GetBody == nil {
			t.Error("no GetBody for retries")
		} else if rc, _ := r.GetBody(); rc != nil {
			if b, _ := io.ReadAll(rc); string(b) != body {
				t.Errorf("GetBody gives %q", b)
			}
		}
	}
	// The client's body is read to its end, where the gateway lifts the
	// body read deadline.
	spy := &eofSpy{r: strings.NewReader(body)}
	r := req("POST", "/orders", "application/json", body)
	r.Body = spy
	if w, _, _ := call(t, v, r); w.Code != 200 || !spy.eof {
		t.Errorf("status %d; body read to EOF: %v", w.Code, spy.eof)
	}
	big := `{"customer":"` + strings.Repeat("a", 2000) + `","items":[{"sku":"ABC-1","qty":1}]}`
	for _, chunked := range []bool{false, true} {
		r := req("POST", "/orders", "application/json", big)
		if chunked {
			r.Body = io.NopCloser(strings.NewReader(big))
			r.ContentLength = -1
		}
		w, p, _ := call(t, v, r)
		if w.Code != 413 || !strings.Contains(p.Detail, "1024 bytes") {
			t.Errorf("chunked=%v: oversize body: %d %s", chunked, w.Code, w.Body)
		}
	}
	// A body exactly at the limit passes.
	exact := `{"customer":"` + strings.Repeat("a", 1024-len(`{"customer":"","items":[{"sku":"ABC-1","qty":1}]}`)) + `","items":[{"sku":"ABC-1","qty":1}]}`
	r = req("POST", "/orders", "application/json", exact)
	r.ContentLength = -1
	if w, _, _ := call(t, v, r); w.Code != 200 || len(exact) != 1024 {
		t.Errorf("body of exactly max_body (%d bytes): %d %s", len(exact), w.Code, w.Body)
	}
	// A body that fails the listener's limit is a 413 too.
	r = req("POST", "/orders", "application/json", validOrder)
	rec := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(rec, r.Body, 10)
	r.ContentLength = -1
	if w, _, _ := call(t, v, r); w.Code != 413 {
		t.Errorf("body over the listener limit: %d", w.Code)
	}
}

// TestValidateSettings: base_path, unmatched: pass and skip.
func TestValidateSettings(t *testing.T) {
	t.Parallel()
	v := build(t, "{openapi: testdata/orders30.yaml, base_path: /api/}")
	for target, status := range map[string]int{"/api/orders/1": 200, "/api/orders/0": 400, "/orders/1": 404, "/apix/orders/1": 404, "/api": 404} {
		if w, _, _ := call(t, v, req("GET", target, "", "")); w.Code != status {
			t.Errorf("base_path: GET %s: %d, want %d", target, w.Code, status)
		}
	}
	v = build(t, "{openapi: testdata/orders30.yaml, unmatched: pass}")
	for target, status := range map[string]int{"/customers": 200, "/orders/0": 400} {
		if w, _, _ := call(t, v, req("GET", target, "", "")); w.Code != status {
			t.Errorf("unmatched pass: GET %s: %d, want %d", target, w.Code, status)
		}
	}
	if w, _, _ := call(t, v, req("PATCH", "/orders/1", "", "")); w.Code != 200 {
		t.Errorf("unmatched pass: PATCH: %d", w.Code)
	}
	v = build(t, "{openapi: testdata/orders30.yaml, skip: [query, headers, body]}")
	for _, r := range []*http.Request{
		req("GET", "/orders?limit=500", "", "", "X-Tenant", ""),
		req("POST", "/orders", "application/json", "{"),
	} {
		if w, _, _ := call(t, v, r); w.Code != 200 {
			t.Errorf("skip: %s %s: %d", r.Method, r.URL, w.Code)
		}
	}
	if w, _, _ := call(t, v, req("GET", "/orders/0", "", "")); w.Code != 400 {
		t.Errorf("skip keeps path checks: %d", w.Code)
	}
}

// TestValidateJSONSchema: json_schema mode validates the body only.
func TestValidateJSONSchema(t *testing.T) {
	t.Parallel()
	v := build(t, "json_schema: testdata/order.schema.json")
	cases := []reqCase{
		{"ok", func() *http.Request {
			return req("POST", "/anything", "application/json", `{"customer":"a","items":[{"sku":"x","qty":1}]}`)
		}, 200, nil},
		{"invalid", func() *http.Request {
			return req("POST", "/x", "application/vnd.api+json", `{"customer":"a","items":[{"sku":"x","qty":0}]}`)
		}, 400, []want{{"body", "", "/items/0/qty", "1"}}},
		{"get without body", func() *http.Request { return req("GET", "/x", "", "") }, 200, nil},
		{"post without body", func() *http.Request { return req("POST", "/x", "", "") }, 400, []want{{"body", "", "", "required"}}},
		{"form", func() *http.Request { return req("POST", "/x", "application/x-www-form-urlencoded", "a=b") }, 415, nil},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			w, p, _ := call(t, v, tc.r())
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			for _, e := range tc.errs {
				if !hasError(p, e) {
					t.Errorf("no error %+v in %s", e, w.Body)
				}
			}
		})
	}
}

// TestValidateConfigDir: relative names are relative to the config
// file's directory, and $refs to other local files are followed.
func TestValidateConfigDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir+"/specs/api.yaml", itemsSpec("3.1.0", "{$ref: 'item.json'}"))
	write(t, dir+"/specs/item.json", `{"type":"object","required":["qty"],"properties":{"qty":{"type":"integer"}}}`)
	v := plugintest.MustBuild[*Validation](t, "request_validation", "openapi: specs/api.yaml", plugintest.WithConfigDir(dir))
	w, p, _ := call(t, v, req("POST", "/items", "application/json", `{"qty":"x"}`))
	if w.Code != 400 || !hasError(p, want{"body", "", "/qty", "integer"}) {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// TestValidateOpenAPI30ExternalNullable: a file an OpenAPI 3.0 document
// references gets the document's dialect ("nullable").
func TestValidateOpenAPI30ExternalNullable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir+"/api.yaml", itemsSpec("3.0.3", "{$ref: 'item.yaml#/Item'}"))
	write(t, dir+"/item.yaml", "Item:\n  type: object\n  properties:\n    note: {type: string, nullable: true}\n")
	v := plugintest.MustBuild[*Validation](t, "request_validation", "openapi: api.yaml", plugintest.WithConfigDir(dir))
	for body, status := range map[string]int{`{"note":null}`: 200, `{"note":"x"}`: 200, `{"note":1}`: 400} {
		if w, _, _ := call(t, v, req("POST", "/items", "application/json", body)); w.Code != status {
			t.Errorf("%s: %d, want %d: %s", body, w.Code, status, w.Body)
		}
	}
}

// itemsSpec is a document with one operation, POST /items, whose JSON
// body has the given schema (line 9).
func itemsSpec(version, schema string) string {
	return "openapi: " + version + "\ninfo: {title: t, version: '1'}\npaths:\n  /items:\n    post:\n      requestBody:\n" +
		"        content:\n          application/json:\n            schema: " + schema + "\n"
}

func write(t testing.TB, name, data string) {
	t.Helper()
	if err := mkdirWrite(name, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// TestValidateConfigErrors: bad configs and bad documents fail the build
// with a message naming the file, the place in it and the problem.
func TestValidateConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	spec := func(name, body string) string {
		write(t, dir+"/"+name, body)
		return dir + "/" + name
	}
	head := "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n"
	syntax := spec("syntax.yaml", head+"paths:\n  /a:\n    get: {responses: {'200': {description: ok}}\n")
	version := spec("version.yaml", "swagger: '2.0'\npaths: {}\n")
	noPaths := spec("nopaths.yaml", head)
	unresolved := spec("unresolved.yaml", itemsSpec("3.0.3", "{$ref: '#/components/schemas/Nope'}"))
	remote := spec("remote.yaml", itemsSpec("3.0.3", "{$ref: 'https://example.com/schema.json'}"))
	badParam := spec("badparam.yaml", head+`paths:
  /a/{id}:
    get:
      parameters:
        - {name: other, in: path, required: true, schema: {type: string}}
`)
	optionalPath := spec("optpath.yaml", head+`paths:
  /a/{id}:
    get:
      parameters:
        - {name: id, in: path, schema: {type: string}}
`)
	objParam := spec("objparam.yaml", head+`paths:
  /a:
    get:
      parameters:
        - {name: filter, in: query, style: deepObject, schema: {type: object}}
`)
	badSchema := spec("badschema.yaml", itemsSpec("3.0.3", "{type: object, minProperties: -1}"))
	badPattern := spec("badpattern.yaml", head+`paths:
  /a:
    get:
      parameters:
        - {name: q, in: query, schema: {type: string, pattern: '(['}}
`)
	dupPath := spec("dup.yaml", head+"paths:\n  /a/{x}: {}\n  /a/{y}: {}\n")
	badJSONSchema := spec("bad.schema.json", `{"type": 12}`)
	plugintest.ExpectErrors(t, "request_validation", []plugintest.ConfigError{
		{Desc: "neither", Config: "{}", Want: []string{"exactly one of openapi and json_schema"}},
		{Desc: "both", Config: "{openapi: a.yaml, json_schema: b.json}", Want: []string{"exactly one of"}},
		{Desc: "unknown field", Config: "{openapi: a.yaml, strict: true}", Want: []string{"strict"}},
		{Desc: "missing file", Config: "openapi: " + dir + "/missing.yaml", Want: []string{"openapi:", "missing.yaml", "no such file"}},
		{Desc: "yaml syntax", Config: "openapi: " + syntax, Want: []string{"syntax.yaml", "line 4", "did not find expected"}},
		{Desc: "version", Config: "openapi: " + version, Want: []string{"version.yaml", `openapi version ""`, "3.0.x or 3.1.x"}},
		{Desc: "no paths", Config: "openapi: " + noPaths, Want: []string{"no paths"}},
		{Desc: "unresolved ref", Config: "openapi: " + unresolved, Want: []string{"unresolved.yaml", "line 9", "paths./items", "Nope"}},
		{Desc: "remote ref", Config: "openapi: " + remote, Want: []string{"https://example.com/schema.json", "refused"}},
		{Desc: "path param not in template", Config: "openapi: " + badParam, Want: []string{`path parameter "other" is not in the path template`}},
		{Desc: "optional path param", Config: "openapi: " + optionalPath, Want: []string{"optpath.yaml line 7", "must be required: true"}},
		{Desc: "object param", Config: "openapi: " + objParam, Want: []string{"object parameters are not supported"}},
		{Desc: "invalid schema", Config: "openapi: " + badSchema, Want: []string{"badschema.yaml line 9", "minProperties", "got -1, want 0"}},
		{Desc: "invalid pattern", Config: "openapi: " + badPattern, Want: []string{"badpattern.yaml", "pattern"}},
		{Desc: "duplicate path", Config: "openapi: " + dupPath, Want: []string{"the same path as /a/{x}"}},
		{Desc: "json schema invalid", Config: "json_schema: " + badJSONSchema, Want: []string{"json_schema:", "bad.schema.json"}},
		{Desc: "unmatched", Config: "{openapi: a.yaml, unmatched: allow}", Want: []string{"unmatched must be reject or pass"}},
		{Desc: "skip", Config: "{openapi: a.yaml, skip: [bodies]}", Want: []string{`skip: "bodies"`}},
		{Desc: "base path", Config: "{openapi: a.yaml, base_path: api}", Want: []string{"base_path"}},
		{Desc: "json schema with openapi settings", Config: "{json_schema: b.json, base_path: /api}", Want: []string{"apply to openapi only"}},
		{Desc: "max body", Config: "{openapi: a.yaml, max_body: -1}", Want: []string{"max_body"}},
	})
}

// TestValidateAllocs guards the hot path: a valid GET with a path and a
// header parameter allocates only what the schema validator does (its
// numeric checks use math/big).
func TestValidateAllocs(t *testing.T) {
	v := build(t, "openapi: testdata/orders31.yaml")
	h := v.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := req("GET", "/orders/12", "", "")
	w := httptest.NewRecorder()
	n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) })
	if n > 24 {
		t.Errorf("GET /orders/{id}: %v allocations per request", n)
	}
	if w.Code != 200 {
		t.Fatal(w.Code)
	}
}

func BenchmarkValidateSmallBody(b *testing.B) {
	v := build(b, "openapi: testdata/orders31.yaml")
	h := v.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	body := []byte(validOrder)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/orders", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Tenant", "acme")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

func BenchmarkValidateQuery(b *testing.B) {
	v := build(b, "openapi: testdata/orders31.yaml")
	h := v.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := req("GET", "/orders?limit=10&status=open", "", "")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

func mkdirWrite(name string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	return os.WriteFile(name, data, 0o600)
}

// eofSpy is a body that remembers whether it reported its end.
type eofSpy struct {
	r   io.Reader
	eof bool
}

func (s *eofSpy) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err == io.EOF {
		s.eof = true
	}
	return n, err
}

func (s *eofSpy) Close() error { return nil }

// TestValidateAliasBomb: a document of nested YAML aliases is refused
// quickly instead of expanding exponentially, and a self-referring alias
// is an error.
func TestValidateAliasBomb(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("openapi: 3.1.0\nx0: &x0 [a, a]\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&b, "x%d: &x%d [*x%d, *x%d]\n", i, i, i-1, i-1)
	}
	write(t, dir+"/bomb.yaml", b.String())
	write(t, dir+"/cycle.yaml", "openapi: 3.1.0\npaths: &a {x: [*a]}\n")
	plugintest.ExpectErrors(t, "request_validation", []plugintest.ConfigError{
		{Desc: "bomb", Config: "openapi: " + dir + "/bomb.yaml", Want: []string{"expands to more than"}},
		{Desc: "cycle", Config: "openapi: " + dir + "/cycle.yaml", Want: []string{"refers to itself"}},
	})
}

// TestValidateShared: instances built from the same unchanged files share
// one compiled document; a change to the document or to a file it
// references gives the next instance a new one.
func TestValidateShared(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, dir+"/api.yaml", itemsSpec("3.1.0", "{$ref: 'item.json'}"))
	write(t, dir+"/item.json", `{"type":"object","properties":{"qty":{"type":"integer"}}}`)
	pool := plugin.NewSharedPool()
	build := func() *Validation {
		return plugintest.MustBuild[*Validation](t, "request_validation", "openapi: api.yaml", plugintest.WithConfigDir(dir), plugintest.WithPool(pool))
	}
	a, b := build(), build()
	if a.api != b.api {
		t.Error("two instances of one document compiled it twice")
	}
	write(t, dir+"/item.json", `{"type":"object","properties":{"qty":{"type":"string"}}}`)
	c := build()
	if c.api == a.api {
		t.Fatal("a changed referenced file was not read again")
	}
	if w, _, _ := call(t, c, req("POST", "/items", "application/json", `{"qty":1}`)); w.Code != 400 {
		t.Errorf("the new instance validates with the old schema: %d", w.Code)
	}
	write(t, dir+"/api.yaml", itemsSpec("3.1.0", "{type: array}"))
	if d := build(); d.api == a.api || d.api == c.api {
		t.Error("a changed document was not read again")
	}
}
