package config

import (
	"strings"
	"testing"
)

// TestParsePrefixMapped (issue 9 item 12): IPv4-mapped IPv6 addresses and
// CIDRs are returned in their IPv4 form, so they match unmapped client
// addresses; zones are refused.
func TestParsePrefixMapped(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"::ffff:10.1.2.3/104", "10.0.0.0/8"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"::ffff:192.0.2.7/128", "192.0.2.7/32"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"::/0", "::/0"},
		{"::1", "::1/128"},
	} {
		p, err := ParsePrefix(tc.in)
		if err != nil || p.String() != tc.want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
	for _, bad := range []string{"fe80::1%eth0", "fe80::1%eth0/64", "10.0.0.0/33", "nonsense", ""} {
		if _, err := ParsePrefix(bad); err == nil {
			t.Errorf("ParsePrefix(%q) accepted", bad)
		}
	}
}

// TestRouteUpgrades (issue 9 item 1): h2c and malformed protocol names are
// refused in a route's upgrades list.
func TestRouteUpgrades(t *testing.T) {
	t.Parallel()
	base := "upstreams: {u: {targets: [{url: \"http://127.0.0.1:1\"}]}}\nroutes:\n  - {name: r, match: {path_prefix: /}, upstream: u, upgrades: %s}\n"
	for _, tc := range []struct {
		list, want string
	}{
		{"[websocket, foo/2]", ""},
		{"[]", ""},
		{"[h2c]", "h2c upgrades are never forwarded"},
		{"[websocket, H2C/1]", "h2c upgrades are never forwarded"},
		{"[\"web socket\"]", "must be a protocol name"},
		{"[\"\"]", "must be a protocol name"},
	} {
		_, err := Parse([]byte(strings.Replace(base, "%s", tc.list, 1)), "test", func(string) (string, bool) { return "", false })
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("upgrades %s: %v", tc.list, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("upgrades %s: error %v, want %q", tc.list, err, tc.want)
		}
	}
}
