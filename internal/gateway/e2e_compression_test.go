package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/portico-gw/portico/internal/testutil"
)

const e2eCompressionConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  be: {targets: [{url: "{{BE}}"}]}
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - name: out
    match: {path_prefix: /c/}
    upstream: be
    plugins:
      - {name: compression}
  - name: gzip-only
    match: {path_prefix: /g/}
    upstream: be
    plugins:
      - {name: compression, config: {encodings: [gzip, br]}}
  - name: in
    match: {path_prefix: /in/}
    upstream: rec
    plugins:
      - {name: compression, config: {request: {decompress: true}}}
  - name: both
    match: {path_prefix: /bt/}
    upstream: rec
    plugins:
      - {name: body_transform, config: {request: {jq: '{n: .a}'}, response: {jq: '{data: .body_sha}'}}}
      - {name: compression, config: {min_size: 0, request: {decompress: true}}}
`

// e2eCompressionBody is a JSON-like body of n bytes.
func e2eCompressionBody(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"item","ok":true}` + "\n")
	}
	return b.Bytes()[:n]
}

// e2eCompressionBackend answers by path; streams wait on gate between
// their two parts (timed records a 5 s wait without the test's signal).
func e2eCompressionBackend(gate chan struct{}, timed *atomic.Bool) http.HandlerFunc {
	big := e2eCompressionBody(32 << 10)
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		send := func(code int, body []byte) {
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(code)
			if r.Method != http.MethodHead {
				_, _ = w.Write(body)
			}
		}
		wait := func() {
			select {
			case <-gate:
			case <-time.After(5 * time.Second):
				timed.Store(true)
			case <-r.Context().Done():
			}
		}
		switch p := r.URL.Path[strings.Index(r.URL.Path[1:], "/")+1:]; p {
		case "/json":
			h.Set("ETag", `"v1"`)
			h.Set("Accept-Ranges", "bytes")
			h.Set("Vary", "Origin")
			send(200, big)
		case "/small":
			send(200, []byte(`{"small":true}`))
		case "/png":
			h.Set("Content-Type", "image/png")
			send(200, big)
		case "/encoded":
			h.Set("Content-Encoding", "br")
			send(200, big[:4096])
		case "/nocontent":
			w.WriteHeader(204)
		case "/notmodified":
			h.Set("ETag", `"v1"`)
			w.WriteHeader(304)
		case "/partial":
			h.Set("Content-Range", "bytes 0-4095/32768")
			send(206, big[:4096])
		case "/sse", "/chunked":
			first, second := []byte("data: one\n\n"), []byte("data: two\n\n")
			if p == "/sse" {
				h.Set("Content-Type", "text/event-stream")
			} else {
				first, second = big, big
			}
			w.WriteHeader(200)
			_, _ = w.Write(first)
			http.NewResponseController(w).Flush()
			wait()
			_, _ = w.Write(second)
		default:
			http.NotFound(w, r)
		}
	}
}

// e2eDecoder returns a reader of the decoded body for Content-Encoding ce.
func e2eDecoder(t testing.TB, ce string, r io.Reader) io.Reader {
	t.Helper()
	switch ce {
	case "":
		return r
	case "gzip":
		g, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		return g
	case "br":
		return brotli.NewReader(r)
	case "zstd":
		d, err := zstd.NewReader(r)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		t.Cleanup(d.Close)
		return d
	}
	t.Fatalf("unexpected Content-Encoding %q", ce)
	return nil
}

func e2eEncode(ce string, body []byte) []byte {
	var b bytes.Buffer
	var w io.WriteCloser
	switch ce {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "br":
		w = brotli.NewWriter(&b)
	default:
		w, _ = zstd.NewWriter(&b)
	}
	_, _ = w.Write(body)
	_ = w.Close()
	return b.Bytes()
}

func e2eStartCompression(t *testing.T) (*testutil.Gateway, *e2eRecorder, chan struct{}, *atomic.Bool) {
	// Buffered: a backend that gave up waiting never blocks the test.
	gate, timed := make(chan struct{}, 1), new(atomic.Bool)
	be := testutil.Backend(t, e2eCompressionBackend(gate, timed))
	rec := e2eNewRecorder(t, "rec", nil)
	tg := e2eStart(t, e2eCompressionConfig, map[string]string{"BE": be.URL, "REC": rec.URL})
	return tg, rec, gate, timed
}

// e2eCompressedGet sends a request with Accept-Encoding ae (set by hand,
// so the client does not decode) and returns the raw response and body.
func e2eCompressedGet(t *testing.T, method, url, ae string) (*http.Response, []byte) {
	t.Helper()
	req := e2eReq(t, method, url, nil)
	req.Header.Set("Accept-Encoding", ae)
	return e2eDo(t, req)
}

