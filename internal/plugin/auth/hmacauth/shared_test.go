package hmacauth

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/testutil/testredis"
)

// buildIn builds an instance whose shared values live in pool (as the
// gateway's do), with its clock at now; it is cleaned up with the test
// unless the test does it first.
func buildIn(t *testing.T, pool *plugin.SharedPool, src string, now *time.Time) (*plugin.Instance, http.Handler) {
	t.Helper()
	p, in, err := plugintest.Build[*HMACAuth](t, Name, src, plugintest.WithStore(testStore(t)), plugintest.WithPool(pool))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	p.now = func() time.Time { return *now }
	return in, p.Wrap(http.HandlerFunc(upstream))
}

// serve runs h on r with a record and returns the status and the recorded
// auth failure reason.
func serve(h http.Handler, r *http.Request) (int, string) {
	rec := &request.Record{}
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, rec.AuthFailure
}

// TestReplaySharedAcrossInstances: instances built from one pool (the
// routes of a global plugin, and the snapshots before and after a reload)
// share the replay cache, and it lives as long as one of them does.
func TestReplaySharedAcrossInstances(t *testing.T) {
	t.Parallel()
	pool := plugin.NewSharedPool()
	now := epoch
	a, ha := buildIn(t, pool, "", &now)
	_, hb := buildIn(t, pool, "", &now)
	req := signed{method: "POST", body: "pay 10"}
	if c, _ := serve(ha, req.request()); c != 200 {
		t.Fatalf("first on route A: %d", c)
	}
	if c, reason := serve(hb, req.request()); c != 401 || reason != reasonReplay {
		t.Fatalf("replay on route B: %d %q, want 401 replay", c, reason)
	}
	// Reload: a new instance is built, then the old one is cleaned up.
	_, hc := buildIn(t, pool, "", &now)
	a.Cleanup()
	if c, reason := serve(hc, req.request()); c != 401 || reason != reasonReplay {
		t.Fatalf("replay after reload: %d %q, want 401 replay", c, reason)
	}
	if pool.Len() != 1 {
		t.Fatalf("pool holds %d values, want 1", pool.Len())
	}
}

// TestReplayPoolReleased: the cache is dropped with its last holder.
func TestReplayPoolReleased(t *testing.T) {
	t.Parallel()
	pool := plugin.NewSharedPool()
	now := epoch
	a, _ := buildIn(t, pool, "", &now)
	b, _ := buildIn(t, pool, "", &now)
	a.Cleanup()
	b.Cleanup()
	b.Cleanup() // tolerated
	if pool.Len() != 0 {
		t.Fatalf("pool holds %d values after every release", pool.Len())
	}
}

// TestReplayUnsignedAdditions: what is not signed cannot make a replay look
// new: extra headers, unknown Authorization parameters, other spacing, a
// second Date header value the signature does not cover…
func TestReplayUnsignedAdditions(t *testing.T) {
	t.Parallel()
	now := epoch
	_, h := buildIn(t, plugin.NewSharedPool(), "", &now)
	req := signed{}
	if c, _ := serve(h, req.request()); c != 200 {
		t.Fatalf("first: %d", c)
	}
	for _, tamper := range []func(r *http.Request){
		func(r *http.Request) { r.Header.Set("X-Route-To", "other") },
		func(r *http.Request) { r.Header.Set("Authorization", r.Header.Get("Authorization")+`, nonce="fresh"`) },
		func(r *http.Request) {
			r.Header.Set("Authorization", strings.ReplaceAll(r.Header.Get("Authorization"), `", `, `",   `))
		},
		func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "hmac ", "HMAC ", 1))
		},
		func(r *http.Request) { r.Header.Set("Cookie", "a=b") },
	} {
		r := req.request()
		tamper(r)
		if c, reason := serve(h, r); c != 401 || reason != reasonReplay {
			t.Errorf("replay with an unsigned change: %d %q, want 401 replay", c, reason)
		}
	}
}

// TestReplayWidestWindow: entries live for the widest clock skew of the
// instances sharing the cache, so a route with a wider window cannot
// accept what a narrower one has already accepted.
func TestReplayWidestWindow(t *testing.T) {
	t.Parallel()
	pool := plugin.NewSharedPool()
	now := epoch
	_, narrow := buildIn(t, pool, "clock_skew: 10s", &now)
	_, wide := buildIn(t, pool, "clock_skew: 300s", &now)
	req := signed{}
	if c, _ := serve(narrow, req.request()); c != 200 {
		t.Fatalf("first: %d", c)
	}
	now = epoch.Add(100 * time.Second)
	if c, reason := serve(wide, req.request()); c != 401 || reason != reasonReplay {
		t.Fatalf("replay 100s later on the wider route: %d %q", c, reason)
	}
}

// TestReplayRedis: two gateways (separate pools) sharing one Redis refuse
// each other's replays.
func TestReplayRedis(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	cfg := fmt.Sprintf("redis: {addr: %q, key_prefix: %q}", rs.Addr, "t-"+t.Name()+":")
	now := time.Now().Truncate(time.Second)
	_, g1 := buildIn(t, plugin.NewSharedPool(), cfg, &now)
	_, g2 := buildIn(t, plugin.NewSharedPool(), cfg, &now)
	req := signed{date: now, method: "POST", body: "pay 10"}
	if c, reason := serve(g1, req.request()); c != 200 {
		t.Fatalf("first on gateway 1: %d %q", c, reason)
	}
	if c, reason := serve(g2, req.request()); c != 401 || reason != reasonReplay {
		t.Fatalf("replay on gateway 2: %d %q, want 401 replay", c, reason)
	}
	req2 := signed{date: now.Add(time.Second)}
	if c, _ := serve(g2, req2.request()); c != 200 {
		t.Fatalf("a new request on gateway 2: %d", c)
	}
	if c, reason := serve(g1, req2.request()); c != 401 || reason != reasonReplay {
		t.Fatalf("replay on gateway 1: %d %q", c, reason)
	}
}

