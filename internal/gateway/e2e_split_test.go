package gateway_test

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
)

// splitBackend is a real backend that counts its requests and names itself
// in the X-Backend response header.
type splitBackend struct {
	url string
	n   atomic.Int64
}

func newSplitBackend(t testing.TB, name string) *splitBackend {
	b := &splitBackend{}
	srv := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.n.Add(1)
		w.Header().Set("X-Backend", name)
		_, _ = w.Write([]byte("ok"))
	}))
	b.url = srv.URL
	return b
}

// splitRuntime applies yaml (with {{NAME}} replaced by backend URLs) to a
// new in-process runtime; requests go through its handler, and the
// upstreams are real servers.
func splitRuntime(t testing.TB, yaml string, backends map[string]*splitBackend) *gateway.Runtime {
	t.Helper()
	rt := gateway.NewRuntime(testutil.Logger(t))
	if err := rt.Apply(testutil.ParseConfig(t, splitYAML(yaml, backends))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt
}

func splitYAML(yaml string, backends map[string]*splitBackend) string {
	for name, b := range backends {
		yaml = strings.ReplaceAll(yaml, "{{"+name+"}}", b.url)
	}
	return yaml
}

// splitServe sends one request through rt and returns the response.
func splitServe(rt http.Handler, target string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", target, nil)
	r.RemoteAddr = "10.1.2.3:4567"
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, r)
	return w
}

// splitHead starts the in-process test configs: no admin listener, no
// access log.
const splitHead = `
server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "off"}
log: {access: {output: "off"}}
`

const splitCanaryConfig = splitHead + `upstreams:
  stable: {targets: [{url: "{{stable}}"}]}
  canary: {targets: [{url: "{{canary}}"}]}
routes:
  - name: api
    match: {path_prefix: /api}
    split:
      variants:
        - {upstream: stable, weight: %d}
        - {upstream: canary, weight: %d}
      %s
      header: X-Portico-Variant
`

