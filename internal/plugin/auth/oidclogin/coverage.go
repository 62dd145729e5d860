package oidclogin

import (
	"cmp"
	"fmt"
	"net/url"
	"strings"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
)

// checkCoverage makes sure the provider's redirect back reaches the
// plugin: a GET of the callback path (redirect_path, or the path and host
// of redirect_url) must be routed to this instance's route, or to a route
// whose oidc_login has the same issuer, client_id, cookie_secret,
// cookie_name and callback path (that instance then completes the login,
// as with a global oidc_login). Otherwise the callback lands elsewhere
// and every login fails.
func (p *OIDCLogin) checkCoverage(ctx plugin.Context) error {
	field, value, host, target := "redirect_path", p.RedirectPath, "", p.RedirectPath
	var ru *url.URL
	if p.RedirectURL != "" {
		u, err := url.Parse(p.RedirectURL)
		if err != nil {
			return nil // reported by check
		}
		ru = u
		field, value, host, target = "redirect_url", p.RedirectURL, u.Host, u.EscapedPath()
		if u.RawQuery != "" {
			target += "?" + u.RawQuery
		}
	}
	route := ctx.Route()
	cv := ctx.Covers(host, target)
	if cv.Path != "" && cv.Path != p.redirectPath {
		return fmt.Errorf("%s %q: the path is not in normal form (requests for it are routed and compared as %q), so the callback would never be recognised: use %q",
			field, value, cv.Path, cv.Path)
	}
	if cv.Covered {
		return nil
	}
	if cv.HostMismatch {
		return fmt.Errorf("%s %q is on host %s, which route %q (match: %s) does not serve: use a URL on one of the route's hosts, or put oidc_login on a route for that host",
			field, value, ru.Host, route, cv.Match)
	}
	if cv.Winner != "" && p.sameLogin(cv.WinnerPlugins, (*OIDCLogin).callbackPath, p.redirectPath) {
		return nil
	}
	on := ""
	if host == "" && cv.Host != "" {
		on = " on host " + cv.Host
	}
	var b strings.Builder
	if cv.Path == "" {
		fmt.Fprintf(&b, "%s %q is not a path requests can have", field, value)
	} else if cv.Winner != "" {
		fmt.Fprintf(&b, "%s %q%s is matched by route %q, which wins over route %q (match: %s), so the provider's redirect back never reaches this login",
			field, value, on, cv.Winner, route, cv.Match)
	} else {
		fmt.Fprintf(&b, "%s %q is not matched by route %q%s (match: %s)", field, value, route, on, cv.Match)
	}
	b.WriteString(": ")
	if s := p.suggestCallback(ctx, host, ru, cv); s != "" {
		fmt.Fprintf(&b, "use a path under %s, e.g. %q, or ", strings.TrimSuffix(cv.PathPrefix, "/"), s)
	} else {
		b.WriteString("use a path this route matches, or ")
	}
	if cv.Winner != "" {
		fmt.Fprintf(&b, "give route %q an oidc_login with the same issuer, client_id, cookie_secret, cookie_name and %s", cv.Winner, field)
	} else {
		b.WriteString("add a route for it")
	}
	return fmt.Errorf("%s", b.String())
}

// suggestCallback proposes a callback under the route's path_prefix that
// the route does cover: the configured path appended to the prefix.
func (p *OIDCLogin) suggestCallback(ctx plugin.Context, host string, ru *url.URL, cv plugin.Coverage) string {
	prefix := strings.TrimSuffix(cv.PathPrefix, "/")
	if prefix == "" {
		return ""
	}
	path := prefix + p.redirectPath
	if path == p.LogoutPath || !ctx.Covers(host, path).Covered {
		return ""
	}
	if ru == nil {
		return path
	}
	u := *ru
	u.Path, u.RawPath = path, ""
	return u.String()
}

// warnLogoutCoverage logs a WARN when a GET of logout_path does not reach
// this route (nor a route running the same login): logging out there
// would never clear or revoke the session. It is not an error, since a
// route may leave logout to another route on purpose.
func (p *OIDCLogin) warnLogoutCoverage(ctx plugin.Context) {
	cv := ctx.Covers("", p.LogoutPath)
	if cv.Covered || (cv.Winner != "" && p.sameLogin(cv.WinnerPlugins, (*OIDCLogin).logoutPath, p.LogoutPath)) {
		return
	}
	p.log.Warn("oidc_login: logout_path is not routed to this route; logout requests for it never reach the plugin",
		"route", ctx.Route(), "logout_path", p.LogoutPath, "match", cv.Match, "host", cv.Host, "routed_to", cv.Winner)
}

// sameLogin reports whether specs (the plugins of the route that gets the
// callback or logout) hold an oidc_login that handles it for this
// instance: the same provider and client, the same cookie key and name,
// and the same path (path(o) == want).
func (p *OIDCLogin) sameLogin(specs []config.PluginSpec, path func(*OIDCLogin) string, want string) bool {
	for _, ps := range specs {
		if ps.Name != Name {
			continue
		}
		var o OIDCLogin
		node := ps.Config
		if config.DecodeStrict(&node, &o, ps.Path+".config") != nil {
			return false
		}
		return strings.TrimSuffix(o.Issuer, "/") == strings.TrimSuffix(p.Issuer, "/") &&
			o.ClientID == p.ClientID && o.CookieSecret == p.CookieSecret &&
			cmp.Or(o.CookieName, DefaultCookieName) == p.CookieName &&
			path(&o) == want
	}
	return false
}

// callbackPath is the path the instance answers the provider's redirect
// on, computed from the config alone.
func (p *OIDCLogin) callbackPath() string {
	if p.RedirectURL != "" {
		if u, err := url.Parse(p.RedirectURL); err == nil {
			return u.Path
		}
		return ""
	}
	return cmp.Or(p.RedirectPath, DefaultRedirectPath)
}

// logoutPath is the instance's logout path, computed from the config alone.
func (p *OIDCLogin) logoutPath() string { return cmp.Or(p.LogoutPath, DefaultLogoutPath) }
