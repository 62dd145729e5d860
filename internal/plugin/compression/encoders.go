package compression

import (
	"io"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// encoder is a pooled streaming compressor.
type encoder interface {
	io.Writer
	Flush() error
	Close() error
	Reset(w io.Writer)
}

// Level ranges per encoding (zstd levels are the reference library's,
// mapped onto the encoder's speed classes).
const (
	gzipMinLevel, gzipMaxLevel = 1, 9
	brMinLevel, brMaxLevel     = 0, 11
	zstdMinLevel, zstdMaxLevel = 1, 22
)

// Default levels, chosen for CPU per byte on a gateway: gzip 5 and brotli
// 4 compress within a few percent of their higher levels at a fraction of
// the cost; zstd 3 is the library's default speed class.
const (
	defaultGzipLevel = 5
	defaultBrLevel   = 4
	defaultZstdLevel = 3
)

// zstdWindow bounds the zstd window (and so each pooled encoder's memory
// and the memory a client needs to decode).
const zstdWindow = 1 << 20

// pools holds one encoder pool per encoding and level, shared by every
// route and kept across reloads; created at load time (poolFor), only read
// at request time.
var (
	poolsMu sync.Mutex
	pools   = map[[2]int]*sync.Pool{}
)

// poolFor returns the pool of encoders for enc at level, creating it.
func poolFor(enc, level int) *sync.Pool {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if enc == encZstd {
		// Levels that map to the same speed class share a pool.
		level = int(zstd.EncoderLevelFromZstd(level))
	}
	k := [2]int{enc, level}
	if p := pools[k]; p != nil {
		return p
	}
	var p *sync.Pool
	switch enc {
	case encGzip:
		p = &sync.Pool{New: func() any {
			w, _ := gzip.NewWriterLevel(io.Discard, level)
			return w
		}}
	case encBrotli:
		p = &sync.Pool{New: func() any { return brotli.NewWriterLevel(io.Discard, level) }}
	default:
		p = &sync.Pool{New: func() any {
			w, _ := zstd.NewWriter(io.Discard,
				zstd.WithEncoderLevel(zstd.EncoderLevel(level)),
				zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdWindow),
				zstd.WithLowerEncoderMem(true))
			return w
		}}
	}
	pools[k] = p
	return p
}

// getEncoder takes an encoder from p, reset to write to w.
func getEncoder(p *sync.Pool, w io.Writer) encoder {
	e := p.Get().(encoder)
	e.Reset(w)
	return e
}

// putEncoder returns e to p, dropping its reference to the last writer.
func putEncoder(p *sync.Pool, e encoder) {
	e.Reset(io.Discard)
	p.Put(e)
}
