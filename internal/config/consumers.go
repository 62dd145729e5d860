package config

// Consumer is an API client: a name, groups for access control, metadata,
// and credentials of each kind. Secrets may be given as ${ENV} references
// and, for API keys and passwords, as hashes.
type Consumer struct {
	// Name identifies the consumer (X-Consumer-Username); unique.
	Name string `yaml:"name"`
	// ID is sent upstream as X-Consumer-Id; default: the name.
	ID string `yaml:"id"`
	// Groups are matched by the acl plugin and sent as X-Consumer-Groups.
	Groups []string `yaml:"groups"`
	// Metadata is free-form data about the consumer.
	Metadata map[string]string `yaml:"metadata"`
	// Credentials by kind.
	Credentials Credentials `yaml:"credentials"`
}

// Credentials of one consumer, by kind.
type Credentials struct {
	// KeyAuth are API keys for the key_auth plugin.
	KeyAuth []KeyCredential `yaml:"key_auth"`
	// BasicAuth are username/password pairs for the basic_auth plugin.
	BasicAuth []BasicCredential `yaml:"basic_auth"`
	// HMACAuth are shared secrets for the hmac_auth plugin.
	HMACAuth []HMACCredential `yaml:"hmac_auth"`
	// MTLS are client certificates for the mtls plugin.
	MTLS []MTLSCredential `yaml:"mtls"`
}

// KeyCredential is an API key, given in clear (usually "${ENV}") or as the
// hex SHA-256 of the key.
type KeyCredential struct {
	// Key is the API key in clear (usually "${ENV}").
	Key string `yaml:"key" secret:"true"`
	// KeySHA256 is the hex SHA-256 of the key, instead of key.
	KeySHA256 string `yaml:"key_sha256"`
}

// BasicCredential is a username with a password in clear (usually
// "${ENV}") or as a bcrypt ($2a$/$2b$/$2y$) or argon2id ($argon2id$) hash.
type BasicCredential struct {
	// Username is the user name.
	Username string `yaml:"username"`
	// Password is the password in clear (usually "${ENV}").
	Password string `yaml:"password" secret:"true"`
	// PasswordHash is a bcrypt or argon2id hash of the password, instead
	// of password.
	PasswordHash string `yaml:"password_hash"`
}

// HMACCredential is a shared secret for signed requests.
type HMACCredential struct {
	// KeyID names the secret in signed requests.
	KeyID string `yaml:"key_id"`
	// Secret is the shared secret (usually "${ENV}").
	Secret string `yaml:"secret" secret:"true"`
}

// MTLSCredential maps a verified client certificate to the consumer by its
// subject DN (RFC 2253 form, e.g. "CN=alice,O=Example") or a SAN, typed
// with a prefix: "dns:api.example.org", "email:ops@example.org",
// "uri:spiffe://example.org/svc", "ip:10.0.0.7". A SAN only matches a
// certificate SAN of the same type (DNS names and e-mail domains compare
// case-insensitively, IPs in canonical form). An untyped value takes the
// type its syntax allows: an IP address is ip, a value with ":" uri, with
// "@" email, anything else dns.
type MTLSCredential struct {
	// Subject is the certificate's subject DN, e.g. "CN=alice,O=Example".
	Subject string `yaml:"subject"`
	// SAN is a subject alternative name, e.g. "dns:api.example.org".
	SAN string `yaml:"san"`
}