// TestReplayRedisDown: with Redis unreachable the request is refused with
// 503 (fail_closed, the default) or accepted on the local cache alone.
func TestReplayRedisDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	now := epoch
	_, closed := buildIn(t, plugin.NewSharedPool(), fmt.Sprintf("redis: {addr: %q}", addr), &now)
	if c, reason := serve(closed, signed{}.request()); c != 503 || reason != reasonUnavailable {
		t.Fatalf("fail_closed: %d %q, want 503 unavailable", c, reason)
	}
	_, local := buildIn(t, plugin.NewSharedPool(), fmt.Sprintf("redis: {addr: %q}\non_redis_error: local", addr), &now)
	if c, _ := serve(local, signed{}.request()); c != 200 {
		t.Fatalf("local: %d, want 200", c)
	}
	if c, reason := serve(local, signed{}.request()); c != 401 || reason != reasonReplay {
		t.Fatalf("local replay: %d %q", c, reason)
	}
	if _, err := plugintest.BuildWithStore(t, Name, "on_redis_error: open", testStore(t)); err == nil {
		t.Fatal("bad on_redis_error accepted")
	}
}

// TestReasons: each refusal records its specific reason.
func TestReasons(t *testing.T) {
	t.Parallel()
	now := epoch
	_, h := buildIn(t, plugin.NewSharedPool(), "algorithms: [hmac-sha256]", &now)
	for _, tc := range []struct {
		desc   string
		r      *http.Request
		reason string
	}{
		{"missing", httptest.NewRequest("GET", "/x", nil), "missing"},
		{"malformed", withAuth(`hmac username=alice-key`), reasonMalformed},
		{"algorithm", signed{alg: "hmac-sha512"}.request(), reasonAlgorithm},
		{"unsigned", signed{headers: "date"}.request(), reasonUnsigned},
		{"bad date", signed{tamper: func(r *http.Request) { r.Header.Set("Date", "yesterday") }}.request(), reasonBadDate},
		{"clock skew", signed{date: epoch.Add(-time.Hour)}.request(), reasonClockSkew},
		{"unknown key", signed{keyID: "nobody"}.request(), reasonUnknownKey},
		{"bad signature", signed{secret: bobSecret}.request(), reasonSignature},
		{"bad digest", signed{method: "POST", body: "x", tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("y")) }}.request(), reasonDigest},
	} {
		if c, reason := serve(h, tc.r); c != 401 || reason != tc.reason {
			t.Errorf("%s: %d %q, want 401 %q", tc.desc, c, reason, tc.reason)
		}
	}
}

// TestTwoAuthorizationHeaders: a valid signature next to another
// Authorization header is refused with 400, even with anonymous.
func TestTwoAuthorizationHeaders(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{"", "anonymous: guest"} {
		now := epoch
		_, h := buildIn(t, plugin.NewSharedPool(), cfg, &now)
		for _, other := range []string{`hmac username="bob-key", algorithm="hmac-sha256", headers="date", signature="c2ln"`, "Basic YTpi"} {
			for _, first := range []bool{true, false} {
				r := signed{}.request()
				good := r.Header.Get("Authorization")
				if first {
					r.Header["Authorization"] = []string{good, other}
				} else {
					r.Header["Authorization"] = []string{other, good}
				}
				if c, reason := serve(h, r); c != 400 || reason != "multiple" {
					t.Errorf("%q: %d %q, want 400 multiple", cfg, c, reason)
				}
			}
		}
	}
}

// FuzzParseAuthorization: the parser never panics, and what it accepts is
// complete and within its bounds.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		`hmac username="k1", algorithm="hmac-sha256", headers="@request-target date", signature="c2ln"`,
		`HMAC username="k1",algorithm="HMAC-SHA256" , headers="@request-target Date", signature="c2ln", created="1"`,
		`hmac`, `hmac `, `hmacx`, `Basic YTpi`, `hmac username="k1", username="k2"`,
		`hmac username="k1, algorithm="hmac-sha256", signature="c2ln`,
		`hmac username="", algorithm="a", signature="c2ln"`,
		`hmac username="k", algorithm="a", headers="  ", signature="c2ln"`,
		"hmac username=\"k\",\talgorithm=\"a\",signature=\"c2ln\",",
		`hmac =""`, `hmac a=`, `hmac a="`, `hmac ,,,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		sp, found, ok := parseAuthorization(h)
		if ok && !found {
			t.Fatal("ok without found")
		}
		if found != (len(h) >= 4 && strings.EqualFold(h[:4], "hmac") && (len(h) == 4 || h[4] == ' ')) {
			t.Fatalf("found = %v for %q", found, h)
		}
		if !ok {
			if sp != nil {
				t.Fatal("params returned with !ok")
			}
			return
		}
		if sp.keyID == "" || sp.algorithm == "" || len(sp.signature) == 0 || len(sp.headers) == 0 || len(sp.headers) > maxSignedHeaders {
			t.Fatalf("incomplete params accepted: %+v", sp)
		}
		seen := map[string]bool{}
		for _, n := range sp.headers {
			if n == "" || seen[n] || n != strings.ToLower(n) {
				t.Fatalf("bad header list %q", sp.headers)
			}
			seen[n] = true
		}
		if sp.algorithm != strings.ToLower(sp.algorithm) {
			t.Fatalf("algorithm not lower-cased: %q", sp.algorithm)
		}
	})
}
