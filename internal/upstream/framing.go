package upstream

import (
	"errors"
	"net"
	"net/http/httptrace"
	"sync/atomic"
)

// ErrAmbiguousFraming is the error of an HTTP/1 response whose header block
// carries both Content-Length and Transfer-Encoding. Go's client silently
// drops the Content-Length of such a response; a gateway that forwarded it
// would trust a framing the backend (or something between) may not have
// meant, the classic setup for response splitting. The response is refused
// (502) and its connection is closed, never reused.
var ErrAmbiguousFraming = errors.New("upstream response has both Content-Length and Transfer-Encoding")

// framingConn watches the response header blocks of a plain-text HTTP/1
// upstream connection for framing the standard client would silently
// repair (Content-Length together with Transfer-Encoding). Only the bytes
// of header blocks are inspected, once, as they are read; body bytes cost
// one atomic load per Read. A connection that turns out to carry TLS or
// HTTP/2 (its first write is not an HTTP/1 request line) is not inspected.
//
// Header blocks are found without parsing bodies: a connection's first
// bytes are a header block, and the transport marks the start of every
// later exchange through the GotConn trace hook (see GotConn), after the
// previous response has been read completely. Interim (1xx) blocks are
// followed by the next block; after 101 the connection carries another
// protocol and is no longer inspected.
type framingConn struct {
	net.Conn
	mode  atomic.Int32 // connMode
	begin atomic.Bool  // a new exchange starts: the next bytes are a header block
	// Read-side state, owned by the transport's reading goroutine.
	sc  headScanner
	err error
}

type connMode int32

const (
	modeUnknown connMode = iota // nothing written yet
	modeHTTP1
	modeOff
)

func newFramingConn(c net.Conn) *framingConn {
	fc := &framingConn{Conn: c}
	fc.sc.reset()
	return fc
}

// Write decides on the first request whether the connection speaks HTTP/1.
func (c *framingConn) Write(p []byte) (int, error) {
	if len(p) > 0 && connMode(c.mode.Load()) == modeUnknown {
		m := modeOff
		if p[0] >= 'A' && p[0] <= 'Z' && !(len(p) >= 3 && p[0] == 'P' && p[1] == 'R' && p[2] == 'I') {
			m = modeHTTP1
		}
		c.mode.CompareAndSwap(int32(modeUnknown), int32(m))
	}
	return c.Conn.Write(p)
}

// Read passes bytes through, inspecting those of response header blocks.
// A block with ambiguous framing fails the read that completes it, so the
// transport never hands the response out and closes the connection.
func (c *framingConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if n > 0 && connMode(c.mode.Load()) == modeHTTP1 {
		if c.begin.Load() && c.begin.Swap(false) {
			c.sc.reset()
		}
		if c.sc.active {
			switch c.sc.scan(p[:n]) {
			case scanAmbiguous:
				c.err = ErrAmbiguousFraming
				return 0, c.err
			case scanUpgraded:
				c.mode.Store(int32(modeOff))
			}
		}
	}
	return n, err
}

// beginExchange marks that the connection was handed to a new request.
func (c *framingConn) beginExchange() { c.begin.Store(true) }

// GotConn is an httptrace GotConn hook that tells an upstream connection
// that a new exchange starts on it. The proxy installs it on every
// outbound request; it keeps no per-request state, so it can be set on a
// request's existing trace without allocating.
func GotConn(info httptrace.GotConnInfo) {
	if c, ok := info.Conn.(*framingConn); ok {
		c.beginExchange()
	}
}

// scan results.
const (
	scanMore      = iota // block not finished, or finished and fine
	scanAmbiguous        // a final block with Content-Length and Transfer-Encoding
	scanUpgraded         // a 101 block: the connection now carries another protocol
)

// headScanner follows the response header blocks byte by byte.
type headScanner struct {
	active  bool // inside a header block
	line    int  // line number in the block (0: status line)
	pos     int  // bytes of the current line, CR excluded
	status  int  // status code parsed from the status line
	cands   uint8
	skip    bool // rest of the line is of no interest
	sawCL   bool
	sawTE   bool
	badStat bool
}

const (
	candCL = 1 << iota
	candTE
)

const (
	nameCL = "content-length"
	nameTE = "transfer-encoding"
)

func (s *headScanner) reset() {
	*s = headScanner{active: true}
	s.startLine()
}

func (s *headScanner) startLine() {
	s.pos, s.skip, s.cands = 0, false, candCL|candTE
}

// scan consumes bytes of the current header block; bytes after its end
// belong to the body and are ignored.
func (s *headScanner) scan(b []byte) int {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\n' {
			if s.pos == 0 {
				// The empty line ends the block.
				if r := s.endBlock(); r != scanMore || !s.active {
					return r
				}
				continue
			}
			s.line++
			s.startLine()
			continue
		}
		if c == '\r' {
			continue
		}
		p := s.pos
		s.pos++
		if s.skip {
			continue
		}
		if s.line == 0 {
			// "HTTP/1.1 200 …": the code is at offsets 9–11.
			switch {
			case p >= 9 && p <= 11:
				if c < '0' || c > '9' {
					s.badStat = true
				} else {
					s.status = s.status*10 + int(c-'0')
				}
			case p > 11:
				s.skip = true
			}
			continue
		}
		if c == ':' {
			if s.cands&candCL != 0 && p == len(nameCL) {
				s.sawCL = true
			}
			if s.cands&candTE != 0 && p == len(nameTE) {
				s.sawTE = true
			}
			s.skip = true
			continue
		}
		lc := c
		if lc >= 'A' && lc <= 'Z' {
			lc += 'a' - 'A'
		}
		if s.cands&candCL != 0 && (p >= len(nameCL) || nameCL[p] != lc) {
			s.cands &^= candCL
		}
		if s.cands&candTE != 0 && (p >= len(nameTE) || nameTE[p] != lc) {
			s.cands &^= candTE
		}
		if s.cands == 0 {
			s.skip = true
		}
	}
	return scanMore
}

// endBlock decides what follows a complete header block.
func (s *headScanner) endBlock() int {
	status, ambiguous := s.status, s.sawCL && s.sawTE
	if s.line == 0 {
		// A blank line before any status line: leave it to the transport.
		return scanMore
	}
	switch {
	case s.badStat:
		s.active = false
	case status == 101:
		s.active = false
		return scanUpgraded
	case status >= 100 && status <= 199:
		// An interim response: the next block follows at once.
		s.reset()
		return scanMore
	}
	s.active = false
	if ambiguous {
		return scanAmbiguous
	}
	return scanMore
}

// Interface guard.
var _ net.Conn = (*framingConn)(nil)
