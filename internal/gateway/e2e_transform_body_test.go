package gateway_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
)

// e2eTransformBodyConfig has one route per body_transform behaviour, all on one
// backend (e2eTransformBodyBackend).
const e2eTransformBodyConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "{{LOG}}"}}
consumers:
  - {name: alice, credentials: {key_auth: [{key: body-test-alice-key}]}}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
routes:
  - name: reshape
    match: {path: "/accounts/{id}/echo"}
    upstream: be
    plugins:
      - {name: jwt, config: {algorithms: [HS256], secret: "{{SECRET}}", issuer: test-issuer, audiences: [api], consumer_claim: sub}}
      - name: body_transform
        config:
          request:
            jq: '{name: .user.name, tags: [.tags[] | ascii_downcase], account: $params.id, by: $consumer, scope: $claims.scope, request_id: $request_id}'
  - name: form-in
    match: {path_prefix: /form-in}
    upstream: be
    plugins:
      - {name: body_transform, config: {request: {from: form, jq: '{user: .name, qty: (.qty | tonumber)}'}}}
  - name: form-out
    match: {path_prefix: /form-out}
    upstream: be
    plugins:
      - {name: body_transform, config: {request: {to: form, jq: '{name: .user.name, tags: .tags}'}}}
  - name: limits
    match: {path_prefix: /limits}
    upstream: be
    plugins:
      - {name: body_transform, config: {max_body: 64, request: {jq: '{b: .a}'}, response: {jq: '{data: .}'}}}
  - name: lenient
    match: {path_prefix: /lenient}
    upstream: be
    plugins:
      - {name: body_transform, config: {max_body: 64, on_oversize: pass, on_invalid: pass, request: {jq: '{b: .a}'}, response: {jq: '{data: .}'}}}
  - name: respond
    match: {path_prefix: /resp}
    upstream: be
    plugins:
      - {name: key_auth}
      - name: body_transform
        config:
          response: {jq: '{data: ., request_id: $request_id, by: $consumer}'}
          status_map:
            - {from: 404, to: 200, body: '{"items": []}'}
            - {from: 5xx, to: 502, body: '{"error": "upstream unavailable"}'}
  - name: unzip
    match: {path_prefix: /unzip}
    upstream: be
    plugins:
      - {name: body_transform, config: {response: {jq: '{data: .}', decompress: true}}}
  - name: loop
    match: {path_prefix: /loop}
    upstream: be
    plugins:
      - {name: body_transform, config: {timeout: 50ms, request: {jq: 'def f: f; f'}}}
`

// e2eTransformBodyHandler is the backend: it echoes a request's body back (with
// what it saw of the framing in X-Got-* headers) unless the path's last
// segment names a canned response. The SSE response sends its second
// event once sse is closed.
func e2eTransformBodyHandler(sse chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := w.Header()
		h.Set("X-Got-Length", strconv.FormatInt(r.ContentLength, 10))
		h.Set("X-Got-Te", strings.Join(r.TransferEncoding, ","))
		h.Set("X-Got-Type", r.Header.Get("Content-Type"))
		flush := http.NewResponseController(w).Flush
		last := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch last {
		case "json":
			h.Set("Content-Type", "application/json")
			h.Set("Etag", `"v7"`)
			h.Set("Accept-Ranges", "bytes")
			h.Set("Content-Length", "21")
			_, _ = io.WriteString(w, `{"id":1,"name":"Zoe"}`)
		case "chunked":
			h.Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":1,`)
			_ = flush()
			_, _ = io.WriteString(w, `"name":"Zoe"}`)
		case "big":
			h.Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"a":"`+strings.Repeat("x", 100)+`"}`)
		case "invalid":
			h.Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"a":`)
		case "gzip":
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = io.WriteString(zw, `{"id":2}`)
			_ = zw.Close()
			h.Set("Content-Type", "application/json")
			h.Set("Content-Encoding", "gzip")
			_, _ = w.Write(b.Bytes())
		case "nocontent":
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNoContent)
		case "notmodified":
			h.Set("Etag", `"v7"`)
			w.WriteHeader(http.StatusNotModified)
		case "partial":
			h.Set("Content-Type", "application/json")
			h.Set("Content-Range", "bytes 0-3/20")
			w.WriteHeader(http.StatusPartialContent)
			_, _ = io.WriteString(w, `{"id`)
		case "missing":
			h.Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, "<h1>no such thing</h1>")
		case "boom":
			h.Set("Content-Type", "text/plain")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "panic: secret stack trace")
		case "events":
			h.Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: one\n\n")
			_ = flush()
			<-sse
			_, _ = io.WriteString(w, "data: two\n\n")
		default:
			if ct := r.Header.Get("Content-Type"); ct != "" {
				h.Set("Content-Type", ct)
			}
			_, _ = w.Write(body)
		}
	}
}

