package gateway

import (
	"math"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/observe"
	"github.com/portico-gw/portico/internal/proxy"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/router"
)

// exchange is the pooled per-request state: the record plugins and the proxy
// share, and the response writer wrapper.
type exchange struct {
	rec   request.Record
	rw    responseWriter
	route *route
	// fields and headBytes measure the request head as received, before
	// identify drops any header.
	fields, headBytes int
	// reject, when set, is the 400 message for a request refused on
	// arrival (header hygiene).
	reject string
}

var exchanges = sync.Pool{New: func() any { return new(exchange) }}

// serve runs one request against this snapshot, from header hygiene through
// routing and the route's chain to the access log line.
func (s *Snapshot) serve(w http.ResponseWriter, r *http.Request) {
	x := exchanges.Get().(*exchange)
	rec := &x.rec
	rec.Start = time.Now()
	inflight := s.inflight
	inflight.Inc()
	x.fields, x.headBytes = headerSize(r)
	x.reject = s.identify(r, rec)
	x.rw = responseWriter{w: w, rec: rec}
	ctx := request.WithRecord(r.Context(), rec)
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
	sample := observe.Sample{Method: r.Method, Status: rec.Status, Duration: time.Since(rec.Start),
		UpstreamDuration: rec.UpstreamDuration, BytesIn: rec.BytesIn(), BytesOut: rec.BytesOut}
	if x.route != nil {
		x.route.metricsOf(rec).Observe(sample)
		x.route.countVersion(rec)
	} else {
		s.unrouted.Observe(sample)
	}
	if s.accessLog != nil {
		s.logAccess(r, rec)
	}
	x.rw = responseWriter{}
	x.route = nil
	x.reject = ""
	rec.Reset()
	exchanges.Put(x)
	if p != nil {
		panic(p)
	}
}

// endTrace ends the request's server span.
func (s *Snapshot) endTrace(r *http.Request, rec *request.Record) {
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
	// A gRPC call is a stream of messages: each message is bounded
	// (max_grpc_message_bytes) rather than the body's total.
	grpc := request.IsGRPC(r)
	if !s.admit(w, r, x, grpc) {
		return
	}
	rt := s.match(w, r, x)
	if rt == nil {
		return
	}
	if _, ok := r.Header["Upgrade"]; ok {
		rt.filterUpgrade(r.Header)
	}
	if r.Body != nil && r.Body != http.NoBody {
		s.limitBody(w, r, &x.rec, grpc)
	}
	rt.handler.ServeHTTP(w, r)
}

// admit applies the edge limits to the request head (target, header
// fields, declared body size, query parameters) and the verdict of header
// hygiene. It answers a request that breaks one and returns false.
func (s *Snapshot) admit(w *responseWriter, r *http.Request, x *exchange, grpc bool) bool {
	switch {
	case len(r.RequestURI) > int(s.limits.MaxURIBytes):
		headError(w, r, http.StatusRequestURITooLong, "request target too long")
	case x.fields > s.limits.MaxHeaderCount:
		headError(w, r, http.StatusRequestHeaderFieldsTooLarge, "too many request header fields")
	case x.headBytes > int(s.limits.MaxHeaderBytes):
		headError(w, r, http.StatusRequestHeaderFieldsTooLarge, "request header too large")
	case x.reject != "":
		request.WriteError(w, r, http.StatusBadRequest, x.reject)
	case s.limits.MaxBodyBytes >= 0 && r.ContentLength > int64(s.limits.MaxBodyBytes) && !grpc:
		request.WriteError(w, r, http.StatusRequestEntityTooLarge, "request body too large")
	case r.URL.RawQuery != "" && len(r.URL.RawQuery) >= maxQueryParams && tooManyParams(r.URL.RawQuery):
		request.WriteError(w, r, http.StatusBadRequest, "too many query parameters")
	default:
		return true
	}
	return false
}

// match normalises the request path and finds the route, recording both on
// the request. It answers a request it cannot route and returns nil.
func (s *Snapshot) match(w *responseWriter, r *http.Request, x *exchange) *route {
	rec := &x.rec
	path, encodedSpecial, err := router.NormalizePath(rawPath(r))
	if err == nil {
		path, encodedSpecial, err = router.ApplyPathParams(path, encodedSpecial, s.pathParams)
		if err == router.ErrPathParam {
			request.WriteError(w, r, http.StatusBadRequest, "path parameters (\";\") are not allowed")
			return nil
		}
	}
	if err != nil {
		request.WriteError(w, r, http.StatusBadRequest, "invalid request path")
		return nil
	}
	rec.Path = path
	idx, res := s.table.MatchRequest(r, router.NormalizeHost(r.Host), path, &rec.Params)
	switch res {
	case router.NoMatch:
		request.WriteError(w, r, http.StatusNotFound, "no route matched")
		return nil
	case router.Ambiguous:
		request.WriteError(w, r, http.StatusBadRequest, "ambiguous request: a header or query parameter a route matches on is repeated or malformed")
		return nil
	}
	rt := s.routes[idx]
	rec.Route = rt.name
	x.route = rt
	if encodedSpecial && !rt.allowEncoded {
		request.WriteError(w, r, http.StatusBadRequest, "encoded path separator or reserved character not allowed")
		return nil
	}
	return rt
}

