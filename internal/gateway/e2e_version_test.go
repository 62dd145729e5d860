package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apiVersionConfig is a route with two versions on two recording backends:
// v1 deprecated (and retired with 410 when SUNSET is past) with a headers
// plugin of its own, v2 the default.
const apiVersionConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "{{LOG}}"}}
upstreams:
  orders-v1: {targets: [{url: "{{V1}}"}]}
  orders-v2: {targets: [{url: "{{V2}}"}]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    plugins:
      - name: headers
        config: {request: {set: {X-Route-Plugin: "yes"}}}
    versions:
      from: [{{FROM}}]
      default: {{DEFAULT}}
      strip_path: {{STRIP}}
      list:
        - name: v1
          upstream: orders-v1
          plugins:
            - name: headers
              config: {request: {set: {X-Version-Plugin: v1}}, response: {set: {X-Served-By: v1-plugin}}}
          deprecated:
            date: 2026-06-01
            sunset: "{{SUNSET}}"
            link: https://docs.acme.dev/v1-migration
            sunset_link: https://docs.acme.dev/v1-sunset
            gone_after_sunset: true
        - name: v2
          upstream: orders-v2
`

// versionGateway starts apiVersionConfig with the given settings and returns
// the gateway URL, the two backends and the access log path.
func versionGateway(t *testing.T, from, def, strip, sunset string) (url string, v1, v2 *e2eRecorder, logPath string) {
	t.Helper()
	v1, v2 = e2eNewRecorder(t, "v1", nil), e2eNewRecorder(t, "v2", nil)
	logPath = t.TempDir() + "/access.log"
	tg := e2eStart(t, apiVersionConfig, map[string]string{"V1": v1.URL, "V2": v2.URL, "LOG": logPath,
		"FROM": from, "DEFAULT": def, "STRIP": strip, "SUNSET": sunset})
	return tg.URL, v1, v2, logPath
}

// versionGet sends GET target with header pairs and returns the response
// and body.
func versionGet(t *testing.T, target string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req := e2eReq(t, http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return e2eDo(t, req)
}

// TestVersionSources sends requests that name their version in each
// source and checks which backend got them and the path it saw.
func TestVersionSources(t *testing.T) {
	url, _, _, _ := versionGateway(t, "path, header:API-Version, query:version, media_type:application/vnd.acme", "v2", "true", "2099-01-01")
	for _, tc := range []struct {
		name, target       string
		header             []string
		backend, wantPath  string
		wantQuery, version string
	}{
		{"path v1", "/orders/v1/items/7", nil, "v1", "/orders/items/7", "", "v1"},
		{"path v2", "/orders/v2/items", nil, "v2", "/orders/items", "", "v2"},
		{"path, segment only", "/orders/v1", nil, "v1", "/orders", "", "v1"},
		{"path, trailing slash kept", "/orders/v1/", nil, "v1", "/orders/", "", "v1"},
		{"header", "/orders/items", []string{"API-Version", "v1"}, "v1", "/orders/items", "", "v1"},
		{"query", "/orders/items?version=v1&x=1", nil, "v1", "/orders/items", "version=v1&x=1", "v1"},
		{"media type", "/orders/items", []string{"Accept", "application/vnd.acme.v1+json"}, "v1", "/orders/items", "", "v1"},
		{"media type in a list, case-insensitive", "/orders/items", []string{"Accept", "text/html, Application/VND.Acme.v1+json;q=0.9"}, "v1", "/orders/items", "", "v1"},
		{"media type without a version is no version", "/orders/items", []string{"Accept", "application/vnd.acme+json"}, "v2", "/orders/items", "", "v2"},
		{"default", "/orders/items", nil, "v2", "/orders/items", "", "v2"},
		{"a segment that is not a version", "/orders/items/v1", nil, "v2", "/orders/items/v1", "", "v2"},
		{"path before header", "/orders/v2/x", []string{"API-Version", "v1"}, "v2", "/orders/x", "", "v2"},
		{"header before query", "/orders/x?version=v2", []string{"API-Version", "v1"}, "v1", "/orders/x", "version=v2", "v1"},
		{"query before media type", "/orders/x?version=v2", []string{"Accept", "application/vnd.acme.v1+json"}, "v2", "/orders/x", "version=v2", "v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := versionGet(t, url+tc.target, tc.header...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen := e2eDecodeSeen(t, body)
			if seen.Backend != tc.backend || seen.Path != tc.wantPath || seen.RawQuery != tc.wantQuery {
				t.Errorf("backend %s saw %s?%s, want %s to see %s?%s", seen.Backend, seen.Path, seen.RawQuery, tc.backend, tc.wantPath, tc.wantQuery)
			}
			if got := seen.Header.Get("X-Route-Plugin"); got != "yes" {
				t.Errorf("route plugin header = %q, want yes", got)
			}
			// The version's own plugin runs for v1 only.
			wantVP := map[string]string{"v1": "v1", "v2": ""}[tc.version]
			if got := seen.Header.Get("X-Version-Plugin"); got != wantVP {
				t.Errorf("X-Version-Plugin = %q, want %q", got, wantVP)
			}
			if got := resp.Header.Get("X-Served-By"); got != map[string]string{"v1": "v1-plugin", "v2": ""}[tc.version] {
				t.Errorf("X-Served-By = %q", got)
			}
		})
	}
}

// TestVersionNoStrip keeps the version segment in the forwarded path.
func TestVersionNoStrip(t *testing.T) {
	url, _, _, _ := versionGateway(t, "path", "v2", "false", "2099-01-01")
	resp, body := versionGet(t, url+"/orders/v1/items")
	seen := e2eDecodeSeen(t, body)
	if resp.StatusCode != 200 || seen.Backend != "v1" || seen.Path != "/orders/v1/items" {
		t.Fatalf("status %d, backend %s saw %s; want v1 to see /orders/v1/items", resp.StatusCode, seen.Backend, seen.Path)
	}
}

// TestVersionErrors: an unknown version is 400 naming the known ones and
// not the client's value, an Accept vendor type naming no known version
// is 406, and without a default a request naming none is 400; no backend
// sees any of them.
func TestVersionErrors(t *testing.T) {
	url, v1, v2, _ := versionGateway(t, "path, header:API-Version, media_type:application/vnd.acme", "\"\"", "true", "2099-01-01")
	long := "v9" + strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name, target string
		header       []string
		status       int
		want         string
	}{
		{"unknown path version", "/orders/v9/items", nil, 400, "unknown API version (known: v1, v2)"},
		{"unknown header version", "/orders/items", []string{"API-Version", long}, 400, "unknown API version (known: v1, v2)"},
		{"first source decides", "/orders/v3/items", []string{"API-Version", "v1"}, 400, "unknown API version (known: v1, v2)"},
		{"unknown media type version", "/orders/items", []string{"Accept", "application/vnd.acme.v7+json"}, 406,
			"Accept names no known version of application/vnd.acme (known: v1, v2)"},
		{"no version, no default", "/orders/items", []string{"Accept", "application/json"}, 400,
			"API version required (known: v1, v2; send it in the path (/orders/<version>/...) or the API-Version header or Accept: application/vnd.acme.<version>+json)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := versionGet(t, url+tc.target, tc.header...)
			eb := e2eCheckError(t, resp.StatusCode, resp.Header, body, tc.status)
			if eb.Error != tc.want {
				t.Errorf("error = %q, want %q", eb.Error, tc.want)
			}
		})
	}
	if n := v1.count() + v2.count(); n != 0 {
		t.Errorf("backends saw %d refused requests", n)
	}
}

// TestVersionDeprecation: a deprecated version's responses carry the
// Deprecation, Sunset and Link headers exactly, a current version's carry
// none, and before the sunset the deprecated version is still served.
func TestVersionDeprecation(t *testing.T) {
	url, v1, _, _ := versionGateway(t, "path", "v2", "true", "2099-01-01")
	resp, body := versionGet(t, url+"/orders/v1/items")
	if resp.StatusCode != 200 || e2eDecodeSeen(t, body).Backend != "v1" {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := map[string][]string{
		"Deprecation": {"@1780272000"}, // 2026-06-01T00:00:00Z
		"Sunset":      {"Thu, 01 Jan 2099 00:00:00 GMT"},
		"Link":        {`<https://docs.acme.dev/v1-migration>; rel="deprecation"`, `<https://docs.acme.dev/v1-sunset>; rel="sunset"`},
	}
	for name, vals := range want {
		if got := resp.Header.Values(name); strings.Join(got, "|") != strings.Join(vals, "|") {
			t.Errorf("%s = %q, want %q", name, got, vals)
		}
	}
	resp, _ = versionGet(t, url+"/orders/v2/items")
	for name := range want {
		if got := resp.Header.Values(name); len(got) != 0 {
			t.Errorf("v2 response has %s: %q", name, got)
		}
	}
	if v1.count() != 1 {
		t.Errorf("v1 backend saw %d requests, want 1", v1.count())
	}
}