type e2eTransformBodyEnv struct {
	url, log string
}

func (e *e2eTransformBodyEnv) do(t *testing.T, method, path, ct, body string, chunked bool, hdr ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(strings.NewReader(body)) // unknown length: sent chunked
		}
	}
	req := e2eReq(t, method, e.url+path, rd)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, b := e2eDo(t, req)
	return resp, string(b)
}

// TestE2EBodyTransform drives body_transform through a gateway against a
// real backend: what the backend received, what the client got.
func TestE2EBodyTransform(t *testing.T) {
	t.Parallel()
	sse := make(chan struct{})
	be := testutil.Backend(t, e2eTransformBodyHandler(sse))
	logPath := filepath.Join(t.TempDir(), "access.log")
	tg := e2eStart(t, e2eTransformBodyConfig, map[string]string{"BE": be.URL, "LOG": logPath, "SECRET": jwtSecret})
	env := &e2eTransformBodyEnv{url: tg.URL, log: logPath}

	env.requestCases(t)
	env.responseCases(t)
	env.streamAndLoopCases(t, sse)
}

// requestCases: request bodies reshaped, converted, refused and passed.
func (env *e2eTransformBodyEnv) requestCases(t *testing.T) {
	t.Run("request reshaped", func(t *testing.T) {
		t.Parallel()
		in := `{"user":{"name":"Alice","password":"hunter2"},"tags":["Blue","RED"]}`
		for _, chunked := range []bool{false, true} {
			resp, got := env.do(t, "POST", "/accounts/42/echo", "application/json", in, chunked,
				"Authorization", "Bearer "+hsToken(t, "alice", "read write"), "X-Request-Id", "req-body-reshape")
			want := `{"account":"42","by":"alice","name":"Alice","request_id":"req-body-reshape","scope":"read write","tags":["blue","red"]}`
			if resp.StatusCode != 200 || got != want {
				t.Fatalf("chunked %v: %d %q\nwant %q", chunked, resp.StatusCode, got, want)
			}
			if resp.Header.Get("X-Got-Length") != strconv.Itoa(len(want)) || resp.Header.Get("X-Got-Te") != "" {
				t.Errorf("chunked %v: backend saw length %s, transfer-encoding %q", chunked, resp.Header.Get("X-Got-Length"), resp.Header.Get("X-Got-Te"))
			}
		}
	})
	t.Run("form to json", func(t *testing.T) {
		t.Parallel()
		resp, got := env.do(t, "POST", "/form-in", "application/x-www-form-urlencoded", "name=Bo+B&qty=3", false)
		if got != `{"qty":3,"user":"Bo B"}` || resp.Header.Get("X-Got-Type") != "application/json" {
			t.Fatalf("%q as %s", got, resp.Header.Get("X-Got-Type"))
		}
	})
	t.Run("json to form", func(t *testing.T) {
		t.Parallel()
		resp, got := env.do(t, "POST", "/form-out", "application/json", `{"user":{"name":"A&B"},"tags":["x","y"]}`, false)
		if got != `name=A%26B&tags=x&tags=y` || resp.Header.Get("X-Got-Type") != "application/x-www-form-urlencoded" {
			t.Fatalf("%q as %s", got, resp.Header.Get("X-Got-Type"))
		}
	})
	t.Run("request limits", func(t *testing.T) {
		t.Parallel()
		big := `{"a":"` + strings.Repeat("x", 100) + `"}`
		resp, got := env.do(t, "POST", "/limits/echo", "application/json", big, true)
		e2eCheckError(t, resp.StatusCode, resp.Header, []byte(got), 413)
		resp, got = env.do(t, "POST", "/lenient/echo", "application/json", big, true)
		if resp.StatusCode != 200 || !strings.Contains(got, `"a":"xxx`) {
			t.Errorf("oversize pass: %d %.80q", resp.StatusCode, got)
		}
		resp, got = env.do(t, "POST", "/limits/echo", "application/json", `{"a":`, false)
		if eb := e2eCheckError(t, resp.StatusCode, resp.Header, []byte(got), 400); eb.Error != "request body is not valid JSON" {
			t.Errorf("error %q", eb.Error)
		}
		resp, got = env.do(t, "POST", "/lenient/echo", "application/json", `{"a":`, false)
		if resp.StatusCode != 200 || got != `{"a":` {
			t.Errorf("invalid pass: %d %q", resp.StatusCode, got)
		}
	})
}

