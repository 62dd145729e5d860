package gateway

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/plugin/auth"
	"github.com/portico-gw/portico/internal/proxy"
	"github.com/portico-gw/portico/internal/router"
)

// exchange is the pooled per-request state: the record plugins and the proxy
// share, and the response writer wrapper.
type exchange struct {
	rec   observe.Record
	rw    responseWriter
	route *route
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// serve runs one request against this snapshot, from header hygiene through
// routing and the route's chain to the access log line.
func (s *Snapshot) serve(w http.ResponseWriter, r *http.Request) {
	x := exchanges.Get().(*exchange)
	rec := &x.rec
	rec.Start = time.Now()
	inflight := observe.DefaultMetrics.InFlight()
	inflight.Inc()
	s.identify(r, rec)
	x.rw = responseWriter{w: w, rec: rec}
	ctx := observe.WithRecord(r.Context(), rec)
	if s.tracer != nil {
		ctx, rec.Trace = s.tracer.StartServer(ctx, r, rec.ClientIP, rec.Peer, rec.RequestID)
	}
	r = r.WithContext(ctx)
	defer s.finish(x, r, inflight)
	s.handle(&x.rw, r, x)
}

// finish records and logs a finished request and recycles its state. It
// runs deferred, so a handler that aborts the response (the proxy panics
// with http.ErrAbortHandler when the client goes away mid-stream) is still
// counted and logged; the panic then continues to net/http.
func (s *Snapshot) finish(x *exchange, r *http.Request, inflight interface{ Dec() }) {
	p := recover()
	rec := &x.rec
	if p != nil && rec.ErrorMsg == "" {
		rec.ErrorMsg = "response aborted"
	}
	if rec.Body != nil {
		rec.Body.Detach()
	}
	if rec.Status == 0 {
		if x.rw.hijacked() {
			rec.Status = http.StatusSwitchingProtocols
		} else {
			rec.Status = http.StatusOK
		}
	}
	inflight.Dec()
	if rec.Trace.On() {
		s.endTrace(r, rec)
	}
	if x.route != nil {
		x.route.metrics.Observe(rec, r.Method)
	} else {
		s.unrouted.Observe(rec, r.Method)
	}
	if s.accessLog != nil {
		s.logAccess(r, rec)
	}
	x.rw = responseWriter{}
	x.route = nil
	rec.Reset()
	exchanges.Put(x)
	if p != nil {
		panic(p)
	}
}

// endTrace ends the request's server span.
func (s *Snapshot) endTrace(r *http.Request, rec *observe.Record) {
	consumer := ""
	if rec.Consumer != nil {
		consumer = rec.Consumer.Name
	}
	path := rec.Path
	if path == "" {
		path = rawPath(r)
	}
	rec.Trace.EndServer(r.Method, rec.Route, path, rec.Status, consumer, rec.ErrorMsg)
}

// handle applies the edge limits, normalises and routes the request, and runs
// the matched route.
func (s *Snapshot) handle(w *responseWriter, r *http.Request, x *exchange) {
	rec := &x.rec
	if n := headerCount(r); n > s.limits.MaxHeaderCount {
		observe.WriteError(w, r, http.StatusRequestHeaderFieldsTooLarge, "too many request header fields")
		return
	}
	// A gRPC call is a stream of messages: each message is bounded
	// (max_grpc_message_bytes) rather than the body's total.
	grpc := observe.IsGRPC(r)
	if max := int64(s.limits.MaxBodyBytes); max >= 0 && r.ContentLength > max && !grpc {
		observe.WriteError(w, r, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	path, encodedSpecial, err := router.NormalizePath(rawPath(r))
	if err != nil {
		observe.WriteError(w, r, http.StatusBadRequest, "invalid request path")
		return
	}
	rec.Path = path
	idx, ok := s.table.Match(r, router.NormalizeHost(r.Host), path, &rec.Params)
	if !ok {
		observe.WriteError(w, r, http.StatusNotFound, "no route matched")
		return
	}
	rt := s.routes[idx]
	rec.Route = rt.name
	x.route = rt
	if encodedSpecial && !rt.allowEncoded {
		observe.WriteError(w, r, http.StatusBadRequest, "encoded path separator or reserved character not allowed")
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		if grpc {
			if max := int64(s.limits.MaxGRPCMessageBytes); max >= 0 {
				r.Body = proxy.LimitGRPCMessages(r.Body, max)
			}
		} else if max := int64(s.limits.MaxBodyBytes); max >= 0 {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		var onDone func()
		if d := s.limits.BodyReadTimeout.D(); d > 0 && r.ProtoMajor == 1 && r.Header.Get("Upgrade") == "" {
			// The deadline covers reading the body only; it is lifted when
			// the body ends so a long response is not cut by it.
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				onDone = func() { _ = rc.SetReadDeadline(time.Time{}) }
			}
		}
		rec.Body = observe.NewBody(r.Body, onDone)
		r.Body = rec.Body
	}
	rt.handler.ServeHTTP(w, r)
}

// identify fills the peer, the real client IP and the request ID.
func (s *Snapshot) identify(r *http.Request, rec *observe.Record) {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		rec.Peer = ap.Addr().Unmap()
	}
	rec.ClientIP = rec.Peer
	rec.TLS = r.TLS != nil
	if rec.Peer.IsValid() && s.isTrusted(rec.Peer) {
		rec.TrustedPeer = true
		if ip, ok := s.clientFromXFF(r.Header["X-Forwarded-For"]); ok {
			rec.ClientIP = ip
		}
	} else {
		// Identity headers from an untrusted peer are dropped before any
		// plugin can read them; the proxy sets its own on the way out.
		for _, h := range spoofable {
			delete(r.Header, h)
		}
	}
	// Identity headers are only ever set by auth plugins: a client's are
	// removed before any plugin runs, so an identity cannot be forged.
	for k := range r.Header {
		if len(k) > 2 && k[0] == 'X' && k[1] == '-' && identityHeaders[k] {
			delete(r.Header, k)
		}
	}
	if id := r.Header["X-Request-Id"]; len(id) == 1 && observe.ValidRequestID(id[0]) {
		rec.RequestID = id[0]
	} else {
		rec.RequestID = observe.NewRequestID()
	}
}

// identityHeaders are the canonical names of auth.IdentityHeaders.
var identityHeaders = func() map[string]bool {
	m := map[string]bool{}
	for _, h := range auth.IdentityHeaders {
		m[http.CanonicalHeaderKey(h)] = true
	}
	return m
}()

// spoofable are the forwarding headers only a trusted proxy may set.
var spoofable = [...]string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "Forwarded", "X-Real-Ip"}

func (s *Snapshot) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientFromXFF walks X-Forwarded-For from the right and returns the first
// address that is not a trusted proxy: the closest one nobody trusted could
// have forged.
func (s *Snapshot) clientFromXFF(values []string) (netip.Addr, bool) {
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			j := strings.LastIndexByte(v, ',')
			part := strings.TrimSpace(v[j+1:])
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				return netip.Addr{}, false
			}
			a = a.Unmap()
			if !s.isTrusted(a) {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// rawPath returns the still-encoded request path from the request line.
func rawPath(r *http.Request) string {
	u := r.RequestURI
	if u == "" || u[0] != '/' {
		return r.URL.EscapedPath()
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u
}

// headerCount counts the request's header fields as received, including
// Host and Transfer-Encoding, which net/http moves out of r.Header.
func headerCount(r *http.Request) int {
	n := 0
	for _, v := range r.Header {
		n += len(v)
	}
	if r.ProtoMajor == 1 && r.Host != "" {
		n++
	}
	if len(r.TransferEncoding) > 0 {
		n++
	}
	return n
}
