package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil/wait"
)

// wsFrame builds a server frame (FIN, opcode) with n payload bytes of b,
// masked when mask is set.
func wsFrame(opcode byte, n int, b byte, mask bool) []byte {
	out := []byte{0x80 | opcode}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch {
	case n < 126:
		out = append(out, m|byte(n))
	case n < 1<<16:
		out = append(out, m|126, byte(n>>8), byte(n))
	default:
		out = append(out, m|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if mask {
		out = append(out, 1, 2, 3, 4)
	}
	return append(out, bytes.Repeat([]byte{b}, n)...)
}

// TestWSFramesBoundaries feeds frames of every length encoding, split at
// every kind of position, and checks that a boundary is seen exactly at the
// end of each frame.
func TestWSFramesBoundaries(t *testing.T) {
	head := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
	frames := [][]byte{
		wsFrame(1, 0, 'a', false), wsFrame(2, 125, 'b', false), wsFrame(2, 126, 'c', false),
		wsFrame(2, 65535, 'd', false), wsFrame(2, 65536, 'e', false), wsFrame(9, 4, 'p', true),
		wsFrame(1, 300, '\r', false),
	}
	for _, withHead := range []bool{true, false} {
		for _, chunk := range []int{1, 2, 3, 7, 100, 1 << 20} {
			var f wsFrames
			if withHead {
				for i := 0; i < len(head); i += chunk {
					f.advance(head[i:min(i+chunk, len(head))])
				}
				if !f.atBoundary() {
					t.Fatalf("chunk %d: no boundary after the 101 head", chunk)
				}
			}
			for fi, fr := range frames {
				for i := 0; i < len(fr); i += chunk {
					if f.atBoundary() != (i == 0) && i != 0 {
						t.Fatalf("chunk %d frame %d: boundary inside the frame at %d", chunk, fi, i)
					}
					f.advance(fr[i:min(i+chunk, len(fr))])
				}
				if !f.atBoundary() {
					t.Fatalf("head %v chunk %d frame %d: no boundary at its end", withHead, chunk, fi)
				}
			}
		}
	}
	// untilBoundary stops right after the first frame of a write.
	var f wsFrames
	f.advance(wsFrame(1, 1, 'x', false)) // not started with 'H': no head
	two := append(wsFrame(2, 200, 'y', false), wsFrame(1, 3, 'z', false)...)
	if k := f.untilBoundary(two); k != 204 || !f.atBoundary() {
		t.Fatalf("untilBoundary = %d (boundary %v), want 204", k, f.atBoundary())
	}
}

// FuzzWSFrames: any byte stream, however split, leaves the tracker in the
// same state as feeding it whole, and untilBoundary always makes progress.
func FuzzWSFrames(f *testing.F) {
	f.Add(append([]byte("HTTP/1.1 101 OK\r\n\r\n"), wsFrame(1, 5, 'a', false)...), 3)
	f.Add(wsFrame(2, 70000, 'b', true), 11)
	f.Add([]byte{0x82, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, 5)
	f.Add([]byte("H\r\r\n\r\n\x81\x00"), 1)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		var whole, parts wsFrames
		whole.advance(data)
		if len(data) > 0 {
			split = ((split % len(data)) + len(data)) % len(data)
		} else {
			split = 0
		}
		parts.advance(data[:split])
		rest := data[split:]
		for len(rest) > 0 {
			k := parts.untilBoundary(rest)
			if k <= 0 || k > len(rest) {
				t.Fatalf("untilBoundary = %d of %d", k, len(rest))
			}
			rest = rest[k:]
		}
		if whole != parts {
			t.Fatalf("split at %d changed the state: %+v vs %+v", split, whole, parts)
		}
	})
}

// TestUpgradedConnCloseFrameAtBoundary: going away while a frame is half
// written puts the 1001 close frame after that frame, never inside it, and
// refuses later frames.
func TestUpgradedConnCloseFrameAtBoundary(t *testing.T) {
	srv, cli := net.Pipe()
	defer cli.Close()
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(cli)
		got <- b
	}()
	var set upgradeSet
	uc := set.add(srv, true)
	head := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
	frame := wsFrame(2, 1000, 'x', false)
	if _, err := uc.Write(head); err != nil {
		t.Fatal(err)
	}
	if _, err := uc.Write(frame[:500]); err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() { done <- set.goAway(5 * time.Second) }()
	// goAway marks the close as pending (the frame is half written); the
	// writer then completes the frame and sends the close frame.
	pending := func() bool {
		uc.wmu <- struct{}{}
		defer func() { <-uc.wmu }()
		return uc.pendingClose
	}
	if !wait.Within(5*time.Second, pending) {
		t.Fatal("goAway never asked for the close frame")
	}
	next := wsFrame(1, 10, 'n', false)
	n, err := uc.Write(append(frame[500:], next...))
	if n != len(frame)-500 || !errors.Is(err, errGoingAway) {
		t.Fatalf("write across the boundary = %d, %v; want %d, errGoingAway", n, err, len(frame)-500)
	}
	if _, err := uc.Write(next); !errors.Is(err, errGoingAway) {
		t.Fatalf("write after the close frame: %v", err)
	}
	uc.Close() // what the proxy does when its copy fails
	if n := <-done; n != 1 {
		t.Fatalf("goAway closed %d connections, want 1", n)
	}
	want := append(append(append([]byte{}, head...), frame...), wsGoingAway...)
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("client received %d bytes, want %d (head, frame, close 1001); tail %x", len(b), len(want), b[max(0, len(b)-8):])
	}
	if set.Len() != 0 {
		t.Fatalf("set still holds %d connections", set.Len())
	}
	// A connection hijacked after going away is closed at once.
	s2, c2 := net.Pipe()
	defer c2.Close()
	go io.Copy(io.Discard, c2)
	late := set.add(s2, false)
	select {
	case <-late.done:
	case <-time.After(5 * time.Second):
		t.Fatal("upgrade after going away was not closed")
	}
}

