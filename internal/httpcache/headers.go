package httpcache

import (
	"net/http"
	"slices"
	"time"

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
		out[name] = clipped(vs)
	}
	return out
}

// clipped copies vs into a slice whose capacity is its length, so that an
// append by one reader of a shared stored header never writes into memory
// another reader's slice can reach.
func clipped(vs []string) []string {
	return slices.Clip(append([]string(nil), vs...))
}

// ServeHeader writes the header of a response served from the stored entry e
// at now into dst: the stored fields (their value slices are shared and
// clipped: replace them, never modify them in place) and Age.
func ServeHeader(dst http.Header, e *Entry, now time.Time) {
	for name, vs := range e.Header {
		dst[name] = vs
	}
	dst["Age"] = []string{AgeValue(&e.Meta, now)}
}
