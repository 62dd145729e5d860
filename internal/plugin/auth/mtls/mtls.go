// Package mtls is the `mtls` plugin: it requires a client certificate that
// the TLS listener verified against its client_ca_file, and maps the
// certificate's subject DN or one of its SANs to a consumer.
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
	return m.Setup(ctx, "mtls", "unknown_certificate")
}

// sans lists a certificate's subject alternative names as strings.
func sans(c *x509.Certificate) []string {
	out := make([]string, 0, len(c.DNSNames)+len(c.EmailAddresses)+len(c.URIs)+len(c.IPAddresses))
	out = append(out, c.DNSNames...)
	out = append(out, c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// Wrap returns the certificate check.
func (m *MTLS) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
			m.Unauthenticated(w, r, next, "", "missing")
			return
		}
		leaf := r.TLS.PeerCertificates[0]
		subject := leaf.Subject.String()
		c, ok := m.store.ByCertificate(subject, sans(leaf))
		if !ok {
			if !m.AllowUnmapped || leaf.Subject.CommonName == "" {
				m.Unauthenticated(w, r, next, "", "unknown_certificate")
				return
			}
			c = &consumer.Consumer{Name: leaf.Subject.CommonName, ID: leaf.Subject.CommonName}
		}
		m.Authenticated(r, c, subject)
		next.ServeHTTP(w, r)
	})
}

var _ plugin.Plugin = (*MTLS)(nil)
