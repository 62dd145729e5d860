package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestE2EJWTMoreThanOneToken: a request carrying two Authorization lines
// (one valid, one forged), or a token twice in any configured place, is
// refused with 400 and the backend receives nothing — with and without
// `anonymous`.
func TestE2EJWTMoreThanOneToken(t *testing.T) {
	t.Parallel()
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
consumers:
  - {name: guest}
upstreams: {rec: {targets: [{url: "{{REC}}"}]}}
routes:
  - name: api
    match: {path_prefix: /api}
    upstream: rec
    plugins:
      - {name: jwt, config: {algorithms: [HS256], secret: "{{SECRET}}", cookie: tok, query: access_token}}
  - name: anon
    match: {path_prefix: /anon}
    upstream: rec
    plugins:
      - {name: jwt, config: {algorithms: [HS256], secret: "{{SECRET}}", cookie: tok, query: access_token, anonymous: guest}}
`, map[string]string{"REC": rec.URL, "SECRET": jwtSecret})
	addr := e2eHostPort(tg.URL)
	mint := func(sub string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(jwtSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid, other := mint("alice"), mint("mallory")
	forged := valid[:strings.LastIndexByte(valid, '.')] + ".Zm9yZ2Vk"

	// Control: one token is accepted and reaches the backend once.
	resp := e2eRawDo(t, addr, "GET", e2eRawGet("/api/x", "gw.test", "Authorization: Bearer "+valid))
	if resp.StatusCode != 200 {
		t.Fatalf("one valid token: %d %s", resp.StatusCode, resp.Body)
	}
	if got := e2eDecodeSeen(t, resp.Body).Header.Values("Authorization"); len(got) != 1 {
		t.Fatalf("backend received Authorization %q", got)
	}

	for _, prefix := range []string{"/api", "/anon"} {
		for _, tc := range []struct {
			desc   string
			target string
			lines  []string
		}{
			{"valid then forged Authorization", "/x", []string{"Authorization: Bearer " + valid, "Authorization: Bearer " + forged}},
			{"forged then valid Authorization", "/x", []string{"Authorization: Bearer " + forged, "Authorization: Bearer " + valid}},
			{"valid and another valid", "/x", []string{"Authorization: Bearer " + valid, "Authorization: Bearer " + other}},
			{"lower-case second line", "/x", []string{"Authorization: Bearer " + valid, "authorization: Bearer " + forged}},
			{"same token twice", "/x", []string{"Authorization: Bearer " + valid, "Authorization: Bearer " + valid}},
			{"Bearer and Basic", "/x", []string{"Authorization: Bearer " + valid, "Authorization: Basic dXNlcjpwYXNz"}},
			{"two cookies", "/x", []string{"Cookie: tok=" + valid + "; tok=" + forged}},
			{"two Cookie lines", "/x", []string{"Cookie: tok=" + valid, "Cookie: tok=" + valid}},
			{"header and other cookie", "/x", []string{"Authorization: Bearer " + valid, "Cookie: tok=" + forged}},
			{"repeated query parameter", "/x?access_token=" + valid + "&access_token=" + forged, nil},
			{"encoded parameter name", "/x?access_token=" + valid + "&access%5Ftoken=" + forged, nil},
			{"header and other query", "/x?access_token=" + forged, []string{"Authorization: Bearer " + valid}},
		} {
			before := rec.count()
			resp := e2eRawDo(t, addr, "GET", e2eRawGet(prefix+tc.target, "gw.test", tc.lines...))
			e2eCheckError(t, resp.StatusCode, resp.Header, resp.Body, 400)
			if n := rec.count() - before; n != 0 {
				t.Errorf("%s %s: backend received %d requests", prefix, tc.desc, n)
			}
		}
	}
}

// clientCert issues a client certificate with the given SANs.
func (ca *testCA) clientWith(t *testing.T, cn string, dns, emails []string, uris []string, ips []net.IP) tls.Certificate {
	t.Helper()
	tmpl := clientTemplate(pkix.Name{CommonName: cn})
	tmpl.DNSNames, tmpl.EmailAddresses, tmpl.IPAddresses = dns, emails, ips
	for _, u := range uris {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	return ca.issue(t, tmpl)
}

// TestE2EMTLSTypedSANs: over a TLS listener with client certificates, a SAN
// matches a consumer only with its own type: a DNS SAN spelling an e-mail
// address, a URI or an IP never matches the e-mail, URI or IP credential.
func TestE2EMTLSTypedSANs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, serverCert := e2eSelfSigned(t, dir, "srv", "gw.test")
	ca := newTestCA(t, dir)
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, `
server:
  listen: [{addr: "127.0.0.1:0", tls: {certificates: [{cert_file: "{{CRT}}", key_file: "{{KEY}}"}], client_ca_file: "{{CA}}"}}]
consumers:
  - {name: dns-typed, credentials: {mtls: [{san: "dns:svc.example.org"}]}}
  - {name: mail-legacy, credentials: {mtls: [{san: "ops@example.org"}]}}
  - {name: mail-typed, credentials: {mtls: [{san: "email:alice@example.org"}]}}
  - {name: uri-legacy, credentials: {mtls: [{san: "spiffe://example.org/billing"}]}}
  - {name: ip-typed, credentials: {mtls: [{san: "ip:10.0.0.7"}]}}
  - {name: dns-legacy, credentials: {mtls: [{san: "Legacy.Example.org"}]}}
upstreams: {rec: {targets: [{url: "{{REC}}"}]}}
routes:
  - {name: m, match: {path_prefix: /}, upstream: rec, plugins: [{name: mtls}]}
`, map[string]string{"CRT": certFile, "KEY": keyFile, "CA": ca.file, "REC": rec.URL})
	roots := x509.NewCertPool()
	roots.AddCert(serverCert)
	for _, tc := range []struct {
		desc string
		cert tls.Certificate
		want string // consumer, "" for 401
	}{
		{"DNS SAN, typed credential", ca.clientWith(t, "a", []string{"svc.example.org"}, nil, nil, nil), "dns-typed"},
		{"DNS SAN in upper case", ca.clientWith(t, "a", []string{"SVC.example.org"}, nil, nil, nil), "dns-typed"},
		{"DNS SAN, legacy credential", ca.clientWith(t, "a", []string{"legacy.example.org"}, nil, nil, nil), "dns-legacy"},
		{"e-mail SAN, legacy credential", ca.clientWith(t, "a", nil, []string{"ops@example.org"}, nil, nil), "mail-legacy"},
		{"e-mail SAN, typed credential", ca.clientWith(t, "a", nil, []string{"alice@EXAMPLE.org"}, nil, nil), "mail-typed"},
		{"URI SAN, legacy credential", ca.clientWith(t, "a", nil, nil, []string{"spiffe://example.org/billing"}, nil), "uri-legacy"},
		{"IP SAN, typed credential", ca.clientWith(t, "a", nil, nil, nil, []net.IP{net.ParseIP("10.0.0.7")}), "ip-typed"},
		// Type confusion: the same text in a SAN of another type.
		{"DNS SAN spelling the e-mail", ca.clientWith(t, "a", []string{"ops@example.org"}, nil, nil, nil), ""},
		{"DNS SAN spelling the typed e-mail", ca.clientWith(t, "a", []string{"alice@example.org"}, nil, nil, nil), ""},
		{"DNS SAN spelling the URI", ca.clientWith(t, "a", []string{"spiffe://example.org/billing"}, nil, nil, nil), ""},
		{"DNS SAN spelling the IP", ca.clientWith(t, "a", []string{"10.0.0.7"}, nil, nil, nil), ""},
		{"e-mail SAN spelling the DNS name", ca.clientWith(t, "a", nil, []string{"svc.example.org"}, nil, nil), ""},
		{"URI SAN spelling the DNS name", ca.clientWith(t, "a", nil, nil, []string{"dns:svc.example.org"}, nil), ""},
		{"no matching SAN", ca.clientWith(t, "a", []string{"other.example.org"}, nil, nil, nil), ""},
	} {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, ServerName: "gw.test", Certificates: []tls.Certificate{tc.cert}}}}
		before := rec.count()
		resp, err := c.Get(tg.URL + "/x")
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		if tc.want == "" {
			e2eCheckError(t, resp.StatusCode, resp.Header, body, 401)
			if rec.count() != before {
				t.Errorf("%s: backend reached", tc.desc)
			}
			continue
		}
		if resp.StatusCode != 200 {
			t.Errorf("%s: status %d (%s), want 200 as %s", tc.desc, resp.StatusCode, body, tc.want)
			continue
		}
		if got := e2eDecodeSeen(t, body).Header.Get("X-Consumer-Username"); got != tc.want {
			t.Errorf("%s: consumer %q, want %q", tc.desc, got, tc.want)
		}
	}
}

// TestE2EOIDCLoginNormalisedPaths: oidc_login recognises its callback and
// logout paths in every spelling the router normalises to them (dot
// segments, encoded dots, double slashes, encoded letters), so the
// backend never receives them.
func TestE2EOIDCLoginNormalisedPaths(t *testing.T) {
	t.Parallel()
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStartRec(t, rec, `
routes:
  - name: app
    match: {path_prefix: /}
    upstream: rec
    plugins:
      - name: oidc_login
        config: {issuer: "http://`+e2eFreePort(t)+`", client_id: portico, cookie_secret: "0123456789abcdef0123456789abcdef-e2e", cookie_secure: false}
`)
	addr := e2eHostPort(tg.URL)
	for _, p := range []string{"/oauth2/logout", "/x/../oauth2/logout", "/x/%2e%2e/oauth2/logout", "/x/%2E%2E/oauth2/logout", "//oauth2/logout", "/oauth2//logout", "/oauth2/./logout", "/oauth2/%6cogout"} {
		resp := e2eRawDo(t, addr, "GET", e2eRawGet(p, "gw.test", "Accept: application/json"))
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
			t.Errorf("%s: status %d location %q, want the logout redirect to /", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/oauth2/callback", "/x/../oauth2/callback", "/x/%2e%2e/oauth2/callback", "//oauth2/callback", "/oauth2/%63allback", "/oauth2/./callback"} {
		resp := e2eRawDo(t, addr, "GET", e2eRawGet(p+"?state=abcdefghijklmnop&code=c", "gw.test", "Accept: application/json"))
		e2eCheckError(t, resp.StatusCode, resp.Header, resp.Body, http.StatusBadRequest)
	}
	if n := rec.count(); n != 0 {
		t.Fatalf("backend received %d requests: %+v", n, rec.all())
	}
}
