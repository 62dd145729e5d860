// Package claims is the claims_to_headers contract shared by jwt,
// oauth2_introspection and oidc_login: which headers a claim may be sent
// as (Reserved) and the parsed mappings (Mappings). Values are rendered
// with request.RenderClaim.
package claims

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/portico-gw/portico/internal/httpx"
)

// Mapping is one claims_to_headers entry: a claim and the canonical name of
// the upstream header it is sent in.
type Mapping struct{ Claim, Header string }

// Mappings checks a claims_to_headers option and returns its entries sorted
// by claim. Each bad entry gives one error, in claim order: an empty claim
// name, an invalid header name, a header reserved by the shared rule or by
// extra (see Reserved), or a header that two claims are sent in. It is
// called at load time only.
func Mappings(m map[string]string, extra ...string) ([]Mapping, []error) {
	claims := make([]string, 0, len(m))
	for c := range m {
		claims = append(claims, c)
	}
	slices.Sort(claims)
	var out []Mapping
	var errs []error
	seen := map[string]string{}
	for _, claim := range claims {
		h := m[claim]
		c := http.CanonicalHeaderKey(h)
		switch {
		case claim == "":
			errs = append(errs, errors.New("claims_to_headers: empty claim name"))
		case !httpx.ValidToken(h):
			errs = append(errs, fmt.Errorf("claims_to_headers.%s: %q is not a valid header name", claim, h))
		case Reserved(c, extra...):
			errs = append(errs, fmt.Errorf("claims_to_headers.%s: %s is reserved and cannot be set by this plugin", claim, c))
		case seen[c] != "":
			errs = append(errs, fmt.Errorf("claims_to_headers: %q and %q both map to %s", seen[c], claim, c))
		default:
			seen[c] = claim
			out = append(out, Mapping{Claim: claim, Header: c})
		}
	}
	return out, errs
}

// Headers lists the header names of ms, in order.
func Headers(ms []Mapping) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Header
	}
	return out
}
