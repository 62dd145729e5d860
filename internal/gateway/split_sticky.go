package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// splitCookie keeps a client on its variant with a signed cookie. A
// variant's cookie value is its name, a dot and the base64url
// HMAC-SHA256 over the route and variant names; all of it is computed
// when the config is built.
type splitCookie struct {
	// name is the cookie name; prefix is name followed by "=".
	name, prefix string
	// values[i] is variant i's valid cookie value.
	values []string
	// set[i] and setTLS[i] are variant i's Set-Cookie values (the
	// second with Secure), clipped so that appending to them copies.
	set, setTLS [][]string
}

// newSplitCookie precomputes the cookie of each variant of route.
func newSplitCookie(c *config.SplitCookie, route string, variants []splitVariant) *splitCookie {
	sc := &splitCookie{name: c.CookieName(), prefix: c.CookieName() + "="}
	attrs := "; Path=/; Max-Age=" + strconv.FormatInt(int64(c.MaxAge().Seconds()), 10) + "; HttpOnly; SameSite=Lax"
	for _, v := range variants {
		mac := hmac.New(sha256.New, []byte(c.Secret))
		mac.Write([]byte(route))
		mac.Write([]byte{0})
		mac.Write([]byte(v.name))
		val := v.name + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		sc.values = append(sc.values, val)
		sc.set = append(sc.set, slices.Clip([]string{sc.prefix + val + attrs}))
		sc.setTLS = append(sc.setTLS, slices.Clip([]string{sc.prefix + val + attrs + "; Secure"}))
	}
	return sc
}

// variant returns the index of the variant a valid cookie on r names, or
// -1 when there is none, it is not valid, or its variant takes no share
// of the weighted choice (removed or weight 0).
func (sc *splitCookie) variant(r *http.Request, cum []float64) int {
	got, ok := reqkey.CookieValue(r.Header["Cookie"], sc.name)
	if !ok {
		return -1
	}
	dot := strings.LastIndexByte(got, '.')
	if dot < 0 {
		return -1
	}
	name := got[:dot]
	for i, want := range sc.values {
		if len(want) == len(got) && want[:dot] == name {
			if !constantTimeEqual(got, want) || !positiveShare(cum, i) {
				return -1
			}
			return i
		}
	}
	return -1
}

// setCookie sets variant i's cookie on the response.
func (sc *splitCookie) setCookie(w http.ResponseWriter, rec *request.Record, i int) {
	h := w.Header()
	v := sc.set[i]
	if rec != nil && rec.TLS {
		v = sc.setTLS[i]
	}
	if old := h["Set-Cookie"]; len(old) > 0 {
		h["Set-Cookie"] = append(old, v[0])
		return
	}
	h["Set-Cookie"] = v
}

// positiveShare reports whether variant i takes part in the weighted
// choice.
func positiveShare(cum []float64, i int) bool {
	if i == 0 {
		return cum[0] > 0
	}
	return cum[i] > cum[i-1]
}

// constantTimeEqual compares two strings of equal length in time that
// does not depend on where they differ.
func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}
