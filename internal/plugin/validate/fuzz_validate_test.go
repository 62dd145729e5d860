package validate

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzValidateRequest feeds random paths, queries, headers, content types
// and bodies through the compiled OpenAPI 3.0 and 3.1 validators: they
// never panic, answer either pass or a problem+json document with a
// status of the documented set, and the upstream gets exactly the body the
// client sent.
func FuzzValidateRequest(f *testing.F) {
	seeds := []struct{ method, target, ctype, tenant, body string }{
		{"GET", "/orders?limit=10&status=open&tags=a&ids=1,2", "", "acme", ""},
		{"GET", "/orders?limit=1e400&ids=,,&tags=%zz", "", "", ""},
		{"GET", "/orders/%41%zz", "", "acme", ""},
		{"GET", "/files/.json", "", "acme", ""},
		{"DELETE", "/orders/-0", "", "acme", ""},
		{"POST", "/orders", "application/json", "acme", validOrder},
		{"POST", "/orders", "application/json", "acme", `{"customer":"a","items":[{"sku":"ABC-1","qty":1e999}]}`},
		{"POST", "/orders", "application/json; charset=utf-8", "acme", `[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`},
		{"POST", "/orders", "text/plain", "acme", "\xff\xfe"},
		{"PUT", "/orders/1", "application/json", "acme", `{"customer":"\u0000","items":[{"sku":"\ud800","qty":-1}],"x":{}}`},
		{"PATCH", "//orders", "", "", ""},
		{"POST", "/orders", "application/json", "acme", `{"customer":"a","discount":1e9999999,"items":[{"sku":"ABC-1","qty":1}]}`},
		{"GET", "/orders?limit=1e-99999999&ids=1,1E+0000000000000000001", "", "acme", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.ctype, s.tenant, s.body)
	}
	v30 := build(f, "{openapi: testdata/orders30.yaml, max_body: 4KiB}")
	v31 := build(f, "{openapi: testdata/orders31.yaml, max_body: 4KiB}")
	allowed := map[int]bool{200: true, 400: true, 404: true, 405: true, 413: true, 415: true}
	f.Fuzz(func(t *testing.T, method, target, ctype, tenant, body string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) {
			return
		}
		for _, v := range []*Validation{v30, v31} {
			r := httptest.NewRequest("GET", "/", nil)
			r.Method, r.URL = method, u
			if body != "" {
				r.Body = readCloser{strings.NewReader(body)}
				r.ContentLength = int64(len(body))
				if len(body)%2 == 1 {
					r.ContentLength = -1
				}
			}
			r.Header.Set("Content-Type", ctype)
			r.Header.Set("X-Tenant", tenant)
			up := &upstream{}
			w := httptest.NewRecorder()
			v.Wrap(up).ServeHTTP(w, r)
			if !allowed[w.Code] {
				t.Fatalf("%s %s: status %d", method, target, w.Code)
			}
			if w.Code == 200 {
				if up.n != 1 || string(up.body) != body {
					t.Fatalf("%s %s: upstream got %q, client sent %q", method, target, up.body, body)
				}
				continue
			}
			if up.n != 0 || w.Header().Get("Content-Type") != "application/problem+json" || !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %s: bad rejection %d %q", method, target, w.Code, w.Body)
			}
			if w.Body.Len() > 16<<10 {
				t.Fatalf("%s %s: problem of %d bytes", method, target, w.Body.Len())
			}
		}
	})
}

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// FuzzValidateSpec feeds random documents to the OpenAPI loader: it
// returns a document or an error, never panics.
func FuzzValidateSpec(f *testing.F) {
	for _, name := range []string{"testdata/orders30.yaml", "testdata/orders31.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("openapi: 3.1.0\npaths: {/a/{x}{y}: {get: {parameters: [{$ref: '#/paths'}]}}}")
	f.Add("openapi: 3.0.0\npaths: {/a: {$ref: '#/paths/~1a'}}")
	f.Add("openapi: 3.0.0\npaths: {/a: {post: {requestBody: {content: {'*/*': {schema: {$ref: '#'}}}}}}}")
	f.Add("&a [*a]")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, doc string) {
		file := filepath.Join(dir, "spec.yaml")
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		a, err := loadOpenAPI(file, fileSums{})
		if (a == nil) == (err == nil) {
			t.Fatalf("document %v, error %v", a, err)
		}
	})
}
