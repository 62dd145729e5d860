package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
)

// scanAll feeds b to a fresh scanner in pieces of at most step bytes and
// returns the first result other than scanMore, or scanMore.
func scanAll(b []byte, step int) (int, bool) {
	var s headScanner
	s.reset()
	for len(b) > 0 && s.active {
		n := min(step, len(b))
		if r := s.scan(b[:n]); r != scanMore {
			return r, s.active
		}
		b = b[n:]
	}
	return scanMore, s.active
}

func TestHeadScanner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc  string
		block string
		want  int
	}{
		{"content-length only", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", scanMore},
		{"chunked only", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", scanMore},
		{"both", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", scanAmbiguous},
		{"both, other order and case", "HTTP/1.1 502 Bad\r\ntransfer-ENCODING: chunked\r\nCONTENT-length:0\r\n\r\n", scanAmbiguous},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 5\nTransfer-Encoding: chunked\n\n", scanAmbiguous},
		{"in a value", "HTTP/1.1 200 OK\r\nX-A: Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", scanMore},
		{"longer names", "HTTP/1.1 200 OK\r\nContent-Lengthy: 5\r\nX-Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", scanMore},
		{"shorter names", "HTTP/1.1 200 OK\r\nContent-Lengt: 5\r\nTransfer-Encoding: chunked\r\n\r\n", scanMore},
		{"in the body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nContent-Length: 5\r\n\r\n", scanMore},
		{"after an interim response", "HTTP/1.1 103 Early\r\nLink: <a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", scanAmbiguous},
		{"both on the interim response only", "HTTP/1.1 100 Continue\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", scanMore},
		{"upgrade", "HTTP/1.1 101 Switching\r\nUpgrade: x\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", scanUpgraded},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", scanAmbiguous},
	}
	for _, tc := range tests {
		for _, step := range []int{1, 2, 3, 7, 1 << 20} {
			if got, _ := scanAll([]byte(tc.block), step); got != tc.want {
				t.Errorf("%s (reads of %d bytes): scan = %d, want %d", tc.desc, step, got, tc.want)
			}
		}
	}
}

// pipeConn is one end of an in-memory connection.
func pipeConn(t *testing.T) (*framingConn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return newFramingConn(a), b
}

// exchange writes req from the client side, answers resp from the server
// side and reads everything the client gets until the end of resp.
func exchange(t *testing.T, fc *framingConn, srv net.Conn, req, resp string) error {
	t.Helper()
	go func() {
		buf := make([]byte, len(req))
		_, _ = io.ReadFull(srv, buf)
		_, _ = io.WriteString(srv, resp)
	}()
	if _, err := io.WriteString(fc, req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(resp))
	_, err := io.ReadFull(fc, buf)
	return err
}

func TestFramingConn(t *testing.T) {
	t.Parallel()
	const req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
	const good = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	const bad = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"

	t.Run("first response", func(t *testing.T) {
		fc, srv := pipeConn(t)
		if err := exchange(t, fc, srv, req, bad); !errors.Is(err, ErrAmbiguousFraming) {
			t.Fatalf("read error %v, want ErrAmbiguousFraming", err)
		}
		if _, err := fc.Read(make([]byte, 1)); !errors.Is(err, ErrAmbiguousFraming) {
			t.Fatalf("later read error %v, want the same error", err)
		}
	})
	t.Run("later exchange marked through GotConn", func(t *testing.T) {
		fc, srv := pipeConn(t)
		if err := exchange(t, fc, srv, req, good); err != nil {
			t.Fatal(err)
		}
		GotConn(httptrace.GotConnInfo{Conn: fc, Reused: true})
		if err := exchange(t, fc, srv, req, bad); !errors.Is(err, ErrAmbiguousFraming) {
			t.Fatalf("read error %v, want ErrAmbiguousFraming", err)
		}
	})
	t.Run("body bytes are not a header block", func(t *testing.T) {
		fc, srv := pipeConn(t)
		// Without a new exchange, bytes after the head are body.
		if err := exchange(t, fc, srv, req, good+bad); err != nil {
			t.Fatalf("read error %v for body bytes", err)
		}
	})
	for _, tc := range []struct{ desc, first string }{
		{"TLS", "\x16\x03\x01\x00\x05hello"},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
	} {
		t.Run("not inspected: "+tc.desc, func(t *testing.T) {
			fc, srv := pipeConn(t)
			if err := exchange(t, fc, srv, tc.first, bad); err != nil {
				t.Fatalf("read error %v on a %s connection", err, tc.desc)
			}
		})
	}
}

// FuzzHeadScanner checks the scanner against net/textproto: for any header
// block textproto parses, the scanner calls a final response ambiguous
// exactly when it has both a Content-Length and a Transfer-Encoding field,
// however the bytes are split into reads.
func FuzzHeadScanner(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), uint8(3))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), uint8(1))
	f.Add([]byte("HTTP/1.1 204 No\ntransfer-encoding: chunked\nx: y\n\n"), uint8(2))
	f.Add([]byte("HTTP/1.1 200 OK\r\nX: a\r\n Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), uint8(5))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length : 5\r\nTransfer-Encoding: chunked\r\n\r\n"), uint8(4))
	f.Fuzz(func(t *testing.T, b []byte, step uint8) {
		got, _ := scanAll(b, int(step)+1)
		tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
		line, err := tp.ReadLine()
		if err != nil || len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' {
			return
		}
		code, err := strconv.Atoi(line[9:12])
		if err != nil || code < 200 || line[9] == '+' || line[9] == '-' {
			return
		}
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		_, cl := h["Content-Length"]
		_, te := h["Transfer-Encoding"]
		if want := cl && te; want != (got == scanAmbiguous) {
			t.Fatalf("scan = %d for %q; textproto sees Content-Length %v, Transfer-Encoding %v", got, b, cl, te)
		}
	})
}

// TestTLSHandshakeTimeout checks that the transport's own TLS dial (which
// wraps HTTP/1 connections for the framing check) bounds the handshake by
// tls_handshake_timeout and reports it as a timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn // never answer the ClientHello
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	defer func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	}()
	for _, proto := range []string{ProtocolHTTP1, ProtocolHTTP2} {
		u := baseUpstream()
		u.Protocol = proto
		u.TLSHandshakeTimeout = config.Duration(200 * time.Millisecond)
		tr := acquireWith(t, NewRegistry(), "api-"+proto, u, nil)
		req, _ := http.NewRequest(http.MethodGet, "https://"+ln.Addr().String()+"/", nil)
		start := time.Now()
		_, err := tr.RoundTrip(req)
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s: RoundTrip error %v, want a timeout", proto, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: handshake gave up after %v, want about 200ms", proto, d)
		}
	}
}
