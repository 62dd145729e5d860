package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// PurgeCache records the purge and answers like a gateway whose route a
// has a cache and route b none.
func (f *fakeManager) PurgeCache(_ context.Context, p CachePurge) (CachePurgeResult, error) {
	f.mu.Lock()
	f.purges = append(f.purges, p)
	f.mu.Unlock()
	switch p.Route {
	case "", "a":
		return CachePurgeResult{Purged: 2, Routes: []string{"a"}}, nil
	case "b":
		return CachePurgeResult{Routes: []string{}}, &PurgeError{Field: "route", Msg: `route "b" has no cache`}
	}
	return CachePurgeResult{Routes: []string{}}, &PurgeError{Field: "route", NotFound: true, Msg: "route " + quote(p.Route) + " not found"}
}

// purgeBodyCases are TestCachePurgeBody's requests and answers.
var purgeBodyCases = []struct {
	desc, body string
	status     int
	pointer    string // of the first problem, for a 400
	want       CachePurge
}{
	{desc: "url", body: `{"url": "https://api.example.com/v1/items?id=1"}`, status: 200, want: CachePurge{URL: "https://api.example.com/v1/items?id=1"}},
	{desc: "prefix on a route", body: `{"prefix": "api.example.com/v1/", "route": "a"}`, status: 200, want: CachePurge{Prefix: "api.example.com/v1/", Route: "a"}},
	{desc: "tag", body: `{"tag": "product-42"}`, status: 200, want: CachePurge{Tag: "product-42"}},
	{desc: "all", body: `{"all": true}`, status: 200, want: CachePurge{All: true}},
	{desc: "nothing", body: `{}`, status: 400, pointer: ""},
	{desc: "all false", body: `{"all": false}`, status: 400, pointer: ""},
	{desc: "two selectors", body: `{"url": "http://a/", "tag": "t"}`, status: 400, pointer: "/tag"},
	{desc: "unknown field", body: `{"tags": "t"}`, status: 400, pointer: "/tags"},
	{desc: "url not a string", body: `{"url": 1}`, status: 400, pointer: "/url"},
	{desc: "all not a boolean", body: `{"all": "yes"}`, status: 400, pointer: "/all"},
	{desc: "empty tag", body: `{"tag": ""}`, status: 400, pointer: "/tag"},
	{desc: "relative url", body: `{"url": "/v1/items"}`, status: 400, pointer: "/url"},
	{desc: "prefix without host", body: `{"prefix": "/v1/"}`, status: 400, pointer: "/prefix"},
	{desc: "tag with a space", body: `{"tag": "a b"}`, status: 400, pointer: "/tag"},
	{desc: "duplicate key", body: `{"tag": "a", "tag": "b"}`, status: 400, pointer: "/tag"},
	{desc: "array", body: `[{"all": true}]`, status: 400, pointer: ""},
	{desc: "syntax", body: `{"all": tru}`, status: 400},
	{desc: "empty body", body: ``, status: 400, pointer: ""},
	{desc: "route without a cache", body: `{"all": true, "route": "b"}`, status: 400, pointer: "/route"},
	{desc: "unknown route", body: `{"all": true, "route": "nope"}`, status: 404},
	{desc: "too large", body: `{"tag": "` + strings.Repeat("x", maxPurgeBody) + `"}`, status: 413},
}

// TestCachePurgeBody checks POST /cache/purge decodes exactly one
// selector and locates every mistake by JSON pointer.
func TestCachePurgeBody(t *testing.T) {
	t.Parallel()
	m := newFakeManager(t, fakeYAML)
	srv := httptest.NewServer(Handler(m))
	t.Cleanup(srv.Close)
	for _, tc := range purgeBodyCases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			resp, err := srv.Client().Post(srv.URL+"/cache/purge", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Purged int      `json:"purged"`
				Routes []string `json:"routes"`
				Error  string   `json:"error"`
				Errors []struct {
					Pointer *string `json:"pointer"`
					Line    int     `json:"line"`
				} `json:"errors"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %+v", resp.StatusCode, tc.status, got)
			}
			switch tc.status {
			case 200:
				if got.Purged != 2 || len(got.Routes) != 1 || got.Routes[0] != "a" {
					t.Fatalf("answer %+v", got)
				}
				m.mu.Lock()
				found := slices.Contains(m.purges, tc.want)
				m.mu.Unlock()
				if !found {
					t.Fatalf("no purge %+v", tc.want)
				}
			case 400:
				if got.Error == "" || len(got.Errors) == 0 {
					t.Fatalf("answer %+v", got)
				}
				if tc.desc == "syntax" {
					if got.Errors[0].Line != 1 {
						t.Fatalf("syntax error not located: %+v", got)
					}
					return
				}
				if p := got.Errors[0].Pointer; p == nil || *p != tc.pointer {
					t.Fatalf("pointer %v, want %q: %s", p, tc.pointer, got.Error)
				}
			default:
				if got.Error == "" {
					t.Fatalf("no error message")
				}
			}
		})
	}
}

// TestCachePurgeAuth needs the admin token like every API endpoint, and
// refuses a cross-origin browser request.
func TestCachePurgeAuth(t *testing.T) {
	t.Parallel()
	m := newFakeManager(t, fakeYAML+"admin: {token: t0k3n}\n")
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()
	do := func(token, origin string) int {
		req, _ := http.NewRequest("POST", srv.URL+"/cache/purge", strings.NewReader(`{"all": true}`))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := do("", ""); got != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", got)
	}
	if got := do("wrong", ""); got != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", got)
	}
	if got := do("t0k3n", "https://evil.example"); got != http.StatusForbidden {
		t.Fatalf("cross-origin: %d", got)
	}
	if got := do("t0k3n", ""); got != http.StatusOK {
		t.Fatalf("with the token: %d", got)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.purges) != 1 {
		t.Fatalf("purges %v", m.purges)
	}
}