// TestVersionGoneAfterSunset: after a past sunset with gone_after_sunset
// the version answers 410 with the deprecation headers, its backend sees
// nothing, and the other version is still served.
func TestVersionGoneAfterSunset(t *testing.T) {
	sunset := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	url, v1, v2, _ := versionGateway(t, "header:API-Version", "v2", "true", sunset)
	resp, body := versionGet(t, url+"/orders/items", "API-Version", "v1")
	eb := e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusGone)
	if !strings.HasPrefix(eb.Error, "API version v1 is gone since ") {
		t.Errorf("error = %q", eb.Error)
	}
	if resp.Header.Get("Deprecation") == "" || resp.Header.Get("Sunset") == "" {
		t.Errorf("410 lacks Deprecation/Sunset: %v", resp.Header)
	}
	if resp, _ := versionGet(t, url+"/orders/items"); resp.StatusCode != 200 || v2.count() != 1 {
		t.Errorf("v2: status %d, backend saw %d", resp.StatusCode, v2.count())
	}
	if v1.count() != 0 {
		t.Errorf("v1 backend saw %d requests after its sunset", v1.count())
	}
}

// TestVersionMetricsAndAccessLog: requests are counted per version (and
// refused ones under version ""), under the version's upstream in the
// request metrics, and the access log names the version.
func TestVersionMetricsAndAccessLog(t *testing.T) {
	v1, v2 := e2eNewRecorder(t, "v1", nil), e2eNewRecorder(t, "v2", nil)
	logPath := t.TempDir() + "/access.log"
	tg := e2eStart(t, apiVersionConfig, map[string]string{"V1": v1.URL, "V2": v2.URL, "LOG": logPath,
		"FROM": "path", "DEFAULT": "\"\"", "STRIP": "true", "SUNSET": "2099-01-01"})
	for _, target := range []string{"/orders/v1/a", "/orders/v1/b", "/orders/v2/a", "/orders/v9/a", "/orders/a"} {
		versionGet(t, tg.URL+target)
	}
	req := e2eReq(t, http.MethodGet, tg.URL+"/orders/v2/logged", nil)
	req.Header.Set("X-Request-Id", "req-version-log")
	e2eDo(t, req)

	ms := scrape(t, tg.AdminURL)
	for _, tc := range []struct {
		version, status string
		want            float64
	}{{"v1", "2xx", 2}, {"v2", "2xx", 2}, {"", "4xx", 2}} {
		if got := value(ms, "portico_api_version_requests_total", "route", "orders", "version", tc.version, "status", tc.status); got != tc.want {
			t.Errorf("portico_api_version_requests_total{version=%q,status=%q} = %v, want %v", tc.version, tc.status, got, tc.want)
		}
	}
	if got := value(ms, "portico_requests_total", "route", "orders", "upstream", "orders-v1", "status", "2xx"); got != 2 {
		t.Errorf("portico_requests_total{upstream=orders-v1} = %v, want 2", got)
	}
	line := e2eAccessLine(t, logPath, "req-version-log")
	if line["version"] != "v2" || line["upstream"] != "orders-v2" || line["path"] != "/orders/v2/logged" {
		t.Errorf("access log version=%v upstream=%v path=%v", line["version"], line["upstream"], line["path"])
	}
}

