// Package consumer holds the API clients the gateway knows and looks them up
// by credential. The Store interface lets a later admin API manage consumers
// at runtime; the in-memory Store built from config is immutable and safe
// for concurrent use. Secrets are kept only as digests or hashes, never in
// the clear, and never appear in errors.
package consumer

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/portico-gw/portico/internal/config"
)

// Consumer is an API client known to the gateway.
type Consumer struct {
	// Name identifies the consumer (sent as X-Consumer-Username).
	Name string
	// ID is sent upstream as X-Consumer-Id.
	ID string
	// Groups are used by the acl plugin and sent as X-Consumer-Groups.
	Groups []string
	// GroupsHeader is Groups joined with ", ", precomputed.
	GroupsHeader string
	// Metadata is free-form data about the consumer.
	Metadata map[string]string
	// Anonymous marks the fallback consumer of an auth plugin's
	// `anonymous` option (it is never a real client).
	Anonymous bool
}

// InGroup reports whether the consumer belongs to group g.
func (c *Consumer) InGroup(g string) bool {
	for _, x := range c.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// BasicSecret is a stored password: a SHA-256 digest of a clear password
// from config, or a bcrypt/argon2id hash.
type BasicSecret struct {
	// Digest is SHA-256 of the clear password (nil when Hash is set).
	Digest []byte
	// Hash is a bcrypt ("$2…") or argon2id ("$argon2id$…") hash.
	Hash string
}

// Store finds consumers by name and by credential.
type Store interface {
	// ByName returns the consumer with this name (or ID).
	ByName(name string) (*Consumer, bool)
	// ByAPIKey returns the owner of an API key. The lookup is keyed by the
	// key's SHA-256, so its timing does not depend on how much of a key
	// matches a stored one.
	ByAPIKey(key string) (*Consumer, bool)
	// BasicSecrets returns the consumer and stored passwords for a username.
	BasicSecrets(username string) (*Consumer, []BasicSecret, bool)
	// HMACSecret returns the consumer and shared secret for a key ID.
	HMACSecret(keyID string) (*Consumer, []byte, bool)
	// ByCertificate returns the consumer mapped to a certificate subject DN
	// or one of its SANs, each given in the typed form of TypedSAN
	// ("dns:…", "email:…", "uri:…", "ip:…"): a SAN only matches a
	// credential of its own type.
	ByCertificate(subject string, sans []string) (*Consumer, bool)
	// Len is the number of consumers.
	Len() int
}

// DigestKey is the SHA-256 of an API key, the form keys are indexed by.
func DigestKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// EqualDigest compares two digests in constant time.
func EqualDigest(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

type basicEntry struct {
	c       *Consumer
	secrets []BasicSecret
}

type hmacEntry struct {
	c      *Consumer
	secret []byte
}

// memStore is the immutable Store built from config.
type memStore struct {
	byName map[string]*Consumer
	keys   map[[32]byte]*Consumer
	basic  map[string]*basicEntry
	hmac   map[string]hmacEntry
	certs  map[string]*Consumer
	n      int
}

// NewStore builds the in-memory store from config, validating every
// credential; errors name the consumer's YAML path but never a secret.
func NewStore(cs []*config.Consumer) (Store, error) {
	b := &storeBuilder{s: &memStore{
		byName: map[string]*Consumer{},
		keys:   map[[32]byte]*Consumer{},
		basic:  map[string]*basicEntry{},
		hmac:   map[string]hmacEntry{},
		certs:  map[string]*Consumer{},
	}}
	for i, cc := range cs {
		p := fmt.Sprintf("consumers[%d]", i)
		c := b.consumer(p, cc)
		if c == nil {
			continue
		}
		cr := cc.Credentials
		for j, k := range cr.KeyAuth {
			b.keyAuth(fmt.Sprintf("%s.credentials.key_auth[%d]", p, j), c, k)
		}
		for j, bc := range cr.BasicAuth {
			b.basicAuth(fmt.Sprintf("%s.credentials.basic_auth[%d]", p, j), c, bc)
		}
		for j, h := range cr.HMACAuth {
			b.hmacAuth(fmt.Sprintf("%s.credentials.hmac_auth[%d]", p, j), c, h)
		}
		for j, m := range cr.MTLS {
			b.mtls(fmt.Sprintf("%s.credentials.mtls[%d]", p, j), c, m)
		}
	}
	if len(b.errs) > 0 {
		return nil, b.errs
	}
	return b.s, nil
}

// storeBuilder fills a memStore from config and collects its errors.
type storeBuilder struct {
	s    *memStore
	errs config.Errors
}

func (b *storeBuilder) add(path, format string, args ...any) {
	b.errs = append(b.errs, config.Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// either checks that exactly one of two alternative fields is set.
func (b *storeBuilder) either(path, one, other string, oneSet, otherSet bool) bool {
	switch {
	case oneSet && otherSet:
		b.add(path, "set %s or %s, not both", one, other)
		return false
	case !oneSet && !otherSet:
		b.add(path, "%s or %s is required", one, other)
		return false
	}
	return true
}

// consumer registers the consumer at path p by name and ID; nil if it
// cannot be.
func (b *storeBuilder) consumer(p string, cc *config.Consumer) *Consumer {
	s := b.s
	if cc == nil || cc.Name == "" {
		b.add(p+".name", "consumer name is required")
		return nil
	}
	c := &Consumer{Name: cc.Name, ID: cc.ID, Groups: cc.Groups, Metadata: cc.Metadata}
	if c.ID == "" {
		c.ID = c.Name
	}
	c.GroupsHeader = strings.Join(c.Groups, ", ")
	if _, dup := s.byName[c.Name]; dup {
		b.add(p+".name", "consumer %q is defined twice", c.Name)
		return nil
	}
	if o, dup := s.byName[c.ID]; dup && o != c {
		b.add(p+".id", "consumer id %q is already used", c.ID)
		return nil
	}
	s.byName[c.Name] = c
	s.byName[c.ID] = c
	s.n++
	return c
}

func (b *storeBuilder) keyAuth(kp string, c *Consumer, k config.KeyCredential) {
	if !b.either(kp, "key", "key_sha256", k.Key != "", k.KeySHA256 != "") {
		return
	}
	var d [32]byte
	if k.Key != "" {
		if len(k.Key) < 8 {
			b.add(kp+".key", "API key is too short (at least 8 characters)")
			return
		}
		d = DigestKey(k.Key)
	} else {
		raw, err := hex.DecodeString(k.KeySHA256)
		if err != nil || len(raw) != 32 {
			b.add(kp+".key_sha256", "must be 64 hex digits (the SHA-256 of the key)")
			return
		}
		copy(d[:], raw)
	}
	if o, dup := b.s.keys[d]; dup {
		b.add(kp, "this API key is already assigned to consumer %q", o.Name)
		return
	}
	b.s.keys[d] = c
}

func (b *storeBuilder) basicAuth(bp string, c *Consumer, bc config.BasicCredential) {
	if bc.Username == "" || strings.Contains(bc.Username, ":") {
		b.add(bp+".username", "username is required and must not contain ':'")
		return
	}
	if !b.either(bp, "password", "password_hash", bc.Password != "", bc.PasswordHash != "") {
		return
	}
	var sec BasicSecret
	if bc.Password != "" {
		d := sha256.Sum256([]byte(bc.Password))
		sec.Digest = d[:]
	} else {
		// A hash that cannot be parsed would refuse every password at run
		// time; it is reported here instead.
		if err := CheckPasswordHash(bc.PasswordHash); err != nil {
			b.add(bp+".password_hash", "consumer %q: %v", c.Name, err)
			return
		}
		sec.Hash = bc.PasswordHash
	}
	e := b.s.basic[bc.Username]
	if e == nil {
		e = &basicEntry{c: c}
		b.s.basic[bc.Username] = e
	} else if e.c != c {
		b.add(bp+".username", "username %q already belongs to consumer %q", bc.Username, e.c.Name)
		return
	}
	e.secrets = append(e.secrets, sec)
}

func (b *storeBuilder) hmacAuth(hp string, c *Consumer, h config.HMACCredential) {
	if h.KeyID == "" {
		b.add(hp+".key_id", "key_id is required")
		return
	}
	if len(h.Secret) < 16 {
		b.add(hp+".secret", "secret is required and must be at least 16 characters")
		return
	}
	if _, dup := b.s.hmac[h.KeyID]; dup {
		b.add(hp+".key_id", "key_id %q is already used", h.KeyID)
		return
	}
	b.s.hmac[h.KeyID] = hmacEntry{c: c, secret: []byte(h.Secret)}
}

func (b *storeBuilder) mtls(mp string, c *Consumer, m config.MTLSCredential) {
	key := ""
	switch {
	case m.Subject != "" && m.SAN == "":
		key = "subject:" + m.Subject
	case m.SAN != "" && m.Subject == "":
		typed, err := ParseSANCredential(m.SAN)
		if err != nil {
			b.add(mp+".san", "%v", err)
			return
		}
		key = "san:" + typed
	default:
		b.add(mp, "set exactly one of subject and san")
		return
	}
	if o, dup := b.s.certs[key]; dup {
		b.add(mp, "certificate identity already maps to consumer %q", o.Name)
		return
	}
	b.s.certs[key] = c
}

func (s *memStore) ByName(name string) (*Consumer, bool) {
	c, ok := s.byName[name]
	return c, ok
}

func (s *memStore) ByAPIKey(key string) (*Consumer, bool) {
	c, ok := s.keys[DigestKey(key)]
	return c, ok
}

func (s *memStore) BasicSecrets(username string) (*Consumer, []BasicSecret, bool) {
	e, ok := s.basic[username]
	if !ok {
		return nil, nil, false
	}
	return e.c, e.secrets, true
}

func (s *memStore) HMACSecret(keyID string) (*Consumer, []byte, bool) {
	e, ok := s.hmac[keyID]
	return e.c, e.secret, ok
}

func (s *memStore) ByCertificate(subject string, sans []string) (*Consumer, bool) {
	if c, ok := s.certs["subject:"+subject]; ok {
		return c, true
	}
	for _, san := range sans {
		if c, ok := s.certs["san:"+san]; ok {
			return c, true
		}
	}
	return nil, false
}

func (s *memStore) Len() int { return s.n }

// SAN types of a certificate credential.
const (
	SANDNS   = "dns"
	SANEmail = "email"
	SANURI   = "uri"
	SANIP    = "ip"
)

// TypedSAN returns the canonical typed form "type:value" of a certificate
// SAN: DNS names in lower case without a trailing dot, e-mail addresses
// with the domain in lower case, IP addresses in their canonical form
// (IPv4-mapped IPv6 as IPv4), URIs as given. ok is false for a value that
// cannot be a SAN of that type.
func TypedSAN(typ, v string) (string, bool) {
	switch typ {
	case SANDNS:
		v = strings.ToLower(strings.TrimSuffix(v, "."))
		if v == "" || v[0] == '.' || v[len(v)-1] == '.' || strings.Contains(v, "..") || strings.ContainsAny(v, " /:@\x00") {
			return "", false
		}
	case SANEmail:
		i := strings.LastIndexByte(v, '@')
		if i <= 0 || i == len(v)-1 || strings.ContainsAny(v, " \x00") {
			return "", false
		}
		v = v[:i+1] + strings.ToLower(v[i+1:])
	case SANURI:
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" || strings.ContainsAny(v, " \x00") {
			return "", false
		}
	case SANIP:
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return "", false
		}
		v = a.Unmap().String()
	default:
		return "", false
	}
	return typ + ":" + v, true
}

// ParseSANCredential reads a consumer's `san` credential into its typed
// form. A value with a "dns:", "email:", "uri:" or "ip:" prefix has that
// type. An untyped (legacy) value gets the one type its syntax allows: an
// IP address is ip, a value with ":" is uri, with "@" email, anything else
// dns — so it only ever matches a SAN of that type, never a SAN of another
// type that happens to have the same text.
func ParseSANCredential(v string) (string, error) {
	typ, rest, found := strings.Cut(v, ":")
	switch t := strings.ToLower(typ); {
	case found && (t == SANDNS || t == SANEmail || t == SANURI || t == SANIP):
		typ, v = t, rest
	default:
		_, ipErr := netip.ParseAddr(v)
		switch {
		case ipErr == nil:
			typ = SANIP
		case strings.Contains(v, ":"):
			typ = SANURI
		case strings.Contains(v, "@"):
			typ = SANEmail
		default:
			typ = SANDNS
		}
	}
	typed, ok := TypedSAN(typ, v)
	if !ok {
		return "", fmt.Errorf("%q is not a valid %s SAN (use dns:, email:, uri: or ip:)", v, typ)
	}
	return typed, nil
}

// ErrUnknownConsumer is returned when a plugin names a consumer that does
// not exist (e.g. its `anonymous` option).
var ErrUnknownConsumer = errors.New("unknown consumer")

// Interface guard.
var _ Store = (*memStore)(nil)
