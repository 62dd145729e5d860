package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/portico-gw/portico/internal/admin/dashboard"
	"github.com/portico-gw/portico/internal/config"
)

// fakeManager is a Manager over a parsed config; Update re-parses the
// edited document without a gateway.
type fakeManager struct {
	fakeController
	mu  sync.Mutex
	cfg *config.Config
	// purges are the PurgeCache calls (purge_test.go).
	purges []CachePurge
}

func (f *fakeManager) RunningConfig() *config.Config {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cfg
}

func (f *fakeManager) TargetStatus(string, string) TargetStatus {
	return TargetStatus{Healthy: true, Available: true}
}

func (f *fakeManager) Version() VersionInfo { return VersionInfo{Version: "test"} }
func (f *fakeManager) History() []Revision  { return nil }

func (f *fakeManager) Plugins() []PluginKind { return nil }

func (f *fakeManager) PluginConfigType(string) (reflect.Type, bool) { return nil, false }

func (f *fakeManager) Update(ifMatch func(string) bool, edit EditFunc) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !ifMatch(f.cfg.Hash) {
		return "", &PreconditionFailedError{Current: f.cfg.Hash}
	}
	doc := config.CloneNode(f.cfg.RawRoot)
	if err := edit(doc, f.cfg); err != nil {
		return "", err
	}
	data, err := config.MarshalDocument(doc)
	if err != nil {
		return "", err
	}
	cfg, err := config.Parse(data, "fake", os.LookupEnv)
	if err != nil {
		return "", err
	}
	f.cfg = cfg
	return cfg.Hash, nil
}

func newFakeManager(t *testing.T, yaml string) *fakeManager {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml), "fake", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return &fakeManager{cfg: cfg}
}

const fakeYAML = `upstreams:
  api: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - {name: a, match: {path: /a}, upstream: api}
consumers:
  - {name: alice, credentials: {key_auth: [{key: alice-key-123}]}}
`

// openAPIDoc is the part of the embedded document the tests look at.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

// TestOpenAPIDocumentsEveryRoute checks the embedded document is valid
// JSON, that every route of the admin mux is documented with its method
// (and nothing else is), that public endpoints are marked so, and that
// every $ref resolves.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	var doc openAPIDoc
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	served := map[string]bool{}
	for _, e := range append(append([]endpoint{}, baseEndpoints...), apiEndpoints()...) {
		key := strings.ToLower(e.method) + " " + e.path
		served[key] = true
		ops, ok := doc.Paths[e.path]
		if !ok {
			t.Errorf("%s %s is not documented", e.method, e.path)
			continue
		}
		raw, ok := ops[strings.ToLower(e.method)]
		if !ok {
			t.Errorf("%s %s: method not documented", e.method, e.path)
			continue
		}
		var op struct {
			Security   *[]map[string][]string     `json:"security"`
			Responses  map[string]json.RawMessage `json:"responses"`
			Parameters []map[string]string        `json:"parameters"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s %s: %v", e.method, e.path, err)
		}
		if public := op.Security != nil && len(*op.Security) == 0; public != e.public {
			t.Errorf("%s %s: documented public=%v, served public=%v", e.method, e.path, public, e.public)
		}
		if _, ok := op.Responses["200"]; !ok {
			t.Errorf("%s %s: no 200 response", e.method, e.path)
		}
		if !e.public {
			if _, ok := op.Responses["401"]; !ok && e.path != dashboard.Prefix {
				t.Errorf("%s %s: no 401 response", e.method, e.path)
			}
		}
		if e.write {
			if len(op.Parameters) == 0 || !strings.HasSuffix(op.Parameters[0]["$ref"], "/IfMatch") {
				t.Errorf("%s %s: If-Match not documented", e.method, e.path)
			}
			for _, code := range []string{"400", "412", "428"} {
				if _, ok := op.Responses[code]; !ok {
					t.Errorf("%s %s: no %s response", e.method, e.path, code)
				}
			}
		}
	}
	// Every pattern registered on the mux is in the tables above (so it
	// was checked), and every documented operation is registered.
	_, patterns := newMux(newFakeManager(t, fakeYAML))
	registered := map[string]bool{}
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			method, path = "GET", p
		}
		key := strings.ToLower(method) + " " + path
		registered[key] = true
		if !served[key] {
			t.Errorf("mux route %q is not in the endpoint tables (and so not checked against the document)", p)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			if !registered[method+" "+path] {
				t.Errorf("documented %s %s is not served", method, path)
			}
		}
	}
	// Every $ref points at an existing component.
	var generic map[string]any
	_ = json.Unmarshal(openAPI, &generic)
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "$ref" {
					refs = append(refs, e.(string))
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(generic)
	sort.Strings(refs)
	for _, ref := range refs {
		parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
		var cur any = generic
		for _, p := range parts {
			m, _ := cur.(map[string]any)
			cur = m[p]
		}
		if cur == nil {
			t.Errorf("unresolved $ref %s", ref)
		}
	}
}

// TestEveryEndpointIsRouted calls each documented endpoint on a handler
// over a fake Manager: none may fall through to the 404 catch-all route.
func TestEveryEndpointIsRouted(t *testing.T) {
	t.Parallel()
	m := newFakeManager(t, fakeYAML)
	m.ready.Store(true)
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()
	for _, e := range append(append([]endpoint{}, baseEndpoints...), apiEndpoints()...) {
		name := map[string]string{"routes": "a", "upstreams": "api", "consumers": "alice"}[strings.Split(e.path, "/")[1]]
		path := strings.ReplaceAll(e.path, "{name}", name)
		req, _ := http.NewRequest(e.method, srv.URL+path, strings.NewReader("{}"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d", e.method, path, resp.StatusCode)
		}
		if resp.StatusCode < 500 && !e.public && e.path != "/metrics" && e.path != "/stats" && resp.Header.Get("ETag") != `"`+m.cfg.Hash+`"` && !e.write {
			t.Errorf("%s %s: ETag %q", e.method, path, resp.Header.Get("ETag"))
		}
	}
}

// TestOpenAPIServed checks /openapi.json serves the embedded document
// without a token.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	m := newFakeManager(t, fakeYAML+"admin: {token: t0k3n}\n")
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&v) != nil || v["openapi"] == nil {
		t.Fatalf("/openapi.json = %d", resp.StatusCode)
	}
	resp, _ = srv.Client().Get(srv.URL + "/routes")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("/routes without a token = %d", resp.StatusCode)
	}
}
