package compression

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/portico-gw/portico/internal/request"
)

// Request messages (the client sees them in the gateway's JSON error).
const (
	msgReqUnsupported = "unsupported request Content-Encoding (use gzip, br or zstd)"
	msgReqCorrupt     = "request body could not be decompressed"
	msgReqTooLarge    = "decompressed request body too large"
)

var errTooLarge = errors.New(msgReqTooLarge)

// Decoder pools, shared by every route.
var (
	gzipReaders = sync.Pool{}
	brReaders   = sync.Pool{}
	zstdReaders = sync.Pool{New: func() any {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(8<<20))
		return d
	}}
)

// countingReader counts the encoded bytes read and keeps the client's
// read error, to tell a failed client body (413, 408) from a corrupt one.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// decodeRequest replaces a request body sent with Content-Encoding gzip,
// br or zstd by its decoded bytes, or answers the error; it reports
// whether the request goes on. identity passes unchanged.
func (c *Compression) decodeRequest(w http.ResponseWriter, r *http.Request) bool {
	ce := r.Header["Content-Encoding"]
	if len(ce) == 1 && equalFold(trim(ce[0]), "identity") {
		delete(r.Header, "Content-Encoding")
		return true
	}
	enc := encNone
	if len(ce) == 1 {
		enc = encodingByName(trim(ce[0]))
	}
	if enc == encNone {
		request.WriteError(w, r, http.StatusUnsupportedMediaType, msgReqUnsupported)
		return false
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		delete(r.Header, "Content-Encoding")
		return true
	}
	src := &countingReader{r: r.Body}
	body, err := c.decode(enc, src)
	if err != nil && src.n == 0 && src.err == nil {
		// An empty body (sent chunked) is an empty body in any encoding.
		body, err = nil, nil
	}
	if err != nil {
		switch {
		case src.err != nil:
			status, msg := request.BodyReadStatus(src.err)
			request.WriteError(w, r, status, msg)
		case errors.Is(err, errTooLarge):
			request.WriteError(w, r, http.StatusRequestEntityTooLarge, msgReqTooLarge)
		default:
			request.WriteError(w, r, http.StatusBadRequest, msgReqCorrupt)
		}
		return false
	}
	delete(r.Header, "Content-Encoding")
	for _, k := range digestHeaders {
		delete(r.Header, k)
	}
	r.Header["Content-Length"] = []string{strconv.Itoa(len(body))}
	r.ContentLength = int64(len(body))
	r.TransferEncoding = nil
	if len(body) == 0 {
		r.Body = http.NoBody
	} else {
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	return true
}

// decode reads the whole decoded body from src, enforcing max_size and
// max_ratio.
func (c *Compression) decode(enc int, src *countingReader) ([]byte, error) {
	var zr io.Reader
	switch enc {
	case encGzip:
		g, _ := gzipReaders.Get().(*gzip.Reader)
		if g == nil {
			g = new(gzip.Reader)
		}
		if err := g.Reset(src); err != nil {
			gzipReaders.Put(g)
			return nil, err
		}
		defer gzipReaders.Put(g)
		zr = g
	case encBrotli:
		b, _ := brReaders.Get().(*brotli.Reader)
		if b == nil {
			b = brotli.NewReader(src)
		} else if err := b.Reset(src); err != nil {
			return nil, err
		}
		defer brReaders.Put(b)
		zr = b
	default:
		d := zstdReaders.Get().(*zstd.Decoder)
		if err := d.Reset(src); err != nil {
			zstdReaders.Put(d)
			return nil, err
		}
		defer func() { _ = d.Reset(nil); zstdReaders.Put(d) }()
		zr = d
	}
	return c.readLimited(zr, src)
}

// readLimited reads zr to its end, failing with errTooLarge past max_size
// or, above ratioFloor decoded bytes, past max_ratio times the encoded
// bytes read so far.
func (c *Compression) readLimited(zr io.Reader, src *countingReader) ([]byte, error) {
	out := make([]byte, 0, 4096)
	for {
		if len(out) == cap(out) {
			out = append(out, 0)[:len(out)]
		}
		room := min(int64(cap(out)-len(out)), c.maxReq+1-int64(len(out)))
		n, err := zr.Read(out[len(out) : len(out)+int(room)])
		out = out[:len(out)+n]
		if d := int64(len(out)); d > c.maxReq || (d > ratioFloor && d > c.maxRatio*src.n) {
			return nil, errTooLarge
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
