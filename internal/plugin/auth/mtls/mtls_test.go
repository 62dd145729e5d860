package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
	"github.com/portico-gw/portico/internal/request"
)

func build(t *testing.T, src string) http.Handler {
	t.Helper()
	store, err := consumer.NewStore([]*config.Consumer{
		{Name: "svc", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "dns:svc.example.org"}}}},
		{Name: "ops", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "ops@example.org"}}}},
		{Name: "spiffe", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "uri:spiffe://example.org/x"}}}},
		{Name: "byip", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "10.0.0.7"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := plugintest.Build[plugin.Plugin](t, "mtls", src, plugintest.WithStore(store))
	if err != nil {
		t.Fatal(err)
	}
	return p.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Consumer", r.Header.Get("X-Consumer-Username"))
	}))
}

func cert(dns, emails []string, uris []string, ips []net.IP) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "cn"}, DNSNames: dns, EmailAddresses: emails, IPAddresses: ips}
	for _, u := range uris {
		pu, _ := url.Parse(u)
		c.URIs = append(c.URIs, pu)
	}
	return c
}

// TestReasonsAndTypedSANs checks the failure reasons and that a SAN only
// matches a credential of its own type. (The certificates are not signed:
// the TLS listener verifies them; here VerifiedChains stands for that.)
func TestReasonsAndTypedSANs(t *testing.T) {
	h := build(t, "{}")
	verified := func(c *x509.Certificate) *tls.ConnectionState {
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}, VerifiedChains: [][]*x509.Certificate{{c}}}
	}
	for _, tc := range []struct {
		desc           string
		state          *tls.ConnectionState
		status         int
		reason, wantID string
	}{
		{"plain connection", nil, 401, "missing", ""},
		{"no certificate", &tls.ConnectionState{}, 401, "missing", ""},
		{"unverified certificate", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert([]string{"svc.example.org"}, nil, nil, nil)}}, 401, "unverified_certificate", ""},
		{"dns", verified(cert([]string{"svc.example.org"}, nil, nil, nil)), 200, "", "svc"},
		{"email", verified(cert(nil, []string{"ops@example.org"}, nil, nil)), 200, "", "ops"},
		{"uri", verified(cert(nil, nil, []string{"spiffe://example.org/x"}, nil)), 200, "", "spiffe"},
		{"ip", verified(cert(nil, nil, nil, []net.IP{net.ParseIP("10.0.0.7")})), 200, "", "byip"},
		{"dns spelling the email", verified(cert([]string{"ops@example.org"}, nil, nil, nil)), 401, "unknown_certificate", ""},
		{"email spelling the dns", verified(cert(nil, []string{"svc.example.org"}, nil, nil)), 401, "unknown_certificate", ""},
		{"dns spelling the uri", verified(cert([]string{"spiffe://example.org/x"}, nil, nil, nil)), 401, "unknown_certificate", ""},
		{"dns spelling the ip", verified(cert([]string{"10.0.0.7"}, nil, nil, nil)), 401, "unknown_certificate", ""},
	} {
		r := httptest.NewRequest(http.MethodGet, "https://gw.test/", nil)
		r.TLS = tc.state
		rec := &request.Record{}
		r = r.WithContext(request.WithRecord(r.Context(), rec))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status || rec.AuthFailure != tc.reason || w.Header().Get("X-Consumer") != tc.wantID {
			t.Errorf("%s: status %d reason %q consumer %q, want %d %q %q", tc.desc, w.Code, rec.AuthFailure, w.Header().Get("X-Consumer"), tc.status, tc.reason, tc.wantID)
		}
	}
}
