package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/testutil"
)

const jwtSecret = "portico-test-hs256-secret-0123456789abcdef"

func hsToken(t *testing.T, sub string, scopes string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "iss": "test-issuer", "aud": "api", "scope": scopes,
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	})
	s, err := tok.SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authGateway serves a key_auth + jwt route (all-of), a route where both
// have `anonymous` (any-of) followed by an acl that refuses the anonymous
// consumer, and a public route.
func authGateway(t *testing.T, up *seenBackend) *testutil.Gateway {
	return testutil.StartGateway(t, fmt.Sprintf(`
server: {listen: [{addr: "127.0.0.1:0"}]}
consumers:
  - {name: alice, groups: [staff], credentials: {key_auth: [{key: alice-key-123456}]}}
  - {name: bob, groups: [staff]}
  - {name: guest, groups: [guests]}
upstreams: {u: {targets: [{url: %q}]}}
routes:
  - name: both
    match: {path_prefix: /both}
    upstream: u
    plugins:
      - {name: key_auth}
      - {name: jwt, config: {algorithms: [HS256], secret: %q, issuer: test-issuer, audiences: [api], consumer_claim: sub}}
  - name: either
    match: {path_prefix: /either}
    upstream: u
    plugins:
      - {name: key_auth, config: {anonymous: guest}}
      - {name: jwt, config: {algorithms: [HS256], secret: %q, issuer: test-issuer, audiences: [api], consumer_claim: sub, anonymous: guest}}
      - {name: acl, config: {deny: [guests]}}
  - name: private
    match: {path_prefix: /private}
    upstream: u
    plugins:
      - {name: jwt, config: {algorithms: [HS256], secret: %q, issuer: test-issuer, audiences: [api], required_scopes: [read]}}
  - name: public
    match: {path_prefix: /public}
    upstream: u
`, up.url, jwtSecret, jwtSecret, jwtSecret))
}

// TestAuthSemantics: several auth plugins on one route are all-of by
// default and any-of when each sets anonymous (issue 4).
func TestAuthSemantics(t *testing.T) {
	t.Parallel()
	up := newSeenBackend(t)
	tg := authGateway(t, up)
	aliceJWT, bobJWT := hsToken(t, "alice", "read"), hsToken(t, "bob", "read")
	tests := []struct {
		desc     string
		path     string
		key, jwt string
		status   int
		consumer string
	}{
		{desc: "all-of: both credentials", path: "/both", key: "alice-key-123456", jwt: aliceJWT, status: 200, consumer: "alice"},
		{desc: "all-of: key only", path: "/both", key: "alice-key-123456", status: 401},
		{desc: "all-of: jwt only", path: "/both", jwt: aliceJWT, status: 401},
		{desc: "any-of: key only", path: "/either", key: "alice-key-123456", status: 200, consumer: "alice"},
		{desc: "any-of: jwt only", path: "/either", jwt: bobJWT, status: 200, consumer: "bob"},
		{desc: "any-of: bad key, good jwt", path: "/either", key: "wrong-key-000000", jwt: bobJWT, status: 200, consumer: "bob"},
		{desc: "any-of: nothing → anonymous, refused by acl", path: "/either", status: 403},
		{desc: "scope present", path: "/private", jwt: aliceJWT, status: 200},
		{desc: "scope missing", path: "/private", jwt: hsToken(t, "alice", "write"), status: 403},
		{desc: "tampered token", path: "/private", jwt: aliceJWT[:len(aliceJWT)-2] + "xx", status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			before := up.hits.Load()
			req, _ := http.NewRequest("GET", tg.URL+tc.path, nil)
			if tc.key != "" {
				req.Header.Set("X-API-Key", tc.key)
			}
			if tc.jwt != "" {
				req.Header.Set("Authorization", "Bearer "+tc.jwt)
			}
			req.Header.Set("X-Consumer-Username", "mallory")
			resp := wantStatus(t, req, tc.status)
			if tc.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			reached := up.hits.Load() > before
			if reached != (tc.status == 200) {
				t.Fatalf("upstream reached = %v", reached)
			}
			if tc.consumer != "" && up.header("X-Consumer-Username") != tc.consumer {
				t.Fatalf("X-Consumer-Username = %q, want %q", up.header("X-Consumer-Username"), tc.consumer)
			}
			if reached && up.header("X-API-Key") != "" {
				t.Error("the API key reached the upstream")
			}
		})
	}
}

// TestAuthBypassByPathVariants: encodings and dot segments never reach a
// protected route's upstream without its plugins (issue 4).
func TestAuthBypassByPathVariants(t *testing.T) {
	t.Parallel()
	up := newSeenBackend(t)
	tg := authGateway(t, up)
	for _, path := range []string{
		"/private", "/public/../private", "/public/%2e%2e/private", "/public/%2E%2E/private",
		"//private", "/./private", "/%70rivate", "/public/..%2fprivate", "/public/..%2Fprivate",
		"/public%2f..%2fprivate", "/PRIVATE", "/Private/x", "/private%00", "/public/..;/private",
		"/public/%252e%252e/private",
	} {
		t.Run(path, func(t *testing.T) {
			before := up.hits.Load()
			status := rawRequest(t, e2eHostPort(tg.URL), path)
			switch status {
			case 400, 401, 403, 404:
				if up.hits.Load() != before {
					t.Fatalf("%s: refused with %d but the upstream was reached", path, status)
				}
			case 200:
				// Only the public route may answer, and the upstream must not
				// see anything that could resolve to /private.
				if p, _ := up.path.Load().(string); strings.Contains(strings.ToLower(p), "private") {
					t.Fatalf("%s was proxied unauthenticated as %q", path, p)
				}
			default:
				t.Fatalf("%s: unexpected status %d", path, status)
			}
		})
	}
}

// rawRequest sends GET path exactly as written and returns the status.
func rawRequest(t *testing.T, addr, path string) int {
	t.Helper()
	r := e2eRawDo(t, addr, "GET", "GET "+path+" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
	return r.StatusCode
}