// limitBody bounds the request body (its total size, or each gRPC
// message), sets the body read deadline, and wraps the body so the record
// counts its bytes.
func (s *Snapshot) limitBody(w *responseWriter, r *http.Request, rec *request.Record, grpc bool) {
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
	rec.Body = request.NewBody(r.Body, onDone)
	r.Body = rec.Body
}

// identify fills the peer, the real client IP and the request ID, and
// applies the arrival header hygiene before any plugin runs: hop-by-hop and
// Connection-named fields, headers a client may not set, method overrides.
// It returns a message when the request must be refused with 400.
func (s *Snapshot) identify(r *http.Request, rec *request.Record) (reject string) {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		rec.Peer = ap.Addr().Unmap()
	}
	rec.ClientIP = rec.Peer
	rec.TLS = r.TLS != nil
	cleanHopByHop(r.Header)
	trusted := rec.Peer.IsValid() && s.isTrusted(rec.Peer)
	if trusted {
		rec.TrustedPeer = true
		ip, ok, bad := s.clientFromXFF(r.Header["X-Forwarded-For"])
		switch {
		case bad:
			// Fail closed: an element we cannot read must not leave the
			// trusted proxy itself (often allow-listed) as the client.
			reject = "invalid X-Forwarded-For"
		case ok:
			rec.ClientIP = ip
		}
	}
	if msg := s.edge.overrideMethod(r); msg != "" && reject == "" {
		reject = msg
	}
	// Identity and injected headers are only ever set by plugins, and
	// forwarding headers only by trusted proxies: a client's are removed
	// before any plugin runs.
	s.edge.stripHeaders(r.Header, trusted)
	if id := r.Header["X-Request-Id"]; len(id) == 1 && request.ValidID(id[0]) {
		rec.RequestID = id[0]
	} else {
		rec.RequestID = request.NewID()
	}
	return reject
}

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
// have forged. bad reports an element before that one that is not an
// address (see parseForwardedAddr); empty elements are skipped.
func (s *Snapshot) clientFromXFF(values []string) (ip netip.Addr, ok, bad bool) {
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for v != "" {
			j := strings.LastIndexByte(v, ',')
			part := strings.Trim(v[j+1:], " \t")
			if j < 0 {
				v = ""
			} else {
				v = v[:j]
			}
			if part == "" {
				continue
			}
			a, valid := parseForwardedAddr(part)
			if !valid {
				return netip.Addr{}, false, true
			}
			if !s.isTrusted(a) {
				return a, true, false
			}
		}
	}
	return netip.Addr{}, false, false
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

// headerSize counts the request's header fields as received, including
// Host and Transfer-Encoding, which net/http moves out of r.Header, and the
// size of the head: the request line plus each field as "Name: value\r\n".
// It must run before any header is removed.
func headerSize(r *http.Request) (fields, bytes int) {
	bytes = len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2 + 2
	for k, vs := range r.Header {
		fields += len(vs)
		for _, v := range vs {
			bytes += len(k) + 2 + len(v) + 2
		}
	}
	if r.ProtoMajor == 1 && r.Host != "" {
		fields++
		bytes += len("Host: \r\n") + len(r.Host)
	}
	if len(r.TransferEncoding) > 0 {
		fields++
		bytes += len("Transfer-Encoding: \r\n")
		for _, te := range r.TransferEncoding {
			bytes += len(te) + 2
		}
	}
	return fields, bytes
}

// headError answers a request whose head breaks a limit, with a
// Content-Length. On HTTP/1 the connection is closed after the response;
// when a large unread body is still arriving, net/http half-closes it first
// (the listener wrapper passes CloseWrite on) so the client reads the whole
// answer instead of a reset.
func headError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	request.WriteError(w, r, status, msg)
}

// maxQueryParams is url.ParseQuery's limit on query parameters (10000, or
// GODEBUG urlmaxqueryparams; 0 there means no limit). A longer query is
// rejected: plugins reading r.URL.Query() would see none of it, and the
// standard reverse proxy would drop it.
var maxQueryParams = func() int {
	n := 10000
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), "urlmaxqueryparams="); ok {
			if m, err := strconv.Atoi(v); err == nil && m >= 0 {
				n = m - 1 // a custom limit is exclusive
				if m == 0 {
					n = math.MaxInt
				}
			}
		}
	}
	return n
}()

// tooManyParams reports whether url.ParseQuery would refuse q for its number
// of parameters.
func tooManyParams(q string) bool {
	return strings.Count(q, "&")+1 > maxQueryParams
}
