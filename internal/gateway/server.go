package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go/http3"
	"golang.org/x/net/netutil"

	"github.com/portico-gw/portico/internal/config"
)

// Server owns the client listeners. Listeners are keyed by address and kept
// across reloads, so established connections (keep-alive, WebSocket, SSE)
// are never cut by a config change; certificates are read from the current
// snapshot at each handshake.
type Server struct {
	rt     *Runtime
	logger *slog.Logger

	mu        sync.Mutex
	listeners map[string]*listener
	errc      chan error
	closed    bool
}

type listener struct {
	spec  config.Listener
	srv   *http.Server
	ln    net.Listener
	certs atomic.Pointer[certSet]
	// h3 serves HTTP/3 on pc (UDP) when the listener enables it.
	h3 *http3.Server
	pc net.PacketConn
}

// close closes the listener's sockets at once.
func (l *listener) close() {
	l.ln.Close()
	if l.pc != nil {
		l.h3.Close()
		l.pc.Close()
	}
}

// shutdown drains the listener's servers until ctx ends.
func (l *listener) shutdown(ctx context.Context) error {
	var err error
	if l.h3 != nil {
		err = l.h3.Shutdown(ctx)
	}
	return errors.Join(l.srv.Shutdown(ctx), err)
}

// NewServer attaches a listener set to rt; Apply on rt then opens, keeps or
// closes listeners to match each config.
func NewServer(rt *Runtime, logger *slog.Logger) *Server {
	s := &Server{rt: rt, logger: logger, listeners: map[string]*listener{}, errc: make(chan error, 16)}
	rt.listeners = s
	return s
}

// Errors delivers fatal serve errors of listeners.
func (s *Server) Errors() <-chan error { return s.errc }

// Addrs returns the bound address of each configured listen address, so
// ":0" listeners can be found.
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, l := range s.listeners {
		out[k] = l.ln.Addr().String()
	}
	return out
}

// reconcile opens listeners that snap needs and does not have yet. It runs
// before the snapshot is published; on error, listeners it opened are closed.
func (s *Server) reconcile(snap *Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("server is shut down")
	}
	var opened []*listener
	for _, spec := range snap.cfg.Server.Listen {
		if l, ok := s.listeners[spec.Addr]; ok {
			if (l.spec.TLS == nil) != (spec.TLS == nil) {
				for _, o := range opened {
					o.close()
					delete(s.listeners, o.spec.Addr)
				}
				return fmt.Errorf("listener %s: switching between TLS and plain text needs a restart", spec.Addr)
			}
			if spec.TLS != nil {
				l.certs.Store(snap.certs[spec.Addr])
			}
			continue
		}
		l, err := s.open(spec, snap)
		if err != nil {
			for _, o := range opened {
				o.close()
				delete(s.listeners, o.spec.Addr)
			}
			return err
		}
		opened = append(opened, l)
		s.listeners[spec.Addr] = l
	}
	for _, l := range opened {
		go s.serve(l)
	}
	return nil
}

// closeRemoved gracefully shuts down listeners that snap no longer lists.
func (s *Server) closeRemoved(snap *Snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	for _, spec := range snap.cfg.Server.Listen {
		keep[spec.Addr] = true
	}
	for addr, l := range s.listeners {
		if !keep[addr] {
			delete(s.listeners, addr)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), snap.cfg.Server.ShutdownGrace.D())
				defer cancel()
				_ = l.shutdown(ctx)
			}()
			s.logger.Info("listener closed", "addr", addr)
		}
	}
}

func (s *Server) open(spec config.Listener, snap *Snapshot) (*listener, error) {
	lim := snap.cfg.Server.Limits
	ln, err := net.Listen("tcp", spec.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", spec.Addr, err)
	}
	if spec.MaxConnections > 0 {
		ln = newLimitListener(ln, spec.MaxConnections)
	}
	l := &listener{spec: spec, ln: ln}
	l.srv = &http.Server{
		Handler:           s.rt,
		ReadHeaderTimeout: lim.ReadHeaderTimeout.D(),
		IdleTimeout:       lim.IdleTimeout.D(),
		MaxHeaderBytes:    int(lim.MaxHeaderBytes),
		ErrorLog:          newServerErrorLog(s.logger),
	}
	// HTTP/2 frames from clients are capped at the protocol's default
	// 16 KiB instead of net/http's 1 MiB: the frame read buffer grows to
	// the largest frame a connection has sent and is kept for the
	// connection's life, so a Go client's 512 KiB upload frames pinned
	// that much on every idle connection.
	l.srv.HTTP2 = &http.HTTP2Config{MaxReadFrameSize: h2MaxReadFrameSize}
	l.srv.Protocols = new(http.Protocols)
	l.srv.Protocols.SetHTTP1(true)
	if spec.TLS != nil {
		l.srv.Protocols.SetHTTP2(true)
	} else if spec.H2C == nil || *spec.H2C {
		l.srv.Protocols.SetUnencryptedHTTP2(true)
	}
	if spec.TLS != nil {
		l.certs.Store(snap.certs[spec.Addr])
		l.srv.TLSConfig = &tls.Config{
			MinVersion: tlsMinVersion(spec.TLS.MinVersion),
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
				cs := l.certs.Load()
				if cs == nil {
					return nil, errors.New("no certificate")
				}
				return cs.pick(hello.ServerName), nil
			},
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				if cs := l.certs.Load(); cs != nil {
					return cs.conf, nil
				}
				return nil, nil
			},
		}
	}
	if spec.HTTP3 {
		if err := s.openHTTP3(l, lim); err != nil {
			ln.Close()
			return nil, err
		}
	}
	s.logger.Info("listening", "addr", ln.Addr().String(), "tls", spec.TLS != nil, "http3", spec.HTTP3)
	return l, nil
}

