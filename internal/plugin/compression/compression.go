// Package compression is the `compression` plugin: it compresses responses
// with zstd, brotli or gzip as negotiated from the client's
// Accept-Encoding, and optionally decompresses request bodies sent with a
// Content-Encoding before they reach the upstream.
//
// Phase. It runs in plugin.PhaseCompress, after authentication,
// authorisation, rate limits and fault injection and before
// request_validation and the transform phase (headers, body_transform).
// Requests pass the phases in ascending order and responses come back in
// reverse, so:
//   - a request body is decoded before request_validation and
//     body_transform read it (they see plain JSON), while authentication
//     plugins that sign the body (hmac_auth) see the bytes the client sent;
//   - on the way out body_transform sees the upstream's uncompressed body,
//     and compression is applied last, to what the client receives.
//
// Compression happens per response on the way out: a response cache placed
// before this plugin stores identity bodies and each hit is compressed for
// the client that asked.
package compression

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
)

// Name is the plugin's name in configs.
const Name = "compression"

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseCompress, New: func() plugin.Plugin { return new(Compression) }})
}

// Defaults.
const (
	defaultMinSize    = 1 << 10
	defaultMaxReqSize = 8 << 20
	defaultMaxRatio   = 100
	// ratioFloor is the decoded size below which the ratio guard does
	// not apply: small bodies may compress very well without harm.
	ratioFloor = 64 << 10
)

// defaultTypes are the media types compressed when content_types is unset.
var defaultTypes = []string{
	"text/*", "application/json", "application/javascript", "application/xml",
	"image/svg+xml", "+json", "+xml",
}

// Compression compresses responses and, when enabled, decompresses
// request bodies.
type Compression struct {
	// Encodings are the response encodings offered, in order of
	// preference when the client accepts several at the same q-value:
	// zstd, br, gzip. Default [zstd, br, gzip].
	Encodings []string `yaml:"encodings"`
	// MinSize is the smallest response body compressed, e.g. 1KiB (the
	// default). A response without Content-Length is held back until
	// this many bytes have arrived; one the upstream flushes earlier (a
	// stream) is compressed.
	MinSize *config.Size `yaml:"min_size"`
	// ContentTypes are the compressible media types: "type/subtype",
	// "type/*" or a structured suffix such as "+json". Default text/*,
	// application/json, application/javascript, application/xml,
	// image/svg+xml, +json, +xml.
	ContentTypes []string `yaml:"content_types"`
	// Levels sets the compression level per encoding.
	Levels Levels `yaml:"levels"`
	// Request enables decompression of request bodies.
	Request RequestDecompression `yaml:"request"`

	offered  []int
	types    typeMatcher
	minSize  int
	pools    [numEnc]*sync.Pool
	reqOn    bool
	maxReq   int64
	maxRatio int64
}

// Levels are compression levels per encoding; higher compresses better
// and costs more CPU.
type Levels struct {
	// Gzip is 1–9; default 5.
	Gzip *int `yaml:"gzip"`
	// Br (brotli) is 0–11; default 4.
	Br *int `yaml:"br"`
	// Zstd is 1–22, mapped onto the encoder's speed classes (1 fastest,
	// 2–4 default, 5–8 better, 9+ best); default 3.
	Zstd *int `yaml:"zstd"`
}

// RequestDecompression configures decoding of request bodies sent with
// Content-Encoding gzip, br or zstd. The body is decoded in full before
// the request goes on: the upstream gets it without Content-Encoding and
// with its exact Content-Length. Another encoding is answered 415, a
// corrupt body 400, and a body over max_size or max_ratio 413.
type RequestDecompression struct {
	// Decompress turns request decompression on; off by default.
	Decompress bool `yaml:"decompress"`
	// MaxSize bounds the decoded body, e.g. 8MiB (the default).
	MaxSize config.Size `yaml:"max_size"`
	// MaxRatio bounds decoded bytes per encoded byte (a decompression
	// bomb guard), checked once the decoded body passes 64 KiB; default
	// 100.
	MaxRatio int `yaml:"max_ratio"`
}

