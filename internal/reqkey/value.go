package reqkey

import (
	"net/http"

	"github.com/portico-gw/portico/internal/request"
)

// Value returns the request's value of the key's first part, without
// allocating (but for a percent-encoded query parameter); ok is false when
// the part has none. Unlike hashing, no client IP stands in for a missing
// value, and an ip part has no value here. It is meant for one-part keys
// that name a header, cookie or query parameter to compare.
func (k Key) Value(r *http.Request, rec *request.Record) (string, bool) {
	if len(k.parts) == 0 || k.parts[0].kind == kindIP {
		return "", false
	}
	return k.parts[0].value(r, rec)
}
