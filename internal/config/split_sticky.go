package config

import (
	"cmp"
	"fmt"
	"time"

	"github.com/portico-gw/portico/internal/httpx"
)

// Split cookie defaults and limits.
const (
	DefaultSplitCookieName = "portico_variant"
	DefaultSplitCookieTTL  = Duration(24 * time.Hour)
	MinSplitCookieSecret   = 32
)

// CookieName returns the cookie name, or the default.
func (c *SplitCookie) CookieName() string {
	if c.Name == "" {
		return DefaultSplitCookieName
	}
	return c.Name
}

// MaxAge returns the cookie lifetime, or the default.
func (c *SplitCookie) MaxAge() time.Duration {
	if c.TTL == 0 {
		return DefaultSplitCookieTTL.D()
	}
	return c.TTL.D()
}

// validateSplitSticky checks a split's sticky settings at path p.
func validateSplitSticky(l *errorList, p string, st *SplitSticky) {
	switch {
	case len(st.Key) > 0 && st.Cookie != nil:
		l.add(p, "set either key or cookie, not both")
	case len(st.Key) == 0 && st.Cookie == nil:
		l.add(p+".key", "sticky needs a key, e.g. [consumer] or cookie:session, or a cookie")
	}
	c := st.Cookie
	if c == nil {
		return
	}
	if c.Name != "" && !httpx.ValidToken(c.Name) {
		l.add(p+".cookie.name", "cookie name %q is not a valid token (letters, digits and !#$%%&'*+-.^_`|~)", c.Name)
	}
	if c.TTL < 0 {
		l.add(p+".cookie.ttl", "ttl must not be negative")
	} else if c.TTL != 0 && c.TTL.D() < time.Second {
		l.add(p+".cookie.ttl", "ttl must be at least 1s")
	}
	if len(c.Secret) < MinSplitCookieSecret {
		l.add(p+".cookie.secret", "secret must be at least %d bytes (got %d); use \"${ENV}\" to read it from the environment", MinSplitCookieSecret, len(c.Secret))
	}
}

// validateStickyCookieNames refuses two cookie-sticky routes with the same
// cookie name: the cookie is set on Path=/ and signed for its route, so the
// routes would keep replacing each other's cookie and neither would stick.
func (c *Config) validateStickyCookieNames(l *errorList) {
	owner := map[string]string{}
	for i, r := range c.Routes {
		if r == nil || r.Split == nil || r.Split.Sticky == nil || r.Split.Sticky.Cookie == nil {
			continue
		}
		name := cmp.Or(r.Split.Sticky.Cookie.Name, DefaultSplitCookieName)
		if other, dup := owner[name]; dup {
			l.add(fmt.Sprintf("routes[%d].split.sticky.cookie.name", i),
				"cookie %q is already the sticky cookie of route %q; give each cookie-sticky route its own name", name, other)
			continue
		}
		owner[name] = r.Name
	}
}
