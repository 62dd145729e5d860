package rediscache

import (
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/portico-gw/portico/internal/httpcache"
)

// formatV1 is the first byte of every stored entry. A decoder meeting
// another version treats the entry as a miss, so a format change never
// misreads what an older or newer gateway stored.
const formatV1 = 1

// Bounds of the decoder beyond "no length past the end of the input": they
// keep a corrupt or hostile value from making the decoder allocate more
// than a few times the size of its input.
const (
	maxHeaderNames  = 1024
	maxHeaderValues = 1024 // per name
	maxVary         = 256
)

// Flags of the encoding.
const (
	flagNoCache = 1 << iota
	flagMustRevalidate
	flagNoResponseTime
	flagNoRequestTime
)

// ErrCorrupt reports a stored value the decoder refused.
var ErrCorrupt = errors.New("rediscache: stored entry is corrupt or of an unknown format")

// appendEntry encodes e, stored at storedAt, after b. The layout (all
// integers varints, strings length-prefixed):
//
//	version(1 byte) flags(1 byte) meta_length meta body(the rest)
//
// where meta is
//
//	key(32 bytes) status
//	response_time request_time (unix ns; absent when zero, see flags)
//	lifetime initial_age stale_while_revalidate stale_if_error ttl (ns)
//	stored_at (unix ms)
//	header: count, then per name: name, value count, values
//	vary: count, names
//	path
//	tags: count, tags
//
// Keeping the metadata apart from the body lets the decoder copy each
// once: the strings of a decoded entry then share one small copy of the
// metadata and never keep the reply (and a second copy of the body)
// alive.
func appendEntry(b []byte, e *httpcache.Entry, storedAt time.Time) []byte {
	var flags byte
	m := &e.Meta
	if m.NoCache {
		flags |= flagNoCache
	}
	if m.MustRevalidate {
		flags |= flagMustRevalidate
	}
	if m.ResponseTime.IsZero() {
		flags |= flagNoResponseTime
	}
	if m.RequestTime.IsZero() {
		flags |= flagNoRequestTime
	}
	b = append(b, formatV1, flags)
	meta := appendMeta(make([]byte, 0, 256), e, storedAt)
	b = binary.AppendUvarint(b, uint64(len(meta)))
	b = append(b, meta...)
	return append(b, e.Body...)
}

func appendMeta(b []byte, e *httpcache.Entry, storedAt time.Time) []byte {
	m := &e.Meta
	b = append(b, e.Key[:]...)
	b = binary.AppendVarint(b, int64(e.Status))
	if !m.ResponseTime.IsZero() {
		b = binary.AppendVarint(b, m.ResponseTime.UnixNano())
	}
	if !m.RequestTime.IsZero() {
		b = binary.AppendVarint(b, m.RequestTime.UnixNano())
	}
	for _, d := range [...]time.Duration{m.Lifetime, m.InitialAge, m.StaleWhileRevalidate, m.StaleIfError, e.TTL} {
		b = binary.AppendVarint(b, int64(d))
	}
	b = binary.AppendVarint(b, storedAt.UnixMilli())
	b = binary.AppendUvarint(b, uint64(len(e.Header)))
	for k, vs := range e.Header {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vs)))
		for _, v := range vs {
			b = appendString(b, v)
		}
	}
	b = appendStrings(b, e.Vary)
	b = appendString(b, e.Path)
	return appendStrings(b, e.Tags)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

// decoder reads an entry's metadata from a string, so that header names,
// values, Vary names, the path and the tags are substrings of it (no
// allocation each). The first error sticks; every read after it returns
// zero values.
type decoder struct {
	s   string
	off int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.off = len(d.s)
}

func (d *decoder) byte() byte {
	if d.off >= len(d.s) {
		d.fail()
		return 0
	}
	c := d.s[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c := d.byte()
		if d.err != nil {
			return 0
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break // overflow
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.fail()
	return 0
}

func (d *decoder) varint() int64 {
	ux := d.uvarint()
	x := int64(ux >> 1)
	if ux&1 != 0 {
		x = ^x
	}
	return x
}

// count reads a count of items, each at least one byte long, refusing one
// above limit or above the bytes left.
func (d *decoder) count(limit int) int {
	n := d.uvarint()
	if n > uint64(limit) || n > uint64(len(d.s)-d.off) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.s)-d.off) {
		d.fail()
		return ""
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s
}

func (d *decoder) strings(limit int) []string {
	n := d.count(limit)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = d.string()
	}
	return out
}

func (d *decoder) time(absent bool) time.Time {
	if absent {
		return time.Time{}
	}
	return time.Unix(0, d.varint())
}

// decodeEntry decodes an entry appendEntry encoded. It returns the entry
// and the time it was stored, or ErrCorrupt; it never panics, whatever s
// holds.
func decodeEntry(s string) (*httpcache.Entry, time.Time, error) {
	d := &decoder{s: s}
	if d.byte() != formatV1 {
		return nil, time.Time{}, ErrCorrupt
	}
	flags := d.byte()
	n := d.uvarint()
	if d.err != nil || n > uint64(len(s)-d.off) || n < uint64(len(httpcache.Key{})) {
		return nil, time.Time{}, ErrCorrupt
	}
	end := d.off + int(n)
	e := &httpcache.Entry{}
	if end < len(s) {
		e.Body = []byte(s[end:])
	}
	// The metadata is copied, so the entry keeps neither s nor the body
	// bytes in it alive.
	d = &decoder{s: strings.Clone(s[d.off:end])}
	return d.meta(e, flags)
}

// meta decodes the metadata into e.
func (d *decoder) meta(e *httpcache.Entry, flags byte) (*httpcache.Entry, time.Time, error) {
	d.off += copy(e.Key[:], d.s[d.off:])
	status := d.varint()
	if status < 0 || status > 999 {
		d.fail()
	}
	e.Status = int(status)
	m := &e.Meta
	m.NoCache = flags&flagNoCache != 0
	m.MustRevalidate = flags&flagMustRevalidate != 0
	m.ResponseTime = d.time(flags&flagNoResponseTime != 0)
	m.RequestTime = d.time(flags&flagNoRequestTime != 0)
	m.Lifetime = time.Duration(d.varint())
	m.InitialAge = time.Duration(d.varint())
	m.StaleWhileRevalidate = time.Duration(d.varint())
	m.StaleIfError = time.Duration(d.varint())
	e.TTL = time.Duration(d.varint())
	storedAt := time.UnixMilli(d.varint())
	if n := d.count(maxHeaderNames); n > 0 {
		e.Header = make(http.Header, n)
		// The values of all names share one backing array sized for one
		// value per name (the usual case); a name with more takes a new
		// one. Each name's slice is capped so an append cannot reach
		// another's values.
		backing := make([]string, n)
		for range n {
			k := d.string()
			c := d.count(maxHeaderValues)
			if c > len(backing) {
				backing = make([]string, max(c, n))
			}
			vs := backing[:c:c]
			backing = backing[c:]
			for i := range vs {
				vs[i] = d.string()
			}
			e.Header[k] = vs
		}
	}
	e.Vary = d.strings(maxVary)
	e.Path = d.string()
	e.Tags = d.strings(httpcache.MaxTags)
	if d.err != nil || d.off != len(d.s) {
		return nil, time.Time{}, ErrCorrupt
	}
	return e, storedAt, nil
}
