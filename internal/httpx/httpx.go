// Package httpx holds the HTTP header facts every layer shares: the one
// hop-by-hop set, the one identity-header set, the RFC 9110 token check,
// Connection-header token parsing, and the name folding
// backends apply to header names ("_" read as "-"). It imports only the
// standard library, so the gateway, the proxy and plugins can all use it.
package httpx

import (
	"net/http"
	"strings"
)

// HopByHop lists the canonical names of the hop-by-hop request and response
// fields (RFC 9110 §7.6.1, plus the legacy Proxy-Connection and Keep-Alive,
// and HTTP2-Settings, which only means something on one connection). Any
// field a message's Connection header names is hop-by-hop as well.
var HopByHop = [...]string{
	"Connection",
	"Proxy-Connection",
	"Keep-Alive",
	"Proxy-Authenticate",
	"Proxy-Authorization",
	"Te",
	"Trailer",
	"Transfer-Encoding",
	"Upgrade",
	"Http2-Settings",
}

// Identity headers: what an authentication plugin sends upstream about the
// consumer. The gateway removes every one of them (also spelled with "_")
// from client requests before any plugin runs, so a client can never forge
// an identity, and plugins may not use them for other data.
const (
	HeaderConsumerID       = "X-Consumer-Id"
	HeaderConsumerUsername = "X-Consumer-Username"
	HeaderConsumerGroups   = "X-Consumer-Groups"
	HeaderAnonymous        = "X-Anonymous-Consumer"
	HeaderCredential       = "X-Credential-Identifier"
	HeaderAuthenticatedBy  = "X-Authenticated-By"
)

// IdentityHeaders lists the canonical names of the identity headers
// Portico's authentication plugins set from the consumer.
var IdentityHeaders = [...]string{
	HeaderConsumerID, HeaderConsumerUsername, HeaderConsumerGroups, HeaderAnonymous,
	HeaderCredential, HeaderAuthenticatedBy,
}

// ForeignIdentityHeaders lists the canonical names of identity headers other
// gateways set, which backends written for them may trust. The gateway
// strips them from clients like IdentityHeaders; a plugin may still write
// one on purpose (oauth2_introspection can send the token's scope as
// X-Authenticated-Scope).
var ForeignIdentityHeaders = [...]string{
	"X-Consumer-Custom-Id", "X-Authenticated-Userid", "X-Authenticated-Scope", "X-Userinfo",
}

// IsIdentityHeader reports whether the canonical header name is in
// IdentityHeaders or ForeignIdentityHeaders.
func IsIdentityHeader(canonical string) bool {
	for _, h := range IdentityHeaders {
		if h == canonical {
			return true
		}
	}
	for _, h := range ForeignIdentityHeaders {
		if h == canonical {
			return true
		}
	}
	return false
}

// IsHopByHop reports whether the canonical header name is in HopByHop.
func IsHopByHop(canonical string) bool {
	for _, h := range HopByHop {
		if h == canonical {
			return true
		}
	}
	return false
}

// Tokens calls yield for each comma-separated element of the header values,
// trimmed of optional whitespace; empty elements are skipped. It stops when
// yield returns false. It does not allocate.
func Tokens(values []string, yield func(tok string) bool) {
	for _, v := range values {
		for v != "" {
			var tok string
			if i := strings.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, ""
			}
			tok = strings.Trim(tok, " \t")
			if tok == "" {
				continue
			}
			if !yield(tok) {
				return
			}
		}
	}
}

// HasToken reports whether the comma-separated header values contain tok,
// compared case-insensitively.
func HasToken(values []string, tok string) bool {
	found := false
	Tokens(values, func(t string) bool {
		if strings.EqualFold(t, tok) {
			found = true
			return false
		}
		return true
	})
	return found
}

// ValidToken reports whether s is a non-empty RFC 9110 token (the grammar
// of header field names and of the names in a Connection header).
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !IsTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// IsTokenChar reports whether c may appear in an RFC 9110 token.
func IsTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// FoldName returns the canonical form of a header name as a backend that
// reads "_" as "-" sees it (CGI-style HTTP_X_USER, or servers that fold
// underscores), so "x_user" and "X-User" both give "X-User".
func FoldName(name string) string {
	if strings.IndexByte(name, '_') >= 0 {
		name = strings.ReplaceAll(name, "_", "-")
	}
	return http.CanonicalHeaderKey(name)
}
