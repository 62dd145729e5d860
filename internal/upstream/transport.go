package upstream

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// Transport is a shared, ref-counted http.Transport for one upstream.
type Transport struct {
	*http.Transport
	key  string
	refs int
}

// Registry keeps transports alive across config reloads: a new snapshot
// acquires the transport of an unchanged upstream instead of dialing anew,
// and the last release closes its idle connections.
type Registry struct {
	mu sync.Mutex
	m  map[string]*Transport
}

// NewRegistry returns an empty transport registry.
func NewRegistry() *Registry { return &Registry{m: map[string]*Transport{}} }

// transportKey identifies the settings that shape a transport.
func transportKey(name string, u *config.Upstream) string {
	return fmt.Sprintf("%s|%d|%d|%d|%d", name, u.ConnectTimeout, u.ResponseHeaderTimeout, u.IdleConnTimeout, u.MaxIdleConnsPerTarget)
}

// Acquire returns the transport for an upstream, creating it on first use.
func (g *Registry) Acquire(name string, u *config.Upstream) *Transport {
	key := transportKey(name, u)
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.m[key]
	if !ok {
		t = &Transport{Transport: newHTTPTransport(u), key: key}
		g.m[key] = t
	}
	t.refs++
	return t
}

// Release drops one reference; the last one closes idle connections.
func (g *Registry) Release(t *Transport) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t.refs--
	if t.refs <= 0 {
		delete(g.m, t.key)
		t.CloseIdleConnections()
	}
}

// Len reports how many transports are alive (for leak tests).
func (g *Registry) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}

func newHTTPTransport(u *config.Upstream) *http.Transport {
	d := &net.Dialer{Timeout: u.ConnectTimeout.D(), KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    u.MaxIdleConnsPerTarget,
		IdleConnTimeout:        u.IdleConnTimeout.D(),
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  u.ResponseHeaderTimeout.D(),
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 1 << 20,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
	}
}
