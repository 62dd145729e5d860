package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/proxy"
	"github.com/portico-gw/portico/internal/request"
)

// Mirror counters (see the README's "Mirroring (shadow traffic)").
const (
	// MirrorRequestsMetric counts the requests of a route chosen for
	// mirroring, by outcome: result="sent" (the mirror upstream answered,
	// whatever its status), "failed" (it did not: connect error, timeout,
	// no target, open circuit breaker), "dropped" (max_concurrent copies
	// were already in flight) or "too_large" (the body is over max_body).
	MirrorRequestsMetric = "portico_mirror_requests_total"
	// MirrorResponsesMetric counts the mirror upstream's answers by status
	// class (class="1xx".."5xx").
	MirrorResponsesMetric = "portico_mirror_responses_total"
)

// mirrorFallbackTimeout bounds a copy when the mirror upstream has no
// request_timeout, so a copy never holds its slot for ever.
const mirrorFallbackTimeout = 30 * time.Second

// mirror is a route's terminal wrapped so that a sample of its requests is
// also sent, in the background, to a second upstream. The copy's response
// is discarded; the client's request goes on to the route's own terminal
// whatever happens to the copy.
type mirror struct {
	next http.Handler
	// fwd forwards copies to the mirror upstream.
	fwd *proxy.Forwarder
	// threshold is the sample rate in millionths (percent × 10⁴).
	threshold uint64
	maxBody   int64
	timeout   time.Duration
	// header is the canonical name of the marker header.
	header string
	// sem holds one token per copy in flight.
	sem                             chan struct{}
	sent, failed, dropped, tooLarge *observe.Counter
	classes                         [5]*observe.Counter
	logger                          *slog.Logger
}

// mirrorRetry is the copies' retry policy: none. A copy is fire and
// forget; retrying it would multiply the load an unhealthy mirror
// upstream puts on the gateway.
var mirrorRetry = config.Retry{Attempts: new(int)}

// sampleScale is the resolution of the sample rate (one millionth).
const sampleScale = 1_000_000

// markerValue is the marker header's value on every copy.
var markerValue = []string{"1"}

// wrapMirror wraps terminal in the route's mirror, if it has one.
func (b *Builder) wrapMirror(s *Snapshot, rc *config.Route, terminal http.Handler) http.Handler {
	mc := rc.Mirror
	if terminal == nil || mc == nil || rc.Upstream == "" || mc.Percent == nil || *mc.Percent <= 0 {
		return terminal
	}
	// Validation has checked that the upstream is defined: a missing pool
	// is one that failed to build, whose error is reported at its own path
	// (the snapshot is discarded then). The route's rewrite compiled in
	// buildTerminal, or terminal would be nil.
	pool := s.pools[mc.Upstream]
	rw, err := proxy.CompileRewrite(rc.Rewrite, rc.Match)
	if pool == nil || err != nil {
		return terminal
	}
	logger := b.Logger.With("route", rc.Name, "mirror", mc.Upstream)
	timeout := pool.Config.RequestTimeout.D()
	if timeout <= 0 {
		timeout = mirrorFallbackTimeout
	}
	m := &mirror{next: terminal, threshold: uint64(*mc.Percent * (sampleScale / 100)),
		maxBody: int64(mc.MaxBody), timeout: timeout, header: http.CanonicalHeaderKey(mc.Header),
		sem:    make(chan struct{}, mc.MaxConcurrent),
		fwd:    proxy.NewForwarder(pool, proxy.Options{Rewrite: rw, Timeout: timeout, Logger: logger, Stats: b.Stats, Retry: &mirrorRetry}),
		logger: logger}
	counter := func(result string) *observe.Counter {
		return b.Stats.Counter(MirrorRequestsMetric, fmt.Sprintf("route=%q,result=%q", rc.Name, result))
	}
	m.sent, m.failed, m.dropped, m.tooLarge = counter("sent"), counter("failed"), counter("dropped"), counter("too_large")
	for i := range m.classes {
		m.classes[i] = b.Stats.Counter(MirrorResponsesMetric, fmt.Sprintf("route=%q,class=\"%dxx\"", rc.Name, i+1))
	}
	return m
}

