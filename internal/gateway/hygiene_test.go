package gateway

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/httpx"
)

// FuzzCleanHopByHop (issue 9 item 2): whatever the Connection header says,
// after the arrival cleanup no field it named and no hop-by-hop field is
// left, except an upgrade's Upgrade with "Connection: Upgrade", and
// "TE: trailers".
func FuzzCleanHopByHop(f *testing.F) {
	for _, s := range [][2]string{
		{"X-User-Id", "h2c"}, {"Upgrade, HTTP2-Settings", "h2c"}, {"keep-alive, X-A , x-b", ""},
		{"upgrade", "websocket"}, {"close, TE", ""}, {"X-Anonymous-Consumer,,X-Consumer-Id", ""}, {"x_user, Upgrade", "foo"},
	} {
		f.Add(s[0], s[1], "trailers, gzip")
	}
	f.Fuzz(func(t *testing.T, conn, upgrade, te string) {
		h := http.Header{}
		h["Connection"] = []string{conn}
		if upgrade != "" {
			h["Upgrade"] = []string{upgrade}
		}
		if te != "" {
			h["Te"] = []string{te}
		}
		named := map[string]bool{}
		httpx.Tokens([]string{conn}, func(tok string) bool {
			c := http.CanonicalHeaderKey(tok)
			named[c] = true
			h[c] = []string{"client"}
			return true
		})
		for _, k := range httpx.HopByHop {
			if _, ok := h[k]; !ok {
				h[k] = []string{"client"}
			}
		}
		h["X-Kept"] = []string{"1"}
		wantUpgrade := httpx.HasToken([]string{conn}, "upgrade") && len(h["Upgrade"]) > 0
		wantTE := httpx.HasToken([]string{te}, "trailers") || httpx.HasToken(h["Te"], "trailers")
		cleanHopByHop(h)
		for k := range h {
			switch {
			case k == "X-Kept":
			case k == "Upgrade" && wantUpgrade:
			case k == "Connection" && wantUpgrade:
				if len(h[k]) != 1 || h[k][0] != "Upgrade" {
					t.Fatalf("Connection = %q", h[k])
				}
			case k == "Te" && wantTE:
				if len(h[k]) != 1 || h[k][0] != "trailers" {
					t.Fatalf("Te = %q", h[k])
				}
			case named[k] || httpx.IsHopByHop(k):
				t.Fatalf("Connection %q: %s survived (%q)", conn, k, h[k])
			}
		}
		if h.Get("X-Kept") != "1" && !named["X-Kept"] {
			t.Fatalf("X-Kept removed")
		}
	})
}

// FuzzParseForwardedAddr (issue 9 item 12): X-Forwarded-For elements parse
// to unmapped, zone-free addresses or fail; every address round-trips.
func FuzzParseForwardedAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "1.2.3.4:5678", "[2001:db8::1]:443", "[2001:db8::1]", "::ffff:10.0.0.1",
		"[::ffff:10.0.0.1]:80", "fe80::1%eth0", "garbage", "unknown", "1.2.3.4:99999", "[1.2.3.4]", "", "::1:80", "1.2.3.4:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, ok := parseForwardedAddr(s)
		if !ok {
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("parseForwardedAddr(%q) = %v", s, a)
		}
		if b, ok := parseForwardedAddr(a.String()); !ok || b != a {
			t.Fatalf("round trip of %v: %v %v", a, b, ok)
		}
		if a.Is6() {
			if b, ok := parseForwardedAddr("[" + a.String() + "]:1"); !ok || b != a {
				t.Fatalf("[%v]:1 → %v %v", a, b, ok)
			}
		} else if b, ok := parseForwardedAddr(a.String() + ":1"); !ok || b != a {
			t.Fatalf("%v:1 → %v %v", a, b, ok)
		}
	})
}

