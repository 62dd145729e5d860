package consumer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
)

const (
	aliceKey    = "alice-api-key-1"
	bobKey      = "bob-api-key-22"
	alicePass   = "alice-password"
	aliceSecret = "alice-hmac-secret-0123"
	bcryptHash  = "$2b$04$abcdefghijklmnopqrstuuJ6XfXCMrqUH0ZJmwRaLFh5ESUJTxbAi"
	argonHash   = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
)

func sha(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func validConsumers() []*config.Consumer {
	return []*config.Consumer{
		{
			Name: "alice", ID: "c-1", Groups: []string{"admins", "dev"}, Metadata: map[string]string{"team": "core"},
			Credentials: config.Credentials{
				KeyAuth:   []config.KeyCredential{{Key: aliceKey}},
				BasicAuth: []config.BasicCredential{{Username: "alice", Password: alicePass}, {Username: "alice", PasswordHash: bcryptHash}},
				HMACAuth:  []config.HMACCredential{{KeyID: "alice-hmac", Secret: aliceSecret}},
				MTLS:      []config.MTLSCredential{{Subject: "CN=alice,O=Example"}},
			},
		},
		{
			Name: "bob",
			Credentials: config.Credentials{
				KeyAuth:   []config.KeyCredential{{KeySHA256: sha(bobKey)}},
				BasicAuth: []config.BasicCredential{{Username: "bob@example.org", PasswordHash: argonHash}},
				MTLS:      []config.MTLSCredential{{SAN: "bob.clients.example.org"}, {SAN: "spiffe://example.org/bob"}},
			},
		},
		{Name: "guest"},
	}
}

func TestNewStoreLookups(t *testing.T) {
	t.Parallel()
	s, err := NewStore(validConsumers())
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	if s.Len() != 3 {
		t.Errorf("Len = %d, want 3", s.Len())
	}

	t.Run("ByName", func(t *testing.T) {
		for _, tc := range []struct{ q, want string }{{"alice", "alice"}, {"c-1", "alice"}, {"bob", "bob"}, {"guest", "guest"}, {"nobody", ""}} {
			c, ok := s.ByName(tc.q)
			if got := name(c, ok); got != tc.want {
				t.Errorf("ByName(%q) = %q, want %q", tc.q, got, tc.want)
			}
		}
		c, _ := s.ByName("alice")
		if c.ID != "c-1" || c.GroupsHeader != "admins, dev" || c.Metadata["team"] != "core" || !c.InGroup("dev") || c.InGroup("ops") || c.Anonymous {
			t.Errorf("alice = %+v", c)
		}
		b, _ := s.ByName("bob")
		if b.ID != "bob" || b.GroupsHeader != "" {
			t.Errorf("bob: ID %q defaults to the name, GroupsHeader %q", b.ID, b.GroupsHeader)
		}
	})

	t.Run("ByAPIKey", func(t *testing.T) {
		for _, tc := range []struct{ key, want string }{
			{aliceKey, "alice"},  // given in clear
			{bobKey, "bob"},      // given as key_sha256
			{sha(bobKey), ""},    // the digest itself is not a key
			{aliceKey + "x", ""}, // longer
			{aliceKey[:10], ""},  // prefix
			{strings.ToUpper(aliceKey), ""},
			{"", ""},
		} {
			c, ok := s.ByAPIKey(tc.key)
			if got := name(c, ok); got != tc.want {
				t.Errorf("ByAPIKey(%q) = %q, want %q", tc.key, got, tc.want)
			}
		}
	})

	t.Run("BasicSecrets", func(t *testing.T) {
		c, secs, ok := s.BasicSecrets("alice")
		if !ok || c.Name != "alice" || len(secs) != 2 {
			t.Fatalf("alice: ok=%v consumer=%v secrets=%d", ok, c, len(secs))
		}
		d := sha256.Sum256([]byte(alicePass))
		if !EqualDigest(secs[0].Digest, d[:]) || secs[0].Hash != "" {
			t.Errorf("clear password not stored as its digest: %+v", secs[0])
		}
		if secs[1].Hash != bcryptHash || secs[1].Digest != nil {
			t.Errorf("bcrypt hash = %+v", secs[1])
		}
		c, secs, ok = s.BasicSecrets("bob@example.org")
		if !ok || c.Name != "bob" || len(secs) != 1 || secs[0].Hash != argonHash {
			t.Errorf("bob: ok=%v consumer=%v secrets=%+v", ok, c, secs)
		}
		if _, _, ok := s.BasicSecrets("bob"); ok {
			t.Error("the consumer name is not a username")
		}
	})

	t.Run("HMACSecret", func(t *testing.T) {
		c, sec, ok := s.HMACSecret("alice-hmac")
		if !ok || c.Name != "alice" || string(sec) != aliceSecret {
			t.Errorf("alice-hmac: ok=%v consumer=%v", ok, c)
		}
		if c, sec, ok := s.HMACSecret("nobody"); ok || c != nil || sec != nil {
			t.Errorf("unknown key id: ok=%v consumer=%v", ok, c)
		}
	})

	t.Run("ByCertificate", func(t *testing.T) {
		for _, tc := range []struct {
			subject string
			sans    []string
			want    string
		}{
			{"CN=alice,O=Example", nil, "alice"},
			{"CN=alice,O=Example", []string{"dns:bob.clients.example.org"}, "alice"}, // subject first
			{"CN=someone", []string{"dns:x.example.org", "uri:spiffe://example.org/bob"}, "bob"},
			{"CN=someone", []string{"dns:bob.clients.example.org"}, "bob"},
			{"CN=alice", nil, ""},
			{"", []string{"CN=alice,O=Example"}, ""},                      // a SAN is not a subject
			{"bob.clients.example.org", nil, ""},                          // nor the reverse
			{"CN=someone", []string{"email:bob.clients.example.org"}, ""}, // a SAN of another type
			{"CN=someone", []string{"dns:spiffe://example.org/bob"}, ""},  // never matches
			{"CN=someone", []string{"bob.clients.example.org"}, ""},       // nor an untyped one
		} {
			c, ok := s.ByCertificate(tc.subject, tc.sans)
			if got := name(c, ok); got != tc.want {
				t.Errorf("ByCertificate(%q, %q) = %q, want %q", tc.subject, tc.sans, got, tc.want)
			}
		}
	})
}

func name(c *Consumer, ok bool) string {
	if !ok {
		if c != nil {
			return "<non-nil consumer without ok>"
		}
		return ""
	}
	return c.Name
}

func TestNewStoreEmpty(t *testing.T) {
	t.Parallel()
	s, err := NewStore(nil)
	if err != nil || s.Len() != 0 {
		t.Fatalf("NewStore(nil) = %v, %v", s, err)
	}
	if _, ok := s.ByAPIKey(aliceKey); ok {
		t.Fatal("empty store found a key")
	}
}

func TestNewStoreErrors(t *testing.T) {
	t.Parallel()
	// Secret values that must never appear in an error message.
	secrets := []string{aliceKey, bobKey, sha(bobKey), alicePass, aliceSecret, "k3y-xy7", "md5-is-not-ok", "0123456789abcdefXYZ", "tiny-secret"}
	tests := []struct {
		desc string
		cs   []*config.Consumer
		path string
		want string
	}{
		{"no name", []*config.Consumer{{}}, "consumers[0].name", "consumer name is required"},
		{"nil consumer", []*config.Consumer{nil}, "consumers[0].name", "consumer name is required"},
		{"duplicate name", []*config.Consumer{{Name: "a"}, {Name: "a"}}, "consumers[1].name", `consumer "a" is defined twice`},
		{"id used as a name", []*config.Consumer{{Name: "a"}, {Name: "b", ID: "a"}}, "consumers[1].id", `consumer id "a" is already used`},
		{"duplicate id", []*config.Consumer{{Name: "a", ID: "x"}, {Name: "b", ID: "x"}}, "consumers[1].id", `consumer id "x" is already used`},
		{
			"duplicate key", []*config.Consumer{
				{Name: "a", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{Key: bobKey}}}},
				{Name: "b", Credentials: config.Credentials{KeyAuth: []config.KeyCredential{{KeySHA256: sha(bobKey)}}}},
			},
			"consumers[1].credentials.key_auth[0]", `already assigned to consumer "a"`,
		},
		{"short key", keys(config.KeyCredential{Key: "k3y-xy7"}), "consumers[0].credentials.key_auth[0].key", "too short"},
		{"key and key_sha256", keys(config.KeyCredential{Key: aliceKey, KeySHA256: sha(aliceKey)}), "consumers[0].credentials.key_auth[0]", "not both"},
		{"no key", keys(config.KeyCredential{}), "consumers[0].credentials.key_auth[0]", "key or key_sha256 is required"},
		{"bad key_sha256", keys(config.KeyCredential{KeySHA256: "0123456789abcdefXYZ"}), "consumers[0].credentials.key_auth[0].key_sha256", "64 hex digits"},
		{"short key_sha256", keys(config.KeyCredential{KeySHA256: sha(bobKey)[:62]}), "consumers[0].credentials.key_auth[0].key_sha256", "64 hex digits"},
		{
			"duplicate username", []*config.Consumer{
				{Name: "a", Credentials: config.Credentials{BasicAuth: []config.BasicCredential{{Username: "u", Password: alicePass}}}},
				{Name: "b", Credentials: config.Credentials{BasicAuth: []config.BasicCredential{{Username: "u", Password: alicePass}}}},
			},
			"consumers[1].credentials.basic_auth[0].username", `already belongs to consumer "a"`,
		},
		{"username with colon", basics(config.BasicCredential{Username: "a:b", Password: alicePass}), "consumers[0].credentials.basic_auth[0].username", "must not contain ':'"},
		{"no username", basics(config.BasicCredential{Password: alicePass}), "consumers[0].credentials.basic_auth[0].username", "username is required"},
		{"unsupported hash", basics(config.BasicCredential{Username: "u", PasswordHash: "md5-is-not-ok"}), "consumers[0].credentials.basic_auth[0].password_hash", "unsupported hash"},
		{"password and hash", basics(config.BasicCredential{Username: "u", Password: alicePass, PasswordHash: bcryptHash}), "consumers[0].credentials.basic_auth[0]", "not both"},
		{"no password", basics(config.BasicCredential{Username: "u"}), "consumers[0].credentials.basic_auth[0]", "password or password_hash is required"},
		{
			"duplicate key_id", []*config.Consumer{
				{Name: "a", Credentials: config.Credentials{HMACAuth: []config.HMACCredential{{KeyID: "k", Secret: aliceSecret}}}},
				{Name: "b", Credentials: config.Credentials{HMACAuth: []config.HMACCredential{{KeyID: "k", Secret: aliceSecret}}}},
			},
			"consumers[1].credentials.hmac_auth[0].key_id", `key_id "k" is already used`,
		},
		{"no key_id", hmacs(config.HMACCredential{Secret: aliceSecret}), "consumers[0].credentials.hmac_auth[0].key_id", "key_id is required"},
		{"short hmac secret", hmacs(config.HMACCredential{KeyID: "k", Secret: "tiny-secret"}), "consumers[0].credentials.hmac_auth[0].secret", "at least 16 characters"},
		{"mtls subject and san", mtls(config.MTLSCredential{Subject: "CN=a", SAN: "a.example.org"}), "consumers[0].credentials.mtls[0]", "exactly one of subject and san"},
		{"mtls neither", mtls(config.MTLSCredential{}), "consumers[0].credentials.mtls[0]", "exactly one of subject and san"},
		{
			"duplicate mtls", []*config.Consumer{
				{Name: "a", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "x.example.org"}}}},
				{Name: "b", Credentials: config.Credentials{MTLS: []config.MTLSCredential{{SAN: "x.example.org"}}}},
			},
			"consumers[1].credentials.mtls[0]", `already maps to consumer "a"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			s, err := NewStore(tc.cs)
			if err == nil {
				t.Fatalf("NewStore succeeded (%d consumers), want an error", s.Len())
			}
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want config.Errors", err)
			}
			if !slices.ContainsFunc(errs, func(e config.Error) bool { return e.Path == tc.path && strings.Contains(e.Msg, tc.want) }) {
				t.Fatalf("errors = %v, want %s: …%s…", err, tc.path, tc.want)
			}
			for _, sec := range secrets {
				if strings.Contains(err.Error(), sec) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func TestNewStoreReportsEveryError(t *testing.T) {
	t.Parallel()
	_, err := NewStore([]*config.Consumer{
		{Name: "a", Credentials: config.Credentials{
			KeyAuth:  []config.KeyCredential{{Key: "short"}},
			HMACAuth: []config.HMACCredential{{KeyID: "k"}},
		}},
		{},
	})
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 3 {
		t.Fatalf("errors = %v, want 3", err)
	}
}

func keys(k ...config.KeyCredential) []*config.Consumer {
	return []*config.Consumer{{Name: "a", Credentials: config.Credentials{KeyAuth: k}}}
}

func basics(b ...config.BasicCredential) []*config.Consumer {
	return []*config.Consumer{{Name: "a", Credentials: config.Credentials{BasicAuth: b}}}
}

func hmacs(h ...config.HMACCredential) []*config.Consumer {
	return []*config.Consumer{{Name: "a", Credentials: config.Credentials{HMACAuth: h}}}
}

func mtls(m ...config.MTLSCredential) []*config.Consumer {
	return []*config.Consumer{{Name: "a", Credentials: config.Credentials{MTLS: m}}}
}
