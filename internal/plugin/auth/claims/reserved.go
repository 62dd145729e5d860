package claims

import (
	"net/http"

	"github.com/portico-gw/portico/internal/httpx"
)

// reserved is the set of headers no claims_to_headers entry may write:
//   - message framing and routing: Host, Content-Length, Content-Type and
//     the hop-by-hop fields (httpx.HopByHop, with Transfer-Encoding);
//   - Cookie, which carries the browser's cookies to the upstream;
//   - the identity headers the gateway's auth plugins set
//     (httpx.IdentityHeaders), which backends trust.
var reserved = func() map[string]bool {
	m := map[string]bool{"Host": true, "Content-Length": true, "Content-Type": true, "Cookie": true}
	for _, h := range httpx.HopByHop {
		m[h] = true
	}
	for _, h := range httpx.IdentityHeaders {
		m[h] = true
	}
	return m
}()

// Reserved reports whether claims_to_headers may not write the canonical
// header name: one of the shared reserved headers above, or one of extra,
// the headers a plugin reserves for itself (the header it reads the
// credential from, such as Authorization, and, for plugins that do not
// forward them on purpose, httpx.ForeignIdentityHeaders). It is called at
// load time only.
func Reserved(canonical string, extra ...string) bool {
	if reserved[canonical] {
		return true
	}
	for _, h := range extra {
		if http.CanonicalHeaderKey(h) == canonical {
			return true
		}
	}
	return false
}
