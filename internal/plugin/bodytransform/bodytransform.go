// Package bodytransform is the `body_transform` plugin: it reshapes JSON
// (and form-encoded) request bodies before they are forwarded and JSON
// response bodies before they are returned, with jq programs (gojq), and
// maps upstream response statuses to others, optionally with a constant
// body.
//
// Every program is parsed and compiled once, at load; a syntax error is a
// config error with its position. A body is transformed only when its
// Content-Type says JSON (or form, for request.from: form), it fits in
// max_body, and it is not compressed (responses: unless decompress is on);
// what happens to the others is set by on_oversize and on_invalid. A
// response that will not be transformed is never buffered: it streams
// through (server-sent events, downloads).
package bodytransform

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/plugin"
)

// Name is the name configs use.
const Name = "body_transform"

// Defaults and bounds.
const (
	// DefaultMaxBody is max_body when unset.
	DefaultMaxBody = 1 << 20
	// MaxMaxBody is the largest max_body accepted.
	MaxMaxBody = 64 << 20
	// DefaultTimeout is timeout when unset.
	DefaultTimeout = 100 * time.Millisecond
	// MaxTimeout is the largest timeout accepted.
	MaxTimeout = 10 * time.Second
)

// Policies for on_oversize and on_invalid.
const (
	policyReject = "reject"
	policyPass   = "pass"
)

func init() {
	plugin.Register(plugin.Spec{Name: Name, Phase: plugin.PhaseTransform, New: func() plugin.Plugin { return new(BodyTransform) }})
}

// BodyTransform transforms request and response bodies with jq programs
// and maps upstream response statuses. At least one of request, response
// and status_map is required.
type BodyTransform struct {
	// MaxBody is the largest body buffered and transformed, in either
	// direction, and the largest transformed body produced; default 1MiB,
	// at most 64MiB. A decompressed response counts at its decompressed
	// size.
	MaxBody config.Size `yaml:"max_body"`
	// OnOversize says what happens to a body that would be transformed but
	// is larger than max_body: "reject" (default) answers 413 to a request
	// and 502 for a response; "pass" forwards it untouched.
	OnOversize string `yaml:"on_oversize"`
	// OnInvalid says what happens to a body that would be transformed but
	// cannot be read: JSON that does not parse, a form that does not parse,
	// a compressed body (a response with decompress off or an encoding
	// other than gzip and deflate; any compressed request), and a request
	// body whose Content-Type is not the one request.from names. "reject"
	// (default) answers 400 (415 for a request of the wrong type) to a
	// request and 502 for a response; "pass" forwards it untouched.
	// Responses that are not labelled JSON are never transformed and
	// always pass.
	OnInvalid string `yaml:"on_invalid"`
	// Timeout bounds one run of a jq program, e.g. 50ms; default 100ms, at
	// most 10s. A program still running then is stopped and the exchange
	// fails (500 for a request, 502 for a response).
	Timeout config.Duration `yaml:"timeout"`
	// Request transforms the request body before it is forwarded.
	Request *RequestTransform `yaml:"request"`
	// Response transforms the response body before it is returned.
	Response *ResponseTransform `yaml:"response"`
	// StatusMap replaces upstream response statuses, optionally with a
	// constant body, before the response body transform. An exact status
	// wins over a class; 1xx and 304 are never mapped.
	StatusMap []StatusMapping `yaml:"status_map"`

	maxBody    int64
	passOver   bool
	passBad    bool
	timeout    time.Duration
	req        *reqSide
	resp       *respSide
	mappings   []mapping
	mapIndex   [600]uint8 // index+1 into mappings; 0: not mapped
	wrapWriter bool
}

// RequestTransform is the request side of body_transform.
type RequestTransform struct {
	// From is how the incoming body is read: "json" (default; a
	// Content-Type of application/json or any +json type) or "form"
	// (application/x-www-form-urlencoded, read into an object whose values
	// are strings, or arrays of strings for a repeated name).
	From string `yaml:"from"`
	// To is how the result is sent upstream: "json" (default) or "form"
	// (the result must be an object of strings, numbers, booleans, nulls,
	// which are left out, and arrays of those). The Content-Type is set to
	// match when it changes.
	To string `yaml:"to"`
	// JQ is the jq program the body is run through, e.g.
	// '{name: .user.name, account: $params.id}'. It must produce exactly
	// one result. Optional when from and to differ (the body is only
	// converted).
	JQ string `yaml:"jq"`
}

