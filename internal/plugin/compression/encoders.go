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

// Encoder pools, one per encoding and level (zstd: per speed class),
// filled in init and only read afterwards; shared by every route. A pool
// caches stateless encoders, reset before each use.
var (
	gzipPools [gzipMaxLevel + 1]*sync.Pool
	brPools   [brMaxLevel + 1]*sync.Pool
	zstdPools [zstd.SpeedBestCompression + 1]*sync.Pool
)

func init() {
	for level := gzipMinLevel; level <= gzipMaxLevel; level++ {
		gzipPools[level] = &sync.Pool{New: func() any {
			w, _ := gzip.NewWriterLevel(io.Discard, level)
			return w
		}}
	}
	for level := brMinLevel; level <= brMaxLevel; level++ {
		brPools[level] = &sync.Pool{New: func() any { return brotli.NewWriterLevel(io.Discard, level) }}
	}
	for level := zstd.SpeedFastest; level <= zstd.SpeedBestCompression; level++ {
		zstdPools[level] = &sync.Pool{New: func() any {
			w, _ := zstd.NewWriter(io.Discard,
				zstd.WithEncoderLevel(level),
				zstd.WithEncoderConcurrency(1),
				zstd.WithWindowSize(zstdWindow),
				zstd.WithLowerEncoderMem(true))
			return w
		}}
	}
}

// poolFor returns the pool of encoders for enc at a level already checked
// against the encoding's range.
func poolFor(enc, level int) *sync.Pool {
	switch enc {
	case encGzip:
		return gzipPools[level]
	case encBrotli:
		return brPools[level]
	}
	return zstdPools[zstd.EncoderLevelFromZstd(level)]
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