// Provision applies defaults, checks the config and prepares the pools
// and the type matcher.
func (c *Compression) Provision(plugin.Context) error {
	var errs []error
	names := c.Encodings
	if names == nil {
		names = []string{"zstd", "br", "gzip"}
	}
	if len(names) == 0 {
		errs = append(errs, errors.New("encodings: list at least one of zstd, br, gzip"))
	}
	for i, n := range names {
		e := encodingByName(n)
		if e == encNone || n != encNames[e] {
			errs = append(errs, fmt.Errorf("encodings[%d]: unknown encoding %q (use zstd, br or gzip)", i, n))
			continue
		}
		for _, o := range c.offered {
			if o == e {
				errs = append(errs, fmt.Errorf("encodings[%d]: %q is listed twice", i, n))
			}
		}
		c.offered = append(c.offered, e)
	}
	c.minSize = defaultMinSize
	if c.MinSize != nil {
		if *c.MinSize < 0 || *c.MinSize > 1<<20 {
			errs = append(errs, errors.New("min_size must be between 0 and 1MiB"))
		}
		c.minSize = int(*c.MinSize)
	}
	errs = append(errs, c.compileTypes())
	errs = append(errs, c.provisionLevels())
	errs = append(errs, c.provisionRequest())
	return errors.Join(errs...)
}

// compileTypes checks content_types and fills the matcher.
func (c *Compression) compileTypes() error {
	types := c.ContentTypes
	if types == nil {
		types = defaultTypes
	}
	if len(types) == 0 {
		return errors.New("content_types: list at least one media type, e.g. application/json")
	}
	var errs []error
	for i, t := range types {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case len(t) > 1 && t[0] == '+' && !strings.ContainsAny(t[1:], "/+*; "):
			c.types.suffixes = append(c.types.suffixes, t)
		case strings.HasSuffix(t, "/*") && len(t) > 2 && !strings.ContainsAny(t[:len(t)-2], "/*; "):
			c.types.prefixes = append(c.types.prefixes, t[:len(t)-1])
		case strings.Count(t, "/") == 1 && !strings.HasPrefix(t, "/") && !strings.HasSuffix(t, "/") && !strings.ContainsAny(t, "*; "):
			c.types.exact = append(c.types.exact, t)
		default:
			errs = append(errs, fmt.Errorf("content_types[%d]: %q is not a media type, a type/* pattern or a +suffix", i, types[i]))
		}
	}
	return errors.Join(errs...)
}

// provisionLevels checks the levels and takes the encoder pools.
func (c *Compression) provisionLevels() error {
	var errs []error
	level := func(name string, v *int, def, lo, hi int) int {
		if v == nil {
			return def
		}
		if *v < lo || *v > hi {
			errs = append(errs, fmt.Errorf("levels.%s must be between %d and %d, got %d", name, lo, hi, *v))
			return def
		}
		return *v
	}
	lv := [numEnc]int{
		encGzip:   level("gzip", c.Levels.Gzip, defaultGzipLevel, gzipMinLevel, gzipMaxLevel),
		encBrotli: level("br", c.Levels.Br, defaultBrLevel, brMinLevel, brMaxLevel),
		encZstd:   level("zstd", c.Levels.Zstd, defaultZstdLevel, zstdMinLevel, zstdMaxLevel),
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, e := range c.offered {
		c.pools[e] = poolFor(e, lv[e])
	}
	return nil
}

// provisionRequest checks the request side.
func (c *Compression) provisionRequest() error {
	r := &c.Request
	c.reqOn = r.Decompress
	c.maxReq, c.maxRatio = defaultMaxReqSize, defaultMaxRatio
	var errs []error
	if r.MaxSize != 0 {
		if r.MaxSize < 0 {
			errs = append(errs, errors.New("request.max_size must be a positive size, e.g. 8MiB"))
		}
		c.maxReq = int64(r.MaxSize)
	}
	if r.MaxRatio != 0 {
		if r.MaxRatio < 1 {
			errs = append(errs, fmt.Errorf("request.max_ratio must be at least 1, got %d", r.MaxRatio))
		}
		c.maxRatio = int64(r.MaxRatio)
	}
	return errors.Join(errs...)
}

// Wrap returns the handler: request decoding, then the compressing writer.
func (c *Compression) Wrap(next http.Handler) http.Handler {
	return &handler{c: c, next: next}
}

type handler struct {
	c    *Compression
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := h.c
	if c.reqOn && len(r.Header["Content-Encoding"]) > 0 && !c.decodeRequest(w, r) {
		return
	}
	if len(r.Header["Upgrade"]) > 0 {
		h.next.ServeHTTP(w, r)
		return
	}
	cw := writers.Get().(*respWriter)
	cw.reset(w, c, r, negotiate(r.Header["Accept-Encoding"], c.offered))
	defer cw.release()
	h.next.ServeHTTP(cw, r)
	cw.finish()
}

// Interface guards.
var (
	_ plugin.Plugin = (*Compression)(nil)
	_ http.Handler  = (*handler)(nil)
)