// TestVersionsThroughAdminAPI: the admin API shows a versioned route with
// its version plugins' secret values redacted, refuses to delete an
// upstream a version uses, and a PUT of the route changes the versions like
// any route change.
func TestVersionsThroughAdminAPI(t *testing.T) {
	v1, v2 := e2eNewRecorder(t, "v1", nil), e2eNewRecorder(t, "v2", nil)
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), `server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "127.0.0.1:0", token: "${PORTICO_TEST_ADMIN_TOKEN}"}
log: {access: {output: "off"}}
upstreams:
  orders-v1: {targets: [{url: "`+v1.URL+`"}]}
  orders-v2: {targets: [{url: "`+v2.URL+`"}]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    versions:
      from: [header:API-Version]
      default: v2
      list:
        - name: v1
          upstream: orders-v1
          plugins: [{name: headers, config: {request: {set: {X-Version-Key: "${PORTICO_TEST_ADMIN_ALICE_KEY}"}}}}]
        - {name: v2, upstream: orders-v2}
`)
	r := a.call(t, "GET", "/routes/orders", "")
	if r.status != 200 || !strings.Contains(r.body, `"versions"`) || !strings.Contains(r.body, `"orders-v1"`) {
		t.Fatalf("GET /routes/orders = %d %s", r.status, r.body)
	}
	admNoSecrets(t, "GET /routes/orders", r.body)
	if _, body := a.traffic(t, "/orders/x", "API-Version", "v1"); !strings.Contains(body, admSecrets["PORTICO_TEST_ADMIN_ALICE_KEY"]) {
		t.Errorf("the v1 plugin did not set its header: %s", body)
	}

	r = a.call(t, "DELETE", "/upstreams/orders-v1", "", "If-Match", `"`+a.RunningConfig().Hash+`"`)
	if r.status != http.StatusConflict || !strings.Contains(r.body, `used by route \"orders\"`) {
		t.Errorf("DELETE /upstreams/orders-v1 = %d %s, want refused naming the route", r.status, r.body)
	}

	if _, body := a.traffic(t, "/orders/x"); e2eDecodeSeen(t, []byte(body)).Backend != "v2" {
		t.Fatalf("before the change the default is not v2: %s", body)
	}
	a.write(t, "PUT", "/routes/orders", `{"match": {"path_prefix": "/orders"}, "versions": {"from": ["header:API-Version"], "default": "v1",
		"list": [{"name": "v1", "upstream": "orders-v1"}, {"name": "v2", "upstream": "orders-v2"}]}}`, 200)
	status, body := a.traffic(t, "/orders/x")
	if seen := e2eDecodeSeen(t, []byte(body)); status != 200 || seen.Backend != "v1" || seen.Header.Get("X-Version-Key") != "" {
		t.Errorf("after the change: status %d, backend %s, plugin header %q; want v1 without the removed plugin", status, seen.Backend, seen.Header.Get("X-Version-Key"))
	}
}

