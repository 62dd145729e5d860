package proxy

import (
	"errors"
	"io"
	"sync"
)

// replayBody keeps the first limit bytes of a request body so a failed
// attempt can be replayed. Each attempt reads through its own reader; a
// reader of an earlier attempt is detached, so a transport goroutine still
// reading it cannot steal bytes from the next attempt.
type replayBody struct {
	mu       sync.Mutex
	src      io.ReadCloser
	limit    int64
	buf      []byte
	overflow bool
	srcDone  bool
	gen      int
}

func (b *replayBody) reader() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	return &replayReader{b: b, gen: b.gen}
}

// rewindable reports whether every byte read so far is still buffered.
func (b *replayBody) rewindable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.overflow
}

type replayReader struct {
	b   *replayBody
	gen int
	pos int
}

var errDetached = errors.New("request body of a superseded attempt")

func (r *replayReader) Read(p []byte) (int, error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.gen != b.gen {
		return 0, errDetached
	}
	if r.pos < len(b.buf) {
		n := copy(p, b.buf[r.pos:])
		r.pos += n
		return n, nil
	}
	if b.srcDone {
		return 0, io.EOF
	}
	if b.overflow && r.pos != len(b.buf) {
		return 0, errDetached
	}
	n, err := b.src.Read(p)
	if n > 0 {
		if !b.overflow && int64(len(b.buf)+n) <= b.limit {
			b.buf = append(b.buf, p[:n]...)
		} else {
			b.overflow = true
		}
		r.pos += n
		if b.overflow {
			b.buf = b.buf[:0]
			r.pos = 0
		}
	}
	if err == io.EOF {
		b.srcDone = true
	}
	return n, err
}

// Close is a no-op: the client's body is closed by the server when the
// handler returns, after the last attempt.
func (r *replayReader) Close() error { return nil }

// Interface guard.
var _ io.ReadCloser = (*replayReader)(nil)