// responseCases: response bodies transformed, refused, passed, left alone
// and replaced by status_map.
func (env *e2eTransformBodyEnv) responseCases(t *testing.T) {
	t.Run("response transformed", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/resp/json", "/resp/chunked"} {
			resp, got := env.do(t, "GET", path, "", "", false, "X-Api-Key", "body-test-alice-key", "X-Request-Id", "req-body-resp")
			want := `{"by":"alice","data":{"id":1,"name":"Zoe"},"request_id":"req-body-resp"}`
			if resp.StatusCode != 200 || got != want {
				t.Fatalf("%s: %d %q\nwant %q", path, resp.StatusCode, got, want)
			}
			if resp.ContentLength != int64(len(want)) || resp.Header.Get("Accept-Ranges") != "" {
				t.Errorf("%s: Content-Length %d, Accept-Ranges %q", path, resp.ContentLength, resp.Header.Get("Accept-Ranges"))
			}
			if path == "/resp/json" && resp.Header.Get("Etag") != `W/"v7"` {
				t.Errorf("ETag %q, want the upstream's made weak", resp.Header.Get("Etag"))
			}
		}
		m := e2eAccessLine(t, env.log, "req-body-resp")
		if m["status"] != float64(200) || m["bytes_out"] != float64(72) {
			t.Errorf("access log %v", m)
		}
	})
	t.Run("response limits", func(t *testing.T) {
		t.Parallel()
		resp, got := env.do(t, "GET", "/limits/big", "", "", false)
		e2eCheckError(t, resp.StatusCode, resp.Header, []byte(got), 502)
		resp, got = env.do(t, "GET", "/lenient/big", "", "", false)
		if resp.StatusCode != 200 || !strings.HasPrefix(got, `{"a":"xxx`) {
			t.Errorf("oversize pass: %d %.40q", resp.StatusCode, got)
		}
		resp, got = env.do(t, "GET", "/limits/invalid", "", "", false)
		e2eCheckError(t, resp.StatusCode, resp.Header, []byte(got), 502)
		resp, got = env.do(t, "GET", "/lenient/invalid", "", "", false)
		if resp.StatusCode != 200 || got != `{"a":` {
			t.Errorf("invalid pass: %d %q", resp.StatusCode, got)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		t.Parallel()
		// The client asks for gzip itself, so it sees the encoding.
		resp, got := env.do(t, "GET", "/unzip/gzip", "", "", false, "Accept-Encoding", "gzip")
		if resp.StatusCode != 200 || got != `{"data":{"id":2}}` || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("decompressed: %d %q (%s)", resp.StatusCode, got, resp.Header.Get("Content-Encoding"))
		}
		resp, got = env.do(t, "GET", "/lenient/gzip", "", "", false, "Accept-Encoding", "gzip")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(got, "\x1f\x8b") {
			t.Errorf("passed: %d %q (%s)", resp.StatusCode, got, resp.Header.Get("Content-Encoding"))
		}
		resp, got = env.do(t, "GET", "/limits/gzip", "", "", false, "Accept-Encoding", "gzip")
		e2eCheckError(t, resp.StatusCode, resp.Header, []byte(got), 502)
	})
	t.Run("untouched", func(t *testing.T) {
		t.Parallel()
		resp, got := env.do(t, "HEAD", "/unzip/json", "", "", false)
		if resp.StatusCode != 200 || got != "" || resp.Header.Get("Etag") != `W/"v7"` {
			t.Errorf("HEAD: %d %q %v", resp.StatusCode, got, resp.Header)
		}
		resp, got = env.do(t, "GET", "/unzip/nocontent", "", "", false)
		if resp.StatusCode != 204 || got != "" {
			t.Errorf("204: %d %q", resp.StatusCode, got)
		}
		resp, got = env.do(t, "GET", "/unzip/notmodified", "", "", false, "If-None-Match", `W/"v7"`)
		if resp.StatusCode != 304 || got != "" || resp.Header.Get("Etag") != `W/"v7"` {
			t.Errorf("304: %d %q %q", resp.StatusCode, got, resp.Header.Get("Etag"))
		}
		resp, got = env.do(t, "GET", "/unzip/partial", "", "", false)
		if resp.StatusCode != 206 || got != `{"id` || resp.Header.Get("Content-Range") != "bytes 0-3/20" {
			t.Errorf("206: %d %q", resp.StatusCode, got)
		}
	})
	t.Run("status map", func(t *testing.T) {
		t.Parallel()
		resp, got := env.do(t, "GET", "/resp/missing", "", "", false, "X-Api-Key", "body-test-alice-key")
		if resp.StatusCode != 200 || got != `{"items": []}` || resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != 13 {
			t.Errorf("404: %d %q %v", resp.StatusCode, got, resp.Header)
		}
		resp, got = env.do(t, "GET", "/resp/boom", "", "", false, "X-Api-Key", "body-test-alice-key")
		if resp.StatusCode != 502 || got != `{"error": "upstream unavailable"}` {
			t.Errorf("500: %d %q", resp.StatusCode, got)
		}
	})
}

