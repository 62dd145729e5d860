// Package tracing builds the OpenTelemetry tracer provider of a config and
// gives the gateway and the proxy the two spans they record: a server span
// per request and a client span per upstream attempt. Spans are exported
// over OTLP (HTTP or gRPC) by a batch span processor with a bounded queue,
// so a slow or absent collector drops spans and never delays a request.
//
// A nil *Provider means tracing is off; the zero Request does nothing.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/portico-gw/portico/internal/config"
)

// ScopeName is the instrumentation scope of Portico's spans.
const ScopeName = "github.com/portico-gw/portico"

// Queue and export bounds of the batch span processor.
const (
	maxQueueSize  = 4096
	maxBatchSize  = 512
	batchTimeout  = 2 * time.Second
	exportTimeout = 10 * time.Second
	// ShutdownTimeout bounds flushing the queue when a provider is retired.
	ShutdownTimeout = 5 * time.Second
)

// Provider is the tracer provider of one config: its exporter, sampler and
// the W3C trace-context propagator.
type Provider struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	prop   propagation.TraceContext
	logger *slog.Logger
}

// New builds the provider described by c. It returns nil, nil when tracing
// is off (c nil or exporter "none"). Building does not contact the
// collector.
func New(c *config.Tracing, logger *slog.Logger) (*Provider, error) {
	if c == nil || c.Exporter == "" || c.Exporter == "none" {
		return nil, nil
	}
	if logger == nil {
		logger = slog.Default()
	}
	setErrorLogger(logger)
	exp, err := newExporter(c)
	if err != nil {
		return nil, err
	}
	ratio := 1.0
	if c.Ratio != nil {
		ratio = *c.Ratio
	}
	var sampler sdktrace.Sampler
	switch c.Sampler {
	case "always":
		sampler = sdktrace.AlwaysSample()
	case "never":
		sampler = sdktrace.NeverSample()
	case "ratio":
		sampler = sdktrace.TraceIDRatioBased(ratio)
	case "", "parent_ratio":
		sampler = sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	default:
		_ = exp.Shutdown(context.Background())
		return nil, fmt.Errorf("unknown sampler %q", c.Sampler)
	}
	name := c.ServiceName
	if name == "" {
		name = "portico"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", name)))
	if err != nil {
		// A schema conflict still yields a usable merged resource.
		res = resource.NewSchemaless(attribute.String("service.name", name))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exp,
			sdktrace.WithMaxQueueSize(maxQueueSize),
			sdktrace.WithMaxExportBatchSize(maxBatchSize),
			sdktrace.WithBatchTimeout(batchTimeout),
			sdktrace.WithExportTimeout(exportTimeout),
		),
	)
	return &Provider{tp: tp, tracer: tp.Tracer(ScopeName), logger: logger}, nil
}

func newExporter(c *config.Tracing) (sdktrace.SpanExporter, error) {
	ctx := context.Background()
	switch c.Exporter {
	case "otlp_http":
		return otlptracehttp.New(ctx, exporterOptions(c, otlptracehttp.WithEndpoint, otlptracehttp.WithTimeout,
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig(exportRetry)), otlptracehttp.WithInsecure, otlptracehttp.WithHeaders)...)
	case "otlp_grpc":
		return otlptracegrpc.New(ctx, exporterOptions(c, otlptracegrpc.WithEndpoint, otlptracegrpc.WithTimeout,
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig(exportRetry)), otlptracegrpc.WithInsecure, otlptracegrpc.WithHeaders)...)
	}
	return nil, fmt.Errorf("unknown exporter %q", c.Exporter)
}

// exportRetry is the retry policy of both OTLP clients.
var exportRetry = struct {
	Enabled                                      bool
	InitialInterval, MaxInterval, MaxElapsedTime time.Duration
}{true, time.Second, 5 * time.Second, 15 * time.Second}

// exporterOptions builds the options of an OTLP client (O is its option
// type) from the tracing config: endpoint, export timeout, retry, and the
// insecure flag and headers when set.
func exporterOptions[O any](c *config.Tracing, endpoint func(string) O, timeout func(time.Duration) O, retry O,
	insecure func() O, headers func(map[string]string) O) []O {
	opts := []O{endpoint(c.Endpoint), timeout(exportTimeout), retry}
	if c.Insecure {
		opts = append(opts, insecure())
	}
	if len(c.Headers) > 0 {
		opts = append(opts, headers(c.Headers))
	}
	return opts
}

// errLogger receives the SDK's asynchronous errors (failed exports). The
// handler is process-wide in OpenTelemetry, so the latest provider's logger
// wins.
var (
	errLogger     atomic.Pointer[slog.Logger]
	errOnce       sync.Once
	errNext       atomic.Int64 // unix nanos before which lines are suppressed
	errSuppressed atomic.Int64
)

// errInterval is how often a failing export may log a line.
const errInterval = 10 * time.Second

// RouteErrors sends OpenTelemetry's asynchronous errors (failed exports) to
// l as structured WARN lines with "dependency":"opentelemetry", at most one
// per 10 s (the next carries how many were suppressed). It is called at
// start-up, before any provider exists; New routes them too.
func RouteErrors(l *slog.Logger) { setErrorLogger(l) }

func setErrorLogger(l *slog.Logger) {
	// A new logger starts a new rate window.
	errNext.Store(0)
	errSuppressed.Store(0)
	errLogger.Store(l)
	errOnce.Do(func() { otel.SetErrorHandler(otel.ErrorHandlerFunc(handleError)) })
}

