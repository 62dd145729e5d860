package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// trafficBenchConfig has one route per traffic-management feature, all to
// the same real backend, beside a plain route: each sub-benchmark of
// BenchmarkTrafficFeatures minus its plain counterpart is what the feature
// adds to a request (README "Performance").
const trafficBenchConfig = splitHead + `upstreams:
  stable: {targets: [{url: "{{stable}}"}]}
  canary: {targets: [{url: "{{stable}}"}]}
  shadow: {targets: [{url: "{{stable}}"}]}
routes:
  - {name: plain, match: {path_prefix: /plain}, upstream: stable}
  - name: split
    match: {path_prefix: /split}
    split:
      variants: [{upstream: stable, weight: 95}, {upstream: canary, weight: 5}]
      rules: [{header: {name: X-Beta, value: "1"}, upstream: canary}]
  - name: sticky
    match: {path_prefix: /sticky}
    split:
      variants: [{upstream: stable, weight: 95}, {upstream: canary, weight: 5}]
      rules: [{header: {name: X-Beta, value: "1"}, upstream: canary}]
      sticky: {key: [ip]}
  - {name: mirror, match: {path_prefix: /mirror}, upstream: stable, mirror: {upstream: shadow, percent: 100}}
  - name: regex
    match: {path_prefix: /regex}
    upstream: stable
    rewrite: {regex: {pattern: "^/regex/(.*)$", replacement: "/v2/$1"}}
  - name: query
    match: {path_prefix: /query}
    upstream: stable
    rewrite:
      query:
        remove: [debug]
        rename: {q: search}
        set: {page: "${query:p|1}"}
        add: {src: portico}
  - name: version
    match: {path_prefix: /version}
    versions:
      from: [header:API-Version]
      default: v2
      list: [{name: v1, upstream: stable}, {name: v2, upstream: canary}]
  - name: body
    match: {path_prefix: /body}
    upstream: stable
    plugins:
      - name: body_transform
        config:
          max_body: 1MiB
          request: {jq: '{items: [.items[] | {id, name}], count: (.items | length), by: $request_id}'}
  - name: validate
    match: {path_prefix: /api/v1}
    upstream: stable
    plugins: [{name: request_validation, config: {openapi: "{{spec}}", base_path: /api/v1}}]
`

// BenchmarkTrafficFeatures serves requests through each feature's route
// to a real backend on 127.0.0.1: GETs compare with plain/get, bodies with
// plain/post of the same body.
func BenchmarkTrafficFeatures(b *testing.B) {
	spec, err := filepath.Abs("../../examples/specs/orders.openapi.yaml")
	if err != nil {
		b.Fatal(err)
	}
	bs := map[string]*splitBackend{"stable": newSplitBackend(b, "stable")}
	rt := splitRuntime(b, strings.ReplaceAll(trafficBenchConfig, "{{spec}}", spec), bs)
	gets := []struct{ name, target, header string }{
		{"plain/get", "/plain/users/42", ""},
		{"split", "/split/users/42", ""},
		{"sticky", "/sticky/users/42", ""},
		{"mirror", "/mirror/users/42", ""},
		{"regex", "/regex/users/42", ""},
		{"query", "/query/users?q=shoes&debug=1&p=2", ""},
		{"plain/get-header", "/plain/users/42", "v1"},
		{"version", "/version/users/42", "v1"},
	}
	for _, g := range gets {
		b.Run(g.name, func(b *testing.B) {
			if g.header == "" {
				benchServe(b, rt, g.target)
				return
			}
			benchRequests(b, rt, "GET", g.target, nil, "API-Version", g.header)
		})
	}
	order := []byte(`{"customer": "ACME Corp", "note": null, "items": [{"sku": "ABC-123", "qty": 2}, {"sku": "XYZ-9", "qty": 1}]}`)
	for _, size := range []int{1 << 10, 64 << 10} {
		body := jsonItems(size)
		b.Run(fmt.Sprintf("plain/post-%dKiB", size>>10), func(b *testing.B) { benchRequests(b, rt, "POST", "/plain/items", body) })
		b.Run(fmt.Sprintf("body-transform-%dKiB", size>>10), func(b *testing.B) { benchRequests(b, rt, "POST", "/body/items", body) })
	}
	b.Run("plain/post-order", func(b *testing.B) {
		benchRequests(b, rt, "POST", "/plain/orders", order, "Idempotency-Key", "k-12345678")
	})
	b.Run("openapi-validate-order", func(b *testing.B) {
		benchRequests(b, rt, "POST", "/api/v1/orders", order, "Idempotency-Key", "k-12345678")
	})
}

// statusWriter discards a response but for its status.
type statusWriter struct {
	discardWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) { w.code = code }

// benchRequests measures rt serving a new request with body (JSON) and
// the header pairs on each iteration; every answer must be a 2xx.
func benchRequests(b *testing.B, rt http.Handler, method, target string, body []byte, header ...string) {
	w := &statusWriter{discardWriter: discardWriter{h: http.Header{}}}
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(method, target, bytes.NewReader(body))
		r.RemoteAddr = "10.1.2.3:4567"
		if body != nil {
			r.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(header); i += 2 {
			r.Header.Set(header[i], header[i+1])
		}
		clear(w.h)
		w.code = http.StatusOK
		rt.ServeHTTP(w, r)
		if w.code >= 300 {
			b.Fatalf("%s %s: status %d", method, target, w.code)
		}
	}
}

// jsonItems returns a JSON object of about size bytes: {"items": [{"id",
// "name", "tags", "price"}…]}.
func jsonItems(size int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"items": [`)
	for i := 0; buf.Len() < size-100; i++ {
		if i > 0 {
			buf.WriteString(", ")
		}
		fmt.Fprintf(&buf, `{"id": %d, "name": "item %d", "tags": ["a", "b"], "price": %d.5}`, i, i, i)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}
