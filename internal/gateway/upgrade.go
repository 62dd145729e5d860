package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// net/http forgets a connection once a handler hijacks it for a protocol
// upgrade (WebSocket or any other 101), so http.Server.Shutdown neither
// waits for nor closes it. The runtime therefore tracks upgraded
// connections itself: Shutdown waits for them until the grace deadline,
// then sends each WebSocket a close frame (1001 going away) at a frame
// boundary and closes every one.

// goAwayLinger bounds how long a going-away WebSocket gets to receive its
// close frame and answer it before its connection is closed.
const goAwayLinger = time.Second

// wsGoingAway is an unmasked server close frame with status 1001.
var wsGoingAway = []byte{0x88, 0x02, 0x03, 0xe9}

// errGoingAway is returned to writers after the close frame was sent.
var errGoingAway = errors.New("connection closed: server shutting down")

// upgradeSet is the set of live upgraded connections.
type upgradeSet struct {
	mu sync.Mutex
	m  map[*upgradedConn]struct{}
	// changed is closed and replaced whenever a connection leaves the set.
	changed chan struct{}
	// closing is set once going-away has started; later upgrades are
	// closed at once.
	closing bool
}

// wrap returns w unchanged unless r asks for a protocol upgrade; then the
// writer registers the connection it hands over on Hijack. Only upgrade
// requests pay for the wrapper.
func (u *upgradeSet) wrap(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	up := r.Header["Upgrade"]
	if len(up) == 0 || r.ProtoMajor != 1 {
		return w
	}
	ws := false
	for _, v := range up {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				ws = true
			}
		}
	}
	return &upgradeWriter{ResponseWriter: w, set: u, ws: ws}
}

// add registers a hijacked connection.
func (u *upgradeSet) add(c net.Conn, ws bool) *upgradedConn {
	uc := &upgradedConn{Conn: c, set: u, ws: ws, wmu: make(chan struct{}, 1), done: make(chan struct{})}
	u.mu.Lock()
	closing := u.closing
	if !closing {
		if u.m == nil {
			u.m = map[*upgradedConn]struct{}{}
		}
		u.m[uc] = struct{}{}
	}
	u.mu.Unlock()
	if closing {
		// Shutdown already sent its close frames: this one arrived late.
		go uc.goAway(goAwayLinger)
	}
	return uc
}

// remove forgets a closed connection and wakes waiters.
func (u *upgradeSet) remove(c *upgradedConn) {
	u.mu.Lock()
	if _, ok := u.m[c]; ok {
		delete(u.m, c)
		if u.changed != nil {
			close(u.changed)
			u.changed = nil
		}
	}
	u.mu.Unlock()
}

// Len is the number of live upgraded connections.
func (u *upgradeSet) Len() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// wait blocks until no upgraded connection is left or ctx ends, and
// reports whether none is left.
func (u *upgradeSet) wait(ctx context.Context) bool {
	for {
		u.mu.Lock()
		if len(u.m) == 0 {
			u.mu.Unlock()
			return true
		}
		if u.changed == nil {
			u.changed = make(chan struct{})
		}
		ch := u.changed
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// goAway sends every WebSocket a 1001 close frame, closes every upgraded
// connection (each gets at most linger to finish its close handshake) and
// returns how many there were. Upgrades after this are closed at once.
func (u *upgradeSet) goAway(linger time.Duration) int {
	u.mu.Lock()
	u.closing = true
	cs := make([]*upgradedConn, 0, len(u.m))
	for c := range u.m {
		cs = append(cs, c)
	}
	u.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.goAway(linger) })
	}
	wg.Wait()
	return len(cs)
}

// upgradeWriter registers the connection a handler hijacks.
type upgradeWriter struct {
	http.ResponseWriter
	set *upgradeSet
	ws  bool
}

// Hijack hands over the connection wrapped so the runtime can close it at
// shutdown. The returned buffered writer writes through the wrapper too.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	uc := w.set.add(c, w.ws)
	if brw != nil && brw.Writer != nil && brw.Writer.Buffered() == 0 {
		brw.Writer.Reset(uc)
	}
	return uc, brw, nil
}

