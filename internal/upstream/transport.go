package upstream

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/usage"
)

// Defaults applied when an upstream leaves a transport setting at zero.
const (
	defaultTLSHandshakeTimeout = 10 * time.Second
	defaultDNSRefresh          = 30 * time.Second
	defaultMaxRespHeaderBytes  = 64 << 10
	dialKeepAlive              = 30 * time.Second
)

// Upstream protocols (config.Upstream.Protocol).
const (
	ProtocolHTTP1 = "http1"
	ProtocolHTTP2 = "http2"
	ProtocolH2C   = "h2c"
)

// FieldError is a transport setting that cannot be applied. Field is the
// setting's path inside the upstream (for example "tls.ca_file").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Transport is a shared http.Transport for one upstream.
type Transport struct {
	*http.Transport
	resolver *resolver
}

// Registry keeps transports alive across config reloads, in a usage.Pool
// keyed by the settings that shape a transport: a new snapshot acquires the
// transport of an unchanged upstream instead of dialing anew, and the last
// release closes its idle connections. The gateway's Runtime owns one.
type Registry struct {
	pool *usage.Pool[*Transport]
	// lookup resolves target host names for transports created from now
	// on; nil means the system resolver.
	lookup lookupFunc
}

// NewRegistry returns an empty transport registry.
func NewRegistry() *Registry {
	return &Registry{pool: usage.New(func(t *Transport) error { t.CloseIdleConnections(); return nil })}
}

// tlsMaterial is the content of the files an upstream's TLS settings name,
// read once per Acquire so that the registry key and the transport built
// from it agree.
type tlsMaterial struct {
	ca, cert, key []byte
}

// readTLSMaterial reads the CA bundle and client key pair files.
func readTLSMaterial(c *config.UpstreamTLS) (tlsMaterial, error) {
	var m tlsMaterial
	if c == nil {
		return m, nil
	}
	var err error
	if c.CAFile != "" {
		if m.ca, err = os.ReadFile(c.CAFile); err != nil {
			return m, &FieldError{"tls.ca_file", err}
		}
	}
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		return m, &FieldError{"tls.key_file", fmt.Errorf("required with cert_file")}
	case c.CertFile == "" && c.KeyFile != "":
		return m, &FieldError{"tls.cert_file", fmt.Errorf("required with key_file")}
	case c.CertFile != "":
		if m.cert, err = os.ReadFile(c.CertFile); err != nil {
			return m, &FieldError{"tls.cert_file", err}
		}
		if m.key, err = os.ReadFile(c.KeyFile); err != nil {
			return m, &FieldError{"tls.key_file", err}
		}
	}
	return m, nil
}

// normProtocol validates an upstream protocol and maps "" to http1.
func normProtocol(p string) (string, error) {
	switch p {
	case "", ProtocolHTTP1:
		return ProtocolHTTP1, nil
	case ProtocolHTTP2, ProtocolH2C:
		return p, nil
	}
	return "", &FieldError{"protocol", fmt.Errorf("unknown protocol %q (want http1, http2 or h2c)", p)}
}

func digest(b []byte) string {
	if b == nil {
		return "-"
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// transportKey identifies the settings that shape a transport, including the
// content of the TLS files, so a certificate rotated on disk yields a new
// transport on the next reload.
func transportKey(name, proto string, u *config.Upstream, m tlsMaterial) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q|%d|%d|%d|%d|%d|%d|%s|%d", name,
		u.ConnectTimeout, u.ResponseHeaderTimeout, u.IdleConnTimeout, u.TLSHandshakeTimeout,
		u.DNSRefresh, u.MaxIdleConnsPerTarget, proto, maxRespHeaderBytes(u))
	maxConns := 0
	if u.Limits != nil {
		maxConns = u.Limits.MaxConnections
	}
	fmt.Fprintf(&b, "|%d", maxConns)
	if c := u.TLS; c != nil {
		fmt.Fprintf(&b, "|tls|%q|%q|%q|%q|%t|%s|%s|%s", c.CAFile, c.ServerName, c.CertFile, c.KeyFile,
			c.InsecureSkipVerify, digest(m.ca), digest(m.cert), digest(m.key))
	}
	return b.String()
}

// Acquire returns the transport for an upstream, creating it on first use,
// and the func that releases it (once; the last release closes its idle
// connections). It fails when the protocol is unknown or the TLS files are
// unreadable or invalid; the error names the setting. logger receives the
// transport's warnings (disabled verification, failed DNS refreshes); nil
// means slog.Default().
func (g *Registry) Acquire(name string, u *config.Upstream, logger *slog.Logger) (*Transport, func(), error) {
	if logger == nil {
		logger = slog.Default()
	}
	proto, err := normProtocol(u.Protocol)
	if err != nil {
		return nil, nil, err
	}
	m, err := readTLSMaterial(u.TLS)
	if err != nil {
		return nil, nil, err
	}
	return g.pool.Acquire(transportKey(name, proto, u, m), func() (*Transport, error) {
		tlsConf, err := buildTLSConfig(u.TLS, m)
		if err != nil {
			return nil, err
		}
		res := newResolver(name, refreshTTL(u), g.lookup, logger)
		if u.TLS != nil && u.TLS.InsecureSkipVerify {
			logger.Warn("upstream TLS verification disabled", "upstream", name)
		}
		return &Transport{Transport: newHTTPTransport(u, proto, tlsConf, res), resolver: res}, nil
	})
}

