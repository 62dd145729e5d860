package forwardauth

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/httpx"
)

// Every header of the shared hop-by-hop set is refused in forward_headers
// and copy_response_headers, as are identity headers in
// copy_response_headers.
func TestSharedHeaderSetsRefused(t *testing.T) {
	const base = "{url: 'http://127.0.0.1:1/check', "
	for _, h := range httpx.HopByHop {
		for _, field := range []string{"forward_headers", "copy_response_headers"} {
			_, err := build(t, base+field+": ['"+strings.ToLower(h)+"']}")
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("%s: [%s]: error %v", field, h, err)
			}
		}
	}
	for _, h := range append(httpx.IdentityHeaders[:], httpx.ForeignIdentityHeaders[:]...) {
		_, err := build(t, base+"copy_response_headers: ['"+h+"']}")
		if err == nil || !strings.Contains(err.Error(), "cannot be copied") {
			t.Errorf("copy_response_headers: [%s]: error %v", h, err)
		}
	}
	for _, bad := range []string{"", "X Bad", "a:b", "é"} {
		_, err := build(t, base+"forward_headers: ['"+bad+"']}")
		if err == nil || !strings.Contains(err.Error(), "not a valid header name") {
			t.Errorf("forward_headers: [%q]: error %v", bad, err)
		}
	}
}