func TestCompressionNegotiation(t *testing.T) {
	t.Parallel()
	tg, _, _, _ := e2eStartCompression(t)
	want := e2eCompressionBody(32 << 10)
	for _, tc := range []struct{ path, ae, want string }{
		{"/c/json", "gzip, deflate, br, zstd", "zstd"},
		{"/c/json", "gzip, br", "br"},
		{"/c/json", "gzip", "gzip"},
		{"/c/json", "gzip;q=0.5, br;q=0.4", "gzip"},
		{"/c/json", "zstd;q=0, br;q=0, gzip", "gzip"},
		{"/c/json", "*", "zstd"},
		{"/c/json", "*;q=0.1, zstd;q=0", "br"},
		{"/c/json", "*;q=0", ""},
		{"/c/json", "identity", ""},
		{"/c/json", "identity;q=1, gzip;q=0.5", ""},
		{"/c/json", "deflate, compress", ""},
		{"/g/json", "zstd, br, gzip", "gzip"},
		{"/g/json", "zstd", ""},
	} {
		resp, body := e2eCompressedGet(t, http.MethodGet, tg.URL+tc.path, tc.ae)
		ce := resp.Header.Get("Content-Encoding")
		if ce != tc.want {
			t.Errorf("%s Accept-Encoding %q: Content-Encoding %q, want %q", tc.path, tc.ae, ce, tc.want)
			continue
		}
		got, err := io.ReadAll(e2eDecoder(t, ce, bytes.NewReader(body)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s %q: decoded %d bytes (err %v), want the backend's %d", tc.path, tc.ae, len(got), err, len(want))
		}
		h := resp.Header
		if vary := h.Values("Vary"); len(vary) != 2 || vary[0] != "Origin" || vary[1] != "Accept-Encoding" {
			t.Errorf("%s %q: Vary %q, want [Origin Accept-Encoding]", tc.path, tc.ae, vary)
		}
		wantTag, wantCL, wantAR := `"v1"`, strconv.Itoa(len(want)), "bytes"
		if ce != "" {
			wantTag, wantCL, wantAR = `W/"v1"`, "", ""
			if len(body) > len(want)/4 {
				t.Errorf("%s: %d bytes compressed to only %d", ce, len(want), len(body))
			}
		}
		if ce != "" && h.Get("Content-Length") != "" {
			// The gateway's server sets the length of a body that was
			// complete before the response was sent: the compressed one.
			wantCL = strconv.Itoa(len(body))
		}
		if h.Get("ETag") != wantTag || h.Get("Content-Length") != wantCL || h.Get("Accept-Ranges") != wantAR {
			t.Errorf("%s %q: ETag %q Content-Length %q Accept-Ranges %q, want %q %q %q", tc.path, tc.ae,
				h.Get("ETag"), h.Get("Content-Length"), h.Get("Accept-Ranges"), wantTag, wantCL, wantAR)
		}
	}
}

func TestCompressionUntouched(t *testing.T) {
	t.Parallel()
	tg, _, _, _ := e2eStartCompression(t)
	for _, tc := range []struct {
		method, path string
		code         int
		vary         bool
	}{
		{http.MethodGet, "/c/small", 200, true},
		{http.MethodGet, "/c/png", 200, false},
		{http.MethodGet, "/c/encoded", 200, false},
		{http.MethodHead, "/c/json", 200, true},
		{http.MethodGet, "/c/nocontent", 204, false},
		{http.MethodGet, "/c/notmodified", 304, true},
		{http.MethodGet, "/c/partial", 206, true},
	} {
		resp, body := e2eCompressedGet(t, tc.method, tg.URL+tc.path, "zstd, br, gzip")
		direct := e2eReq(t, tc.method, tg.URL+tc.path, nil)
		direct.Header.Set("Accept-Encoding", "identity")
		_, plain := e2eDo(t, direct)
		h := resp.Header
		ce := h.Get("Content-Encoding")
		if resp.StatusCode != tc.code || (tc.path != "/c/encoded" && ce != "") || (tc.path == "/c/encoded" && ce != "br") {
			t.Errorf("%s %s: %d Content-Encoding %q", tc.method, tc.path, resp.StatusCode, ce)
		}
		if !bytes.Equal(body, plain) {
			t.Errorf("%s %s: body changed", tc.method, tc.path)
		}
		if tc.code == 200 && tc.path != "/c/png" {
			if cl := h.Get("Content-Length"); cl == "" {
				t.Errorf("%s %s: Content-Length removed", tc.method, tc.path)
			}
		}
		n := 0
		for _, v := range h.Values("Vary") {
			if v == "Accept-Encoding" {
				n++
			}
		}
		if (n == 1) != tc.vary || n > 1 {
			t.Errorf("%s %s: Vary %q, want Accept-Encoding: %v", tc.method, tc.path, h.Values("Vary"), tc.vary)
		}
		if tc.path == "/c/notmodified" && h.Get("ETag") != `W/"v1"` {
			t.Errorf("304: ETag %q, want the weak tag of the compressed 200", h.Get("ETag"))
		}
	}
}

// TestCompressionStreams: an SSE stream and a large chunked response are
// compressed and flushed as they come: the client decodes the first part
// before the backend sends the second.
func TestCompressionStreams(t *testing.T) {
	t.Parallel()
	tg, _, gate, timed := e2eStartCompression(t)
	for _, tc := range []struct{ path, ae string }{
		{"/c/sse", "gzip"}, {"/c/sse", "br"}, {"/c/sse", "zstd"}, {"/c/chunked", "zstd"}, {"/c/chunked", "gzip"},
	} {
		req := e2eReq(t, http.MethodGet, tg.URL+tc.path, nil)
		req.Header.Set("Accept-Encoding", tc.ae)
		resp, err := e2eClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if ce := resp.Header.Get("Content-Encoding"); ce != tc.ae {
			t.Fatalf("%s: Content-Encoding %q", tc.path, ce)
		}
		dec := bufio.NewReader(e2eDecoder(t, tc.ae, resp.Body))
		first := []byte("data: one\n\n")
		if tc.path == "/c/chunked" {
			first = e2eCompressionBody(32 << 10)
		}
		got := make([]byte, len(first))
		if _, err := io.ReadFull(dec, got); err != nil || !bytes.Equal(got, first) {
			t.Fatalf("%s %s: first part %q, %v", tc.path, tc.ae, got[:min(len(got), 40)], err)
		}
		if timed.Load() {
			t.Fatalf("%s %s: the first part was not delivered before the second was sent", tc.path, tc.ae)
		}
		gate <- struct{}{}
		rest, err := io.ReadAll(dec)
		resp.Body.Close()
		if err != nil || !bytes.Equal(rest, first) && !bytes.Equal(rest, []byte("data: two\n\n")) {
			t.Errorf("%s %s: second part %q, %v", tc.path, tc.ae, rest[:min(len(rest), 40)], err)
		}
		if timed.Load() {
			t.Fatalf("%s %s: the first part was not delivered before the second was sent", tc.path, tc.ae)
		}
	}
}

func TestCompressionRequestBodies(t *testing.T) {
	t.Parallel()
	tg, rec, _, _ := e2eStartCompression(t)
	body := e2eCompressionBody(100 << 10)
	sum := sha256.Sum256(body)
	for i, ce := range []string{"gzip", "br", "zstd"} {
		req := e2eReq(t, http.MethodPost, tg.URL+"/in/echo", bytes.NewReader(e2eEncode(ce, body)))
		req.Header.Set("Content-Encoding", ce)
		resp, out := e2eDo(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", ce, resp.StatusCode, out)
		}
		seen := rec.all()[i]
		if seen.BodySHA != hex.EncodeToString(sum[:]) || seen.ContentLength != int64(len(body)) ||
			seen.Header.Get("Content-Encoding") != "" || len(seen.TransferEncoding) != 0 {
			t.Errorf("%s: upstream saw %d bytes (Content-Length %d, Content-Encoding %q, %v)", ce,
				seen.BodyLen, seen.ContentLength, seen.Header.Get("Content-Encoding"), seen.TransferEncoding)
		}
	}
	bomb := e2eEncode("gzip", make([]byte, 10<<20))
	for _, tc := range []struct {
		desc, ce string
		body     []byte
		want     int
	}{
		{"bomb", "gzip", bomb, 413},
		{"corrupt", "gzip", []byte("\x1f\x8b\x08\x00garbage"), 400},
		{"unknown", "compress", []byte("x"), 415},
	} {
		before := rec.count()
		req := e2eReq(t, http.MethodPost, tg.URL+"/in/echo", bytes.NewReader(tc.body))
		req.Header.Set("Content-Encoding", tc.ce)
		resp, out := e2eDo(t, req)
		e2eCheckError(t, resp.StatusCode, resp.Header, out, tc.want)
		if rec.count() != before {
			t.Errorf("%s: the upstream was called", tc.desc)
		}
	}
}

// TestCompressionWithBodyTransform: body_transform reads the decoded
// request body and transforms the identity response, which is then
// compressed.
func TestCompressionWithBodyTransform(t *testing.T) {
	t.Parallel()
	tg, rec, _, _ := e2eStartCompression(t)
	req := e2eReq(t, http.MethodPost, tg.URL+"/bt/x", bytes.NewReader(e2eEncode("gzip", []byte(`{"a": 42}`))))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept-Encoding", "br")
	resp, body := e2eDo(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "br" {
		t.Fatalf("%d Content-Encoding %q: %q", resp.StatusCode, resp.Header.Get("Content-Encoding"), body)
	}
	var out struct{ Data string }
	if err := json.NewDecoder(e2eDecoder(t, "br", bytes.NewReader(body))).Decode(&out); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(`{"n":42}`))
	if seen := rec.all()[0]; seen.BodySHA != hex.EncodeToString(sum[:]) || out.Data != seen.BodySHA {
		t.Errorf("upstream saw body sha %s, response data %q", seen.BodySHA, out.Data)
	}
}
