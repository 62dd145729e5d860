package cache

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/reqkey"
	"github.com/portico-gw/portico/internal/request"
)

// Values of the status header.
const (
	labelHit         = "HIT"
	labelMiss        = "MISS"
	labelStale       = "STALE"
	labelRevalidated = "REVALIDATED"
	labelBypass      = "BYPASS"
)

// Bounds of stored entries' lifetimes in the store.
const (
	// validatorHold keeps a response with a validator this long after its
	// freshness (and stale windows) ended, to be revalidated.
	validatorHold = 10 * time.Minute
	// markerTTL is how long the entry that records a response's Vary names
	// under the primary key is kept.
	markerTTL = 24 * time.Hour
	// backgroundTimeout bounds a background revalidation on a route
	// without a timeout.
	backgroundTimeout = 30 * time.Second
)

// Wrap returns the caching handler.
func (c *Cache) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.serve(w, r, next)
	})
}

func (c *Cache) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.forwardUnsafe(w, r, next)
		return
	}
	reqCC := httpcache.RequestCacheControl(r.Header)
	if c.bypass(r, &reqCC) {
		c.passThrough(w, r, next)
		return
	}
	now := c.now()
	primary := c.primaryKey(r)
	key, e := c.lookup(r, primary)
	var m *httpcache.Meta
	if e != nil {
		m = &e.Meta
	}
	if e == nil && r.Method == http.MethodHead && c.headFromGET(w, r, &reqCC, now) {
		return
	}
	d := httpcache.Decide(m, &reqCC, now)
	if _, ranged := r.Header["Range"]; ranged && !servesRange(d, e) {
		c.passThrough(w, r, next)
		return
	}
	switch d {
	case httpcache.Fresh, httpcache.StaleOK:
		c.serveUsable(w, r, e, d, now)
	case httpcache.StaleRevalidate:
		c.c.stale.Inc()
		c.revalidateInBackground(r, next, key, primary, e)
		c.serveEntry(w, r, e, now, labelStale)
	case httpcache.Revalidate:
		c.revalidateCoalesced(w, r, next, key, primary, e, &reqCC, now)
	case httpcache.GatewayTimeout:
		w.Header().Set(c.header, labelMiss)
		request.WriteError(w, r, http.StatusGatewayTimeout, "cache: only-if-cached and no usable stored response")
	default:
		c.miss(w, r, next, key, primary, &reqCC)
	}
}

// passThrough forwards a request that skips the cache (BYPASS).
func (c *Cache) passThrough(w http.ResponseWriter, r *http.Request, next http.Handler) {
	c.c.bypass.Inc()
	w.Header().Set(c.header, labelBypass)
	next.ServeHTTP(c.stripWriter(w), r)
}

// bypass reports whether a GET or HEAD request skips the cache: a protocol
// upgrade, a request with Authorization unless allow_authorized, and
// request no-store. (A Range request is answered from a stored complete
// response when one is usable without going upstream, and otherwise
// skips the cache too: see servesRange.)
func (c *Cache) bypass(r *http.Request, reqCC *httpcache.CacheControl) bool {
	if reqCC.NoStore {
		return true
	}
	if _, ok := r.Header["Upgrade"]; ok {
		return true
	}
	_, auth := r.Header["Authorization"]
	return auth && !c.AllowAuthorized
}

// primaryKey is r's key: the request, the key.extra parts and, unless
// consumers share responses, the authenticated consumer's ID. Parts are
// length-prefixed and their layout is fixed per config (extra first when
// configured), so a consumer's key never equals another's or that of a
// request without a consumer.
func (c *Cache) primaryKey(r *http.Request) httpcache.Key {
	var stack [2]string
	extra := stack[:0]
	rec := request.RecordOf(r)
	if c.hasExtra {
		extra = append(extra, c.extra.Render(r, rec))
	}
	if !c.ShareBetweenConsumers {
		if id, ok := reqkey.Consumer(rec); ok {
			extra = append(extra, id)
		}
	}
	return httpcache.NewKey(r, &c.keyOpts, extra)
}