// TestClientFromXFF: the walk from the right stops at the first untrusted
// address; an unreadable element before it is reported, not skipped.
func TestClientFromXFF(t *testing.T) {
	t.Parallel()
	s := &Snapshot{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, tc := range []struct {
		xff     []string
		ip      string
		ok, bad bool
	}{
		{xff: nil},
		{xff: []string{"203.0.113.1"}, ip: "203.0.113.1", ok: true},
		{xff: []string{"203.0.113.1, 10.0.0.2"}, ip: "203.0.113.1", ok: true},
		{xff: []string{"junk, 203.0.113.1, 10.0.0.2"}, ip: "203.0.113.1", ok: true},
		{xff: []string{"203.0.113.1", "10.0.0.2:80"}, ip: "203.0.113.1", ok: true},
		{xff: []string{"203.0.113.1, junk"}, bad: true},
		{xff: []string{"203.0.113.1:1:2"}, bad: true},
		{xff: []string{"10.0.0.2, 10.0.0.3"}},
		{xff: []string{" , ::ffff:203.0.113.1 ,"}, ip: "203.0.113.1", ok: true},
	} {
		ip, ok, bad := s.clientFromXFF(tc.xff)
		if ok != tc.ok || bad != tc.bad || (ok && ip.String() != tc.ip) {
			t.Errorf("%q: %v %v %v, want %s %v %v", tc.xff, ip, ok, bad, tc.ip, tc.ok, tc.bad)
		}
	}
}

// FuzzMethodParam (issue 9 item 6): every query Go's own parser reads with a
// "_method" key is detected, so it cannot pass by default.
func FuzzMethodParam(f *testing.F) {
	for _, s := range []string{"_method=DELETE", "a=1&%5Fmethod=PUT", "a=1;_method=x", ".method=x", "_METHOD=x", "my_method=x", "_method", "%5fmethod%3d=x", "_method[]=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := hasMethodParam(raw)
		vals := methodParamValues(raw)
		if got != (len(vals) > 0) {
			t.Fatalf("%q: hasMethodParam %v, %d values", raw, got, len(vals))
		}
		q, _ := url.ParseQuery(raw)
		for k := range q {
			if strings.EqualFold(k, "_method") && !got {
				t.Fatalf("%q: Go reads key %q, not detected", raw, k)
			}
		}
	})
}

// TestFilterUpgrade: only allowed protocols survive; h2c never does.
func TestFilterUpgrade(t *testing.T) {
	t.Parallel()
	rt := &route{upgrades: compileUpgrades([]string{"websocket", "h2c", "Foo/1"})}
	for _, tc := range []struct{ in, want string }{
		{"websocket", "websocket"}, {"WebSocket", "WebSocket"}, {"h2c", ""}, {"H2C, websocket", "websocket"},
		{"foo/2", "foo/2"}, {"bar", ""}, {"websocket/ x", ""}, {"h2c/1", ""},
	} {
		h := http.Header{"Upgrade": {tc.in}, "Connection": {"Upgrade"}}
		rt.filterUpgrade(h)
		if got := h.Get("Upgrade"); got != tc.want {
			t.Errorf("Upgrade %q → %q, want %q", tc.in, got, tc.want)
		}
		if _, ok := h["Connection"]; ok != (tc.want != "") {
			t.Errorf("Upgrade %q: Connection kept = %v", tc.in, ok)
		}
	}
	if len(compileUpgrades(nil)) != 1 || len(compileUpgrades([]string{})) != 0 {
		t.Errorf("compileUpgrades defaults wrong")
	}
}

// TestHygieneAllocs: the arrival cleanup of a typical request allocates
// nothing.
func TestHygieneAllocs(t *testing.T) {
	e := newEdgePolicy(config.Server{}, nil, nil)
	src := http.Header{
		"Connection": {"keep-alive"}, "Te": {"trailers"}, "Accept": {"*/*"}, "User-Agent": {"x"},
		"X-Forwarded-For": {"1.2.3.4"}, "Authorization": {"Bearer x"},
	}
	h := http.Header{}
	allocs := testing.AllocsPerRun(100, func() {
		clear(h)
		for k, v := range src {
			h[k] = v
		}
		cleanHopByHop(h)
		e.stripHeaders(h, false)
	})
	if allocs > 0 {
		t.Errorf("arrival cleanup allocates %.1f times per request", allocs)
	}
	if _, ok := h["X-Forwarded-For"]; ok || h.Get("Te") != "trailers" || h.Get("Accept") != "*/*" {
		t.Errorf("cleanup result %v", h)
	}
}
