package cache

import (
	"net/http"
	"strconv"
	"time"

	"github.com/portico-gw/portico/internal/httpcache"
)

// recorder is the ResponseWriter the rest of the chain writes an upstream
// response into. It decides at WriteHeader: the response either passes to
// the client (w) as it streams, copied into a buffer while it may still be
// stored (never beyond max_entry: a larger one stops being recorded and
// keeps streaming), or it is held back (a 304 or an error answering a
// revalidation, every background revalidation) for the cache to answer
// from the stored entry instead.
type recorder struct {
	c   *Cache
	w   http.ResponseWriter // the client; nil for a background revalidation
	req *http.Request
	h   http.Header // what the upstream side writes into

	// hold, when set, says at WriteHeader whether the response is held
	// back rather than passed to the client.
	hold    func(status int, h http.Header) bool
	label   string // status header value for a passed response
	status  int
	held    bool
	storing bool
	stored  http.Header
	meta    httpcache.Meta
	vary    []string
	body    []byte

	reqTime, respTime time.Time
}

func (c *Cache) newRecorder(w http.ResponseWriter, r *http.Request, label string) *recorder {
	return &recorder{c: c, w: w, req: r, h: make(http.Header), label: label, reqTime: c.now()}
}

func (rw *recorder) Header() http.Header { return rw.h }

func (rw *recorder) WriteHeader(code int) {
	if rw.status != 0 {
		return
	}
	if code >= 100 && code < 200 {
		if rw.w != nil && code != http.StatusSwitchingProtocols {
			rw.writeInterim(code)
		}
		return
	}
	rw.status = code
	rw.respTime = rw.c.now()
	rw.held = rw.w == nil || (rw.hold != nil && rw.hold(code, rw.h))
	if !rw.held || rw.w == nil {
		rw.startStoring(code)
	}
	if rw.held {
		return
	}
	dst := rw.w.Header()
	copyHeader(dst, rw.h)
	rw.c.Tags.stripFrom(dst)
	dst.Set(rw.c.header, rw.label)
	rw.w.WriteHeader(code)
}

// writeInterim sends a 1xx response (103 Early Hints) with the header the
// upstream side set for it, then puts the client's header back as it was:
// a ResponseWriter keeps its header map after a 1xx, and the interim
// fields must not reach the final response.
func (rw *recorder) writeInterim(code int) {
	dst := rw.w.Header()
	saved := make(http.Header, len(rw.h))
	for k := range rw.h {
		if vs, ok := dst[k]; ok {
			saved[k] = vs
		}
	}
	copyHeader(dst, rw.h)
	rw.w.WriteHeader(code)
	for k := range rw.h {
		if vs, ok := saved[k]; ok {
			dst[k] = vs
		} else {
			delete(dst, k)
		}
	}
}

// startStoring decides whether the response may be stored and, if so,
// takes what the entry needs from its header.
func (rw *recorder) startStoring(code int) {
	if ok, _ := httpcache.Storable(rw.req, code, rw.h, &rw.c.policy); !ok {
		return
	}
	if rw.c.policy.Mode == httpcache.TTLReplace && !cacheableByDefault(code) && !explicitFreshness(rw.h, &rw.c.policy) {
		return // ttl_mode override never pins an error the upstream did not mark cacheable
	}
	if cl := rw.h.Get("Content-Length"); cl != "" && rw.req.Method != http.MethodHead {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 || n > rw.c.maxEntry {
			return
		}
		rw.body = make([]byte, 0, n)
	}
	names, star := httpcache.VaryNames(rw.h["Vary"])
	if star || len(names) > maxVaryNames {
		return
	}
	rw.vary = names
	rw.meta = httpcache.Freshness(rw.h, rw.reqTime, rw.respTime, &rw.c.policy)
	rw.stored = httpcache.StoredHeader(rw.h)
	rw.storing = true
}

// cacheableByDefault reports whether a status is cacheable by default
// (RFC 9110 §15.1, without 206).
func cacheableByDefault(code int) bool {
	switch code {
	case 200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501:
		return true
	}
	return false
}

// explicitFreshness reports whether the response has max-age, s-maxage or
// Expires (or, in a targeted field the policy honours, max-age or
// s-maxage).
func explicitFreshness(h http.Header, p *httpcache.Policy) bool {
	cc, useExpires := httpcache.ResponseDirectives(h, p)
	_, expires := h["Expires"]
	return cc.MaxAge >= 0 || cc.SMaxAge >= 0 || (expires && useExpires)
}

// maxVaryNames bounds the header names a stored response may vary on.
const maxVaryNames = 16

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
}

func (rw *recorder) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.storing {
		if int64(len(rw.body)+len(p)) > rw.c.maxEntry {
			rw.storing, rw.body = false, nil
		} else {
			rw.body = append(rw.body, p...)
		}
	}
	if rw.held {
		return len(p), nil
	}
	return rw.w.Write(p)
}

// Flush passes a flush on to the client (server-sent events stream through
// a miss unchanged).
func (rw *recorder) Flush() { _ = rw.FlushError() }

// FlushError is Flush reporting the error.
func (rw *recorder) FlushError() error {
	if rw.status == 0 {
		rw.WriteHeader(http.StatusOK)
	}
	if rw.held {
		return nil
	}
	return http.NewResponseController(rw.w).Flush()
}

// Unwrap gives http.ResponseController the client's writer, except for a
// response that is held back.
func (rw *recorder) Unwrap() http.ResponseWriter {
	if rw.held {
		return nil
	}
	return rw.w
}
