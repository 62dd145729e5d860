package compression

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

func build(t testing.TB, src string) *Compression {
	t.Helper()
	return plugintest.MustBuild[*Compression](t, Name, src)
}

// jsonBody is a JSON-like body of about n bytes.
func jsonBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[")
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"name":"item ` + strconv.Itoa(i*7919%1000) + `","active":true,"tags":["a","b"]}`)
	}
	b.WriteString("]")
	return b.Bytes()
}

// decodeBody decodes body per Content-Encoding ce with the libraries.
func decodeBody(t testing.TB, ce string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch ce {
	case "", "identity":
		return body
	case "gzip":
		g, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = g
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		d, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer d.Close()
		r = d
	default:
		t.Fatalf("unexpected encoding %q", ce)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", ce, err)
	}
	return out
}

func encodeBody(t testing.TB, ce string, body []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	var w io.WriteCloser
	switch ce {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		w, _ = zstd.NewWriter(&b)
	}
	_, _ = w.Write(body)
	_ = w.Close()
	return b.Bytes()
}

var offeredDefault = []int{encZstd, encBrotli, encGzip}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		ae      string
		offered []int
		want    int
	}{
		{"", offeredDefault, encNone},
		{"gzip", offeredDefault, encGzip},
		{"gzip, deflate, br", offeredDefault, encBrotli},
		{"gzip, deflate, br, zstd", offeredDefault, encZstd},
		{"GZIP", offeredDefault, encGzip},
		{"x-gzip", offeredDefault, encGzip},
		{"gzip;q=1.0, br;q=0.5", offeredDefault, encGzip},
		{"gzip;q=0.5, br;q=0.8, zstd;q=0.1", offeredDefault, encBrotli},
		{"gzip ; q=0.5 , br ; Q=0.5", offeredDefault, encBrotli},
		{"gzip;q=0, br;q=0", offeredDefault, encNone},
		{"*", offeredDefault, encZstd},
		{"*;q=0.5, gzip", offeredDefault, encGzip},
		{"*, zstd;q=0", offeredDefault, encBrotli},
		{"*;q=0", offeredDefault, encNone},
		{"identity", offeredDefault, encNone},
		{"identity, gzip", offeredDefault, encGzip},
		{"identity;q=1, gzip;q=0.5", offeredDefault, encNone},
		{"deflate, compress", offeredDefault, encNone},
		{"gzip;q=2", offeredDefault, encNone},
		{"gzip;q=abc", offeredDefault, encNone},
		{"gzip;q=0.001", offeredDefault, encGzip},
		{"br, gzip", []int{encGzip, encBrotli}, encGzip},
		{"zstd", []int{encGzip}, encNone},
		{",,, ;q=1, gzip", offeredDefault, encGzip},
	}
	for _, tc := range cases {
		if got := negotiate([]string{tc.ae}, tc.offered); got != tc.want {
			t.Errorf("negotiate(%q, %v) = %s, want %s", tc.ae, tc.offered, encNames[got], encNames[tc.want])
		}
	}
	if got := negotiate([]string{"gzip;q=0.2", "br;q=0.3"}, offeredDefault); got != encBrotli {
		t.Errorf("two header lines: %s, want br", encNames[got])
	}
}

// TestNegotiateAllocs: negotiation runs on every request without
// allocating.
func TestNegotiateAllocs(t *testing.T) {
	ae := []string{"gzip, deflate, br, zstd;q=0.9"}
	if n := testing.AllocsPerRun(100, func() { negotiate(ae, offeredDefault) }); n != 0 {
		t.Errorf("negotiate allocates %v times", n)
	}
}

func TestTypeMatcher(t *testing.T) {
	t.Parallel()
	c := build(t, "{}")
	for ct, want := range map[string]bool{
		"text/html; charset=utf-8":       true,
		"TEXT/PLAIN":                     true,
		"application/json":               true,
		"application/problem+json":       true,
		"application/atom+xml;charset=x": true,
		"image/svg+xml":                  true,
		"application/javascript":         true,
		"image/png":                      false,
		"application/octet-stream":       false,
		"application/jsonx":              false,
		"":                               false,
		"text":                           false,
	} {
		if got := c.types.match(ct); got != want {
			t.Errorf("match(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestCompressionConfigErrors(t *testing.T) {
	t.Parallel()
	plugintest.ExpectErrors(t, Name, []plugintest.ConfigError{
		{Desc: "unknown encoding", Config: "{encodings: [gzip, deflate]}", Want: []string{`encodings[1]: unknown encoding "deflate"`}},
		{Desc: "duplicate", Config: "{encodings: [gzip, gzip]}", Want: []string{"listed twice"}},
		{Desc: "empty encodings", Config: "{encodings: []}", Want: []string{"at least one"}},
		{Desc: "gzip level", Config: "{levels: {gzip: 10}}", Want: []string{"levels.gzip must be between 1 and 9, got 10"}},
		{Desc: "br level", Config: "{levels: {br: 12}}", Want: []string{"levels.br must be between 0 and 11"}},
		{Desc: "zstd level", Config: "{levels: {zstd: 0}}", Want: []string{"levels.zstd must be between 1 and 22"}},
		{Desc: "bad type", Config: "{content_types: [json]}", Want: []string{`content_types[0]: "json" is not a media type`}},
		{Desc: "bad wildcard", Config: "{content_types: ['*/json']}", Want: []string{"content_types[0]"}},
		{Desc: "empty types", Config: "{content_types: []}", Want: []string{"content_types: list at least one"}},
		{Desc: "min size", Config: "{min_size: 2MiB}", Want: []string{"min_size must be between 0 and 1MiB"}},
		{Desc: "ratio", Config: "{request: {decompress: true, max_ratio: -1}}", Want: []string{"request.max_ratio must be at least 1"}},
		{Desc: "unknown field", Config: "{levels: {deflate: 3}}", Want: []string{"deflate"}},
	})
}

// serve runs one request through the plugin in front of next.
func serve(t testing.TB, c *Compression, req *http.Request, next http.HandlerFunc) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Wrap(next).ServeHTTP(rec, req)
	return rec
}

func get(ae string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if ae != "" {
		r.Header.Set("Accept-Encoding", ae)
	}
	return r
}

// backend answers body with the given headers (Content-Length set unless
// chunked).
func backend(code int, body []byte, chunked bool, hdr ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(hdr); i += 2 {
			w.Header().Add(hdr[i], hdr[i+1])
		}
		if !chunked {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
}

func TestCompressEachEncoding(t *testing.T) {
	t.Parallel()
	c := build(t, "{}")
	body := jsonBody(16 << 10)
	for _, enc := range []string{"gzip", "br", "zstd"} {
		for _, chunked := range []bool{false, true} {
			rec := serve(t, c, get(enc), backend(200, body, chunked,
				"Content-Type", "application/json", "ETag", `"v1"`, "Accept-Ranges", "bytes", "Vary", "Origin"))
			h := rec.Header()
			if got := h.Get("Content-Encoding"); got != enc {
				t.Fatalf("%s chunked=%v: Content-Encoding %q", enc, chunked, got)
			}
			if got := decodeBody(t, enc, rec.Body.Bytes()); !bytes.Equal(got, body) {
				t.Fatalf("%s: decoded body differs (%d vs %d bytes)", enc, len(got), len(body))
			}
			if rec.Body.Len() >= len(body)/3 {
				t.Errorf("%s: %d bytes compressed to %d", enc, len(body), rec.Body.Len())
			}
			if v := h.Values("Vary"); len(v) != 2 || v[0] != "Origin" || v[1] != "Accept-Encoding" {
				t.Errorf("%s: Vary %q", enc, v)
			}
			if got := h.Get("ETag"); got != `W/"v1"` {
				t.Errorf("%s: ETag %q", enc, got)
			}
			if h.Get("Content-Length") != "" || h.Get("Accept-Ranges") != "" {
				t.Errorf("%s: Content-Length %q Accept-Ranges %q", enc, h.Get("Content-Length"), h.Get("Accept-Ranges"))
			}
		}
	}
}

func TestNotCompressed(t *testing.T) {
	t.Parallel()
	c := build(t, "{}")
	big := jsonBody(4 << 10)
	cases := []struct {
		desc     string
		req      *http.Request
		next     http.HandlerFunc
		wantVary bool
	}{
		{"small", get("gzip"), backend(200, []byte(`{"a":1}`), false, "Content-Type", "application/json"), true},
		{"small chunked", get("gzip"), backend(200, []byte(`{"a":1}`), true, "Content-Type", "application/json"), true},
		{"image", get("gzip"), backend(200, big, false, "Content-Type", "image/png"), false},
		{"no type", get("gzip"), backend(200, big, false), false},
		{"encoded", get("gzip"), backend(200, big, false, "Content-Type", "application/json", "Content-Encoding", "br"), false},
		{"no accept", get(""), backend(200, big, false, "Content-Type", "application/json"), true},
		{"refused", get("gzip;q=0"), backend(200, big, false, "Content-Type", "application/json"), true},
		{"unsupported", get("deflate"), backend(200, big, false, "Content-Type", "application/json"), true},
		{"head", func() *http.Request { r := get("gzip"); r.Method = http.MethodHead; return r }(),
			backend(200, big, false, "Content-Type", "application/json"), true},
		{"204", get("gzip"), backend(204, nil, true, "Content-Type", "application/json"), false},
		{"206", get("gzip"), backend(206, big, false, "Content-Type", "application/json", "Content-Range", "bytes 0-4095/9000"), true},
		{"range", get("gzip"), backend(200, big, false, "Content-Type", "application/json", "Content-Range", "bytes 0-4095/4096"), true},
		{"no-transform", get("gzip"), backend(200, big, false, "Content-Type", "application/json", "Cache-Control", "public, no-transform"), true},
		{"vary present", get("gzip;q=0"), backend(200, big, false, "Content-Type", "application/json", "Vary", "accept-encoding"), true},
	}
	for _, tc := range cases {
		in := httptest.NewRecorder()
		tc.next(in, tc.req)
		rec := serve(t, c, tc.req, tc.next)
		h := rec.Header()
		if ce := h.Get("Content-Encoding"); ce != in.Header().Get("Content-Encoding") {
			t.Errorf("%s: Content-Encoding %q", tc.desc, ce)
		}
		if !bytes.Equal(rec.Body.Bytes(), in.Body.Bytes()) || rec.Code != in.Code {
			t.Errorf("%s: response changed: %d %q", tc.desc, rec.Code, rec.Body.String())
		}
		if cl := in.Header().Get("Content-Length"); cl != "" && h.Get("Content-Length") != cl {
			t.Errorf("%s: Content-Length %q, want %q", tc.desc, h.Get("Content-Length"), cl)
		}
		if h.Get("Etag") != in.Header().Get("Etag") {
			t.Errorf("%s: ETag changed", tc.desc)
		}
		vary := h.Values("Vary")
		n := 0
		for _, v := range vary {
			if strings.EqualFold(v, "Accept-Encoding") {
				n++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[tc.wantVary]; n != want {
			t.Errorf("%s: Vary %q, want Accept-Encoding %d times", tc.desc, vary, want)
		}
	}
}

func TestSmallChunkedGetsLength(t *testing.T) {
	t.Parallel()
	c := build(t, "{}")
	rec := serve(t, c, get("gzip"), backend(200, []byte(`{"a":1}`), true, "Content-Type", "application/json"))
	if got := rec.Header().Get("Content-Length"); got != "7" {
		t.Errorf("Content-Length %q, want 7", got)
	}
}

func TestNotModified(t *testing.T) {
	t.Parallel()
	c := build(t, "{}")
	rec := serve(t, c, get("br"), backend(304, nil, true, "ETag", `"v1"`))
	if rec.Code != 304 || rec.Header().Get("ETag") != `W/"v1"` || rec.Header().Get("Vary") != "Accept-Encoding" || rec.Header().Get("Content-Encoding") != "" {
		t.Errorf("304: %d %v", rec.Code, rec.Header())
	}
	rec = serve(t, c, get(""), backend(304, nil, true, "ETag", `"v1"`))
	if rec.Header().Get("ETag") != `"v1"` {
		t.Errorf("304 without Accept-Encoding: ETag %q", rec.Header().Get("ETag"))
	}
}

// flushRecorder records each Flush with the body bytes seen so far.
type flushRecorder struct {
	*httptest.ResponseRecorder
	flushedAt []int
}

func (f *flushRecorder) Flush() {
	f.flushedAt = append(f.flushedAt, f.Body.Len())
	f.ResponseRecorder.Flush()
}

func TestStreamFlushes(t *testing.T) {
	t.Parallel()
	c := build(t, "{}")
	for _, enc := range []string{"gzip", "br", "zstd"} {
		fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
		events := []string{"data: one\n\n", "data: two\n\n", "data: three\n\n"}
		var seen []string
		c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			for _, ev := range events {
				_, _ = io.WriteString(w, ev)
				w.(http.Flusher).Flush()
				// Everything written so far decodes from what was flushed.
				seen = append(seen, string(decodePrefix(t, enc, fr.Body.Bytes())))
			}
		})).ServeHTTP(fr, get(enc))
		if fr.Header().Get("Content-Encoding") != enc {
			t.Fatalf("%s: not compressed: %v", enc, fr.Header())
		}
		want := ""
		for i, ev := range events {
			want += ev
			if seen[i] != want {
				t.Errorf("%s: after flush %d the client can read %q, want %q", enc, i, seen[i], want)
			}
		}
		if got := decodeBody(t, enc, fr.Body.Bytes()); string(got) != want {
			t.Errorf("%s: full body %q", enc, got)
		}
	}
}

// decodePrefix decodes as much of a possibly unfinished stream as it can.
func decodePrefix(t testing.TB, enc string, b []byte) []byte {
	var r io.Reader
	switch enc {
	case "gzip":
		g, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip header: %v", err)
		}
		r = g
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	default:
		d, _ := zstd.NewReader(bytes.NewReader(b))
		defer d.Close()
		r = d
	}
	var out bytes.Buffer
	_, _ = io.Copy(&out, r)
	return out.Bytes()
}

func TestRequestDecompression(t *testing.T) {
	t.Parallel()
	c := build(t, "{request: {decompress: true}}")
	body := jsonBody(20 << 10)
	for _, enc := range []string{"gzip", "br", "zstd", "x-gzip"} {
		lib := enc
		if enc == "x-gzip" {
			lib = "gzip"
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(encodeBody(t, lib, body)))
		req.Header.Set("Content-Encoding", enc)
		var got []byte
		var cl int64
		var hdr http.Header
		rec := serve(t, c, req, func(w http.ResponseWriter, r *http.Request) {
			got, _ = io.ReadAll(r.Body)
			cl, hdr = r.ContentLength, r.Header
		})
		if rec.Code != 200 || !bytes.Equal(got, body) {
			t.Fatalf("%s: %d, %d bytes", enc, rec.Code, len(got))
		}
		if cl != int64(len(body)) || hdr.Get("Content-Length") != strconv.Itoa(len(body)) || hdr.Get("Content-Encoding") != "" {
			t.Errorf("%s: ContentLength %d, header %v", enc, cl, hdr)
		}
	}
}

func TestRequestDecompressionErrors(t *testing.T) {
	t.Parallel()
	c := build(t, "{request: {decompress: true, max_size: 1MiB}}")
	zeros := make([]byte, 10<<20)
	bomb := encodeBody(t, "gzip", zeros)
	good := encodeBody(t, "gzip", jsonBody(4096))
	ratio := build(t, "{request: {decompress: true, max_size: 64MiB, max_ratio: 10}}")
	cases := []struct {
		desc, ce string
		c        *Compression
		body     []byte
		want     int
	}{
		{"bomb gzip", "gzip", c, bomb, 413},
		{"bomb zstd", "zstd", c, encodeBody(t, "zstd", zeros), 413},
		{"bomb br", "br", c, encodeBody(t, "br", zeros), 413},
		{"ratio", "gzip", ratio, bomb, 413},
		{"corrupt", "gzip", c, []byte("not gzip at all"), 400},
		{"truncated", "gzip", c, good[:len(good)/2], 400},
		{"corrupt zstd", "zstd", c, []byte("\x28\xb5\x2f\xfdgarbage garbage"), 400},
		{"corrupt br", "br", c, []byte("\xff\xff\xff\xffnot brotli"), 400},
		{"unknown", "deflate", c, good, 415},
		{"chained", "gzip, br", c, good, 415},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(tc.body))
		req.Header.Set("Content-Encoding", tc.ce)
		called := false
		rec := serve(t, tc.c, req, func(http.ResponseWriter, *http.Request) { called = true })
		if rec.Code != tc.want || called {
			t.Errorf("%s: %d (upstream called %v), want %d", tc.desc, rec.Code, called, tc.want)
			continue
		}
		var e struct{ Error string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
			t.Errorf("%s: body %q", tc.desc, rec.Body.String())
		}
	}
	// Off by default: the encoded body passes untouched.
	off := build(t, "{}")
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(good))
	req.Header.Set("Content-Encoding", "gzip")
	var got []byte
	serve(t, off, req, func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) })
	if !bytes.Equal(got, good) {
		t.Errorf("decompress off: body changed")
	}
}

func TestRequestBodyLimitError(t *testing.T) {
	t.Parallel()
	c := build(t, "{request: {decompress: true}}")
	enc := encodeBody(t, "gzip", jsonBody(64<<10))
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(enc))
	req.Header.Set("Content-Encoding", "gzip")
	rec := httptest.NewRecorder()
	req.Body = http.MaxBytesReader(rec, req.Body, 100)
	c.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("upstream called") })).ServeHTTP(rec, req)
	if rec.Code != 413 {
		t.Errorf("client body over its limit: %d, want 413", rec.Code)
	}
}

// TestTrailersNotHeld: a response of unknown length that declares
// trailers is compressed from its first byte, its trailer values set after
// the body as the proxy does.
func TestTrailersNotHeld(t *testing.T) {
	t.Parallel()
	c := build(t, "{}")
	rec := serve(t, c, get("gzip"), func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(200)
		_, _ = w.Write([]byte(`{"a":1}`))
		w.Header().Set("X-Checksum", "abc")
	})
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	if res.Header.Get("Content-Encoding") != "gzip" || string(decodeBody(t, "gzip", body)) != `{"a":1}` {
		t.Fatalf("headers %v", res.Header)
	}
	if res.Header.Get("X-Checksum") != "" || res.Trailer.Get("X-Checksum") != "abc" {
		t.Errorf("X-Checksum: header %q trailer %q", res.Header.Get("X-Checksum"), res.Trailer.Get("X-Checksum"))
	}
}

// TestEmptyEncodedRequest: an empty body with a Content-Encoding passes
// as an empty body.
func TestEmptyEncodedRequest(t *testing.T) {
	t.Parallel()
	c := build(t, "{request: {decompress: true}}")
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(""))
	req.Header.Set("Content-Encoding", "gzip")
	var ce string
	rec := serve(t, c, req, func(w http.ResponseWriter, r *http.Request) { ce = r.Header.Get("Content-Encoding") })
	if rec.Code != 200 || ce != "" {
		t.Errorf("%d, Content-Encoding upstream %q", rec.Code, ce)
	}
	for _, enc := range []string{"gzip", "br", "zstd"} {
		req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(""))
		req.ContentLength = -1 // chunked
		req.Header.Set("Content-Encoding", enc)
		var got []byte
		rec = serve(t, c, req, func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) })
		if rec.Code != 200 || len(got) != 0 {
			t.Errorf("%s chunked empty: %d %q", enc, rec.Code, got)
		}
	}
}

// TestEveryLevel: every accepted level of every encoding compresses a
// body that decodes back to the same bytes.
func TestEveryLevel(t *testing.T) {
	t.Parallel()
	body := jsonBody(2 << 10)
	for _, tc := range []struct {
		enc    string
		lo, hi int
	}{{"gzip", 1, 9}, {"br", 0, 11}, {"zstd", 1, 22}} {
		for level := tc.lo; level <= tc.hi; level++ {
			c := build(t, "{encodings: ["+tc.enc+"], levels: {"+tc.enc+": "+strconv.Itoa(level)+"}}")
			rec := serve(t, c, get(tc.enc), backend(200, body, false, "Content-Type", "application/json"))
			if rec.Header().Get("Content-Encoding") != tc.enc || !bytes.Equal(decodeBody(t, tc.enc, rec.Body.Bytes()), body) {
				t.Errorf("%s level %d: round trip failed", tc.enc, level)
			}
		}
	}
}
