package httpcache

import (
	"net/http"

	"github.com/portico-gw/portico/internal/httpx"
)

// StoredHeader returns a copy of the response header h without the fields
// a cache does not store or serve (RFC 9111 §3.1): the hop-by-hop fields,
// every field the Connection header names, and Age (recomputed when the
// response is served: use AgeValue). Compute the Meta with Freshness on the
// received header before, since it reads the upstream's Age.
func StoredHeader(h http.Header) http.Header {
	conn := h["Connection"]
	out := make(http.Header, len(h))
	for name, vs := range h {
		if name == "Age" || httpx.IsHopByHop(name) || (len(conn) > 0 && httpx.HasToken(conn, name)) {
			continue
		}
		out[name] = append([]string(nil), vs...)
	}
	return out
}