// ResponseTransform is the response side of body_transform.
type ResponseTransform struct {
	// JQ is the jq program the JSON response body is run through, e.g.
	// '{data: ., request_id: $request_id}'. It must produce exactly one
	// result.
	JQ string `yaml:"jq"`
	// Decompress decodes gzip and deflate response bodies before the
	// program runs (the result is sent uncompressed). When false (the
	// default) a compressed response is handled as on_invalid says.
	Decompress bool `yaml:"decompress"`
	// Statuses are the response statuses (after status_map) whose bodies
	// are transformed: codes such as 200 or classes such as 2xx; default
	// [2xx]. 204, 206 and 304 responses are never transformed.
	Statuses []string `yaml:"statuses"`
}

// StatusMapping replaces one upstream status, or a class of them.
type StatusMapping struct {
	// From is the upstream status to replace: a code such as 404 or a
	// class such as 5xx (2xx–5xx). 1xx and 304 cannot be mapped.
	From string `yaml:"from"`
	// To is the status sent instead, 200–599.
	To int `yaml:"to"`
	// Body, when set, replaces the upstream body (and its Content-*
	// headers, ETag and Last-Modified), e.g. '{"items": []}'; it is sent
	// as it is, never transformed. When unset, the upstream body is kept.
	Body string `yaml:"body"`
	// ContentType is the Content-Type of Body; default application/json,
	// in which case Body must be valid JSON.
	ContentType string `yaml:"content_type"`
}

// Provision fills the defaults and compiles the programs, the status
// tables and the mapped bodies.
func (b *BodyTransform) Provision(plugin.Context) error {
	b.maxBody = int64(b.MaxBody)
	if b.MaxBody == 0 {
		b.maxBody = DefaultMaxBody
	}
	b.timeout = b.Timeout.D()
	if b.Timeout == 0 {
		b.timeout = DefaultTimeout
	}
	b.passOver = b.OnOversize == policyPass
	b.passBad = b.OnInvalid == policyPass
	var errs []error
	if b.Request != nil {
		side, err := compileRequest(b.Request)
		if err != nil {
			errs = append(errs, err)
		}
		b.req = side
	}
	if b.Response != nil {
		side, err := compileResponse(b.Response)
		if err != nil {
			errs = append(errs, err)
		}
		b.resp = side
	}
	errs = append(errs, b.compileStatusMap()...)
	b.wrapWriter = b.resp != nil || len(b.mappings) > 0
	return errors.Join(errs...)
}

// Validate checks the settings Provision does not compile.
func (b *BodyTransform) Validate() error {
	var errs []error
	if b.Request == nil && b.Response == nil && len(b.StatusMap) == 0 {
		errs = append(errs, errors.New("nothing to do: configure at least one of request, response and status_map"))
	}
	if b.MaxBody < 0 || b.MaxBody > MaxMaxBody {
		errs = append(errs, fmt.Errorf("max_body must be between 1 byte and 64MiB, e.g. 1MiB; got %d", b.MaxBody))
	}
	if b.Timeout < 0 || b.Timeout.D() > MaxTimeout {
		errs = append(errs, fmt.Errorf("timeout must be between 1ns and %s, e.g. 100ms; got %s", MaxTimeout, b.Timeout.D()))
	}
	for _, p := range []struct{ field, v string }{{"on_oversize", b.OnOversize}, {"on_invalid", b.OnInvalid}} {
		if p.v != "" && p.v != policyReject && p.v != policyPass {
			errs = append(errs, fmt.Errorf("%s must be reject or pass; got %q", p.field, p.v))
		}
	}
	return errors.Join(errs...)
}

// Wrap returns the transforming handler.
func (b *BodyTransform) Wrap(next http.Handler) http.Handler {
	return &handler{b: b, next: next}
}

// Interface guards.
var (
	_ plugin.Plugin    = (*BodyTransform)(nil)
	_ plugin.Validator = (*BodyTransform)(nil)
)