// lookup finds the stored response for r. A response that varies is kept
// under its variant key; the primary key then holds a marker entry (Status
// 0) with the Vary names, and variants stored before the marker was (an
// invalidation removed the marker) are ignored.
func (c *Cache) lookup(r *http.Request, primary httpcache.Key) (httpcache.Key, *httpcache.Entry) {
	ctx := r.Context()
	e, _ := c.store.Get(ctx, primary)
	if e == nil || e.Status != 0 {
		return primary, e
	}
	vk := httpcache.VariantKey(primary, httpcache.SecondaryKey(e.Vary, r.Header))
	v, _ := c.store.Get(ctx, vk)
	if v == nil || v.Meta.RequestTime.Before(e.Meta.RequestTime) {
		return vk, nil
	}
	return vk, v
}

// serveEntry answers from the stored entry e: 304 for a client's
// conditional request it satisfies, else the stored response with Age.
func (c *Cache) serveEntry(w http.ResponseWriter, r *http.Request, e *httpcache.Entry, now time.Time, label string) {
	h := w.Header()
	if httpcache.NotModified(r, e.Header) {
		httpcache.NotModifiedHeader(h, e.Header)
		h["Age"] = []string{httpcache.AgeValue(&e.Meta, now)}
		h.Set(c.header, label)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	// A GET entry's Content-Length is its body's (finishStore); a HEAD
	// entry keeps the one the upstream sent.
	httpcache.ServeHeader(h, e, now)
	c.Tags.stripFrom(h)
	h.Set(c.header, label)
	if _, ranged := r.Header["Range"]; ranged && e.Status == http.StatusOK {
		serveRange(w, r, e)
		return
	}
	w.WriteHeader(e.Status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(e.Body)
	}
}

// headFromGET answers a HEAD request nothing is stored for from the
// stored response to a GET of the same URL when that one is usable
// without the upstream (RFC 9111 §4: a stored GET response can satisfy
// HEAD); it reports whether it answered.
func (c *Cache) headFromGET(w http.ResponseWriter, r *http.Request, reqCC *httpcache.CacheControl, now time.Time) bool {
	g := *r
	g.Method = http.MethodGet
	_, e := c.lookup(&g, c.primaryKey(&g))
	if e == nil {
		return false
	}
	d := httpcache.Decide(&e.Meta, reqCC, now)
	if d != httpcache.Fresh && d != httpcache.StaleOK {
		return false
	}
	c.serveUsable(w, r, e, d, now)
	return true
}

// serveUsable answers from e, which Decide found Fresh (HIT) or StaleOK
// (STALE: the request's max-stale allows it).
func (c *Cache) serveUsable(w http.ResponseWriter, r *http.Request, e *httpcache.Entry, d httpcache.Decision, now time.Time) {
	if d == httpcache.Fresh {
		c.c.hit.Inc()
		c.serveEntry(w, r, e, now, labelHit)
		return
	}
	c.c.stale.Inc()
	c.serveEntry(w, r, e, now, labelStale)
}

// servesRange reports whether a Range request is answered from the store:
// a complete 200 response usable without the upstream (fresh, or stale
// within the request's max-stale). Partial responses are never stored, so
// every other Range request goes upstream untouched.
func servesRange(d httpcache.Decision, e *httpcache.Entry) bool {
	return (d == httpcache.Fresh || d == httpcache.StaleOK) && e != nil && e.Status == http.StatusOK
}

// serveRange answers a Range request from the stored complete response
// with net/http's range handling (206 with Content-Range, multipart for
// several ranges, 416, If-Range against the stored ETag or Last-Modified),
// after the stored header is in place.
func serveRange(w http.ResponseWriter, r *http.Request, e *httpcache.Entry) {
	h := w.Header()
	delete(h, "Content-Length") // ServeContent sets the part's
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil // never sniffed: the upstream sent none
	}
	modtime, _ := http.ParseTime(h.Get("Last-Modified"))
	http.ServeContent(w, r, "", modtime, bytes.NewReader(e.Body))
}

