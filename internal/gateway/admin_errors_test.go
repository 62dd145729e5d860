package gateway_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// admProblem is one entry of the "errors" of a refused admin write.
type admProblem struct {
	Pointer *string `json:"pointer"`
	Path    string  `json:"path"`
	Line    int     `json:"line"`
	Column  int     `json:"column"`
	Message string  `json:"message"`
}

func admProblems(t *testing.T, r admResp) (string, []admProblem) {
	t.Helper()
	var v struct {
		Error  string       `json:"error"`
		Errors []admProblem `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || v.Error == "" || len(v.Errors) == 0 {
		t.Fatalf("not a located error answer (%v):\n%s", err, r.body)
	}
	return v.Error, v.Errors
}

// TestAdminWriteErrorsLocated checks errors found when the gateway builds
// the edited config (plugins, consumers) are located like load errors: by
// JSON pointer into the body, or by config path when the change breaks
// another part of the config.
func TestAdminWriteErrorsLocated(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	before := a.RunningConfig().Hash

	// A plugin of the written route.
	r := a.write(t, "PUT", "/routes/p", `{"match": {"path": "/p"}, "respond": {}, "plugins": [{"name": "request_id"}, {"name": "no_such_plugin"}]}`, 400)
	if _, ps := admProblems(t, r); ps[0].Pointer == nil || *ps[0].Pointer != "/plugins/1/name" || !strings.Contains(ps[0].Message, "unknown plugin") {
		t.Errorf("route plugin: %s", r.body)
	}
	// A plugin's own config.
	r = a.write(t, "PUT", "/routes/p", `{"match": {"path": "/p"}, "respond": {}, "plugins": [{"name": "jwt", "config": {"algorithms": ["HS256"]}}]}`, 400)
	if _, ps := admProblems(t, r); ps[0].Pointer == nil || !strings.HasPrefix(*ps[0].Pointer, "/plugins/0/config") {
		t.Errorf("plugin config: %s", r.body)
	}
	// The global plugin list: pointers index the array.
	r = a.write(t, "PUT", "/plugins", `[{"name": "request_id"}, {"name": "nope"}]`, 400)
	if _, ps := admProblems(t, r); ps[0].Pointer == nil || *ps[0].Pointer != "/1/name" {
		t.Errorf("global plugins: %s", r.body)
	}
	if a.RunningConfig().Hash != before {
		t.Fatal("a refused write changed the config")
	}

	// A change that makes another consumer's key a duplicate: that
	// consumer is named by its config path.
	a.write(t, "PUT", "/consumers/bob", `{"credentials": {"key_auth": [{"key": "bob-literal-key-1"}]}}`, 200)
	r = a.write(t, "PUT", "/consumers/alice", `{"credentials": {"key_auth": [{"key": "bob-literal-key-1"}]}}`, 400)
	msg, ps := admProblems(t, r)
	if ps[0].Pointer != nil || ps[0].Path != "consumers[1].credentials.key_auth[0]" || !strings.Contains(ps[0].Message, `consumer "alice"`) {
		t.Errorf("duplicate key elsewhere: %s", r.body)
	}
	if !strings.Contains(msg, "consumers[1].credentials.key_auth[0] (elsewhere in the config)") {
		t.Errorf("error string %q does not say the problem is elsewhere", msg)
	}
	admNoSecrets(t, "error answer", r.body)
}

// TestAdminNoHTMLEscaping checks <, > and & reach admin JSON answers as
// they are, in read answers, 400 problems and 409 conflicts.
func TestAdminNoHTMLEscaping(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	a.write(t, "PUT", "/upstreams/%3Cup%3E&co", `{"targets": [{"url": "http://127.0.0.1:1"}]}`, 200)
	a.write(t, "PUT", "/routes/%3Ca&b%3E", `{"match": {"path": "/x", "query": {"q": "<&>"}}, "upstream": "<up>&co"}`, 200)
	answers := []admResp{
		a.call(t, "GET", "/routes/%3Ca&b%3E", ""),
		a.call(t, "GET", "/routes", ""),
		a.call(t, "GET", "/upstreams", ""),
		a.write(t, "PUT", "/routes/%3Ca&b%3E", `{"match": {"path": "x<&>"}, "upstream": "<up>&co"}`, 400),
		a.write(t, "DELETE", "/upstreams/%3Cup%3E&co", "", 409),
	}
	for i, r := range answers {
		if strings.Contains(r.body, `\u00`) {
			t.Errorf("answer %d is HTML-escaped:\n%s", i, r.body)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("answer %d: headers %v", i, r.header)
		}
	}
	if !strings.Contains(answers[0].body, `"name": "<a&b>"`) {
		t.Errorf("GET: %s", answers[0].body)
	}
	if !strings.Contains(answers[3].body, `"pointer": "/match/path"`) {
		t.Errorf("PUT: %s", answers[3].body)
	}
	if got := answers[4].json(t)["error"]; got != `upstream "<up>&co" is used by route "<a&b>"; change or delete that route first` {
		t.Errorf("DELETE: %v", got)
	}
}

// TestAdminWriteErrorsOnePass checks an admin write reports every mistake
// of the body in one answer: a decode error in one global plugin (found
// when the file is parsed) does not hide a build (Provision) error in
// another.
func TestAdminWriteErrorsOnePass(t *testing.T) {
	t.Parallel()
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), admConfig(admBackend(t)))
	r := a.write(t, "PUT", "/plugins", `[{"name": "request_id", "confg": {"header": "X-Id"}}, {"name": "jwt", "config": {"algorithms": ["HS256"]}}]`, 400)
	_, ps := admProblems(t, r)
	got := map[string]bool{}
	for _, p := range ps {
		if p.Pointer != nil {
			got[strings.SplitN(*p.Pointer, "/", 3)[1]] = true
		}
	}
	if !got["0"] || !got["1"] || len(ps) != 2 {
		t.Fatalf("want one problem in each plugin, got:\n%s", r.body)
	}
}
