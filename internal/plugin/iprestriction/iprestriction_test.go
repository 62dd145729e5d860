package iprestriction

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

// ipCase is a client IP and the status the plugin gives it.
type ipCase struct {
	ip     string
	status int
}

// checkIPs builds an ip_restriction from cfg and checks the status of each
// client IP, taken from the request record; a forged X-Forwarded-For
// naming an allowed address changes nothing.
func checkIPs(t *testing.T, cfg string, cases []ipCase) {
	t.Helper()
	in, err := plugin.NewFromYAML("ip_restriction", cfg, plugin.StaticContext{RouteName: "r", SpecPath: "p"})
	if err != nil {
		t.Fatal(err)
	}
	h := in.Plugin.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r = r.WithContext(request.WithRecord(r.Context(), &request.Record{RequestID: "t", ClientIP: netip.MustParseAddr(tc.ip)}))
		r.Header.Set("X-Forwarded-For", "10.1.2.3")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.ip, w.Code, tc.status)
		}
	}
}

// TestIPRestriction: the record's client IP decides; deny wins over allow.
func TestIPRestriction(t *testing.T) {
	t.Parallel()
	checkIPs(t, `{allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.9.0.0/16"]}`, []ipCase{
		{"10.1.2.3", 204}, {"10.9.1.1", 403}, {"192.168.1.1", 403}, {"2001:db8::1", 204}, {"2001:db9::1", 403},
	})
}

// TestIPRestrictionConfigErrors: bad CIDRs and empty lists are refused.
func TestIPRestrictionConfigErrors(t *testing.T) {
	t.Parallel()
	for _, src := range []string{"{}", "{allow: [nonsense]}", "{deny: ['10.0.0.0/33']}"} {
		if _, err := plugin.NewFromYAML("ip_restriction", src, plugin.StaticContext{SpecPath: "p"}); err == nil {
			t.Errorf("config %s accepted", src)
		}
	}
}

// TestIPRestrictionMapped (issue 9 item 12): IPv4-mapped IPv6 addresses and
// CIDRs match their IPv4 forms, whichever form the client address has.
func TestIPRestrictionMapped(t *testing.T) {
	t.Parallel()
	checkIPs(t, `{allow: ["::ffff:10.0.0.0/104", "::ffff:192.0.2.1"], deny: ["::ffff:10.9.0.0/112"]}`, []ipCase{
		{"10.1.2.3", 204}, {"::ffff:10.1.2.3", 204}, {"192.0.2.1", 204}, {"::ffff:192.0.2.1", 204},
		{"192.0.2.2", 403}, {"11.0.0.1", 403}, {"10.9.0.1", 403}, {"::ffff:10.9.0.1", 403}, {"::1", 403},
	})
}