// TestSplitWeightAccuracy sends 100,000 requests through a 95/5 split and
// counts them at the two real backends: each share is within 1 percentage
// point of the configured one, the response header names the backend that
// answered, and the request metrics count each variant under its upstream.
func TestSplitWeightAccuracy(t *testing.T) {
	bs := map[string]*splitBackend{"stable": newSplitBackend(t, "stable"), "canary": newSplitBackend(t, "canary")}
	rt := splitRuntime(t, fmt.Sprintf(splitCanaryConfig, 95, 5, ""), bs)
	metrics := httptest.NewServer(rt.Metrics().Handler())
	defer metrics.Close()
	before := scrape(t, metrics.URL)

	const total, workers = 100_000, 4
	var bad atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range total / workers {
				w := splitServe(rt, "/api/x")
				if w.Code != 200 || w.Header().Get("X-Portico-Variant") != w.Header().Get("X-Backend") {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d responses failed or named another variant than the backend that answered", n)
	}
	stable, canary := bs["stable"].n.Load(), bs["canary"].n.Load()
	if stable+canary != total {
		t.Fatalf("backends saw %d+%d requests, want %d", stable, canary, total)
	}
	if share := float64(canary) / total; math.Abs(share-0.05) > 0.01 {
		t.Errorf("canary share %.4f, want 0.05±0.01", share)
	}
	t.Logf("stable %d, canary %d", stable, canary)

	after := scrape(t, metrics.URL)
	for name, want := range map[string]int64{"stable": stable, "canary": canary} {
		labels := []string{"route", "api", "method", "GET", "status", "2xx", "upstream", name}
		got := value(after, "portico_requests_total", labels...) - max(0, value(before, "portico_requests_total", labels...))
		if int64(got) != want {
			t.Errorf("portico_requests_total{upstream=%q} grew by %v, want %d", name, got, want)
		}
	}
}

// TestSplitRules: rules are checked in order before weights, and the first
// match wins; header, cookie and query rules each work.
func TestSplitRules(t *testing.T) {
	bs := map[string]*splitBackend{"a": newSplitBackend(t, "a"), "b": newSplitBackend(t, "b"), "c": newSplitBackend(t, "c")}
	rt := splitRuntime(t, splitHead+`upstreams:
  a: {targets: [{url: "{{a}}"}]}
  b: {targets: [{url: "{{b}}"}]}
  c: {targets: [{url: "{{c}}"}]}
routes:
  - name: ab
    match: {path_prefix: /}
    split:
      variants: [{upstream: a, weight: 1}, {upstream: b, weight: 0}, {upstream: c, weight: 0}]
      rules:
        - {header: {name: x-beta, value: "1"}, upstream: b}
        - {cookie: {name: variant, value: c}, upstream: c}
        - {query: {name: variant, value: b}, upstream: b}
`, bs)
	cases := []struct {
		desc, target string
		header       []string
		want         string
	}{
		{"no rule matches: weights", "/x", nil, "a"},
		{"header rule", "/x", []string{"X-Beta", "1"}, "b"},
		{"header with another value", "/x", []string{"X-Beta", "2"}, "a"},
		{"cookie rule", "/x", []string{"Cookie", "theme=dark; variant=c"}, "c"},
		{"query rule", "/x?a=1&variant=b", nil, "b"},
		{"query rule, encoded", "/x?vari%61nt=b", nil, "b"},
		{"first rule wins over the cookie", "/x", []string{"X-Beta", "1", "Cookie", "variant=c"}, "b"},
		{"cookie rule ahead of the query rule", "/x?variant=b", []string{"Cookie", "variant=c"}, "c"},
		{"cookie value must match exactly", "/x", []string{"Cookie", "variant=C"}, "a"},
	}
	for _, tc := range cases {
		w := splitServe(rt, tc.target, tc.header...)
		if got := w.Header().Get("X-Backend"); w.Code != 200 || got != tc.want {
			t.Errorf("%s: status %d from backend %q, want 200 from %q", tc.desc, w.Code, got, tc.want)
		}
	}
}

// splitAssign sends one request per key (X-User: u<i>) and returns which
// variant each key got.
func splitAssign(t *testing.T, rt http.Handler, keys int) []string {
	t.Helper()
	out := make([]string, keys)
	for i := range out {
		w := splitServe(rt, "/api/x", "X-User", fmt.Sprintf("u%d", i))
		out[i] = w.Header().Get("X-Backend")
		if w.Code != 200 || out[i] != w.Header().Get("X-Portico-Variant") {
			t.Fatalf("key u%d: status %d, backend %q, variant header %q", i, w.Code, out[i], w.Header().Get("X-Portico-Variant"))
		}
	}
	return out
}

// TestSplitStickyMovesOnlyWhatMust: with a sticky key, the same key always
// gets the same variant; moving the canary from 5% to 10% by a reload moves
// only stable keys to the canary (about 5% of 10,000 keys), never the other
// way, and the upstreams' pool state objects survive the reload.
func TestSplitStickyMovesOnlyWhatMust(t *testing.T) {
	bs := map[string]*splitBackend{"stable": newSplitBackend(t, "stable"), "canary": newSplitBackend(t, "canary")}
	sticky := "sticky: {key: [header:X-User]}"
	rt := splitRuntime(t, fmt.Sprintf(splitCanaryConfig, 95, 5, sticky), bs)
	stableState, canaryState := gateway.PoolStateOf(rt, "stable"), gateway.PoolStateOf(rt, "canary")

	const keys = 10_000
	first := splitAssign(t, rt, keys)
	again := splitAssign(t, rt, keys)
	canary := 0
	for i := range first {
		if first[i] != again[i] {
			t.Fatalf("key u%d got %q, then %q", i, first[i], again[i])
		}
		if first[i] == "canary" {
			canary++
		}
	}
	if share := float64(canary) / keys; math.Abs(share-0.05) > 0.01 {
		t.Errorf("canary share of keys %.4f, want 0.05±0.01", share)
	}

	if err := rt.Apply(testutil.ParseConfig(t, splitYAML(fmt.Sprintf(splitCanaryConfig, 90, 10, sticky), bs))); err != nil {
		t.Fatal(err)
	}
	if gateway.PoolStateOf(rt, "stable") != stableState || gateway.PoolStateOf(rt, "canary") != canaryState {
		t.Error("the reload replaced an upstream's pool state")
	}
	second := splitAssign(t, rt, keys)
	moved, back := 0, 0
	for i := range first {
		switch {
		case first[i] == "stable" && second[i] == "canary":
			moved++
		case first[i] == "canary" && second[i] != "canary":
			back++
		}
	}
	if back > 0 {
		t.Errorf("%d canary keys left the canary when its weight grew", back)
	}
	if share := float64(moved) / keys; math.Abs(share-0.05) > 0.01 {
		t.Errorf("%d keys (%.4f) moved to the canary, want 0.05±0.01 of %d", moved, share, keys)
	}
	t.Logf("canary keys %d at 5%%; %d moved at 10%%", canary, moved)
}

// TestSplitValidation: mistakes in a split are reported at their paths.
func TestSplitValidation(t *testing.T) {
	head := "upstreams:\n  s: {targets: [{url: \"http://127.0.0.1:1\"}]}\n  c: {targets: [{url: \"http://127.0.0.1:2\"}]}\nroutes:\n  - name: r\n    match: {path: /}\n"
	cases := []struct{ desc, route, want string }{
		{"no variants", "    split: {variants: []}", "routes[0].split.variants: split needs at least one variant"},
		{"negative weight", "    split: {variants: [{upstream: s, weight: 1}, {upstream: c, weight: -1}]}", "routes[0].split.variants[1].weight: weight must be a number of at least 0"},
		{"weights sum to 0", "    split: {variants: [{upstream: s, weight: 0}, {upstream: c, weight: 0}]}", "routes[0].split.variants: the variants' weights must add up to more than 0"},
		{"NaN weight", "    split: {variants: [{upstream: s, weight: .nan}]}", "routes[0].split.variants[0].weight"},
		{"undefined upstream", "    split: {variants: [{upstream: nope, weight: 1}]}", `routes[0].split.variants[0].upstream: upstream "nope" is not defined (defined: c, s)`},
		{"repeated variant", "    split: {variants: [{upstream: s, weight: 1}, {upstream: s, weight: 1}]}", `routes[0].split.variants[1].upstream: upstream "s" is already variants[0]`},
		{"rule to a non-variant", "    split: {variants: [{upstream: s, weight: 1}], rules: [{header: {name: X-B, value: '1'}, upstream: c}]}", `routes[0].split.rules[0].upstream: upstream "c" is not one of the split's variants`},
		{"rule with two matches", "    split: {variants: [{upstream: s, weight: 1}], rules: [{header: {name: X-B, value: '1'}, cookie: {name: v, value: b}, upstream: s}]}", "routes[0].split.rules[0]: set exactly one of header, cookie, query, claim, consumer, group and ip"},
		{"rule without a match", "    split: {variants: [{upstream: s, weight: 1}], rules: [{upstream: s}]}", "routes[0].split.rules[0]: set exactly one of header, cookie, query, claim, consumer, group and ip"},
		{"bad header name", "    split: {variants: [{upstream: s, weight: 1}], rules: [{header: {name: 'X B', value: '1'}, upstream: s}]}", "routes[0].split.rules[0].header.name"},
		{"bad variant header", "    split: {variants: [{upstream: s, weight: 1}], header: Connection}", "routes[0].split.header"},
		{"sticky without key", "    split: {variants: [{upstream: s, weight: 1}], sticky: {}}", "routes[0].split.sticky.key: sticky needs a key"},
		{"upstream and split", "    upstream: s\n    split: {variants: [{upstream: s, weight: 1}]}", "routes[0]: route must have exactly one action: upstream, split, versions, respond or redirect"},
		{"unknown field", "    split: {variants: [{upstream: s, weight: 1, share: 3}]}", "share"},
	}
	for _, tc := range cases {
		_, err := config.Parse([]byte(head+tc.route+"\n"), "test", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.desc, err, tc.want)
		}
	}
	// The request key is checked when the gateway is built.
	cfg := testutil.ParseConfig(t, head+"    split: {variants: [{upstream: s, weight: 1}], sticky: {key: [header]}}\n")
	err := gateway.NewRuntime(testutil.Logger(t)).Validate(cfg)
	if err == nil || !strings.Contains(err.Error(), "routes[0].split.sticky.key") {
		t.Errorf("bad sticky key: error %v, want one at routes[0].split.sticky.key", err)
	}
}

