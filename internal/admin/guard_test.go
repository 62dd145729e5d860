package admin

import (
	"net/netip"
	"strings"
	"testing"
)

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	allowed := []string{"admin.internal", "10.0.0.7", "[fd00::1]"}
	for _, h := range []string{"localhost", "LOCALHOST:1", "localhost.", "127.0.0.1", "127.9.9.9:9901", "[::1]", "[::1]:80",
		"[::ffff:127.0.0.1]", "admin.internal", "Admin.Internal:9901", "10.0.0.7:1", "[fd00::1]:2", "[fd00:0::1]"} {
		if !hostAllowed(h, allowed) {
			t.Errorf("hostAllowed(%q) = false", h)
		}
	}
	for _, h := range []string{"", ":80", "evil.example", "localhost.evil", "evil.localhost", "0.0.0.0", "::1", "[::1",
		"[::1]x", "[::1]:x", "localhost:80a", "localhost:1234567", "127.1", "2130706433", "[fe80::1%lo]", "10.0.0.8",
		"admin.internal.evil", "localhost..", "[127.0.0.1]"} {
		if hostAllowed(h, allowed) {
			t.Errorf("hostAllowed(%q) = true", h)
		}
	}
}

// FuzzHostAllowed checks that a Host accepted without allowed names
// always has a loopback host part, and that nothing panics.
func FuzzHostAllowed(f *testing.F) {
	for _, s := range []string{"localhost", "localhost:9901", "127.0.0.1", "[::1]:1", "evil.example", "[::ffff:127.0.0.1]",
		"127.0.0.1.evil", "[", "]", ":", "localhost.", "[::1]]:1", "%", "[::1%25x]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !hostAllowed(host, nil) {
			return
		}
		h, ok := splitHost(host)
		if !ok {
			t.Fatalf("%q accepted but malformed", host)
		}
		if strings.EqualFold(h, "localhost") {
			return
		}
		ip, err := netip.ParseAddr(h)
		if err != nil || !ip.Unmap().IsLoopback() {
			t.Fatalf("%q accepted with host %q", host, h)
		}
	})
}
