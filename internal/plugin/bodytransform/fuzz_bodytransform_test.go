package bodytransform

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// FuzzBodyTransform sends random bytes, as JSON or as a form, through
// compiled request and response transforms: nothing panics, every answer
// is one the plugin documents, and what is forwarded or returned stays
// within max_body.
func FuzzBodyTransform(f *testing.F) {
	for _, s := range []string{
		`{"user":{"name":"a"},"tags":["X","y"]}`, `[]`, `null`, `1e999`, `"\ud800"`, `{"a":`, `{"tags":[1,{"b":null}]}`,
		`a=1&b=2&b=3`, `a=%zz`, `x=` + strings.Repeat("y", 300), "\xff\xfe", `{"n":123456789012345678901234567890}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	const max = 256
	jsonReq := build(f, `{max_body: 256, timeout: 1s, request: {jq: '{name: .user.name?, tags: [.tags[]? | tostring | ascii_downcase], n: (.n? // 0), all: .}', to: json}}`)
	toForm := build(f, `{max_body: 256, timeout: 1s, on_invalid: pass, request: {jq: 'if type == "object" then with_entries(.value |= tostring) else {v: tostring} end', to: form}}`)
	formReq := build(f, `{max_body: 256, timeout: 1s, request: {from: form, jq: '. + {k: (keys | length)}'}}`)
	resp := build(f, `{max_body: 256, timeout: 1s, on_oversize: pass, response: {jq: '{data: ., size: (tostring | length)}'}}`)
	allowed := map[int]bool{0: true, 400: true, 413: true, 415: true, 500: true}
	f.Fuzz(func(t *testing.T, data []byte, form bool) {
		ct := "application/json"
		plugins := []*BodyTransform{jsonReq, toForm}
		if form {
			ct, plugins = contentTypeForm, []*BodyTransform{formReq}
		}
		for _, p := range plugins {
			next := &seen{}
			w := httptest.NewRecorder()
			r := withRecord(httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(data)))
			r.Header.Set("Content-Type", ct)
			p.Wrap(next).ServeHTTP(w, r)
			if next.n == 0 && !allowed[w.Code] {
				t.Fatalf("answer %d %s", w.Code, w.Body)
			}
			if next.n == 1 && len(next.body) > max && next.body != string(data) {
				t.Fatalf("forwarded %d bytes, over max_body", len(next.body))
			}
			if next.n == 1 && next.length != int64(len(next.body)) && next.length != int64(len(data)) {
				t.Fatalf("Content-Length %d for %d bytes", next.length, len(next.body))
			}
		}
		w := httptest.NewRecorder()
		up := &upstream{200, map[string]string{"Content-Type": "application/json"}, []string{string(data)}}
		resp.Wrap(up).ServeHTTP(w, withRecord(httptest.NewRequest(http.MethodGet, "/", nil)))
		got := w.Body.String()
		switch {
		case w.Code == 502:
		case w.Code != 200:
			t.Fatalf("response status %d", w.Code)
		case got == string(data):
		case len(got) > max:
			t.Fatalf("returned %d bytes, over max_body", len(got))
		case w.Header().Get("Content-Length") != strconv.Itoa(len(got)):
			t.Fatalf("Content-Length %q for %d bytes", w.Header().Get("Content-Length"), len(got))
		}
		_, _ = io.Copy(io.Discard, w.Body)
	})
}

// benchBody is a JSON object of about size bytes: a list of users.
func benchBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"page":1,"users":[`)
	for i := 0; b.Len() < size-80; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"User Number ` + strconv.Itoa(i) + `","email":"u@example.com","tags":["A","B"]}`)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func benchTransform(b *testing.B, size int) {
	body := benchBody(size)
	p := build(b, `{request: {jq: '{page, users: [.users[] | {id, name, tags: [.tags[] | ascii_downcase]}], by: $consumer}'}}`)
	h := p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	w := httptest.NewRecorder()
	rd := bytes.NewReader(body)
	r := withRecord(httptest.NewRequest(http.MethodPost, "/", rd))
	r.Header.Set("Content-Type", "application/json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
		h.ServeHTTP(w, r)
	}
}

// BenchmarkBodyTransform1KiB: a request body of 1 KiB reshaped by jq.
func BenchmarkBodyTransform1KiB(b *testing.B) { benchTransform(b, 1<<10) }

// BenchmarkBodyTransform64KiB: a request body of 64 KiB reshaped by jq.
func BenchmarkBodyTransform64KiB(b *testing.B) { benchTransform(b, 64<<10) }

// BenchmarkBodyTransformResponse64KiB: a response body of 64 KiB wrapped
// by jq.
func BenchmarkBodyTransformResponse64KiB(b *testing.B) {
	body := string(benchBody(64 << 10))
	p := build(b, `{response: {jq: '{data: .users | map(.id), request_id: $request_id}'}}`)
	h := p.Wrap(&upstream{200, map[string]string{"Content-Type": "application/json"}, []string{body}})
	r := withRecord(httptest.NewRequest(http.MethodGet, "/", nil))
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
}
