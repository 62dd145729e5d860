// Package request holds what the gateway knows about one request while it is
// served: the per-request record shared by the proxy core, plugins and the
// access log, the client body wrapper, request IDs, and the gateway's one
// error response shape. It carries no policy.
package request

import (
	"context"

	"net/http"
	"net/netip"
	"time"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/observe/tracing"
)

// MaxParams is the number of path parameters a route template may capture.
const MaxParams = 16

// Param is one captured path parameter ("{id}" → Key "id").
type Param struct {
	Key, Value string
}

// Params is a fixed-capacity parameter list filled by the router without
// allocating.
type Params struct {
	N   int
	Arr [MaxParams]Param
}

// Get returns the value of the named parameter.
func (p *Params) Get(key string) (string, bool) {
	for i := 0; i < p.N; i++ {
		if p.Arr[i].Key == key {
			return p.Arr[i].Value, true
		}
	}
	return "", false
}

// Reset empties the list.
func (p *Params) Reset() { p.N = 0 }

// Add appends a parameter; it reports false when the list is full.
func (p *Params) Add(k, v string) bool {
	if p.N >= MaxParams {
		return false
	}
	p.Arr[p.N] = Param{k, v}
	p.N++
	return true
}

// Record is the state of one request as it passes through the gateway: what
// the router chose, who the client is, and what the upstream did. The gateway
// allocates it from a pool and stores it in the request context once; it must
// not be used after the request's handler returns.
type Record struct {
	Start     time.Time
	RequestID string
	// ClientIP is the real client address (trusted-proxy aware).
	ClientIP netip.Addr
	// Peer is the address of the TCP peer.
	Peer netip.Addr
	// TrustedPeer reports whether Peer is a trusted proxy, so its
	// X-Forwarded-* headers are kept and appended to.
	TrustedPeer bool
	// TLS reports whether the client connection is TLS.
	TLS bool
	// Consumer is the authenticated client, set by auth plugins (nil when
	// no auth plugin has authenticated the request).
	Consumer *consumer.Consumer
	// AuthBy names the plugin that authenticated the consumer.
	AuthBy string
	// Claims are the verified token claims of the plugin that
	// authenticated the consumer (jwt, oauth2_introspection), nil
	// otherwise. Read-only: plugins share the map.
	Claims map[string]any
	// AuthFailure is why an auth plugin refused the request ("expired",
	// "bad_signature", "unknown_consumer", "multiple"…): a reason code for
	// the access log, never a secret. Empty when no plugin refused it.
	AuthFailure string
	// Route is the name of the matched route ("" when none).
	Route string
	// Path is the normalised request path used for matching.
	Path   string
	Params Params

	// Version is the API version chosen on a route with versions ("" when
	// none was chosen).
	Version string

	// Upstream is the name of the upstream pool the request was sent to
	// ("" when it was not proxied).
	Upstream string
	// UpstreamAddr is the host:port of the target of the last upstream
	// attempt ("" when none was made).
	UpstreamAddr string
	// Attempts is the number of upstream attempts made (0 when none).
	Attempts int
	// UpstreamStart is when the request was handed to the upstream transport.
	UpstreamStart time.Time
	// UpstreamDuration is the time from sending the request upstream to
	// receiving the response headers.
	UpstreamDuration time.Duration
	// Status and BytesOut are filled by the response writer wrapper.
	Status   int
	BytesOut int64
	// Body is the client's request body wrapper (nil without a body).
	Body *Body
	// ErrorMsg is the message of a gateway-generated error, if any.
	ErrorMsg string
	// Trace is the request's tracing state (the zero value when tracing is
	// off).
	Trace tracing.Request
}

// Claim renders the named claim of the authenticating token with
// RenderClaim; ok is false when there is none (no claims, a missing, null
// or empty claim, or one RenderClaim refuses).
func (r *Record) Claim(name string) (string, bool) {
	if r == nil || r.Claims == nil {
		return "", false
	}
	v, err := RenderClaim(r.Claims[name])
	return v, err == nil && v != ""
}

// Reset clears the record for reuse.
func (r *Record) Reset() { *r = Record{} }

type recordKey struct{}

// WithRecord returns a context carrying rec.
func WithRecord(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// RecordOf returns the request's record, or nil outside the gateway.
func RecordOf(r *http.Request) *Record {
	rec, _ := r.Context().Value(recordKey{}).(*Record)
	return rec
}

// PathOf is the normalised path the router matched and the upstream
// receives, which every policy decision (auth paths, rate-limit keys, ACLs)
// must use; outside the gateway (nil record) it is r.URL.Path.
func (r *Record) PathOf(req *http.Request) string {
	if r != nil && r.Path != "" {
		return r.Path
	}
	return req.URL.Path
}

// BodyErr is the error the client's request body failed with, if any.
func (r *Record) BodyErr() error {
	if r.Body == nil {
		return nil
	}
	return r.Body.Err()
}

// BytesIn is the number of request body bytes read.
func (r *Record) BytesIn() int64 {
	if r.Body == nil {
		return 0
	}
	return r.Body.Bytes()
}
