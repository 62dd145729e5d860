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
	// Every certificate and the client CA file are checked, so one run
	// reports each unreadable or mismatched file.
	var errs config.Errors
	for i, c := range t.Certificates {
		p := fmt.Sprintf("%s.certificates[%d]", base, i)
		cert, err := loadKeyPair(c.CertFile, c.KeyFile, p)
		if err != nil {
			errs = append(errs, err...)
			continue
		}
		leaf, perr := x509.ParseCertificate(cert.Certificate[0])
		if perr != nil {
			errs = append(errs, config.Error{Path: p + ".cert_file", Msg: fmt.Sprintf("cannot parse certificate %s: %v", c.CertFile, perr)})
			continue
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
			return nil, append(errs, config.Error{Path: base + ".client_ca_file", Msg: fmt.Sprintf("cannot read: %v", err)})
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, append(errs, config.Error{Path: base + ".client_ca_file", Msg: fmt.Sprintf("%s holds no PEM certificate", t.ClientCAFile)})
		}
		cs.conf.ClientCAs = pool
		cs.conf.ClientAuth = tls.VerifyClientCertIfGiven
		if t.ClientAuth == "require" {
			cs.conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cs, nil
}

// loadKeyPair reads a certificate and its private key, reporting at the
// field that is wrong: a file that cannot be read, a file without PEM data,
// or a key that does not belong to the certificate.
func loadKeyPair(certFile, keyFile, p string) (tls.Certificate, config.Errors) {
	var errs config.Errors
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		errs = append(errs, config.Error{Path: p + ".cert_file", Msg: fmt.Sprintf("cannot read: %v", err)})
	}
	keyPEM, kerr := os.ReadFile(keyFile)
	if kerr != nil {
		errs = append(errs, config.Error{Path: p + ".key_file", Msg: fmt.Sprintf("cannot read: %v", kerr)})
	}
	if len(errs) > 0 {
		return tls.Certificate{}, errs
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "tls: ")
		field := ".key_file"
		switch {
		case strings.Contains(msg, "does not match"):
			msg = fmt.Sprintf("the key in %s does not belong to the certificate in %s", keyFile, certFile)
		case strings.Contains(msg, "CERTIFICATE") || strings.Contains(msg, "certificate"):
			field = ".cert_file"
			msg = fmt.Sprintf("%s: %s", certFile, msg)
		default:
			msg = fmt.Sprintf("%s: %s", keyFile, msg)
		}
		return tls.Certificate{}, config.Errors{{Path: p + field, Msg: msg}}
	}
	return cert, nil
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
