package echo

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHandlerDescribesRequest: the echo backend reports method, path,
// query, host, headers and body size as JSON.
func TestHandlerDescribesRequest(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler("svc"))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/a/b?x=1", strings.NewReader("hello"))
	req.Header.Set("X-Test", "yes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Service   string              `json:"service"`
		Method    string              `json:"method"`
		Path      string              `json:"path"`
		RawQuery  string              `json:"raw_query"`
		Headers   map[string][]string `json:"headers"`
		BodyBytes int64               `json:"body_bytes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Service != "svc" || got.Method != "POST" || got.Path != "/a/b" || got.RawQuery != "x=1" || got.BodyBytes != 5 || got.Headers["X-Test"][0] != "yes" {
		t.Fatalf("echo = %+v", got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}
