// Package iprestriction is the `ip_restriction` plugin: allow or deny
// requests by the real client IP (the address the trusted-proxy policy
// resolved, never a client-supplied header from an untrusted peer).
package iprestriction

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/request"
)

func init() {
	plugin.Register(plugin.Spec{Name: "ip_restriction", Phase: plugin.PhaseInit, New: func() plugin.Plugin { return new(IPRestriction) }})
}

// IPRestriction refuses requests by client address with 403. Deny wins over
// allow; with an allow list, addresses outside it are refused.
type IPRestriction struct {
	// Allow lists CIDRs or addresses that may pass (empty: all not denied).
	// IPv4-mapped IPv6 forms ("::ffff:10.0.0.0/104") match the IPv4
	// addresses they map.
	Allow []string `yaml:"allow"`
	// Deny lists CIDRs or addresses that may not pass.
	Deny []string `yaml:"deny"`

	allow, deny []netip.Prefix
	refused     *observe.Counter
}

// Provision parses the address lists.
func (p *IPRestriction) Provision(ctx plugin.Context) error {
	if len(p.Allow) == 0 && len(p.Deny) == 0 {
		return errors.New("set allow or deny (lists of CIDRs)")
	}
	var err error
	if p.allow, err = parse("allow", p.Allow); err != nil {
		return err
	}
	if p.deny, err = parse("deny", p.Deny); err != nil {
		return err
	}
	p.refused = ctx.Stats().Counter("portico_ip_restriction_refused_total", fmt.Sprintf("route=%q", ctx.Route()))
	return nil
}

func parse(field string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		pfx, err := config.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %v", field, i, err)
		}
		out = append(out, pfx)
	}
	return out, nil
}

func contains(list []netip.Prefix, a netip.Addr) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Wrap returns the address check.
func (p *IPRestriction) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ip netip.Addr
		if rec := request.RecordOf(r); rec != nil {
			ip = rec.ClientIP.Unmap()
		} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ip = ap.Addr().Unmap()
		}
		if !ip.IsValid() || contains(p.deny, ip) || (len(p.allow) > 0 && !contains(p.allow, ip)) {
			p.refused.Inc()
			request.WriteError(w, r, http.StatusForbidden, "forbidden")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Interface guards.
var (
	_ plugin.Plugin = (*IPRestriction)(nil)
)