// miss forwards a request nothing usable is stored for. Concurrent misses
// for one key are coalesced: one goes upstream, the others get its
// response when it was stored and is usable for them, else go upstream
// themselves; a key whose last response was not stored is not coalesced
// (see pass.go).
func (c *Cache) miss(w http.ResponseWriter, r *http.Request, next http.Handler, key, primary httpcache.Key, reqCC *httpcache.CacheControl) {
	c.c.miss.Inc()
	if c.uncacheable(key) {
		c.fetchUncoalesced(w, r, next, key, primary)
		return
	}
	fetched := false
	e, leader, err := c.group.Do(r.Context(), key, func() (*httpcache.Entry, error) {
		// A request that missed just before another's response was
		// stored finds it here instead of going upstream again.
		if _, e := c.lookup(r, primary); e != nil {
			return e, nil
		}
		fetched = true
		rec := c.newRecorder(w, r, labelMiss)
		next.ServeHTTP(rec, r)
		e := c.finishStore(rec, primary)
		c.noteStored(key, e)
		return e, nil
	})
	if fetched {
		return
	}
	if err == nil && e != nil && c.usable(r, primary, e, reqCC, leader) {
		c.c.coalesced.Inc()
		c.serveEntry(w, r, e, c.now(), labelHit)
		return
	}
	rec := c.newRecorder(w, r, labelMiss)
	next.ServeHTTP(rec, r)
	c.finishStore(rec, primary)
}

// usable reports whether the entry another request fetched (or stored just
// before) answers r: the same variant, and fresh for r's directives.
func (c *Cache) usable(r *http.Request, primary httpcache.Key, e *httpcache.Entry, reqCC *httpcache.CacheControl, leader bool) bool {
	if e.Status == 0 {
		return false
	}
	if !leader && e.Key != httpcache.VariantKey(primary, httpcache.SecondaryKey(e.Vary, r.Header)) {
		return false
	}
	return httpcache.Decide(&e.Meta, reqCC, c.now()) == httpcache.Fresh
}

// revalResult is what a revalidation left: the entry now stored (refreshed
// by a 304, or a new response), or stale when the stale entry was served
// because the upstream failed.
type revalResult struct {
	e           *httpcache.Entry
	revalidated bool
	stale       bool
}

// revalidateCoalesced runs one revalidation per key at a time: requests
// that find the same entry stale while one is under way wait for it (as
// concurrent misses do) and answer from its result, or revalidate
// themselves when it does not serve them.
func (c *Cache) revalidateCoalesced(w http.ResponseWriter, r *http.Request, next http.Handler, key, primary httpcache.Key, e *httpcache.Entry, reqCC *httpcache.CacheControl, now time.Time) {
	ran := false
	res, _, err := c.rgroup.Do(r.Context(), key, func() (revalResult, error) {
		ran = true
		return c.revalidate(w, r, next, primary, e, reqCC, now), nil
	})
	if ran {
		return
	}
	if err == nil {
		now = c.now()
		if res.e != nil && c.usable(r, primary, res.e, reqCC, false) {
			c.c.coalesced.Inc()
			label := labelHit
			if res.revalidated {
				label = labelRevalidated
			}
			c.serveEntry(w, r, res.e, now, label)
			return
		}
		if res.stale && e.Meta.StaleIfErrorAllowed(reqCC, now) {
			c.c.stale.Inc()
			c.serveEntry(w, r, e, now, labelStale)
			return
		}
	}
	c.revalidate(w, r, next, primary, e, reqCC, now)
}