// Flush sends buffered data (a declined upgrade is an ordinary response).
func (w *upgradeWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap returns the underlying writer for http.ResponseController.
func (w *upgradeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// upgradedConn is a hijacked client connection. For a WebSocket it follows
// the frames the server writes, so a close frame can be put between two
// frames and never inside one.
type upgradedConn struct {
	net.Conn
	set *upgradeSet
	ws  bool

	// wmu is a one-slot lock around writes; going-away can give up
	// waiting for it.
	wmu chan struct{}
	// The fields below are guarded by wmu.
	fr wsFrames
	// pendingClose asks the writer to send the close frame at the next
	// frame boundary.
	pendingClose bool
	// sentClose is set once the close frame is out; writes then fail.
	sentClose bool

	closeOnce sync.Once
	done      chan struct{}
}

func (c *upgradedConn) Write(p []byte) (int, error) {
	c.wmu <- struct{}{}
	defer func() { <-c.wmu }()
	if c.sentClose {
		return 0, errGoingAway
	}
	if !c.ws {
		return c.Conn.Write(p)
	}
	if !c.pendingClose {
		c.fr.advance(p)
		return c.Conn.Write(p)
	}
	k := c.fr.untilBoundary(p)
	n, err := c.Conn.Write(p[:k])
	if err != nil || !c.fr.atBoundary() {
		return n, err
	}
	c.sendClose()
	if k < len(p) {
		return n, errGoingAway
	}
	return n, nil
}

// sendClose writes the close frame (wmu held).
func (c *upgradedConn) sendClose() {
	c.sentClose = true
	_ = c.Conn.SetWriteDeadline(time.Now().Add(goAwayLinger))
	_, _ = c.Conn.Write(wsGoingAway)
}

func (c *upgradedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		close(c.done)
		c.set.remove(c)
	})
	return err
}

// goAway sends a WebSocket its close frame, gives the peer up to linger to
// answer (the proxy then closes the connection), and closes it.
func (c *upgradedConn) goAway(linger time.Duration) {
	t := time.NewTimer(linger)
	defer t.Stop()
	if c.ws {
		select {
		case c.wmu <- struct{}{}:
			if c.fr.atBoundary() {
				c.sendClose()
			} else {
				// A frame is half written: its writer sends the close
				// frame when the frame ends.
				c.pendingClose = true
			}
			<-c.wmu
		case <-t.C:
		case <-c.done:
		}
		select {
		case <-t.C:
		case <-c.done:
		}
	}
	// A TLS close_notify could block behind a writer stuck on a client that
	// does not read: close the socket underneath first.
	if tc, ok := c.Conn.(*tls.Conn); ok {
		_ = tc.NetConn().Close()
	}
	_ = c.Close()
}

// wsFrames follows the framing of a server-to-client WebSocket stream (and
// skips an HTTP response head written before the first frame), so a close
// frame can be inserted at a frame boundary.
type wsFrames struct {
	started bool
	// inHead: inside the "HTTP/1.1 101 ..." head; tail matches "\r\n\r\n".
	inHead bool
	tail   int
	hdr    [14]byte
	hn     int   // header bytes collected
	need   int   // header length, known once hn >= 2
	remain int64 // payload bytes left in the current frame
}

// atBoundary reports whether the bytes so far end a complete frame.
func (f *wsFrames) atBoundary() bool { return !f.inHead && f.hn == 0 && f.remain == 0 }

// advance follows all of p.
func (f *wsFrames) advance(p []byte) {
	for len(p) > 0 {
		n := f.step(p)
		p = p[n:]
	}
}

// untilBoundary follows p up to the first frame boundary after at least
// one byte and returns how many bytes that is (len(p) when none).
func (f *wsFrames) untilBoundary(p []byte) int {
	if f.atBoundary() && len(p) == 0 {
		return 0
	}
	i := 0
	for i < len(p) {
		i += f.step(p[i:])
		if f.atBoundary() {
			return i
		}
	}
	return i
}

// step consumes a prefix of p (at least one byte; stopping at the end of a
// head, header or payload) and returns its length.
func (f *wsFrames) step(p []byte) int {
	if !f.started {
		f.started = true
		// 'H' (0x48) cannot start a frame: control frames have FIN set.
		f.inHead = p[0] == 'H'
	}
	if f.inHead {
		const end = "\r\n\r\n"
		for i, b := range p {
			switch {
			case b == end[f.tail]:
				f.tail++
			case b == '\r':
				f.tail = 1
			default:
				f.tail = 0
			}
			if f.tail == len(end) {
				f.inHead, f.tail = false, 0
				return i + 1
			}
		}
		return len(p)
	}
	if f.remain > 0 {
		n := int64(len(p))
		if n > f.remain {
			n = f.remain
		}
		f.remain -= n
		return int(n)
	}
	i := 0
	for i < len(p) {
		f.hdr[f.hn] = p[i]
		f.hn++
		i++
		if f.hn == 2 {
			f.need = 2
			switch f.hdr[1] & 0x7f {
			case 126:
				f.need += 2
			case 127:
				f.need += 8
			}
			if f.hdr[1]&0x80 != 0 {
				f.need += 4
			}
		}
		if f.hn >= 2 && f.hn == f.need {
			var l int64
			switch f.hdr[1] & 0x7f {
			case 126:
				l = int64(f.hdr[2])<<8 | int64(f.hdr[3])
			case 127:
				for _, b := range f.hdr[2:10] {
					l = l<<8 | int64(b)
				}
				if l < 0 {
					l = 0
				}
			default:
				l = int64(f.hdr[1] & 0x7f)
			}
			f.hn, f.remain = 0, l
			return i
		}
	}
	return i
}
