package gateway_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

const splitCookieSecret = "0123456789abcdef0123456789abcdef-sticky"

// splitCookieSticky makes splitCanaryConfig sticky by a signed cookie.
const splitCookieSticky = `sticky: {cookie: {name: pv, ttl: 1h, secret: "` + splitCookieSecret + `"}}`

// splitCookieOf returns the pv cookie value Set-Cookie sets ("" for none)
// and the whole Set-Cookie line.
func splitCookieOf(w http.Header) (value, line string) {
	for _, l := range w.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(l, "pv="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v, l
		}
	}
	return "", ""
}

// TestSplitCookieSticky: a first request gets a signed cookie naming its
// variant (HttpOnly, SameSite=Lax, Path=/, Max-Age from ttl, Secure only on
// TLS); a client returning it keeps its variant over many requests at
// 50/50 and is not sent the cookie again; a tampered cookie is ignored and
// replaced; a cookie for a variant a reload took away is re-chosen.
func TestSplitCookieSticky(t *testing.T) {
	bs := map[string]*splitBackend{"stable": newSplitBackend(t, "stable"), "canary": newSplitBackend(t, "canary")}
	rt := splitRuntime(t, fmt.Sprintf(splitCanaryConfig, 50, 50, splitCookieSticky), bs)

	w := splitServe(rt, "/api/x")
	value, line := splitCookieOf(w.Header())
	backend := w.Header().Get("X-Backend")
	if w.Code != 200 || !strings.HasPrefix(value, backend+".") {
		t.Fatalf("first request: %d from %q, Set-Cookie %q", w.Code, backend, line)
	}
	for _, attr := range []string{"; Path=/", "; Max-Age=3600", "; HttpOnly", "; SameSite=Lax"} {
		if !strings.Contains(line, attr) {
			t.Errorf("Set-Cookie %q lacks %q", line, attr)
		}
	}
	if strings.Contains(line, "Secure") {
		t.Errorf("Set-Cookie %q is Secure on a plain connection", line)
	}
	if _, tlsLine := splitCookieOf(splitServe(rt, "https://example.org/api/x").Header()); !strings.HasSuffix(tlsLine, "; Secure") {
		t.Errorf("Set-Cookie over TLS %q lacks Secure", tlsLine)
	}

	// Every client keeps the variant its cookie names.
	for _, v := range []string{"stable", "canary"} {
		cookie := splitCookieFor(t, rt, v)
		for i := range 200 {
			w := splitServe(rt, "/api/x", "Cookie", "theme=dark; pv="+cookie)
			if got := w.Header().Get("X-Backend"); got != v || w.Code != 200 {
				t.Fatalf("request %d with the %s cookie: %d from %q", i, v, w.Code, got)
			}
			if _, l := splitCookieOf(w.Header()); l != "" {
				t.Fatalf("a valid cookie was set again: %q", l)
			}
		}
	}

	// Tampered cookies are ignored: re-chosen and re-set, never an error.
	canary := splitCookieFor(t, rt, "canary")
	sig := canary[len("canary."):]
	for _, bad := range []string{"stable." + sig, "canary." + strings.Repeat("A", len(sig)), "canary", "nosuch." + sig, ""} {
		w := splitServe(rt, "/api/x", "Cookie", "pv="+bad)
		v, _ := splitCookieOf(w.Header())
		if w.Code != 200 || !strings.HasPrefix(v, w.Header().Get("X-Backend")+".") {
			t.Errorf("tampered cookie %q: %d from %q, new cookie %q", bad, w.Code, w.Header().Get("X-Backend"), v)
		}
	}

	// A reload that takes the canary's weight to 0 re-chooses its clients.
	if err := rt.Apply(testutil.ParseConfig(t, splitYAML(fmt.Sprintf(splitCanaryConfig, 1, 0, splitCookieSticky), bs))); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		w := splitServe(rt, "/api/x", "Cookie", "pv="+canary)
		if v, _ := splitCookieOf(w.Header()); w.Header().Get("X-Backend") != "stable" || !strings.HasPrefix(v, "stable.") {
			t.Fatalf("cookie for a weight-0 variant: backend %q, new cookie %q", w.Header().Get("X-Backend"), v)
		}
	}
	// ... and so does one that removes the variant.
	removed := strings.Replace(splitCanaryConfig, "        - {upstream: canary, weight: %d}\n", "", 1)
	if err := rt.Apply(testutil.ParseConfig(t, splitYAML(fmt.Sprintf(removed, 1, splitCookieSticky), bs))); err != nil {
		t.Fatal(err)
	}
	w = splitServe(rt, "/api/x", "Cookie", "pv="+canary)
	if v, _ := splitCookieOf(w.Header()); w.Code != 200 || w.Header().Get("X-Backend") != "stable" || !strings.HasPrefix(v, "stable.") {
		t.Fatalf("cookie for a removed variant: %d from %q, new cookie %q", w.Code, w.Header().Get("X-Backend"), v)
	}
}

