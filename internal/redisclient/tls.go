package redisclient

import "crypto/tls"

// tlsConfig is the TLS configuration for Redis connections: system roots,
// TLS 1.2 or later.
func tlsConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }
