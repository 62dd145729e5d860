package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// transformConfig serves routes that rewrite the path, the query and the
// headers the backend receives, from templates reading the request.
const transformConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
consumers:
  - {name: alice, id: alice-id, credentials: {key_auth: [{key: alice-key-123456}]}}
upstreams: {u: {targets: [{url: "{{UP}}"}]}}
routes:
  - name: accounts
    match: {path: "/users/{id}/orders/{order}"}
    upstream: u
    rewrite:
      path: /v2/accounts/{id}/o-{order}
      prefix: /internal
      query:
        remove: [debug]
        rename: {q: search}
        set: {page: "${query:page|1}", user: "${param:id}"}
        add: {rid: "${request_id}"}
    plugins:
      - name: request_id
      - name: headers
        config:
          request:
            set:
              X-User-Id: "${param:id}"
              X-Page: "${query:page|none}"
              X-Tenant-Echo: "t-${header:X-Tenant}"
              X-Client: "${ip}"
              X-Request-Ref: "${request_id}"
              X-Legacy: "gw-$request_id"
  - name: keyed
    match: {path_prefix: /keyed}
    upstream: u
    rewrite: {query: {set: {consumer: "${consumer}"}}}
    plugins:
      - name: key_auth
      - name: headers
        config: {request: {set: {X-Consumer-Ref: "${consumer}/${consumer_name}"}}}
  - name: token
    match: {path_prefix: /token}
    upstream: u
    rewrite: {query: {add: {sub: "${claim:sub}"}}}
    plugins:
      - {name: jwt, config: {algorithms: [HS256], secret: "{{SECRET}}", issuer: test-issuer, audiences: [api], consumer_claim: sub}}
      - name: headers
        config: {request: {set: {X-Sub: "${claim:sub}", X-Scope: "${claim:scope}"}}}
  - name: echo-query
    match: {path_prefix: /inject}
    upstream: u
    plugins:
      - name: headers
        config: {request: {set: {X-Note: "n-${query:note}"}, add: {X-Tag: "${query:note}"}}}