// openHTTP3 binds UDP on the TCP listener's port and prepares an HTTP/3
// server with the same handler and certificates; TCP responses advertise it
// through Alt-Svc.
func (s *Server) openHTTP3(l *listener, lim config.Limits) error {
	pc, err := net.ListenPacket("udp", l.ln.Addr().String())
	if err != nil {
		return fmt.Errorf("listen %s (udp, http3): %w", l.spec.Addr, err)
	}
	l.pc = pc
	l.h3 = &http3.Server{
		Handler:        s.rt,
		TLSConfig:      http3.ConfigureTLSConfig(l.srv.TLSConfig.Clone()),
		MaxHeaderBytes: int(lim.MaxHeaderBytes),
		IdleTimeout:    lim.IdleTimeout.D(),
		Logger:         s.logger,
	}
	altSvc := []string{fmt.Sprintf(`h3=":%d"; ma=86400`, pc.LocalAddr().(*net.UDPAddr).Port)}
	rt := s.rt
	l.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Alt-Svc"] = altSvc
		rt.ServeHTTP(w, r)
	})
	return nil
}

func (s *Server) serve(l *listener) {
	if l.h3 != nil {
		go func() {
			if err := l.h3.Serve(l.pc); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				// HTTP/3 on this address is gone while TCP keeps serving:
				// the operator must see it.
				s.logger.Warn("http3 listener stopped", "addr", l.spec.Addr, "error", err)
			}
		}()
	}
	var err error
	if l.spec.TLS != nil {
		err = l.srv.ServeTLS(l.ln, "", "")
	} else {
		err = l.srv.Serve(l.ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		select {
		case s.errc <- fmt.Errorf("listener %s: %w", l.spec.Addr, err):
		default:
		}
	}
}

// Shutdown stops accepting, waits for in-flight requests up to ctx's
// deadline, then closes what remains.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	ls := make([]*listener, 0, len(s.listeners))
	for _, l := range s.listeners {
		ls = append(ls, l)
	}
	s.listeners = map[string]*listener{}
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.shutdown(ctx); err != nil {
				errs[i] = err
				_ = l.srv.Close()
				if l.h3 != nil {
					_ = l.h3.Close()
				}
			}
		}()
	}
	wg.Wait()
	// Upgraded connections (WebSocket and other 101s) are invisible to
	// http.Server.Shutdown: wait for them until the grace deadline, then
	// send WebSockets a 1001 close frame and close them all.
	if !s.rt.upgrades.wait(ctx) {
		n := s.rt.upgrades.goAway(goAwayLinger)
		errs = append(errs, fmt.Errorf("%d upgraded connections closed at the grace deadline: %w", n, ctx.Err()))
	}
	return errors.Join(errs...)
}

// h2MaxReadFrameSize is the largest HTTP/2 frame clients may send.
const h2MaxReadFrameSize = 16 << 10

// newLimitListener caps concurrently open connections with
// netutil.LimitListener: Accept waits for a free slot, leaving excess
// connections in the kernel backlog, and Close unblocks a waiting Accept.
//
// LimitListener's connections expose only net.Conn, hiding CloseWrite
// (which net/http needs to end a limit error cleanly, see below) and the
// sendfile/splice fast paths. So the listener under it remembers the raw
// connection it accepted, and Accept returns a limitConn that uses the raw
// connection for everything but Close, which goes through LimitListener's
// connection to give the slot back.
func newLimitListener(l net.Listener, n int) net.Listener {
	raw := &rawListener{Listener: l}
	return &limitListener{Listener: netutil.LimitListener(raw, n), raw: raw}
}

// rawListener records the last connection it accepted for limitListener.
type rawListener struct {
	net.Listener
	last net.Conn
}

func (l *rawListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	l.last = c
	return c, err
}

// limitListener pairs each connection from netutil.LimitListener with the
// raw connection under it.
type limitListener struct {
	net.Listener // netutil.LimitListener(raw)
	raw          *rawListener
	// mu serialises Accept so rawListener.last belongs to the connection
	// LimitListener just returned (net/http accepts from one goroutine).
	mu sync.Mutex
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, err := l.Listener.Accept()
	raw := l.raw.last
	l.raw.last = nil
	if err != nil {
		return nil, err
	}
	return &limitConn{Conn: raw, limited: c}, nil
}

// limitConn is a raw connection whose Close goes through LimitListener's
// connection, which closes it and gives its slot back once.
type limitConn struct {
	net.Conn
	limited net.Conn
}

func (c *limitConn) Close() error { return c.limited.Close() }

// The methods below pass on what net/http and io.Copy look for on a
// *net.TCPConn. CloseWrite matters most: net/http half-closes a connection
// after an error such as 431 or 413 and reads on for a moment, so the client
// reads the whole response; without it the close resets the connection and
// the client may lose the response.

// CloseWrite shuts down the writing side of the TCP connection.
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// CloseRead shuts down the reading side of the TCP connection.
func (c *limitConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return errors.ErrUnsupported
}

// ReadFrom lets the connection use sendfile or splice when it can.
func (c *limitConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// WriteTo lets the connection use splice when it can.
func (c *limitConn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{c.Conn})
}

// Interface guards: what net/http and io.Copy look for on the connection.
var (
	_ interface{ CloseWrite() error } = (*limitConn)(nil)
	_ interface{ CloseRead() error }  = (*limitConn)(nil)
	_ io.ReaderFrom                   = (*limitConn)(nil)
	_ io.WriterTo                     = (*limitConn)(nil)
)