// Len reports how many transports are alive (for leak tests).
func (g *Registry) Len() int { return g.pool.Len() }

// maxRespHeaderBytes is the upstream's response header size limit.
func maxRespHeaderBytes(u *config.Upstream) int64 {
	if n := int64(u.MaxResponseHeaderBytes); n > 0 {
		return n
	}
	return defaultMaxRespHeaderBytes
}

func refreshTTL(u *config.Upstream) time.Duration {
	if d := u.DNSRefresh.D(); d > 0 {
		return d
	}
	return defaultDNSRefresh
}

// buildTLSConfig turns the upstream TLS settings and the file contents read
// for them into a client TLS config (TLS 1.2 minimum, system roots unless a
// CA bundle is given).
func buildTLSConfig(c *config.UpstreamTLS, m tlsMaterial) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if c == nil {
		return conf, nil
	}
	if c.CAFile != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(m.ca) {
			return nil, &FieldError{"tls.ca_file", fmt.Errorf("%s: no PEM certificates found", c.CAFile)}
		}
		conf.RootCAs = pool
	}
	if c.CertFile != "" {
		pair, err := tls.X509KeyPair(m.cert, m.key)
		if err != nil {
			return nil, &FieldError{"tls.cert_file", fmt.Errorf("key pair %s / %s: %s", c.CertFile, c.KeyFile, strings.TrimPrefix(err.Error(), "tls: "))}
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	conf.ServerName = c.ServerName
	conf.InsecureSkipVerify = c.InsecureSkipVerify
	return conf, nil
}

// newHTTPTransport builds the http.Transport of an upstream. proto must be
// normalised by normProtocol.
//
//   - http1: HTTP/1.1 only; TLS offers only "http/1.1" via ALPN.
//   - http2: HTTP/2 over TLS when the target negotiates "h2", HTTP/1.1
//     otherwise and for http:// targets.
//   - h2c: HTTP/2 with prior knowledge over plain TCP for http:// targets,
//     HTTP/2 over TLS for https:// targets.
func newHTTPTransport(u *config.Upstream, proto string, tlsConf *tls.Config, res *resolver) *http.Transport {
	d := &net.Dialer{Timeout: u.ConnectTimeout.D(), KeepAlive: dialKeepAlive}
	res.dialer = d
	hs := u.TLSHandshakeTimeout.D()
	if hs <= 0 {
		hs = defaultTLSHandshakeTimeout
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialFramed(res.DialContext),
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    u.MaxIdleConnsPerTarget,
		IdleConnTimeout:        u.IdleConnTimeout.D(),
		TLSHandshakeTimeout:    hs,
		ResponseHeaderTimeout:  u.ResponseHeaderTimeout.D(),
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxRespHeaderBytes(u),
		TLSClientConfig:        tlsConf,
		Protocols:              new(http.Protocols),
	}
	if u.Limits != nil && u.Limits.MaxConnections > 0 {
		tr.MaxConnsPerHost = u.Limits.MaxConnections
	}
	switch proto {
	case ProtocolHTTP2:
		tr.Protocols.SetHTTP1(true)
		tr.Protocols.SetHTTP2(true)
		tr.ForceAttemptHTTP2 = true
		tr.DialTLSContext = dialTLSFramed(res.DialContext, tlsConf, []string{"h2", "http/1.1"}, hs)
	case ProtocolH2C:
		// Without HTTP1 in the set, http:// requests use HTTP/2 with prior
		// knowledge and https:// requests negotiate only "h2".
		tr.Protocols.SetHTTP2(true)
		tr.Protocols.SetUnencryptedHTTP2(true)
		tr.ForceAttemptHTTP2 = true
		// Only HTTP/2 is spoken: no HTTP/1 framing to inspect.
		tr.DialContext = res.DialContext
	default:
		tr.Protocols.SetHTTP1(true)
		tlsConf.NextProtos = []string{"http/1.1"}
		tr.DialTLSContext = dialTLSFramed(res.DialContext, tlsConf, tlsConf.NextProtos, hs)
	}
	return tr
}

// dialFramed wraps the connections dial makes so the framing of HTTP/1
// responses read from them is checked (see framingConn).
func dialFramed(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newFramingConn(c), nil
	}
}

// dialTLSFramed dials TLS connections itself so that the framing of HTTP/1
// responses read from them can be checked after decryption (see
// framingConn). A connection that negotiates HTTP/2 is returned as the
// *tls.Conn the transport needs to use it for HTTP/2. The handshake is
// bounded by handshakeTimeout, as the transport's own TLS dial would be.
func dialTLSFramed(dial func(ctx context.Context, network, addr string) (net.Conn, error), conf *tls.Config, alpn []string, handshakeTimeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := conf.Clone()
		c.NextProtos = alpn
		if c.ServerName == "" {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			c.ServerName = host
		}
		tc := tls.Client(raw, c)
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err = tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return nil, tlsHandshakeTimeoutError{}
			}
			return nil, err
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return tc, nil
		}
		return newFramingConn(tc), nil
	}
}

// tlsHandshakeTimeoutError is a TLS handshake that took longer than the
// upstream's tls_handshake_timeout; it is a timeout, as the transport's own.
type tlsHandshakeTimeoutError struct{}

func (tlsHandshakeTimeoutError) Timeout() bool   { return true }
func (tlsHandshakeTimeoutError) Temporary() bool { return true }
func (tlsHandshakeTimeoutError) Error() string   { return "net/http: TLS handshake timeout" }
