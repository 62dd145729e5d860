package gateway_test

import (
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/portico-gw/portico/internal/config"
)

// splitIdentityConfig routes by who the client is: consumer name and group
// after key_auth, a token claim after jwt, and the client's address.
const splitIdentityConfig = splitHead + `consumers:
  - {name: alice, groups: [staff], credentials: {key_auth: [{key: alice-key-0123456789}]}}
  - {name: bob, groups: [staff, beta], credentials: {key_auth: [{key: bob-key-0123456789}]}}
  - {name: carol, credentials: {key_auth: [{key: carol-key-0123456789}]}}
  - {name: guest}
upstreams:
  stable: {targets: [{url: "{{stable}}"}]}
  canary: {targets: [{url: "{{canary}}"}]}
routes:
  - name: by-consumer
    match: {path_prefix: /k}
    plugins: [{name: key_auth, config: {anonymous: guest}}]
    split:
      variants: [{upstream: stable, weight: 1}, {upstream: canary, weight: 0}]
      rules:
        - {consumer: carol, upstream: canary}
        - {group: [beta], upstream: canary}
  - name: anonymous-never-matches
    match: {path_prefix: /anon}
    plugins: [{name: key_auth, config: {anonymous: guest}}]
    split:
      variants: [{upstream: stable, weight: 1}, {upstream: canary, weight: 0}]
      rules: [{consumer: [guest], upstream: canary}]
  - name: by-claim
    match: {path_prefix: /j}
    plugins: [{name: jwt, config: {algorithms: [HS256], secret: "%s", consumer_claim: sub}}]
    split:
      variants: [{upstream: stable, weight: 1}, {upstream: canary, weight: 0}]
      rules:
        - {claim: {name: beta, value: "true"}, upstream: canary}
        - {claim: {name: tier, value: gold}, upstream: canary}
  - name: by-ip
    match: {path_prefix: /ip}
    split:
      variants: [{upstream: stable, weight: 1}, {upstream: canary, weight: 0}]
      rules: [{ip: [192.0.2.0/24, "2001:db8::7"], upstream: canary}]
`

func claimToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSplitRulesByIdentity: consumer, group, claim and IP-range rules pick
// the variant before weights; the anonymous consumer and unauthenticated
// requests never match an identity rule, and a missing or different claim
// falls through to the weights.
func TestSplitRulesByIdentity(t *testing.T) {
	bs := map[string]*splitBackend{"stable": newSplitBackend(t, "stable"), "canary": newSplitBackend(t, "canary")}
	rt := splitRuntime(t, fmt.Sprintf(splitIdentityConfig, jwtSecret), bs)
	bearer := func(c jwt.MapClaims) string { return "Bearer " + claimToken(t, c) }
	cases := []struct {
		desc, target, remote string
		header               []string
		status               int
		want                 string
	}{
		{"consumer rule", "/k", "", []string{"X-API-Key", "carol-key-0123456789"}, 200, "canary"},
		{"group rule", "/k", "", []string{"X-API-Key", "bob-key-0123456789"}, 200, "canary"},
		{"consumer in no matching group", "/k", "", []string{"X-API-Key", "alice-key-0123456789"}, 200, "stable"},
		{"no credentials: anonymous consumer", "/k", "", nil, 200, "stable"},
		{"anonymous consumer named in a rule", "/anon", "", nil, 200, "stable"},
		{"boolean claim", "/j", "", []string{"Authorization", bearer(jwt.MapClaims{"sub": "alice", "beta": true})}, 200, "canary"},
		{"boolean claim false", "/j", "", []string{"Authorization", bearer(jwt.MapClaims{"sub": "alice", "beta": false})}, 200, "stable"},
		{"string claim", "/j", "", []string{"Authorization", bearer(jwt.MapClaims{"sub": "alice", "tier": "gold"})}, 200, "canary"},
		{"claim as a string, not a boolean", "/j", "", []string{"Authorization", bearer(jwt.MapClaims{"sub": "alice", "beta": "true "})}, 200, "stable"},
		{"no claim", "/j", "", []string{"Authorization", bearer(jwt.MapClaims{"sub": "alice"})}, 200, "stable"},
		{"claim header cannot stand in for a token", "/j", "", []string{"Beta", "true"}, 401, ""},
		{"IPv4 in range", "/ip", "192.0.2.77:1000", nil, 200, "canary"},
		{"IPv4-mapped IPv6 in range", "/ip", "[::ffff:192.0.2.78]:1000", nil, 200, "canary"},
		{"IPv6 address", "/ip", "[2001:db8::7]:1000", nil, 200, "canary"},
		{"IPv4 outside the range", "/ip", "198.51.100.1:1000", nil, 200, "stable"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", tc.target, nil)
		r.RemoteAddr = "10.1.2.3:4567"
		if tc.remote != "" {
			r.RemoteAddr = tc.remote
		}
		for i := 0; i+1 < len(tc.header); i += 2 {
			r.Header.Set(tc.header[i], tc.header[i+1])
		}
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		if got := w.Header().Get("X-Backend"); w.Code != tc.status || got != tc.want {
			t.Errorf("%s: status %d from backend %q, want %d from %q", tc.desc, w.Code, got, tc.status, tc.want)
		}
	}
}

// TestSplitIdentityRuleValidation: identity rules are checked at load.
func TestSplitIdentityRuleValidation(t *testing.T) {
	head := "upstreams:\n  s: {targets: [{url: \"http://127.0.0.1:1\"}]}\nroutes:\n  - name: r\n    match: {path: /}\n    split: {variants: [{upstream: s, weight: 1}], rules: ["
	cases := []struct{ desc, rule, want string }{
		{"bad CIDR", "{ip: [10.0.0.0/33], upstream: s}", `routes[0].split.rules[0].ip[0]: invalid CIDR "10.0.0.0/33"`},
		{"bad address", "{ip: nope, upstream: s}", `routes[0].split.rules[0].ip[0]: invalid IP or CIDR "nope"`},
		{"empty group list", "{group: [], upstream: s}", "routes[0].split.rules[0].group: list at least one group"},
		{"empty consumer name", "{consumer: [''], upstream: s}", "routes[0].split.rules[0].consumer[0]: empty consumer name"},
		{"claim without name", "{claim: {value: 'true'}, upstream: s}", "routes[0].split.rules[0].claim.name: claim name is required"},
		{"claim name with a space", "{claim: {name: 'a b', value: x}, upstream: s}", "routes[0].split.rules[0].claim.name"},
		{"two kinds", "{group: [a], ip: [10.0.0.1], upstream: s}", "routes[0].split.rules[0]: set exactly one of header, cookie, query, claim, consumer, group and ip"},
	}
	for _, tc := range cases {
		_, err := config.Parse([]byte(head+tc.rule+"]}\n"), "test", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.desc, err, tc.want)
		}
	}
}

