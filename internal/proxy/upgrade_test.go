package proxy

import (
	"net/http"
	"testing"
)

// TestDropH2CUpgrade (issue 9 item 1): the proxy's own guard removes an h2c
// upgrade and HTTP2-Settings from the outbound request; other upgrades, which
// the gateway has already checked against the route, are left alone.
func TestDropH2CUpgrade(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc        string
		upgrade     string
		wantUpgrade bool
	}{
		{"h2c", "h2c", false},
		{"H2C among others", "websocket, H2C", false},
		{"websocket", "websocket", true},
		{"none", "", false},
	} {
		h := http.Header{"Connection": {"Upgrade"}, "Http2-Settings": {"AAMAAABkAARAAAAAAAIAAAAA"}}
		if tc.upgrade != "" {
			h["Upgrade"] = []string{tc.upgrade}
		}
		dropH2CUpgrade(h)
		if _, ok := h["Http2-Settings"]; ok {
			t.Errorf("%s: HTTP2-Settings kept", tc.desc)
		}
		if _, ok := h["Upgrade"]; ok != tc.wantUpgrade {
			t.Errorf("%s: Upgrade kept = %v", tc.desc, ok)
		}
		if tc.upgrade != "" && !tc.wantUpgrade {
			if _, ok := h["Connection"]; ok {
				t.Errorf("%s: Connection kept", tc.desc)
			}
		}
	}
}