// BenchmarkServeSplit compares a plain route with a 95/5 split (with a
// sticky key and a rule that does not match) to the same real backend: the
// difference is the split's cost per request.
func BenchmarkServeSplit(b *testing.B) {
	bs := map[string]*splitBackend{"stable": newSplitBackend(b, "stable"), "canary": newSplitBackend(b, "canary")}
	yaml := fmt.Sprintf(splitCanaryConfig, 95, 5, "rules: [{header: {name: X-Beta, value: '1'}, upstream: canary}]\n      sticky: {key: [header:X-User]}") +
		"  - {name: plain, match: {path_prefix: /plain}, upstream: stable}\n"
	rt := splitRuntime(b, yaml, bs)
	for _, path := range []string{"/plain", "/api"} {
		b.Run(path, func(b *testing.B) {
			r := httptest.NewRequest("GET", path, nil)
			r.RemoteAddr = "10.1.2.3:4567"
			r.Header.Set("X-User", "alice")
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				rt.ServeHTTP(w, r)
			}
		})
	}
}

// TestSplitAccessLog: over a real listener, the access log's upstream field
// names the chosen variant, also when that variant's upstream cannot be
// reached, and the variant header reaches the client.
func TestSplitAccessLog(t *testing.T) {
	stable := e2eNewRecorder(t, "stable", nil)
	logPath := t.TempDir() + "/access.log"
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "{{LOG}}"}}
upstreams:
  stable: {targets: [{url: "{{BE}}"}]}
  canary: {targets: [{url: "http://{{DEAD}}"}], retry: {attempts: 0}}
