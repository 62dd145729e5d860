package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/portico-gw/portico/internal/testutil"
)

// e2eGatedStream is a backend that sends a first chunk, then waits until the
// test confirms it received it (or 5 s pass) before sending the second. A
// proxy that buffers the response makes the test time out.
type e2eGatedStream struct {
	gate  chan struct{}
	timed atomic.Bool
}

func (g *e2eGatedStream) handler(contentType string, first, second string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		} else {
			// A nil value stops net/http from sniffing a content type.
			w.Header()["Content-Type"] = nil
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		// The pauses are the stream's pacing, not synchronisation: a
		// proxy that waits for more data before flushing is caught by them.
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, first)
		http.NewResponseController(w).Flush()
		select {
		case <-g.gate:
		case <-time.After(5 * time.Second):
			g.timed.Store(true)
		case <-r.Context().Done():
			return
		}
		time.Sleep(300 * time.Millisecond) // pacing, as above
		io.WriteString(w, second)
		http.NewResponseController(w).Flush()
	}
}

func TestStreamFlushes(t *testing.T) {
	tests := []struct {
		desc        string
		contentType string
		first       string
		second      string
	}{
		{desc: "server-sent events", contentType: "text/event-stream", first: "id: 1\ndata: one\n\n", second: "id: 2\ndata: two\n\n"},
		{desc: "chunked without content type", contentType: "", first: "first-line\n", second: "second-line\n"},
		{desc: "chunked json lines", contentType: "application/x-ndjson", first: "{\"n\":1}\n", second: "{\"n\":2}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			g := &e2eGatedStream{gate: make(chan struct{})}
			be := testutil.Backend(t, g.handler(tc.contentType, tc.first, tc.second))
			tg := e2eStartOne(t, "s", be.URL, `
routes:
  - {name: s, match: {path_prefix: /}, upstream: s}
plugins:
  - name: request_id
  - name: headers
    config: {response: {set: {X-Gw: "1"}}}
`)

			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL+"/events", nil)
			start := time.Now()
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q", resp.Header.Get("Content-Type"))
			}
			if resp.ContentLength != -1 {
				t.Errorf("ContentLength = %d, want a streamed (unknown length) response", resp.ContentLength)
			}

			got := make(chan string, 1)
			br := bufio.NewReader(resp.Body)
			go func() {
				buf := make([]byte, len(tc.first))
				_, err := io.ReadFull(br, buf)
				if err != nil {
					got <- "error: " + err.Error()
					return
				}
				got <- string(buf)
			}()
			select {
			case s := <-got:
				if s != tc.first {
					t.Fatalf("first chunk = %q, want %q", s, tc.first)
				}
			case <-time.After(2500 * time.Millisecond):
				t.Fatalf("first chunk not received after %v: the response is buffered, not streamed", time.Since(start))
			}
			close(g.gate)
			rest, err := io.ReadAll(br)
			if err != nil {
				t.Fatalf("read rest: %v", err)
			}
			if string(rest) != tc.second {
				t.Errorf("second chunk = %q, want %q", rest, tc.second)
			}
			if g.timed.Load() {
				t.Error("backend waited for the gate until its timeout")
			}
		})
	}
}

// e2ePatternReader yields n deterministic pseudo-random bytes.
type e2ePatternReader struct {
	rng *rand.ChaCha8
	n   int64
}

func e2ePattern(seed byte, n int64) *e2ePatternReader {
	var s [32]byte
	s[0] = seed
	return &e2ePatternReader{rng: rand.NewChaCha8(s), n: n}
}

func (p *e2ePatternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	n, _ := p.rng.Read(b)
	p.n -= int64(n)
	return n, nil
}

func e2eSHA(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n
}

// e2eOnlyReader hides every other method so the client cannot know the length
// and must send the body chunked.
type e2eOnlyReader struct{ io.Reader }

const e2eBodyConfig = `
server:
  listen: [{addr: "127.0.0.1:0"}]
  limits: {max_body_bytes: 16MiB}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
  dl: {targets: [{url: "{{DL}}"}]}
routes:
  - {name: download, match: {path_prefix: /download}, upstream: dl}
  - {name: upload, match: {path_prefix: /}, upstream: rec}
`