// revalidate sends a conditional request for the stale entry e. A 304
// that selects it refreshes it (REVALIDATED); an error status (or an
// upstream failure the proxy answers 502/504 for) serves e when
// stale-if-error allows (STALE); any other response passes to the client
// and is stored as on a miss.
func (c *Cache) revalidate(w http.ResponseWriter, r *http.Request, next http.Handler, primary httpcache.Key, e *httpcache.Entry, reqCC *httpcache.CacheControl, now time.Time) revalResult {
	staleOK := e.Meta.StaleIfErrorAllowed(reqCC, now)
	out := *r
	out.Header = r.Header.Clone()
	httpcache.AddValidators(out.Header, e.Header)
	rec := c.newRecorder(w, &out, labelMiss)
	rec.hold = func(status int, _ http.Header) bool {
		return status == http.StatusNotModified || (staleOK && httpcache.ErrorStatus(status))
	}
	next.ServeHTTP(rec, &out)
	switch {
	case !rec.held:
		c.c.miss.Inc()
		rec.req = r
		return revalResult{e: c.finishStore(rec, primary)}
	case rec.status == http.StatusNotModified:
		if ne := c.refresh(e, rec); ne != nil {
			c.c.revalidated.Inc()
			c.serveEntry(w, r, ne, c.now(), labelRevalidated)
			return revalResult{e: ne, revalidated: true}
		}
		// A 304 for another representation: forget e and fetch anew.
		_ = c.store.Delete(r.Context(), e.Key)
		c.c.miss.Inc()
		fresh := c.newRecorder(w, r, labelMiss)
		next.ServeHTTP(fresh, r)
		return revalResult{e: c.finishStore(fresh, primary)}
	default:
		c.c.stale.Inc()
		c.serveEntry(w, r, e, c.now(), labelStale)
		return revalResult{stale: true}
	}
}

// refresh applies a 304 to a copy of e and stores it; nil when the 304
// does not select e.
func (c *Cache) refresh(e *httpcache.Entry, rec *recorder) *httpcache.Entry {
	if !httpcache.Selects304(e.Header, rec.h) {
		return nil
	}
	ne := *e
	ne.Header = e.Header.Clone()
	ne.Meta = httpcache.Update304(ne.Header, rec.h, rec.reqTime, rec.respTime, &c.policy)
	ne.Tags = c.Tags.parse(ne.Header)
	ne.TTL = ttlFor(&ne.Meta, ne.Header)
	if ne.TTL > 0 && c.store.Set(rec.req.Context(), &ne) == nil {
		c.syncStoreStats()
	}
	return &ne
}