func TestServerLogLevel(t *testing.T) {
	cases := []struct {
		msg  string
		want slog.Level
	}{
		{"http: panic serving 127.0.0.1:5555: runtime error: invalid memory address\ngoroutine 1 [running]:\n", slog.LevelError},
		{"http: Accept error: accept tcp: too many open files; retrying in 5ms\n", slog.LevelError},
		{"http: superfluous response.WriteHeader call from x\n", slog.LevelError},
		{"http: TLS handshake error from 127.0.0.1:5555: EOF\n", slog.LevelDebug},
		{"http: TLS handshake error from 127.0.0.1:5555: read tcp 127.0.0.1:443->127.0.0.1:5555: read: connection reset by peer\n", slog.LevelDebug},
		{"http: TLS handshake error from 127.0.0.1:5555: read tcp 1->2: i/o timeout\n", slog.LevelDebug},
		{"http: TLS handshake error from 127.0.0.1:5555: tls: client offered only unsupported versions: []\n", slog.LevelWarn},
		{"http: TLS handshake error from 127.0.0.1:5555: no certificate\n", slog.LevelWarn},
	}
	for _, c := range cases {
		if got := serverLogLevel([]byte(c.msg)); got != c.want {
			t.Errorf("%.60q: level %v, want %v", c.msg, got, c.want)
		}
	}
	var buf bytes.Buffer
	l := newServerErrorLog(slog.New(slog.NewTextHandler(&buf, nil)))
	l.Printf("http: panic serving 1.2.3.4:5: boom")
	l.Printf("http: TLS handshake error from 1.2.3.4:5: EOF")
	if out := buf.String(); !bytes.Contains(buf.Bytes(), []byte("level=ERROR")) || bytes.Contains(buf.Bytes(), []byte("handshake")) {
		t.Fatalf("log output:\n%s", out)
	}
}