func TestStreamLargeBodies(t *testing.T) {
	const size = 8 << 20
	rec := e2eNewRecorder(t, "rec", nil)
	dl := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seed, _ := strconv.Atoi(r.URL.Query().Get("seed"))
		if r.URL.Query().Get("len") == "known" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		io.Copy(w, e2ePattern(byte(seed), size))
	}))
	tg := e2eStart(t, e2eBodyConfig, map[string]string{"REC": rec.URL, "DL": dl.URL})

	t.Run("upload with content length", func(t *testing.T) {
		t.Parallel()
		want, _ := e2eSHA(e2ePattern(1, size))
		data, _ := io.ReadAll(e2ePattern(1, size))
		resp, body := e2eDo(t, e2eReq(t, http.MethodPost, tg.URL+"/up", bytes.NewReader(data)))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %.200q", resp.StatusCode, body)
		}
		s := e2eDecodeSeen(t, body)
		if s.BodySHA != want || s.BodyLen != size || s.ContentLength != size {
			t.Errorf("backend got %d bytes (Content-Length %d) e2eSHA %s, want %d e2eSHA %s", s.BodyLen, s.ContentLength, s.BodySHA, size, want)
		}
	})
	t.Run("upload chunked", func(t *testing.T) {
		t.Parallel()
		want, _ := e2eSHA(e2ePattern(2, size))
		resp, body := e2eDo(t, e2eReq(t, http.MethodPut, tg.URL+"/up", e2eOnlyReader{e2ePattern(2, size)}))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %.200q", resp.StatusCode, body)
		}
		s := e2eDecodeSeen(t, body)
		if s.BodySHA != want || s.BodyLen != size {
			t.Errorf("backend got %d bytes e2eSHA %s, want %d e2eSHA %s", s.BodyLen, s.BodySHA, size, want)
		}
	})
	for _, mode := range []string{"known", "chunked"} {
		t.Run("download "+mode, func(t *testing.T) {
			t.Parallel()
			want, _ := e2eSHA(e2ePattern(3, size))
			resp, err := e2eClient.Get(tg.URL + "/download?seed=3&len=" + mode)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, n := e2eSHA(resp.Body)
			if resp.StatusCode != http.StatusOK || got != want || n != size {
				t.Errorf("status %d, got %d bytes e2eSHA %s, want %d e2eSHA %s", resp.StatusCode, n, got, size, want)
			}
			if mode == "known" && resp.ContentLength != size {
				t.Errorf("ContentLength = %d, want %d", resp.ContentLength, size)
			}
		})
	}
}

func TestStreamBodyLimit(t *testing.T) {
	const limit = 16 << 20
	const over = limit + 1<<20
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, e2eBodyConfig, map[string]string{"REC": rec.URL, "DL": rec.URL})
	addr := e2eHostPort(tg.URL)

	t.Run("content length over the limit", func(t *testing.T) {
		// The headers announce the size; the gateway must answer without
		// waiting for (or forwarding) the body.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "POST /too-big HTTP/1.1\r\nHost: gw.test\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", over)
		c.Write(make([]byte, 64<<10))
		resp := e2eReadRaw(t, bufio.NewReader(c), "POST")
		e2eCheckError(t, resp.StatusCode, resp.Header, resp.Body, http.StatusRequestEntityTooLarge)
	})
	// tooLarge sends req with the Go client and checks the 413. The
	// gateway may close the connection while the client is still writing;
	// the raw subtests check the answer itself.
	tooLarge := func(t *testing.T, req *http.Request) {
		resp, err := e2eClient.Do(req)
		if err != nil {
			t.Logf("client error (connection closed early): %v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		e2eCheckError(t, resp.StatusCode, resp.Header, body, http.StatusRequestEntityTooLarge)
	}
	t.Run("content length over the limit with Go client", func(t *testing.T) {
		tooLarge(t, e2eReq(t, http.MethodPost, tg.URL+"/too-big-client", bytes.NewReader(make([]byte, over))))
	})
	t.Run("chunked over the limit", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "POST /too-big-chunked HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nContent-Type: application/octet-stream\r\n\r\n")
		go func() {
			chunk := bytes.Repeat([]byte{'x'}, 64<<10)
			w := bufio.NewWriter(c)
			for sent := 0; sent < over; sent += len(chunk) {
				fmt.Fprintf(w, "%x\r\n", len(chunk))
				w.Write(chunk)
				if _, err := w.WriteString("\r\n"); err != nil {
					return
				}
			}
			w.WriteString("0\r\n\r\n")
			w.Flush()
		}()
		resp := e2eReadRaw(t, bufio.NewReader(c), "POST")
		e2eCheckError(t, resp.StatusCode, resp.Header, resp.Body, http.StatusRequestEntityTooLarge)
	})
	t.Run("chunked over the limit with Go client", func(t *testing.T) {
		tooLarge(t, e2eReq(t, http.MethodPost, tg.URL+"/too-big-chunked-client", e2eOnlyReader{e2ePattern(4, over)}))
	})
	t.Run("exactly at the limit passes", func(t *testing.T) {
		resp, body := e2eDo(t, e2eReq(t, http.MethodPost, tg.URL+"/at-limit", bytes.NewReader(make([]byte, limit))))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d body %.200q", resp.StatusCode, body)
		}
		if s := e2eDecodeSeen(t, body); s.BodyLen != limit {
			t.Errorf("backend got %d bytes, want %d", s.BodyLen, limit)
		}
	})

	for _, s := range rec.all() {
		if strings.HasPrefix(s.Path, "/too-big") && s.Path != "/too-big-chunked" && s.Path != "/too-big-chunked-client" {
			t.Errorf("upstream received the oversize request %s (Content-Length %d)", s.Path, s.ContentLength)
		}
		if s.ContentLength > limit {
			t.Errorf("upstream received Content-Length %d over the limit", s.ContentLength)
		}
		if strings.HasPrefix(s.Path, "/too-big") && s.BodyErr == "" {
			t.Errorf("upstream received a complete body for %s (%d bytes)", s.Path, s.BodyLen)
		}
	}
}

