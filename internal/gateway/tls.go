package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/portico-gw/portico/internal/config"
)

// loadCerts reads a listener's certificates and indexes them by their DNS
// names (exact and "*." wildcard) for SNI selection.
func loadCerts(t *config.TLS, base string) (*certSet, error) {
	cs := &certSet{byName: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}}
	for i, c := range t.Certificates {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, config.Errors{{Path: fmt.Sprintf("%s.certificates[%d]", base, i), Msg: fmt.Sprintf("cannot load certificate: %v", err)}}
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			return nil, config.Errors{{Path: fmt.Sprintf("%s.certificates[%d]", base, i), Msg: fmt.Sprintf("cannot parse certificate: %v", err)}}
		}
		cert.Leaf = leaf
		cp := &cert
		if cs.def == nil {
			cs.def = cp
		}
		names := leaf.DNSNames
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = []string{leaf.Subject.CommonName}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if strings.HasPrefix(n, "*.") {
				if _, ok := cs.wildcard[n[2:]]; !ok {
					cs.wildcard[n[2:]] = cp
				}
			} else if _, ok := cs.byName[n]; !ok {
				cs.byName[n] = cp
			}
		}
	}
	cs.conf = &tls.Config{
		MinVersion:     tlsMinVersion(t.MinVersion),
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) { return cs.pick(h.ServerName), nil },
	}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, config.Errors{{Path: base + ".client_ca_file", Msg: fmt.Sprintf("cannot read: %v", err)}}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, config.Errors{{Path: base + ".client_ca_file", Msg: "no PEM certificates found"}}
		}
		cs.conf.ClientCAs = pool
		cs.conf.ClientAuth = tls.VerifyClientCertIfGiven
		if t.ClientAuth == "require" {
			cs.conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return cs, nil
}

// pick returns the certificate for an SNI name: exact, then wildcard one
// label up, then the listener's first certificate.
func (cs *certSet) pick(name string) *tls.Certificate {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if c, ok := cs.byName[name]; ok {
		return c
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c, ok := cs.wildcard[name[i+1:]]; ok {
			return c
		}
	}
	return cs.def
}

func tlsMinVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}
