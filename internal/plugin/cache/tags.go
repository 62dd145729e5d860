package cache

import (
	"errors"
	"fmt"
	"net/http"
	"net/textproto"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/httpx"
	"github.com/portico-gw/portico/internal/plugin"
)

// Tags configures the tags (surrogate keys) stored responses carry, read
// from upstream response headers when a response is stored. The admin API
// purges every stored response with a tag: POST /cache/purge
// {"tag": "product-42"}.
type Tags struct {
	// Headers lists the response headers tags are read from; values are
	// split on commas and whitespace ("Cache-Tag: product-42, catalog").
	// A response keeps at most 16 tags of at most 256 bytes each; further
	// or longer tags are dropped (the response is still stored). Default
	// [Cache-Tag, Surrogate-Key]; [] reads no tags.
	Headers []string `yaml:"headers"`
	// Strip removes those headers from every response clients receive,
	// hit or miss (a protocol upgrade's 101 excepted): tags are for the
	// cache, not for clients. Default true.
	Strip *bool `yaml:"strip"`

	names []string // canonical header names
	strip bool     // strip and at least one name
}

// defaultTagHeaders are read when tags.headers is not set.
var defaultTagHeaders = []string{"Cache-Tag", "Surrogate-Key"}

// provisionTags checks and compiles the tags setting and resolves the
// purge counters.
func (c *Cache) provisionTags(ctx plugin.Context) error {
	t := &c.Tags
	headers := t.Headers
	if headers == nil {
		headers = defaultTagHeaders
	}
	var errs []error
	t.names = t.names[:0]
	for i, h := range headers {
		if !httpx.ValidToken(h) {
			errs = append(errs, fmt.Errorf("tags.headers[%d] %q is not a valid header name, e.g. Cache-Tag", i, h))
			continue
		}
		if n := textproto.CanonicalMIMEHeaderKey(h); !containsString(t.names, n) {
			t.names = append(t.names, n)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	t.strip = (t.Strip == nil || *t.Strip) && len(t.names) > 0
	c.resolvePurgeCounters(ctx.Stats(), ctx.Route())
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parse returns the tags of a stored response header: the values of the
// tag headers split on commas and whitespace, in order and without
// duplicates. At most httpcache.MaxTags are kept; a tag longer than
// httpcache.MaxTagLen or with a control byte is dropped. The tags share
// the header's memory; nil when there are none.
func (t *Tags) parse(h http.Header) []string {
	var out []string
	for _, name := range t.names {
		for _, v := range h[name] {
			for v != "" {
				i := 0
				for i < len(v) && tagSep(v[i]) {
					i++
				}
				v = v[i:]
				j := 0
				for j < len(v) && !tagSep(v[j]) {
					j++
				}
				tag := v[:j]
				v = v[j:]
				if tag == "" || len(tag) > httpcache.MaxTagLen || !visible(tag) || containsString(out, tag) {
					continue
				}
				if len(out) == httpcache.MaxTags {
					return out
				}
				out = append(out, tag)
			}
		}
	}
	return out
}

// tagSep reports the bytes tags are separated by: comma and whitespace.
func tagSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// visible reports whether s has no control byte.
func visible(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// stripFrom removes the tag headers from a client's response header when
// tags.strip is on.
func (t *Tags) stripFrom(h http.Header) {
	if !t.strip {
		return
	}
	for _, n := range t.names {
		delete(h, n)
	}
}

// stripWriter returns w, or when tags.strip is on a writer that removes
// the tag headers before the response header is sent: for the responses
// that pass the cache by (bypass, unsafe methods).
func (c *Cache) stripWriter(w http.ResponseWriter) http.ResponseWriter {
	if !c.Tags.strip {
		return w
	}
	return &tagStripWriter{ResponseWriter: w, t: &c.Tags}
}

// tagStripWriter removes the tag headers at the first WriteHeader or
// Write.
type tagStripWriter struct {
	http.ResponseWriter
	t    *Tags
	done bool
}

func (sw *tagStripWriter) WriteHeader(code int) {
	if !sw.done {
		sw.t.stripFrom(sw.ResponseWriter.Header())
		sw.done = code >= 200
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *tagStripWriter) Write(p []byte) (int, error) {
	if !sw.done {
		sw.t.stripFrom(sw.ResponseWriter.Header())
		sw.done = true
	}
	return sw.ResponseWriter.Write(p)
}

// Flush passes a flush on (the header goes with it).
func (sw *tagStripWriter) Flush() {
	if !sw.done {
		sw.t.stripFrom(sw.ResponseWriter.Header())
		sw.done = true
	}
	_ = http.NewResponseController(sw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the client's writer (Hijack
// for upgrades, deadlines). The 101 of an upgrade is written to the
// hijacked connection, past this writer: it keeps the upstream's header.
func (sw *tagStripWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// Interface guards.
var (
	_ http.Flusher                              = (*tagStripWriter)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*tagStripWriter)(nil)
)