func handleError(err error) {
	l := errLogger.Load()
	if l == nil || err == nil {
		return
	}
	now := time.Now().UnixNano()
	next := errNext.Load()
	if now < next || !errNext.CompareAndSwap(next, now+int64(errInterval)) {
		errSuppressed.Add(1)
		return
	}
	attrs := []slog.Attr{slog.String("dependency", "opentelemetry"), slog.String("error", err.Error())}
	if n := errSuppressed.Swap(0); n > 0 {
		attrs = append(attrs, slog.Int64("suppressed", n))
	}
	l.LogAttrs(context.Background(), slog.LevelWarn, "tracing export failed", attrs...)
}

// Shutdown flushes queued spans and stops the exporter, giving up when ctx
// ends. It is safe on a nil provider.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// ForceFlush exports every queued span now.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.ForceFlush(ctx)
}

// StartServer starts the server span of r. An incoming W3C traceparent (and
// tracestate) is used only as the span's parent. The returned context
// carries the span; the Request is what the record keeps.
func (p *Provider) StartServer(ctx context.Context, r *http.Request, clientIP, peer netip.Addr, requestID string) (context.Context, Request) {
	ctx = p.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	ctx, span := p.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		// Not sampled: the span only carries IDs for the access log and the
		// upstream's traceparent.
		return ctx, Request{p: p, span: span}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs,
		attribute.String("http.request.method", r.Method),
		attribute.String("url.scheme", scheme),
		attribute.String("portico.request_id", requestID),
	)
	if host, port := splitHostPort(r.Host); host != "" {
		attrs = append(attrs, attribute.String("server.address", host))
		if port > 0 {
			attrs = append(attrs, attribute.Int("server.port", port))
		}
	}
	if clientIP.IsValid() {
		attrs = append(attrs, attribute.String("client.address", clientIP.String()))
	}
	if peer.IsValid() {
		attrs = append(attrs, attribute.String("network.peer.address", peer.String()))
	}
	if ua := r.UserAgent(); ua != "" {
		attrs = append(attrs, attribute.String("user_agent.original", ua))
	}
	span.SetAttributes(attrs...)
	return ctx, Request{p: p, span: span}
}

// Request is the tracing state of one request. The zero value (tracing
// off) does nothing.
type Request struct {
	p    *Provider
	span trace.Span
}

// On reports whether the request is traced (sampled or not).
func (t *Request) On() bool { return t.span != nil }

// SpanContext is the server span's identity (invalid when off).
func (t *Request) SpanContext() trace.SpanContext {
	if t.span == nil {
		return trace.SpanContext{}
	}
	return t.span.SpanContext()
}

// EndServer names the server span after the route ("GET users";
// "GET unmatched" when no route matched), records the outcome and ends it.
// consumer is the authenticated consumer's name ("" when none).
func (t *Request) EndServer(method, route, path string, status int, consumer, errMsg string) {
	sp := t.span
	if sp == nil {
		return
	}
	if !sp.IsRecording() {
		sp.End()
		return
	}
	if route == "" {
		sp.SetName(method + " unmatched")
	} else {
		sp.SetName(method + " " + route)
		sp.SetAttributes(attribute.String("http.route", route))
	}
	sp.SetAttributes(attribute.String("url.path", path), attribute.Int("http.response.status_code", status))
	if consumer != "" {
		sp.SetAttributes(attribute.String("portico.consumer", consumer))
	}
	if status >= 500 {
		sp.SetStatus(codes.Error, errMsg)
		sp.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
	}
	sp.End()
}

// Attempt is the client span of one upstream attempt.
type Attempt struct {
	span trace.Span
}

// StartAttempt starts the client span of attempt n (1-based) to target
// (host:port) of upstream, as a child of the server span, and writes its
// traceparent/tracestate into h, replacing any the client sent. With
// tracing off it does nothing and returns the zero Attempt.
func (t *Request) StartAttempt(ctx context.Context, upstream, target string, n int, h http.Header) Attempt {
	if t.span == nil {
		return Attempt{}
	}
	ctx = trace.ContextWithSpan(ctx, t.span)
	ctx, span := t.p.tracer.Start(ctx, "upstream "+upstream, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		host, port := splitHostPort(target)
		span.SetAttributes(
			attribute.String("server.address", host),
			attribute.Int("portico.attempt", n),
			attribute.String("portico.upstream", upstream),
		)
		if port > 0 {
			span.SetAttributes(attribute.Int("server.port", port))
		}
	}
	if h != nil {
		delete(h, "Traceparent")
		delete(h, "Tracestate")
		t.p.prop.Inject(ctx, propagation.HeaderCarrier(h))
	}
	return Attempt{span: span}
}

// End records the attempt's outcome (status 0 when there is no response)
// and ends its span.
func (a Attempt) End(status int, err error) {
	sp := a.span
	if sp == nil {
		return
	}
	if sp.IsRecording() {
		if status > 0 {
			sp.SetAttributes(attribute.Int("http.response.status_code", status))
			if status >= 400 {
				sp.SetStatus(codes.Error, "")
				sp.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
			}
		}
		if err != nil {
			sp.RecordError(err)
			sp.SetStatus(codes.Error, err.Error())
			sp.SetAttributes(attribute.String("error.type", errorType(err)))
		}
	}
	sp.End()
}

// errorType is a low-cardinality name for a transport error.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return "connect_failure"
	}
	return "_OTHER"
}

// splitHostPort splits "host[:port]" ("[v6]:port" included); port is 0 when
// absent or malformed.
func splitHostPort(hp string) (string, int) {
	if hp == "" {
		return "", 0
	}
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 0
	}
	port, _ := strconv.Atoi(ps)
	return host, port
}

// Close flushes and shuts the provider down within ShutdownTimeout, logging
// a failure. It is safe on a nil provider.
func (p *Provider) Close() {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := p.tp.Shutdown(ctx); err != nil {
		p.logger.Warn("tracing shutdown", "error", err)
	}
}
