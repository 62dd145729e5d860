package request

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Body wraps a client's request body to count its bytes and remember the
// error it failed with, so the proxy can tell a client fault (413, 408, 499)
// from an upstream one. The transport may still read it from another
// goroutine after the response is done, so it is allocated per request and
// never pooled, and its state is safe for concurrent use.
type Body struct {
	rc     io.ReadCloser
	n      atomic.Int64
	mu     sync.Mutex
	err    error
	onDone func()
}

// NewBody wraps rc. onDone, if set, runs once when the body has been read
// completely (EOF), for example to lift its read deadline. It does not run
// on an error: a failed body keeps its deadline, so draining it cannot hang.
func NewBody(rc io.ReadCloser, onDone func()) *Body {
	return &Body{rc: rc, onDone: onDone}
}

// Read reads from the client's body.
func (b *Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	if err != nil {
		var done func()
		b.mu.Lock()
		if !errors.Is(err, io.EOF) {
			if b.err == nil {
				b.err = err
			}
		} else {
			done, b.onDone = b.onDone, nil
		}
		b.mu.Unlock()
		if done != nil {
			done()
		}
	}
	return n, err
}

// Detach drops the onDone callback; the gateway calls it when the handler
// returns, after which the connection may already serve the next request.
func (b *Body) Detach() {
	b.mu.Lock()
	b.onDone = nil
	b.mu.Unlock()
}

// Close closes the client's body.
func (b *Body) Close() error { return b.rc.Close() }

// Bytes is the number of body bytes read so far.
func (b *Body) Bytes() int64 { return b.n.Load() }

// Err is the first non-EOF error the body failed with, if any.
func (b *Body) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Replay returns a request body that serves read and then, when more is
// true, what remains of orig; Close closes orig. Code that reads a client's
// body ahead of the upstream (to sign, validate, transform or copy it)
// hands the upstream the same bytes with it.
func Replay(read []byte, orig io.ReadCloser, more bool) io.ReadCloser {
	var rd io.Reader = bytes.NewReader(read)
	if more {
		rd = io.MultiReader(rd, orig)
	}
	return &replayed{Reader: rd, Closer: orig}
}

// replayed is a body read ahead: the bytes read, maybe then the rest.
type replayed struct {
	io.Reader
	io.Closer
}