// TestSplitWeightsEndpointErrors: PUT /routes/{name}/weights refuses what
// it cannot apply, with the config left as it was, and writes only the
// weights it names into the saved file.
func TestSplitWeightsEndpointErrors(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "portico.yaml")
	a := admStart(t, file, `server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "127.0.0.1:0", token: "${PORTICO_TEST_ADMIN_TOKEN}"}
log: {access: {output: "off"}}
upstreams:
  stable: {targets: [{url: "http://127.0.0.1:1"}]}
  canary: {targets: [{url: "http://127.0.0.1:2"}]}
routes:
  - name: api
    match: {path_prefix: /api}
    split:
      variants:
        - {upstream: stable, weight: 95}   # production
        - {upstream: canary, weight: 5}
  - name: plain
    match: {path_prefix: /plain}
    upstream: stable
`)
	before := a.RunningConfig().Hash
	cases := []struct {
		desc, path, body string
		status           int
		want             string
	}{
		{"unknown route", "/routes/nope/weights", `{"canary": 1}`, 404, `route \"nope\" not found`},
		{"route without split", "/routes/plain/weights", `{"stable": 1}`, 400, "has no split"},
		{"not a variant", "/routes/api/weights", `{"other": 1}`, 400, `upstream \"other\" is not a variant of route \"api\" (variants: stable, canary)`},
		{"negative", "/routes/api/weights", `{"canary": -1}`, 400, "weight must be a number of at least 0"},
		{"not a number", "/routes/api/weights", `{"canary": "10"}`, 400, "weight must be a number of at least 0"},
		{"empty", "/routes/api/weights", `{}`, 400, "name at least one variant"},
		{"all zero", "/routes/api/weights", `{"stable": 0, "canary": 0}`, 400, "weights must add up to more than 0"},
	}
	for _, tc := range cases {
		r := a.write(t, "PUT", tc.path, tc.body, tc.status)
		if !strings.Contains(r.body, tc.want) {
			t.Errorf("%s: body %s, want it to contain %q", tc.desc, r.body, tc.want)
		}
	}
	if a.RunningConfig().Hash != before {
		t.Fatal("a refused weights write changed the running config")
	}
	a.write(t, "PUT", "/routes/api/weights", `{"canary": 10.5}`, 200)
	saved, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(saved), "{upstream: stable, weight: 95} # production") || !strings.Contains(string(saved), "{upstream: canary, weight: 10.5}") {
		t.Errorf("saved config does not carry just the new weight:\n%s", saved)
	}
	if got := a.RunningConfig().Routes[0].Split.Variants[1].Weight; got != 10.5 {
		t.Errorf("running canary weight %v, want 10.5", got)
	}
}