`

// transformDo sends req through the gateway and returns what the backend
// received, failing the test unless the answer is 200.
func transformDo(t *testing.T, req *http.Request) e2eSeen {
	t.Helper()
	resp, body := e2eDo(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return e2eDecodeSeen(t, body)
}

func TestE2ETransformRequest(t *testing.T) {
	t.Parallel()
	up := e2eNewRecorder(t, "up", nil)
	tg := e2eStart(t, transformConfig, map[string]string{"UP": up.URL, "SECRET": jwtSecret})

	t.Run("path template, prefix, query and header templates", func(t *testing.T) {
		req := e2eReq(t, "GET", tg.URL+"/users/caf%C3%A9/orders/9?q=a%20b&debug=1&page=3&keep=x;y", nil)
		req.Header.Set("X-Tenant", "acme")
		req.Header.Set("X-Request-Id", "rid-abc")
		seen := transformDo(t, req)
		if seen.RawPath != "/internal/v2/accounts/caf%C3%A9/o-9" {
			t.Errorf("path = %q", seen.RawPath)
		}
		if want := "search=a%20b&keep=x;y&page=3&user=caf%C3%A9&rid=rid-abc"; seen.RawQuery != want {
			t.Errorf("query = %q, want %q", seen.RawQuery, want)
		}
		for k, want := range map[string]string{"X-User-Id": "café", "X-Page": "3", "X-Tenant-Echo": "t-acme",
			"X-Client": "127.0.0.1", "X-Request-Ref": "rid-abc", "X-Legacy": "gw-rid-abc"} {
			if got := seen.Header.Get(k); got != want {
				t.Errorf("%s = %q, want %q", k, got, want)
			}
		}
	})

	t.Run("defaults and untouched query", func(t *testing.T) {
		seen := transformDo(t, e2eReq(t, "GET", tg.URL+"/users/7/orders/8", nil))
		if !strings.HasPrefix(seen.RawQuery, "page=1&user=7&rid=") || seen.Header.Get("X-Page") != "none" {
			t.Errorf("query %q, X-Page %q", seen.RawQuery, seen.Header.Get("X-Page"))
		}
	})

	t.Run("consumer from key_auth", func(t *testing.T) {
		req := e2eReq(t, "GET", tg.URL+"/keyed/x?consumer=spoofed&a=1", nil)
		req.Header.Set("X-API-Key", "alice-key-123456")
		req.Header.Set("X-Consumer-Ref", "spoofed")
		seen := transformDo(t, req)
		if got := seen.Header.Values("X-Consumer-Ref"); len(got) != 1 || got[0] != "alice-id/alice" {
			t.Errorf("X-Consumer-Ref = %q", got)
		}
		if seen.RawQuery != "a=1&consumer=alice-id" {
			t.Errorf("query = %q", seen.RawQuery)
		}
	})

	t.Run("claims from a JWT", func(t *testing.T) {
		req := e2eReq(t, "GET", tg.URL+"/token?x=1", nil)
		req.Header.Set("Authorization", "Bearer "+hsToken(t, "alice", "read write"))
		seen := transformDo(t, req)
		if seen.Header.Get("X-Sub") != "alice" || seen.Header.Get("X-Scope") != "read write" {
			t.Errorf("X-Sub %q, X-Scope %q", seen.Header.Get("X-Sub"), seen.Header.Get("X-Scope"))
		}
		if seen.RawQuery != "x=1&sub=alice" {
			t.Errorf("query = %q", seen.RawQuery)
		}
	})

	t.Run("CRLF in a query value cannot inject a header", func(t *testing.T) {
		before := up.count()
		raw := e2eRawGet("/inject?note=a%0d%0aX-Injected:%20yes%0d%0a", e2eHostPort(tg.URL), "X-Note: client", "X-Tag: t1")
		resp := e2eRawDo(t, e2eHostPort(tg.URL), "GET", raw)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, resp.Body)
		}
		if up.count() != before+1 {
			t.Fatalf("backend saw %d requests, want 1", up.count()-before)
		}
		seen := e2eDecodeSeen(t, resp.Body)
		if _, ok := seen.Header["X-Injected"]; ok {
			t.Errorf("header injected: %v", seen.Header)
		}
		if _, ok := seen.Header["X-Note"]; ok {
			t.Errorf("X-Note = %q, want it removed (its value would carry CR LF)", seen.Header["X-Note"])
		}
		if got := seen.Header.Values("X-Tag"); len(got) != 1 || got[0] != "t1" {
			t.Errorf("X-Tag = %q, want only the client's value", got)
		}
	})
}

// TestTransformConfigErrors: template mistakes are build errors that name
// the route setting and the position in the template.
func TestTransformConfigErrors(t *testing.T) {
	t.Parallel()
	errs := validateAll(t, `
upstreams: {u: {targets: [{url: "http://127.0.0.1:1"}]}}
routes:
  - name: a
    match: {path: "/users/{id}"}
    upstream: u
    rewrite: {path: "/v2/{user}"}
  - name: b
    match: {path_prefix: /b}
    upstream: u
    rewrite: {query: {set: {t: "${claims:sub}"}}}
  - name: c
    match: {path_prefix: /c}
    upstream: u
    plugins:
      - {name: headers, config: {request: {set: {X-A: "x-${header:X"}}}}
`)
	joined := strings.Join(errs, "\n")
	for _, want := range []string{
		`routes[0].rewrite`, `rewrite.path: position 4: {user} is not a parameter of the route's match.path "/users/{id}"`,
		`routes[1].rewrite`, `rewrite.query.set.t: position 0: ${claims:sub}: unknown placeholder "claims:sub"`,
		`routes[2].plugins[0]`, `request.set.X-A: position 2: "${" without a closing "}"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("errors do not mention %q:\n%s", want, joined)
		}
	}
}
