package proxy

import (
	"fmt"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/template"
)

// Host header policies for Rewrite.HostPolicy.
const (
	// HostPreserve sends the client's Host header (the default).
	HostPreserve = iota
	// HostUpstream sends the target's host:port.
	HostUpstream
	// HostLiteral sends Rewrite.Host.
	HostLiteral
)

// Rewrite is a route's compiled path and Host rewrite.
type Rewrite struct {
	// StripPrefix removes a leading path prefix on a segment boundary.
	StripPrefix string
	// ReplaceFrom/ReplaceTo replace the matched path prefix (Replace set).
	Replace                bool
	ReplaceFrom, ReplaceTo string
	// Regex rewrites the path with Replacement ($1 references allowed).
	Regex       *regexp.Regexp
	Replacement string
	// HostPolicy is one of HostPreserve, HostUpstream, HostLiteral.
	HostPolicy int
	Host       string
	// PathTemplate, when set, replaces the path (rewrite.path).
	PathTemplate *template.Path
	// Prefix is prepended to the rewritten path.
	Prefix string
	// Query changes the query string (nil: sent as received).
	Query *QueryRewrite
}

// CompileRewrite turns the config form into a Rewrite; m is the route's match
// (replace_prefix replaces match.path_prefix).
func CompileRewrite(rw *config.Rewrite, m config.Match) (*Rewrite, error) {
	out := &Rewrite{}
	if rw == nil {
		return out, nil
	}
	out.StripPrefix = strings.TrimSuffix(rw.StripPrefix, "/")
	if rw.ReplacePrefix != nil {
		out.Replace = true
		out.ReplaceFrom = strings.TrimSuffix(m.PathPrefix, "/")
		out.ReplaceTo = strings.TrimSuffix(*rw.ReplacePrefix, "/")
	}
	if rw.Regex != nil {
		re, err := regexp.Compile(rw.Regex.Pattern)
		if err != nil {
			return nil, fmt.Errorf("rewrite.regex.pattern: %w", err)
		}
		out.Regex, out.Replacement = re, rw.Regex.Replacement
	}
	switch rw.Host {
	case "", "preserve":
	case "upstream":
		out.HostPolicy = HostUpstream
	default:
		if strings.ContainsAny(rw.Host, " /\r\n\t") {
			return nil, fmt.Errorf("rewrite.host: %q is not a valid host", rw.Host)
		}
		out.HostPolicy, out.Host = HostLiteral, rw.Host
	}
	if err := compileTransform(out, rw, m); err != nil {
		return nil, err
	}
	return out, nil
}

// trimSegmentPrefix removes prefix from p when p equals it or continues with
// "/"; the result always starts with "/".
func trimSegmentPrefix(p, prefix string) (string, bool) {
	if prefix == "" || !strings.HasPrefix(p, prefix) {
		return p, false
	}
	rest := p[len(prefix):]
	if rest == "" {
		return "/", true
	}
	if rest[0] != '/' {
		return p, false
	}
	return rest, true
}

// Path returns the upstream path for the normalised request path p.
func (rw *Rewrite) Path(p string) string {
	switch {
	case rw.StripPrefix != "":
		p, _ = trimSegmentPrefix(p, rw.StripPrefix)
	case rw.Replace && rw.ReplaceFrom == "":
		// The matched prefix is "/": every path is below it.
		if rw.ReplaceTo != "" {
			p = rw.ReplaceTo + p
		}
	case rw.Replace:
		if rest, ok := trimSegmentPrefix(p, rw.ReplaceFrom); ok {
			if rest == "/" && !strings.HasSuffix(p, "/") {
				rest = ""
			}
			p = rw.ReplaceTo + rest
			if p == "" {
				p = "/"
			}
		}
	}
	if rw.Regex != nil {
		p = rw.Regex.ReplaceAllString(p, rw.Replacement)
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
	}
	if rw.Prefix != "" {
		p = rw.Prefix + p
	}
	return p
}

// apply sets the outbound request's path (before any target base path,
// which the attempt loop prefixes per target) and Host header.
func (rw *Rewrite) apply(pr *httputil.ProxyRequest, rec *request.Record) {
	out := pr.Out
	var p string
	if rec != nil && rec.Path != "" {
		p = rec.Path
	} else {
		p = pr.In.URL.EscapedPath()
	}
	if rw.PathTemplate != nil {
		setEscapedPath(out.URL, rw.templatePath(rec))
	} else {
		setEscapedPath(out.URL, rw.Path(p))
	}
	if rw.Query != nil {
		out.URL.RawQuery = rw.Query.Apply(out.URL.RawQuery, pr.In, rec)
	}
	switch rw.HostPolicy {
	case HostPreserve:
		out.Host = pr.In.Host
	case HostUpstream:
		out.Host = ""
	case HostLiteral:
		out.Host = rw.Host
	}
}

// setEscapedPath sets u's path from an already-escaped form.
func setEscapedPath(u *url.URL, escaped string) {
	if strings.IndexByte(escaped, '%') < 0 {
		u.Path, u.RawPath = escaped, ""
		return
	}
	dec, err := url.PathUnescape(escaped)
	if err != nil {
		u.Path, u.RawPath = escaped, ""
		return
	}
	u.Path, u.RawPath = dec, escaped
}
