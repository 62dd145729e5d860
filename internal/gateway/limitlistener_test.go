package gateway

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestLimitListener checks the max_connections listener: a connection over
// the cap waits until one closes, a double Close gives one slot back,
// accepted connections expose CloseWrite (so limit errors half-close) and
// the sendfile/splice paths, and Close unblocks a waiting Accept.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(inner, 1)
	defer ln.Close()

	accepted := make(chan net.Conn)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	c1 := dial()
	first := <-accepted
	if _, ok := first.(interface{ CloseWrite() error }); !ok {
		t.Fatalf("accepted %T has no CloseWrite", first)
	}
	if _, ok := first.(io.ReaderFrom); !ok {
		t.Fatalf("accepted %T has no ReadFrom", first)
	}
	if _, ok := first.(io.WriterTo); !ok {
		t.Fatalf("accepted %T has no WriteTo", first)
	}

	// A half-close through the wrapper reaches the client as EOF.
	if err := first.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if n, err := c1.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client read after CloseWrite: %d, %v, want EOF", n, err)
	}
	dial()
	// The second connection is not accepted while the first is open.
	select {
	case c := <-accepted:
		t.Fatalf("accepted %v over the cap", c.RemoteAddr())
	case <-time.After(100 * time.Millisecond): // proving a negative: nothing to wait on
	}
	first.Close()
	first.Close() // a second Close must not free a second slot
	second := <-accepted

	// With the slot taken again, a third connection waits.
	dial()
	select {
	case c := <-accepted:
		t.Fatalf("accepted %v over the cap after a double Close", c.RemoteAddr())
	case <-time.After(100 * time.Millisecond): // proving a negative: nothing to wait on
	}
	second.Close()
	third := <-accepted
	defer third.Close()

	// Close unblocks an Accept waiting for a slot.
	dial()
	ln.Close()
	select {
	case err := <-acceptErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case c := <-accepted:
		t.Fatalf("accepted %v after Close", c.RemoteAddr())
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Accept")
	}
}