func TestStreamWebSocketEcho(t *testing.T) {
	be := testutil.Backend(t, http.HandlerFunc(e2eWebSocketEcho))
	tg := e2eStartOne(t, "ws", be.URL, `
routes:
  - {name: ws, match: {path_prefix: /ws}, upstream: ws}
plugins:
  - name: request_id
  - name: headers
    config: {request: {set: {X-Gw: "1"}}, response: {set: {X-Gw: "1"}}}
`)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+e2eHostPort(tg.URL)+"/ws/echo", nil)
	if err != nil {
		t.Fatalf("dial through gateway: %v (response %v)", err, resp)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Errorf("status %d", resp.StatusCode)
	}
	c.SetReadLimit(4 << 20)
	big := make([]byte, 1<<20)
	e2ePattern(9, int64(len(big))).Read(big)
	msgs := []struct {
		desc string
		typ  websocket.MessageType
		data []byte
	}{
		{desc: "text", typ: websocket.MessageText, data: []byte("hello, portico")},
		{desc: "binary", typ: websocket.MessageBinary, data: []byte{0, 1, 2, 0xff, 0xfe}},
		{desc: "binary 1 MiB", typ: websocket.MessageBinary, data: big},
	}
	for _, m := range msgs {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatalf("%s: write: %v", m.desc, err)
		}
		typ, got, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: read: %v", m.desc, err)
		}
		if typ != m.typ || !bytes.Equal(got, m.data) {
			t.Errorf("%s: echoed type %v len %d, want type %v len %d", m.desc, typ, len(got), m.typ, len(m.data))
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestStreamGenericUpgrade(t *testing.T) {
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "foo") || !strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade") {
			http.Error(w, "upgrade expected", http.StatusBadRequest)
			return
		}
		conn, brw, ok := e2eSwitchProtocols(w, "foo", "")
		if !ok {
			return
		}
		defer conn.Close()
		// Echo raw bytes until the peer closes.
		buf := make([]byte, 4096)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}))
	tg := e2eStartOne(t, "up", be.URL, `
routes:
  # Protocols other than WebSocket are forwarded only when the route lists them.
  - {name: up, match: {path_prefix: /}, upstream: up, upgrades: [websocket, foo]}
`)

	c, err := net.Dial("tcp", e2eHostPort(tg.URL))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /tunnel HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("read 101: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "foo") {
		t.Fatalf("status %d Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
	}
	for _, msg := range []string{"ping", "raw \x00\x01 bytes", strings.Repeat("z", 10000)} {
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil {
			t.Fatalf("read echo: %v", err)
		}
		if string(got) != msg {
			t.Errorf("echo = %.40q, want %.40q", got, msg)
		}
	}
}