// revalidateInBackground revalidates e after a stale answer was served
// (stale-while-revalidate): at most one revalidation per key and
// maxBackground per instance run at a time; the request runs on a copy of
// the request's record, detached from the client's cancellation and bounded
// by the route timeout.
func (c *Cache) revalidateInBackground(r *http.Request, next http.Handler, key, primary httpcache.Key, e *httpcache.Entry) {
	if _, busy := c.background.LoadOrStore(key, struct{}{}); busy {
		return
	}
	select {
	case c.bgSlots <- struct{}{}:
	default:
		c.background.Delete(key)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if rec := request.RecordOf(r); rec != nil {
		cp := *rec
		cp.Body, cp.Status, cp.BytesOut = nil, 0, 0
		ctx = request.WithRecord(ctx, &cp)
	}
	timeout := c.timeout
	if timeout <= 0 {
		timeout = backgroundTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	out := r.Clone(ctx)
	out.Body = http.NoBody
	httpcache.AddValidators(out.Header, e.Header)
	go func() {
		defer func() {
			_ = recover() // an aborted upstream exchange must not end the process
			cancel()
			c.background.Delete(key)
			<-c.bgSlots
		}()
		rec := c.newRecorder(nil, out, "")
		next.ServeHTTP(rec, out)
		if rec.status == http.StatusNotModified {
			if c.refresh(e, rec) != nil {
				c.c.revalidated.Inc()
			}
			return
		}
		if !httpcache.ErrorStatus(rec.status) {
			c.finishStore(rec, primary)
		}
	}()
}

// forwardUnsafe forwards a request with an unsafe method and, when its
// response invalidates (RFC 9111 §4.4), removes the GET and HEAD responses
// stored for its target and its Location and Content-Location on the same
// origin. Varying responses go with their marker entry.
func (c *Cache) forwardUnsafe(w http.ResponseWriter, r *http.Request, next http.Handler) {
	sw := &statusWriter{ResponseWriter: c.stripWriter(w)}
	next.ServeHTTP(sw, r)
	if !httpcache.Invalidates(r.Method, sw.code()) {
		return
	}
	for _, u := range httpcache.InvalidationTargets(r, w.Header()) {
		g := *r
		gu := *r.URL
		gu.Path, gu.RawPath, gu.RawQuery = u.Path, u.RawPath, u.RawQuery
		g.URL = &gu
		for _, m := range [...]string{http.MethodGet, http.MethodHead} {
			g.Method = m
			k := c.primaryKey(&g)
			if e, _ := c.store.Get(r.Context(), k); e != nil {
				_ = c.store.Delete(r.Context(), k)
				c.c.invalidated.Inc()
			}
		}
	}
	c.syncStoreStats()
}

// finishStore stores the response rec recorded, when it was storable,
// complete and within max_entry; it returns the stored entry or nil.
func (c *Cache) finishStore(rec *recorder, primary httpcache.Key) *httpcache.Entry {
	if !rec.storing || rec.status == 0 {
		return nil
	}
	if rec.req.Method != http.MethodHead {
		if cl := rec.stored.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(rec.body)) {
			return nil // cut short
		}
	}
	ttl := ttlFor(&rec.meta, rec.stored)
	if ttl <= 0 {
		return nil
	}
	if rec.req.Method != http.MethodHead {
		rec.stored["Content-Length"] = []string{strconv.Itoa(len(rec.body))}
	}
	ctx := rec.req.Context()
	e := &httpcache.Entry{Key: primary, Status: rec.status, Header: rec.stored, Body: slices.Clip(rec.body),
		Meta: rec.meta, Vary: rec.vary, Path: httpcache.URL(rec.req, &c.keyOpts), Tags: c.Tags.parse(rec.stored), TTL: ttl}
	if len(rec.vary) > 0 {
		e.Key = httpcache.VariantKey(primary, httpcache.SecondaryKey(rec.vary, rec.req.Header))
		if mk, _ := c.store.Get(ctx, primary); mk == nil || mk.Status != 0 || !slices.Equal(mk.Vary, rec.vary) {
			marker := &httpcache.Entry{Key: primary, Vary: rec.vary, Path: e.Path, TTL: markerTTL,
				Meta: httpcache.Meta{RequestTime: rec.meta.RequestTime}}
			if c.store.Set(ctx, marker) != nil {
				return nil
			}
		}
	}
	if c.store.Set(ctx, e) != nil {
		return nil
	}
	c.c.stores.Inc()
	c.syncStoreStats()
	return e
}

// ttlFor is how long the store keeps an entry: its freshness lifetime and
// stale windows, plus validatorHold when it can be revalidated.
func ttlFor(m *httpcache.Meta, h http.Header) time.Duration {
	ttl := m.Lifetime - m.InitialAge
	ttl = max(ttl, 0) + max(m.StaleWhileRevalidate, m.StaleIfError)
	if h.Get("Etag") != "" || h.Get("Last-Modified") != "" {
		ttl += validatorHold
	}
	return ttl
}

// statusWriter notes the status of a response it passes on.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.ResponseWriter.Write(p)
}

func (sw *statusWriter) code() int { return sw.status }

// Unwrap lets http.ResponseController reach the client's writer.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// Flush passes a flush on.
func (sw *statusWriter) Flush() { _ = http.NewResponseController(sw.ResponseWriter).Flush() }
