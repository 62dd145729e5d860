package httpcache

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"
)

// Entry is one stored response. A stored Entry is shared by every request
// that reads it: never modify one after Set; build a new one instead.
type Entry struct {
	Key    Key
	Status int
	Header http.Header // from StoredHeader
	Body   []byte
	Meta   Meta
	// Vary holds the normalised names of the response's Vary (VaryNames).
	// A response that varies is stored under VariantKey(primary,
	// SecondaryKey(Vary, request header)); the plugin keeps an Entry with
	// only Vary set under the primary key to find the names on lookup.
	Vary []string
	// Path is the request's URL (URL: host, normalised path and canonical
	// query, "api.example.com/v1/items?page=2"), matched by Purge.URL and
	// Purge.Prefix.
	Path string
	// Tags are matched by Purge.Tag (surrogate keys); at most MaxTags,
	// each at most MaxTagLen bytes.
	Tags []string
	// TTL is how long the store keeps the entry: its freshness lifetime
	// plus the stale windows the cache still uses it in (stale-while-
	// revalidate, stale-if-error, revalidation with its validators). The
	// store drops it afterwards; freshness itself is Decide's business.
	TTL time.Duration
}

// Limits on the tag index, so that purge-by-tag memory is bounded by the
// number of entries.
const (
	MaxTags   = 16
	MaxTagLen = 256
)

// entryOverhead approximates the fixed memory of an Entry beyond its
// variable parts (struct, map and slice headers).
const entryOverhead = 256

// Size is the entry's cost in bytes for the store's budget: body, header
// names and values, path, tags and a fixed overhead.
func (e *Entry) Size() int {
	n := entryOverhead + len(e.Body) + len(e.Path)
	for k, vs := range e.Header {
		n += len(k) + 16
		for _, v := range vs {
			n += len(v) + 16
		}
	}
	for _, t := range e.Tags {
		n += len(t) + 16
	}
	for _, v := range e.Vary {
		n += len(v) + 16
	}
	return n
}

// VariantKey is the key of the variant of a response stored under primary
// for the secondary key (SecondaryKey) of a request.
func VariantKey(primary Key, secondary string) Key {
	if secondary == "" {
		return primary
	}
	h := sha256.New()
	h.Write(primary[:])
	h.Write([]byte(secondary))
	var k Key
	h.Sum(k[:0])
	return k
}

// Purge selects what Store.Purge removes: everything, the entries whose
// Path is URL (every method, variant and consumer of one URL), those whose
// Path starts with Prefix, or those tagged Tag. Exactly one must be set.
type Purge struct {
	All    bool
	URL    string
	Prefix string
	Tag    string
}

// Errors of Store implementations.
var (
	ErrTooLarge = errors.New("httpcache: entry larger than the store's entry size limit")
	ErrBadTags  = errors.New("httpcache: too many tags or a tag too long")
	ErrBadPurge = errors.New("httpcache: purge needs exactly one of all, url, prefix or tag")
	ErrNoTTL    = errors.New("httpcache: entry without a positive TTL")
)

// Store is where a cache keeps entries. Implementations are safe for
// concurrent use. Get returns (nil, nil) on a miss; the *Entry it returns is
// shared and read-only.
type Store interface {
	Get(ctx context.Context, key Key) (*Entry, error)
	Set(ctx context.Context, e *Entry) error
	Delete(ctx context.Context, key Key) error
	// Purge removes the selected entries and returns how many.
	Purge(ctx context.Context, p Purge) (int, error)
}

func (p Purge) valid() bool {
	n := 0
	if p.All {
		n++
	}
	if p.Prefix != "" {
		n++
	}
	if p.URL != "" {
		n++
	}
	if p.Tag != "" {
		n++
	}
	return n == 1
}

func validTags(tags []string) bool {
	if len(tags) > MaxTags {
		return false
	}
	for _, t := range tags {
		if t == "" || len(t) > MaxTagLen {
			return false
		}
	}
	return true
}