// ServeHTTP forwards r to the route's terminal, and a copy of it to the
// mirror upstream when r is sampled.
func (m *mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !m.sampled(r) {
		m.next.ServeHTTP(w, r)
		return
	}
	if r.ContentLength > m.maxBody {
		m.tooLarge.Inc()
		m.next.ServeHTTP(w, r)
		return
	}
	select {
	case m.sem <- struct{}{}:
	default:
		m.dropped.Inc()
		m.next.ServeHTTP(w, r)
		return
	}
	body, ok := m.readBody(r)
	if !ok {
		<-m.sem
		m.next.ServeHTTP(w, r)
		return
	}
	go m.send(m.copyOf(r, body))
	m.next.ServeHTTP(w, r)
}

// sampled reports whether r is one of the requests to mirror. Protocol
// upgrades and gRPC calls (streams) are never mirrored.
func (m *mirror) sampled(r *http.Request) bool {
	if m.threshold < sampleScale && rand.Uint64N(sampleScale) >= m.threshold {
		return false
	}
	return len(r.Header["Upgrade"]) == 0 && !request.IsGRPC(r)
}

// readBody reads r's body, up to max_body, and gives r a body that replays
// what was read followed by the rest. It reports false when the body is not
// to be mirrored: over max_body (counted) or not readable.
func (m *mirror) readBody(r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	var buf []byte
	var err error
	if r.ContentLength >= 0 {
		buf = make([]byte, r.ContentLength)
		var n int
		n, err = io.ReadFull(r.Body, buf)
		buf = buf[:n]
		if err == nil {
			// Read on to the end of the body (net/http enforces the
			// length), so the body read deadline is lifted as when the
			// upstream reads it.
			var probe [1]byte
			if _, e := r.Body.Read(probe[:]); e != nil && e != io.EOF {
				err = e
			}
		}
	} else {
		buf, err = io.ReadAll(io.LimitReader(r.Body, m.maxBody+1))
	}
	over := int64(len(buf)) > m.maxBody
	if err != nil || over {
		// The route's upstream still gets the whole body (or the same
		// read error).
		r.Body = request.Replay(buf, r.Body, true)
		if over && err == nil {
			m.tooLarge.Inc()
		}
		return nil, false
	}
	r.Body = request.Replay(buf, r.Body, false)
	return buf, true
}

// copyOf returns the copy of r sent to the mirror upstream: its own
// context (not cancelled with the client's request), its own record and
// body, and the marker header.
func (m *mirror) copyOf(r *http.Request, body []byte) *http.Request {
	rec := &request.Record{Start: time.Now()}
	if in := request.RecordOf(r); in != nil {
		rec.RequestID, rec.ClientIP, rec.Peer, rec.TrustedPeer, rec.TLS = in.RequestID, in.ClientIP, in.Peer, in.TrustedPeer, in.TLS
		rec.Consumer, rec.Route, rec.Path, rec.Params = in.Consumer, in.Route, in.Path, in.Params
	}
	c := r.Clone(request.WithRecord(context.Background(), rec))
	c.Header[m.header] = markerValue
	if body == nil {
		c.Body = http.NoBody
	} else {
		c.Body = io.NopCloser(bytes.NewReader(body))
	}
	return c
}

// send forwards the copy c and counts the outcome; it runs on its own
// goroutine and holds one slot of the semaphore.
func (m *mirror) send(c *http.Request) {
	defer func() { <-m.sem }()
	defer func() {
		if v := recover(); v != nil {
			// An aborted response (the upstream went away mid-body)
			// must not take the gateway down.
			m.failed.Inc()
			m.logger.Debug("mirror request aborted", "panic", fmt.Sprint(v))
		}
	}()
	w := &discardWriter{}
	m.fwd.ServeHTTP(w, c)
	rec := request.RecordOf(c)
	if rec.ErrorMsg != "" || w.status == 0 {
		m.failed.Inc()
		m.logger.Debug("mirror request failed", "error", rec.ErrorMsg)
		return
	}
	m.sent.Inc()
	if cl := w.status/100 - 1; cl >= 0 && cl < len(m.classes) {
		m.classes[cl].Inc()
	}
}

// discardWriter is the response writer of a copy: it keeps the status and
// throws everything else away.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}

func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 && code >= 200 {
		d.status = code
	}
}

func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(p), nil
}

// Flush is a no-op, so streaming responses are drained as they come.
func (d *discardWriter) Flush() {}

// Interface guards.
var (
	_ http.Handler = (*mirror)(nil)
	_ http.Flusher = (*discardWriter)(nil)
)