// splitCookieFor sends fresh requests until one is given variant v and
// returns its cookie value.
func splitCookieFor(t *testing.T, rt http.Handler, v string) string {
	t.Helper()
	for range 200 {
		w := splitServe(rt, "/api/x")
		if w.Header().Get("X-Backend") == v {
			c, _ := splitCookieOf(w.Header())
			return c
		}
	}
	t.Fatalf("no request was given %s", v)
	return ""
}

// TestSplitCookieValidation: cookie settings are checked with their paths.
func TestSplitCookieValidation(t *testing.T) {
	head := splitHead + "upstreams: {s: {targets: [{url: \"http://127.0.0.1:1\"}]}}\nroutes:\n  - name: r\n    match: {path_prefix: /}\n"
	cases := []struct{ split, want string }{
		{`split: {variants: [{upstream: s, weight: 1}], sticky: {cookie: {secret: short}}}`, "routes[0].split.sticky.cookie.secret: secret must be at least 32 bytes"},
		{`split: {variants: [{upstream: s, weight: 1}], sticky: {cookie: {}}}`, "routes[0].split.sticky.cookie.secret"},
		{`split: {variants: [{upstream: s, weight: 1}], sticky: {cookie: {name: "a b", secret: "` + splitCookieSecret + `"}}}`, "routes[0].split.sticky.cookie.name"},
		{`split: {variants: [{upstream: s, weight: 1}], sticky: {cookie: {ttl: -1s, secret: "` + splitCookieSecret + `"}}}`, "routes[0].split.sticky.cookie.ttl"},
		{`split: {variants: [{upstream: s, weight: 1}], sticky: {key: [consumer], cookie: {secret: "` + splitCookieSecret + `"}}}`, "routes[0].split.sticky: set either key or cookie"},
	}
	for _, tc := range cases {
		_, err := config.Parse([]byte(head+"    "+tc.split+"\n"), "test", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.split, err, tc.want)
		}
	}
}

// TestSplitWeightsThroughAdminAPI: PUT /routes/{name} (the whole route)
// and PUT /routes/{name}/weights (the weights alone) each move a
// cookie-less split from 95/5 to 50/50 while a client keeps sending
// requests; no request fails, the new shares apply afterwards, and the
// upstreams' pool state objects are the same.
func TestSplitWeightsThroughAdminAPI(t *testing.T) {
	t.Parallel()
	t.Run("route", func(t *testing.T) {
		t.Parallel()
		testSplitWeightChange(t, "/routes/api", `{"match": {"path_prefix": "/api"}, "split": {"variants": [{"upstream": "stable", "weight": 50}, {"upstream": "canary", "weight": 50}]}}`)
	})
	t.Run("weights", func(t *testing.T) {
		t.Parallel()
		testSplitWeightChange(t, "/routes/api/weights", `{"canary": 95}`)
	})
}

func testSplitWeightChange(t *testing.T, path, body string) {
	bs := map[string]*splitBackend{"stable": newSplitBackend(t, "stable"), "canary": newSplitBackend(t, "canary")}
	yaml := splitYAML(`server: {listen: [{addr: "127.0.0.1:0"}]}
admin: {listen: "127.0.0.1:0", token: "${PORTICO_TEST_ADMIN_TOKEN}"}
log: {access: {output: "off"}}
upstreams:
  stable: {targets: [{url: "{{stable}}"}]}
  canary: {targets: [{url: "{{canary}}"}]}
routes:
  - name: api
    match: {path_prefix: /api}
    split: {variants: [{upstream: stable, weight: 95}, {upstream: canary, weight: 5}]}
`, bs)
	a := admStart(t, filepath.Join(t.TempDir(), "portico.yaml"), yaml)
	stableState, canaryState := gateway.PoolStateOf(a.Runtime, "stable"), gateway.PoolStateOf(a.Runtime, "canary")

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var stopOnce sync.Once
	defer stopOnce.Do(func() { close(stop) })
	var wg sync.WaitGroup
	wg.Go(func() {
		c := testutil.Client()
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := c.Get(a.url + "/api/x")
			sent.Add(1)
			if err != nil {
				failed.Add(1)
				continue
			}
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
			resp.Body.Close()
		}
	})
	waitSent := func(n int64) {
		t.Helper()
		target := sent.Load() + n
		wait.For(t, 10*time.Second, "client requests", func() bool { return sent.Load() >= target })
	}
	waitSent(100)
	a.write(t, "PUT", path, body, 200)
	waitSent(100)
	stopOnce.Do(func() { close(stop) })
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed around the weight change", n, sent.Load())
	}
	if gateway.PoolStateOf(a.Runtime, "stable") != stableState || gateway.PoolStateOf(a.Runtime, "canary") != canaryState {
		t.Error("the weight change replaced an upstream's pool state")
	}
	s0, c0 := bs["stable"].n.Load(), bs["canary"].n.Load()
	const total = 2000
	for range total {
		if s, _ := a.traffic(t, "/api/x"); s != 200 {
			t.Fatalf("after the change: status %d", s)
		}
	}
	canary := float64(bs["canary"].n.Load()-c0) / float64(bs["stable"].n.Load()-s0+bs["canary"].n.Load()-c0)
	if canary < 0.4 || canary > 0.6 {
		t.Errorf("canary share after the change = %.3f, want about 0.5", canary)
	}
}
