package gateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// e2eValidateSpec is the API the request_validation tests serve; {{MAX}}
// is the limit query parameter's maximum.
const e2eValidateSpec = `openapi: 3.1.0
info: {title: Orders, version: "1"}
paths:
  /orders:
    get:
      parameters:
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: {{MAX}}}}
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [customer, items]
              properties:
                customer: {type: string, minLength: 1}
                items:
                  type: array
                  minItems: 1
                  items:
                    type: object
                    required: [sku, qty]
                    properties:
                      sku: {type: string}
                      qty: {type: integer, minimum: 1}
`

const e2eValidateConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
routes:
  - name: orders
    match: {path_prefix: /api}
    upstream: be
    plugins:
      - name: request_validation
        config: {openapi: "{{SPEC}}", base_path: /api, max_body: 2KiB}
`

// writeValidateSpec writes the spec with the given limit maximum.
func writeValidateSpec(t *testing.T, file string, max int) {
	t.Helper()
	spec := strings.ReplaceAll(e2eValidateSpec, "{{MAX}}", fmt.Sprint(max))
	if err := os.WriteFile(file, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
}

type e2eProblem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Errors []struct {
		Location string `json:"location"`
		Name     string `json:"name"`
		Pointer  string `json:"pointer"`
	} `json:"errors"`
	RequestID string `json:"request_id"`
}

// e2eCheckProblem asserts a problem+json answer with the wanted status.
func e2eCheckProblem(t *testing.T, resp *http.Response, body []byte, want int) e2eProblem {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, want, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var p e2eProblem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	if p.Status != want || p.Title == "" || p.Type == "" || p.RequestID == "" || resp.Header.Get("X-Request-Id") != p.RequestID {
		t.Errorf("problem %+v (X-Request-Id %q)", p, resp.Header.Get("X-Request-Id"))
	}
	return p
}

// TestRequestValidation: through a real gateway and backend, invalid
// requests never reach the backend, valid ones reach it byte for byte,
// and a reload picks up a changed spec.
func TestRequestValidation(t *testing.T) {
	t.Parallel()
	be := e2eNewRecorder(t, "be", nil)
	spec := filepath.Join(t.TempDir(), "orders.yaml")
	writeValidateSpec(t, spec, 100)
	vars := map[string]string{"BE": be.URL, "SPEC": spec}
	tg := e2eStart(t, e2eValidateConfig, vars)
	post := func(ctype string, body io.Reader) (*http.Response, []byte) {
		r := e2eReq(t, "POST", tg.URL+"/api/orders", body)
		r.Header.Set("Content-Type", ctype)
		return e2eDo(t, r)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

	valid := `{"customer": "ann",` + "\n" + `"items": [{"sku": "A-1", "qty": 2}]}`
	resp, body := post("application/json", strings.NewReader(valid))
	if resp.StatusCode != 200 {
		t.Fatalf("valid body: %d %s", resp.StatusCode, body)
	}
	if s := e2eDecodeSeen(t, body); s.BodySHA != sum(valid) || s.ContentLength != int64(len(valid)) || s.Path != "/api/orders" {
		t.Errorf("backend saw %+v", s)
	}

	// A chunked body reaches the backend whole, with its length.
	resp, body = post("application/json", io.MultiReader(strings.NewReader(valid)))
	if resp.StatusCode != 200 {
		t.Fatalf("chunked valid body: %d %s", resp.StatusCode, body)
	}
	if s := e2eDecodeSeen(t, body); s.BodySHA != sum(valid) || s.ContentLength != int64(len(valid)) {
		t.Errorf("backend saw %+v for a chunked body", s)
	}
	raw := "POST /api/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
		fmt.Sprintf("%x\r\n%s\r\n", 10, valid[:10]) + fmt.Sprintf("%x\r\n%s\r\n", len(valid)-10, valid[10:]) + "0\r\n\r\n"
	if rr := e2eRawDo(t, tg.Addrs["127.0.0.1:0"], "POST", raw); rr.StatusCode != 200 || e2eDecodeSeen(t, rr.Body).BodySHA != sum(valid) {
		t.Errorf("raw chunked body: %d %s", rr.StatusCode, rr.Body)
	}
	seen := be.count()

	resp, body = post("application/json", strings.NewReader(`{"customer":"","items":[{"sku":"A-1","qty":0}],"x":1}`))
	p := e2eCheckProblem(t, resp, body, 400)
	if len(p.Errors) != 3 {
		t.Errorf("errors %+v", p.Errors)
	}
	resp, body = post("application/json", strings.NewReader(`{"customer":"a","items":[{"sku":"`+strings.Repeat("x", 3000)+`","qty":1}]}`))
	e2eCheckProblem(t, resp, body, 413)
	resp, body = post("application/json", io.MultiReader(strings.NewReader(strings.Repeat(" ", 3000)+valid)))
	e2eCheckProblem(t, resp, body, 413)
	resp, body = post("text/xml", strings.NewReader("<order/>"))
	e2eCheckProblem(t, resp, body, 415)
	resp, body = e2eGet(t, tg.URL+"/api/orders?limit=500")
	if p := e2eCheckProblem(t, resp, body, 400); len(p.Errors) != 1 || p.Errors[0].Name != "limit" {
		t.Errorf("errors %+v", p.Errors)
	}
	resp, body = e2eGet(t, tg.URL+"/api/customers")
	e2eCheckProblem(t, resp, body, 404)
	if n := be.count(); n != seen {
		t.Fatalf("the backend received %d invalid requests", n-seen)
	}
	if c := tg.Runtime.Stats().Counter("portico_request_validation_rejected_total", `route="orders",reason="invalid"`).Value(); c != 2 {
		t.Errorf("rejected invalid counter %d, want 2", c)
	}

	// The spec is read again when the config is applied again.
	resp, _ = e2eGet(t, tg.URL+"/api/orders?limit=50")
	if resp.StatusCode != 200 {
		t.Fatalf("limit=50 before the reload: %d", resp.StatusCode)
	}
	writeValidateSpec(t, spec, 10)
	cfg := strings.ReplaceAll(strings.ReplaceAll(e2eValidateConfig, "{{BE}}", be.URL), "{{SPEC}}", spec) +
		"\nadmin: {listen: \"127.0.0.1:0\"}\nlog: {access: {output: \"off\"}}\n"
	if err := tg.Runtime.Apply(testutil.ParseConfig(t, cfg)); err != nil {
		t.Fatal(err)
	}
	resp, body = e2eGet(t, tg.URL+"/api/orders?limit=50")
	e2eCheckProblem(t, resp, body, 400)

	// A spec broken on disk fails the reload and the running one stays.
	if err := os.WriteFile(spec, []byte("openapi: 3.1.0\npaths:\n  /orders:\n    get: {parameters: [}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := tg.Runtime.Apply(testutil.ParseConfig(t, cfg))
	if err == nil || !strings.Contains(err.Error(), "routes[0].plugins[0].config") || !strings.Contains(err.Error(), "orders.yaml: line 3: did not find expected node content") {
		t.Fatalf("reload with a broken spec: %v", err)
	}
	resp, _ = e2eGet(t, tg.URL+"/api/orders?limit=5")
	if resp.StatusCode != 200 {
		t.Errorf("after the failed reload: %d", resp.StatusCode)
	}
}