// streamAndLoopCases: an event stream is not buffered; a looping program
// is stopped and the gateway keeps serving.
func (env *e2eTransformBodyEnv) streamAndLoopCases(t *testing.T, sse chan struct{}) {
	t.Run("sse streamed", func(t *testing.T) {
		t.Parallel()
		req := e2eReq(t, "GET", env.url+"/unzip/events", nil)
		resp, err := e2eClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: one\n" {
			t.Fatalf("first event %q %v", line, err)
		}
		close(sse) // the backend sends the second event only now
		rest, _ := io.ReadAll(br)
		if string(rest) != "\ndata: two\n\n" {
			t.Errorf("rest %q", rest)
		}
	})
	t.Run("loop stopped", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		resp, got := env.do(t, "POST", "/loop", "application/json", `{}`, false)
		eb := e2eCheckError(t, resp.StatusCode, resp.Header, []byte(got), 500)
		if eb.Error != "request body transformation timed out" || time.Since(start) > 5*time.Second {
			t.Errorf("%q after %s", eb.Error, time.Since(start))
		}
		// The gateway is still serving.
		resp, got = env.do(t, "POST", "/form-in", "application/x-www-form-urlencoded", "name=x&qty=1", false)
		if resp.StatusCode != 200 {
			t.Errorf("after the loop: %d %q", resp.StatusCode, got)
		}
	})
}

// BenchmarkServeBodyTransform compares a plain route with one that runs a
// jq program over a 1 KiB JSON request body and a 1 KiB JSON response
// body, against the same real backend: the difference is what
// body_transform costs per request.
func BenchmarkServeBodyTransform(b *testing.B) {
	var list strings.Builder
	list.WriteString(`{"users":[`)
	for i := 0; list.Len() < 1000; i++ {
		if i > 0 {
			list.WriteByte(',')
		}
		fmt.Fprintf(&list, `{"id":%d,"name":"User %d","tags":["A","B"]}`, i, i)
	}
	list.WriteString(`]}`)
	body := list.String()
	be := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	rt := gateway.NewRuntime(testutil.Logger(b))
	cfg := fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "off"}}
upstreams: {be: {targets: [{url: %q}]}}
routes:
  - {name: plain, match: {path_prefix: /plain}, upstream: be}
  - name: transform
    match: {path_prefix: /transform}
    upstream: be
    plugins:
      - name: body_transform
        config:
          request: {jq: '{users: [.users[] | {id, name}]}'}
          response: {jq: '{data: [.users[] | .name], request_id: $request_id}'}
`, be.URL)
	if err := rt.Apply(testutil.ParseConfig(b, cfg)); err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	for _, path := range []string{"/plain", "/transform"} {
		b.Run(path, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			rd := strings.NewReader(body)
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				rd.Reset(body)
				r := httptest.NewRequest("POST", path, rd)
				r.RemoteAddr = "10.1.2.3:4567"
				r.Header.Set("Content-Type", "application/json")
				rt.ServeHTTP(w, r)
			}
		})
	}
}
