package consumer

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

func TestParseSANCredential(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want, err string }{
		{in: "dns:API.Example.org.", want: "dns:api.example.org"},
		{in: "DNS:api.example.org", want: "dns:api.example.org"},
		{in: "email:Ops@Example.ORG", want: "email:Ops@example.org"},
		{in: "uri:spiffe://example.org/svc", want: "uri:spiffe://example.org/svc"},
		{in: "ip:10.0.0.7", want: "ip:10.0.0.7"},
		{in: "ip:::ffff:10.0.0.7", want: "ip:10.0.0.7"},
		{in: "ip:2001:DB8::1", want: "ip:2001:db8::1"},
		// Untyped legacy values: the type their syntax allows.
		{in: "bob.clients.example.org", want: "dns:bob.clients.example.org"},
		{in: "bob@example.org", want: "email:bob@example.org"},
		{in: "spiffe://example.org/bob", want: "uri:spiffe://example.org/bob"},
		{in: "urn:example:bob", want: "uri:urn:example:bob"},
		{in: "192.0.2.1", want: "ip:192.0.2.1"},
		{in: "2001:db8::1", want: "ip:2001:db8::1"},
		// Invalid.
		{in: "dns:", err: "not a valid dns SAN"},
		{in: "dns:bob@example.org", err: "not a valid dns SAN"},
		{in: "email:bob", err: "not a valid email SAN"},
		{in: "email:@example.org", err: "not a valid email SAN"},
		{in: "ip:not-an-ip", err: "not a valid ip SAN"},
		{in: "ip:fe80::1%eth0", err: "not a valid ip SAN"},
		{in: "uri:no-scheme", err: "not a valid uri SAN"},
		{in: "a b.example.org", err: "not a valid dns SAN"},
	} {
		got, err := ParseSANCredential(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSANCredential(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSANCredential(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestSANTypesNotConfused(t *testing.T) {
	t.Parallel()
	s, err := NewStore([]*config.Consumer{
		{Name: "dns-owner", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "dns:shared.example.org"}}}},
		{Name: "mail-owner", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "ops@example.org"}}}},
		{Name: "ip-owner", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "ip:10.0.0.7"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sans []string
		want string
	}{
		{[]string{"dns:shared.example.org"}, "dns-owner"},
		{[]string{"email:shared.example.org"}, ""},
		{[]string{"uri:shared.example.org"}, ""},
		{[]string{"email:ops@example.org"}, "mail-owner"},
		{[]string{"dns:ops@example.org"}, ""},
		{[]string{"ip:10.0.0.7"}, "ip-owner"},
		{[]string{"dns:10.0.0.7"}, ""},
	} {
		c, ok := s.ByCertificate("CN=x", tc.sans)
		if got := name(c, ok); got != tc.want {
			t.Errorf("ByCertificate(%q) = %q, want %q", tc.sans, got, tc.want)
		}
	}
	// The same identity twice, once typed and once untyped, is a duplicate.
	_, err = NewStore([]*config.Consumer{
		{Name: "a", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "dns:x.example.org"}}}},
		{Name: "b", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "X.example.org"}}}},
	})
	if err == nil || !strings.Contains(err.Error(), "already maps") {
		t.Errorf("typed and untyped duplicate: %v", err)
	}
}

// FuzzParseSANCredential: never a panic; a parsed value is stable (parsing
// its typed form again gives it back) and carries one of the four types.
func FuzzParseSANCredential(f *testing.F) {
	for _, s := range []string{"dns:a.example", "email:A@B.c", "uri:spiffe://x/y", "ip:::1", "bob@x", "x:y", "1.2.3.4", "", ":", "dns:", "ip:1.2.3.4%x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		typed, err := ParseSANCredential(v)
		if err != nil {
			return
		}
		typ, _, _ := strings.Cut(typed, ":")
		switch typ {
		case SANDNS, SANEmail, SANURI, SANIP:
		default:
			t.Fatalf("%q parsed to unknown type %q", v, typed)
		}
		again, err := ParseSANCredential(typed)
		if err != nil || again != typed {
			t.Fatalf("%q → %q → %q, %v: not stable", v, typed, again, err)
		}
	})
}
