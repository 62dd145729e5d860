package cache

import (
	"net/http"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/portico-gw/portico/internal/httpcache"
)

// Uncacheable keys ("hit-for-miss"): when the response fetched for a miss
// was not stored (no-store, private, Set-Cookie, too large…), the key is
// remembered for passTTL, and misses for it skip request coalescing for
// that long. Without this, concurrent requests for a URL whose answers are
// never stored would each wait for another's upstream response only to go
// upstream themselves afterwards, doubling their latency. A response that
// is stored again ends the mark at once.
const (
	passTTL  = 10 * time.Second
	maxPKeys = 10000
)

func newPassMarks() (*otter.Cache[httpcache.Key, struct{}], error) {
	return otter.New(&otter.Options[httpcache.Key, struct{}]{
		MaximumSize:      maxPKeys,
		ExpiryCalculator: otter.ExpiryWriting[httpcache.Key, struct{}](passTTL),
	})
}

// uncacheable reports whether key's last fetched response was not stored
// less than passTTL ago.
func (c *Cache) uncacheable(key httpcache.Key) bool {
	_, ok := c.passes.GetIfPresent(key)
	return ok
}

// fetchUncoalesced forwards a miss for a key marked uncacheable, on its
// own, and stores its response when it has become storable.
func (c *Cache) fetchUncoalesced(w http.ResponseWriter, r *http.Request, next http.Handler, key, primary httpcache.Key) {
	rec := c.newRecorder(w, r, labelMiss)
	next.ServeHTTP(rec, r)
	c.noteStored(key, c.finishStore(rec, primary))
}

// noteStored marks key uncacheable when its fetched response was not
// stored (e nil), and clears the mark when it was.
func (c *Cache) noteStored(key httpcache.Key, e *httpcache.Entry) {
	if e == nil {
		c.passes.Set(key, struct{}{})
		return
	}
	c.passes.Invalidate(key)
}
