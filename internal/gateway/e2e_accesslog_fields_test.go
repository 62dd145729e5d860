package gateway_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil/wait"
)

// e2eAccessLine waits for the access-log line of the request with the given
// ID and returns it decoded.
func e2eAccessLine(t *testing.T, path, requestID string) map[string]any {
	t.Helper()
	var b []byte
	var found map[string]any
	// The gateway flushes the file on a timer: poll it.
	ok := wait.Within(5*time.Second, func() bool {
		b, _ = os.ReadFile(path)
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, requestID) {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("access log line is not JSON: %v\n%s", err, line)
			}
			if m["request_id"] == requestID {
				found = m
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no access log line for request %s in:\n%s", requestID, b)
	}
	return found
}

// TestAccessLogFields checks every field of the access-log line of a proxied
// request that needed a retry, and that the query is logged only when
// log.access.query is on.
func TestAccessLogFields(t *testing.T) {
	for _, withQuery := range []bool{false, true} {
		name := "query off"
		if withQuery {
			name = "query on"
		}
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			be := e2eNewRecorder(t, "be", func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					w.WriteHeader(http.StatusBadGateway) // the first attempt fails and is retried
				}
			})
			logPath := t.TempDir() + "/access.log"
			tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "{{LOG}}", query: {{QUERY}}}}
upstreams:
  pool-a:
    targets: [{url: "{{BE}}"}]
    retry: {attempts: 1, on: [502]}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: pool-a}
`, map[string]string{"LOG": logPath, "BE": be.URL, "QUERY": map[bool]string{false: "false", true: "true"}[withQuery]})

			req := e2eReq(t, http.MethodPut, tg.URL+"/api/items?api_key=s3cret&x=1", strings.NewReader("hello"))
			req.Header.Set("User-Agent", "access-log-test/1.0")
			req.Header.Set("X-Request-Id", "req-accesslog-fields")
			resp, body := e2eDo(t, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			if n := be.count(); n != 2 {
				t.Fatalf("backend saw %d requests, want 2 (one retry)", n)
			}
			m := e2eAccessLine(t, logPath, "req-accesslog-fields")
			want := map[string]any{
				"request_id":    "req-accesslog-fields",
				"client_ip":     "127.0.0.1",
				"method":        "PUT",
				"host":          e2eHostPort(tg.URL),
				"path":          "/api/items",
				"user_agent":    "access-log-test/1.0",
				"route":         "api",
				"upstream":      "pool-a",
				"upstream_addr": e2eHostPort(be.URL),
				"attempts":      float64(2),
				"status":        float64(200),
				"bytes_in":      float64(5),
				"bytes_out":     float64(len(body)),
				"error":         "",
				"consumer":      "",
				"auth_failure":  "",
			}
			if withQuery {
				want["query"] = "api_key=s3cret&x=1"
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %#v, want %#v", k, m[k], v)
				}
			}
			for _, k := range []string{"duration_ms", "upstream_ms"} {
				if v, ok := m[k].(float64); !ok || v <= 0 {
					t.Errorf("%s = %#v, want a positive number", k, m[k])
				}
			}
			if _, ok := m["time"].(string); !ok {
				t.Errorf("time = %#v, want a timestamp", m["time"])
			}
			if !withQuery {
				if _, ok := m["query"]; ok {
					t.Errorf("query logged with log.access.query off: %#v", m["query"])
				}
				if raw, _ := json.Marshal(m); strings.Contains(string(raw), "s3cret") {
					t.Errorf("query secret in the access log line: %s", raw)
				}
			}
			// Fields listed here and checked above are every field of the line.
			known := map[string]bool{"time": true, "duration_ms": true, "upstream_ms": true}
			for k := range want {
				known[k] = true
			}
			for k := range m {
				if !known[k] {
					t.Errorf("unexpected field %s = %#v", k, m[k])
				}
			}
		})
	}
}

// TestAccessLogNoUpstream checks the upstream fields of a request answered
// without any upstream attempt.
func TestAccessLogNoUpstream(t *testing.T) {
	logPath := t.TempDir() + "/access.log"
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "{{LOG}}"}}
upstreams:
  u: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - {name: api, match: {path_prefix: /api}, upstream: u}
`, map[string]string{"LOG": logPath})
	req := e2eReq(t, http.MethodGet, tg.URL+"/nowhere", nil)
	req.Header.Set("X-Request-Id", "req-accesslog-none")
	if resp, _ := e2eDo(t, req); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.StatusCode)
	}
	m := e2eAccessLine(t, logPath, "req-accesslog-none")
	for k, v := range map[string]any{"upstream": "", "upstream_addr": "", "attempts": float64(0), "status": float64(404), "user_agent": "Go-http-client/1.1"} {
		if m[k] != v {
			t.Errorf("%s = %#v, want %#v", k, m[k], v)
		}
	}
}