routes:
  - name: api
    match: {path_prefix: /api}
    split:
      variants: [{upstream: stable, weight: 1}, {upstream: canary, weight: 0}]
      rules: [{header: {name: X-Beta, value: "1"}, upstream: canary}]
      header: X-Portico-Variant
`, map[string]string{"LOG": logPath, "BE": stable.URL, "DEAD": e2eFreePort(t)})
	for _, tc := range []struct {
		id, beta, variant string
		status            int
	}{{"split-log-stable", "", "stable", 200}, {"split-log-canary", "1", "canary", 502}} {
		req := e2eReq(t, http.MethodGet, tg.URL+"/api/x", nil)
		req.Header.Set("X-Request-Id", tc.id)
		if tc.beta != "" {
			req.Header.Set("X-Beta", tc.beta)
		}
		resp, _ := e2eDo(t, req)
		if resp.StatusCode != tc.status || resp.Header.Get("X-Portico-Variant") != tc.variant {
			t.Errorf("%s: status %d, variant %q; want %d, %q", tc.id, resp.StatusCode, resp.Header.Get("X-Portico-Variant"), tc.status, tc.variant)
		}
		if m := e2eAccessLine(t, logPath, tc.id); m["upstream"] != tc.variant {
			t.Errorf("%s: access log upstream %v, want %q", tc.id, m["upstream"], tc.variant)
		}
	}
}