// BenchmarkServeVersions compares a plain route with a route with versions
// (header source, a deprecated version with its headers) to the same real
// backend: the difference is the versions' cost per request.
func BenchmarkServeVersions(b *testing.B) {
	bs := map[string]*splitBackend{"a": newSplitBackend(b, "a")}
	rt := splitRuntime(b, splitHead+`upstreams:
  a: {targets: [{url: "{{a}}"}]}
routes:
  - {name: plain, match: {path_prefix: /plain}, upstream: a}
  - name: orders
    match: {path_prefix: /orders}
    versions:
      from: [path, header:API-Version]
      list:
        - {name: v1, upstream: a, deprecated: {date: 2026-06-01, sunset: 2099-01-01, link: "https://x.test/v1"}}
        - {name: v2, upstream: a}
`, bs)
	for _, path := range []string{"/plain/x", "/orders/x"} {
		b.Run(path, func(b *testing.B) {
			r := httptest.NewRequest("GET", path, nil)
			r.RemoteAddr = "10.1.2.3:4567"
			r.Header.Set("API-Version", "v1")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				rt.ServeHTTP(w, r)
			}
		})
	}
}

// TestVersionPreflightAndVary: a CORS preflight, which carries no version
// header, is answered by the route's cors plugin instead of 400; other
// requests without a version still get 400; and every response names the
// request headers the version is read from in Vary.
func TestVersionPreflightAndVary(t *testing.T) {
	be := e2eNewRecorder(t, "v1", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  a: {targets: [{url: "{{BE}}"}]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    plugins: [{name: cors, config: {allow_origins: ["https://app.test"], allow_headers: [API-Version]}}]
    versions:
      from: [query:version, header:api-version, media_type:application/vnd.acme, cookie:ver]
      list: [{name: v1, upstream: a}]
`, map[string]string{"BE": be.URL})
	pre := e2eReq(t, http.MethodOptions, tg.URL+"/orders/x", nil)
	pre.Header.Set("Origin", "https://app.test")
	pre.Header.Set("Access-Control-Request-Method", "GET")
	pre.Header.Set("Access-Control-Request-Headers", "api-version")
	resp, body := e2eDo(t, pre)
	if resp.StatusCode >= 300 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.test" {
		t.Errorf("preflight: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	opt := e2eReq(t, http.MethodOptions, tg.URL+"/orders/x", nil)
	resp, body = e2eDo(t, opt)
	e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusBadRequest)

	resp, body = versionGet(t, tg.URL+"/orders/x")
	e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusBadRequest)
	resp, _ = versionGet(t, tg.URL+"/orders/x", "API-Version", "v1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := strings.Join(resp.Header.Values("Vary"), ", "); !strings.HasPrefix(got, "Api-Version, Accept, Cookie") {
		t.Errorf("Vary = %q, want it to start with Api-Version, Accept, Cookie", got)
	}
	if be.count() != 1 {
		t.Errorf("backend saw %d requests, want 1", be.count())
	}
}
