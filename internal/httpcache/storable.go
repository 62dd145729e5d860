package httpcache

import (
	"net/http"

	"github.com/portico-gw/portico/internal/httpx"
)

// Reasons Storable gives for not storing a response. They are constants so
// the plugin can count them without allocating.
const (
	ReasonMethod         = "method not cacheable"
	ReasonStatus         = "status not cacheable"
	ReasonRequestNoStore = "request no-store"
	ReasonNoStore        = "response no-store"
	ReasonPrivate        = "response private"
	ReasonAuthorization  = "request has Authorization"
	ReasonSetCookie      = "response has Set-Cookie"
	ReasonVaryStar       = "Vary: *"
	ReasonNoFreshness    = "no explicit freshness"
	ReasonRange          = "partial content"
)

// defaultCacheable reports whether status is cacheable by default in a
// shared cache (RFC 9110 §15.1, without 206: partial responses are never
// stored here).
func defaultCacheable(status int) bool {
	switch status {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// Storable reports whether a shared cache may store the response (status
// and header h) to req under policy p, following RFC 9111 §3; when not, the
// reason is one of the Reason constants.
//
// Rules: only GET and HEAD; request or response no-store, and private, never;
// Vary: * never; 206, 304 and 1xx never; a request with Authorization only
// when p.AllowAuthorized and the response has public, s-maxage or
// must-revalidate (§3.5); Set-Cookie only when p.AllowSetCookie. A status
// that is cacheable by default is stored when it has explicit freshness
// (max-age, s-maxage, Expires), a validator (ETag, Last-Modified: stored to
// be revalidated), public with heuristics on, heuristics on, or a
// TTLReplace override. Any other status needs explicit freshness or a
// TTLReplace override. no-cache responses are stored; Decide revalidates
// them on every use. The response directives are ResponseDirectives': a
// targeted field such as CDN-Cache-Control replaces Cache-Control and
// Expires.
func Storable(req *http.Request, status int, h http.Header, p *Policy) (ok bool, reason string) {
	if p == nil {
		p = &defaultPolicy
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return false, ReasonMethod
	}
	if status == http.StatusPartialContent {
		return false, ReasonRange
	}
	if status < 200 || status > 599 || status == http.StatusNotModified {
		return false, ReasonStatus
	}
	if ParseCacheControl(req.Header["Cache-Control"]).NoStore {
		return false, ReasonRequestNoStore
	}
	cc, useExpires := ResponseDirectives(h, p)
	switch {
	case cc.NoStore:
		return false, ReasonNoStore
	case cc.Private:
		return false, ReasonPrivate
	case VaryStar(h["Vary"]):
		return false, ReasonVaryStar
	}
	if _, has := req.Header["Authorization"]; has {
		if !p.AllowAuthorized || !(cc.Public || cc.SMaxAge >= 0 || cc.MustRevalidate) {
			return false, ReasonAuthorization
		}
	}
	if _, has := h["Set-Cookie"]; has && !p.AllowSetCookie {
		return false, ReasonSetCookie
	}
	if p.TTL > 0 && p.Mode == TTLReplace {
		return true, ""
	}
	_, hasExpires := h["Expires"]
	hasExpires = hasExpires && useExpires
	if cc.MaxAge >= 0 || cc.SMaxAge >= 0 || hasExpires {
		return true, ""
	}
	if cc.Public && p.Heuristic {
		return true, "" // public makes any status heuristically cacheable (§4.2.2)
	}
	if !defaultCacheable(status) {
		return false, ReasonStatus
	}
	if p.Heuristic || hasValidator(h) {
		return true, ""
	}
	return false, ReasonNoFreshness
}

func hasValidator(h http.Header) bool {
	_, etag := h["Etag"]
	_, lm := h["Last-Modified"]
	return etag || lm
}

// VaryStar reports whether the Vary field lines contain "*", which no
// request ever matches (RFC 9111 §4.1).
func VaryStar(vary []string) bool {
	return httpx.HasToken(vary, "*")
}
