// Package acl is the `acl` plugin: it allows or denies authenticated
// consumers by group. It runs in the authorize phase, after every
// authentication plugin of the route, so its place in the plugin list does
// not matter.
package acl

import (
	"errors"
	"net/http"

	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
)

func init() {
	plugin.Register(plugin.Spec{Name: "acl", Phase: plugin.PhaseAuthorize, New: func() plugin.Plugin { return new(ACL) }})
}

// ACL allows or denies consumers by group. A request without an
// authenticated consumer gets 401; a consumer in a denied group, or in none
// of the allowed groups, gets 403. Deny wins over allow. The anonymous
// consumer is judged by its own groups like any other.
type ACL struct {
	// Allow lists the groups that may pass (empty: any group not denied).
	Allow []string `yaml:"allow"`
	// Deny lists the groups that may not pass.
	Deny []string `yaml:"deny"`

	base  auth.Base
	allow map[string]bool
	deny  map[string]bool
}

// Provision indexes the group lists.
func (a *ACL) Provision(ctx plugin.Context) error {
	if len(a.Allow) == 0 && len(a.Deny) == 0 {
		return errors.New("set allow or deny (lists of consumer groups)")
	}
	a.allow, a.deny = map[string]bool{}, map[string]bool{}
	for _, g := range a.Allow {
		if g == "" {
			return errors.New("allow: empty group name")
		}
		a.allow[g] = true
	}
	for _, g := range a.Deny {
		if g == "" {
			return errors.New("deny: empty group name")
		}
		if a.allow[g] {
			return errors.New("group " + g + " is both allowed and denied")
		}
		a.deny[g] = true
	}
	return a.base.Setup(ctx, "acl", "no_consumer")
}

// Wrap returns the access check.
func (a *ACL) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := auth.ConsumerOf(r)
		if c == nil {
			a.base.Unauthenticated(w, r, next, "", "no_consumer")
			return
		}
		allowed := len(a.allow) == 0
		for _, g := range c.Groups {
			if a.deny[g] {
				a.base.Forbidden(w, r, "forbidden")
				return
			}
			if a.allow[g] {
				allowed = true
			}
		}
		if !allowed {
			a.base.Forbidden(w, r, "forbidden")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Interface guards.
var (
	_ plugin.Plugin = (*ACL)(nil)
)
