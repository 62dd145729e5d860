// Package mtls is the `mtls` plugin: it requires a client certificate that
// the TLS listener verified against its client_ca_file, and maps the
// certificate's subject DN or one of its SANs to a consumer. SANs are
// typed: a DNS SAN only matches a consumer's dns: credential, an e-mail
// SAN an email: one, and so on (see consumer.ParseSANCredential).
package mtls

import (
	"crypto/x509"
	"errors"
	"net/http"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/auth"
)

func init() {
	plugin.Register(plugin.Spec{Name: "mtls", Phase: plugin.PhaseAccess, New: func() plugin.Plugin { return new(MTLS) }})
}

// MTLS authenticates by verified client certificate. Without one (plain
// listener, no certificate, or a certificate the listener could not verify)
// the request gets 401; a verified certificate that maps to no consumer gets
// 401 too, unless AllowUnmapped.
type MTLS struct {
	auth.Base `yaml:",inline"`
	// AllowUnmapped accepts verified certificates that map to no consumer,
	// as a consumer named after the certificate's common name.
	AllowUnmapped bool `yaml:"allow_unmapped"`

	store consumer.Store
}

// Provision sets up the shared auth state.
func (m *MTLS) Provision(ctx plugin.Context) error {
	m.store = ctx.Consumers()
	if m.store == nil {
		return errors.New("no consumer store")
	}
	return m.Setup(ctx, "mtls", reasonUnverified, reasonUnknown)
}

// Failure reasons (besides "missing": no client certificate).
const (
	reasonUnverified = "unverified_certificate"
	reasonUnknown    = "unknown_certificate"
)

// sans lists a certificate's subject alternative names in their typed form
// ("dns:…", "email:…", "uri:…", "ip:…"); values that cannot be a SAN of
// their type are left out.
func sans(c *x509.Certificate) []string {
	out := make([]string, 0, len(c.DNSNames)+len(c.EmailAddresses)+len(c.URIs)+len(c.IPAddresses))
	add := func(typ, v string) {
		if t, ok := consumer.TypedSAN(typ, v); ok {
			out = append(out, t)
		}
	}
	for _, v := range c.DNSNames {
		add(consumer.SANDNS, v)
	}
	for _, v := range c.EmailAddresses {
		add(consumer.SANEmail, v)
	}
	for _, u := range c.URIs {
		add(consumer.SANURI, u.String())
	}
	for _, ip := range c.IPAddresses {
		add(consumer.SANIP, ip.String())
	}
	return out
}

// Wrap returns the certificate check.
func (m *MTLS) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			m.Unauthenticated(w, r, next, "", "missing")
			return
		}
		if len(r.TLS.VerifiedChains) == 0 {
			m.Unauthenticated(w, r, next, "", reasonUnverified)
			return
		}
		leaf := r.TLS.PeerCertificates[0]
		subject := leaf.Subject.String()
		c, ok := m.store.ByCertificate(subject, sans(leaf))
		if !ok {
			if !m.AllowUnmapped || leaf.Subject.CommonName == "" {
				m.Unauthenticated(w, r, next, "", reasonUnknown)
				return
			}
			c = &consumer.Consumer{Name: leaf.Subject.CommonName, ID: leaf.Subject.CommonName}
		}
		m.Authenticated(r, c, subject)
		next.ServeHTTP(w, r)
	})
}

// Interface guards.
var (
	_ plugin.Plugin = (*MTLS)(nil)
)
