package gateway_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
)

// trSpan is one exported span, flattened for assertions.
type trSpan struct {
	Name, Service           string
	Kind                    tracepb.Span_SpanKind
	TraceID, SpanID, Parent string
	Attrs                   map[string]any
	Status                  tracepb.Status_StatusCode
	Events                  []string
}

// trSink collects the spans an OTLP receiver was sent.
type trSink struct {
	mu    sync.Mutex
	spans []trSpan
	// headers are the metadata/headers of the last export request.
	headers http.Header
}

func (s *trSink) add(req *collectortrace.ExportTraceServiceRequest, h http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers = h
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				out := trSpan{
					Name: sp.GetName(), Service: service, Kind: sp.GetKind(),
					TraceID: hex.EncodeToString(sp.GetTraceId()), SpanID: hex.EncodeToString(sp.GetSpanId()),
					Parent: hex.EncodeToString(sp.GetParentSpanId()), Attrs: map[string]any{},
					Status: sp.GetStatus().GetCode(),
				}
				for _, kv := range sp.GetAttributes() {
					out.Attrs[kv.GetKey()] = trValue(kv.GetValue())
				}
				for _, ev := range sp.GetEvents() {
					out.Events = append(out.Events, ev.GetName())
				}
				s.spans = append(s.spans, out)
			}
		}
	}
}

func trValue(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	}
	return v.String()
}

func (s *trSink) all() []trSpan {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]trSpan(nil), s.spans...)
}

// trHTTPReceiver starts an OTLP/HTTP collector (protobuf POST /v1/traces).
func trHTTPReceiver(t *testing.T) (*trSink, string) {
	t.Helper()
	sink := &trSink{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "unsupported content type "+ct, http.StatusUnsupportedMediaType)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sink.add(&req, r.Header.Clone())
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return sink, strings.TrimPrefix(srv.URL, "http://")
}

// trGRPCCollector is an OTLP/gRPC TraceService.
type trGRPCCollector struct {
	collectortrace.UnimplementedTraceServiceServer
	sink *trSink
}

func (c *trGRPCCollector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.sink.add(req, nil)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// trGRPCReceiver starts an OTLP/gRPC collector.
func trGRPCReceiver(t *testing.T) (*trSink, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &trSink{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, &trGRPCCollector{sink: sink})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return sink, ln.Addr().String()
}

// trBackend is an upstream that remembers the traceparent of every request.
type trBackend struct {
	*httptest.Server
	mu     sync.Mutex
	parent []string
	state  []string
}

func trNewBackend(t *testing.T) *trBackend {
	b := &trBackend{}
	b.Server = testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.parent = append(b.parent, r.Header.Get("Traceparent"))
		b.state = append(b.state, r.Header.Get("Tracestate"))
		b.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	return b
}

func (b *trBackend) traceparents() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.parent...)
}

// trGateway is a gateway with its own client, so its connections can be
// closed before the shutdown that flushes the spans.
type trGateway struct {
	*testutil.Gateway
	client *http.Client
}

func trStart(t *testing.T, yaml string, vars map[string]string) *trGateway {
	t.Helper()
	for k, v := range vars {
		yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", v)
	}
	return &trGateway{Gateway: testutil.StartGateway(t, yaml), client: testutil.Client()}
}

// get sends a GET with the given headers and expects 200.
func (g *trGateway) get(t *testing.T, path string, headers map[string]string) *http.Response {
	t.Helper()
	return g.getStatus(t, path, headers, http.StatusOK)
}

// getStatus sends a GET with the given headers and expects status want.
func (g *trGateway) getStatus(t *testing.T, path string, headers map[string]string, want int) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, want)
	}
	return resp
}

// shutdown stops the gateway, which flushes its tracer provider.
func (g *trGateway) shutdown(t *testing.T) {
	t.Helper()
	g.client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func trByKind(spans []trSpan, kind tracepb.Span_SpanKind) []trSpan {
	var out []trSpan
	for _, s := range spans {
		if s.Kind == kind {
			out = append(out, s)
		}
	}
	return out
}

func trWantAttr(t *testing.T, s trSpan, key string, want any) {
	t.Helper()
	if got, ok := s.Attrs[key]; !ok || got != want {
		t.Errorf("span %q: %s = %v (present %v), want %v", s.Name, key, got, ok, want)
	}
}

// trParent splits a traceparent into trace ID, parent span ID and flags.
func trParent(t *testing.T, tp string) (traceID, spanID, flags string) {
	t.Helper()
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		t.Fatalf("malformed traceparent %q", tp)
	}
	return parts[1], parts[2], parts[3]
}

const trConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
tracing: {exporter: {{EXPORTER}}, endpoint: "{{COLLECTOR}}", insecure: true, sampler: {{SAMPLER}}, ratio: {{RATIO}}, service_name: portico-test, headers: {x-collector-token: secret}}
upstreams:
  api: {targets: [{url: "{{BACKEND}}"}]}
routes:
  - {name: users, match: {path_prefix: /users}, upstream: api}
`

func trVars(exporter, collector, sampler, ratio, backend string) map[string]string {
	return map[string]string{"EXPORTER": exporter, "COLLECTOR": collector, "SAMPLER": sampler, "RATIO": ratio, "BACKEND": backend}
}

// trCheckProxied checks one proxied request's server span, its single
// attempt span and the traceparent the backend received.
func trCheckProxied(t *testing.T, spans []trSpan, be *trBackend, beHost string) {
	t.Helper()
	servers, clients := trByKind(spans, tracepb.Span_SPAN_KIND_SERVER), trByKind(spans, tracepb.Span_SPAN_KIND_CLIENT)
	if len(servers) != 1 || len(clients) != 1 || len(spans) != 2 {
		t.Fatalf("spans = %+v, want one server and one client span", spans)
	}
	srv, cli := servers[0], clients[0]
	if srv.Name != "GET users" {
		t.Errorf("server span name = %q, want \"GET users\"", srv.Name)
	}
	if srv.Service != "portico-test" {
		t.Errorf("service.name = %q, want portico-test", srv.Service)
	}
	if srv.Parent != "" {
		t.Errorf("server span has parent %q, want a root span", srv.Parent)
	}
	trWantAttr(t, srv, "http.request.method", "GET")
	trWantAttr(t, srv, "url.path", "/users/42")
	trWantAttr(t, srv, "http.route", "users")
	trWantAttr(t, srv, "http.response.status_code", int64(200))
	trWantAttr(t, srv, "client.address", "127.0.0.1")
	trWantAttr(t, srv, "server.address", "127.0.0.1")
	trWantAttr(t, srv, "user_agent.original", "trace-test/1.0")
	trWantAttr(t, srv, "portico.request_id", "req-trace-1")
	if _, ok := srv.Attrs["portico.consumer"]; ok {
		t.Errorf("portico.consumer set on an unauthenticated request")
	}
	if srv.Status == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("server span status is Error for a 200")
	}

	if cli.Name != "upstream api" {
		t.Errorf("client span name = %q, want \"upstream api\"", cli.Name)
	}
	if cli.TraceID != srv.TraceID || cli.Parent != srv.SpanID {
		t.Errorf("client span trace/parent = %s/%s, want %s/%s", cli.TraceID, cli.Parent, srv.TraceID, srv.SpanID)
	}
	host, port, _ := net.SplitHostPort(beHost)
	trWantAttr(t, cli, "server.address", host)
	var wantPort int64
	fmt.Sscan(port, &wantPort)
	trWantAttr(t, cli, "server.port", wantPort)
	trWantAttr(t, cli, "portico.attempt", int64(1))
	trWantAttr(t, cli, "http.response.status_code", int64(200))

	tps := be.traceparents()
	if len(tps) != 1 {
		t.Fatalf("backend saw %d requests, want 1", len(tps))
	}
	tid, pid, flags := trParent(t, tps[0])
	if tid != srv.TraceID || pid != cli.SpanID || flags != "01" {
		t.Errorf("backend traceparent %q, want trace %s, parent %s (the attempt span), sampled", tps[0], srv.TraceID, cli.SpanID)
	}
}

func TestTracingProxiedRequestHTTP(t *testing.T) {
	sink, collector := trHTTPReceiver(t)
	be := trNewBackend(t)
	g := trStart(t, trConfig, trVars("otlp_http", collector, "always", "1", be.URL))
	g.get(t, "/users/42?q=1", map[string]string{"User-Agent": "trace-test/1.0", "X-Request-Id": "req-trace-1"})
	g.shutdown(t)
	trCheckProxied(t, sink.all(), be, strings.TrimPrefix(be.URL, "http://"))
	sink.mu.Lock()
	tok := sink.headers.Get("X-Collector-Token")
	sink.mu.Unlock()
	if tok != "secret" {
		t.Errorf("exporter header x-collector-token = %q, want secret", tok)
	}
}

func TestTracingProxiedRequestGRPC(t *testing.T) {
	sink, collector := trGRPCReceiver(t)
	be := trNewBackend(t)
	g := trStart(t, trConfig, trVars("otlp_grpc", collector, "always", "1", be.URL))
	g.get(t, "/users/42", map[string]string{"User-Agent": "trace-test/1.0", "X-Request-Id": "req-trace-1"})
	g.shutdown(t)
	trCheckProxied(t, sink.all(), be, strings.TrimPrefix(be.URL, "http://"))
}

func TestTracingIncomingTraceparentIsParent(t *testing.T) {
	const (
		clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		clientSpan  = "00f067aa0ba902b7"
	)
	sink, collector := trHTTPReceiver(t)
	be := trNewBackend(t)
	g := trStart(t, trConfig, trVars("otlp_http", collector, "always", "1", be.URL))
	g.get(t, "/users/1", map[string]string{
		"Traceparent": "00-" + clientTrace + "-" + clientSpan + "-01",
		"Tracestate":  "vendor=abc",
	})
	g.shutdown(t)
	spans := sink.all()
	servers, clients := trByKind(spans, tracepb.Span_SPAN_KIND_SERVER), trByKind(spans, tracepb.Span_SPAN_KIND_CLIENT)
	if len(servers) != 1 || len(clients) != 1 {
		t.Fatalf("spans = %+v, want one server and one client span", spans)
	}
	srv, cli := servers[0], clients[0]
	if srv.TraceID != clientTrace || srv.Parent != clientSpan {
		t.Errorf("server span trace/parent = %s/%s, want %s/%s", srv.TraceID, srv.Parent, clientTrace, clientSpan)
	}
	if srv.SpanID == clientSpan {
		t.Errorf("server span reuses the client's span ID")
	}
	// The backend's parent is the gateway's attempt span, not the client's.
	tid, pid, _ := trParent(t, be.traceparents()[0])
	if tid != clientTrace || pid != cli.SpanID {
		t.Errorf("backend traceparent %s-%s, want %s-%s", tid, pid, clientTrace, cli.SpanID)
	}
	be.mu.Lock()
	state := be.state[0]
	be.mu.Unlock()
	if state != "vendor=abc" {
		t.Errorf("backend tracestate = %q, want the propagated vendor=abc", state)
	}
}

func TestTracingRetryAttemptsAreSiblings(t *testing.T) {
	sink, collector := trHTTPReceiver(t)
	be := trNewBackend(t)
	dead := e2eGRPCClosedPort(t)
	g := trStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
tracing: {exporter: otlp_http, endpoint: "{{COLLECTOR}}", insecure: true, sampler: always}
upstreams:
  api:
    balancer: round_robin
    targets: [{url: "http://{{DEAD}}"}, {url: "{{BACKEND}}"}]
    retry: {attempts: 1, on: [connect_failure]}
routes:
  - {name: users, match: {path_prefix: /users}, upstream: api}
`, map[string]string{"COLLECTOR": collector, "DEAD": dead, "BACKEND": be.URL})
	// Round robin sends one of the first two requests to the closed port
	// first.
	g.get(t, "/users/1", nil)
	g.get(t, "/users/2", nil)
	g.shutdown(t)
	spans := sink.all()
	var retried *trSpan
	for _, s := range trByKind(spans, tracepb.Span_SPAN_KIND_SERVER) {
		var attempts []trSpan
		for _, c := range trByKind(spans, tracepb.Span_SPAN_KIND_CLIENT) {
			if c.Parent == s.SpanID {
				attempts = append(attempts, c)
			}
		}
		if len(attempts) != 2 {
			continue
		}
		s := s
		retried = &s
		first, second := attempts[0], attempts[1]
		if first.Attrs["portico.attempt"] != int64(1) {
			first, second = second, first
		}
		trWantAttr(t, first, "portico.attempt", int64(1))
		trWantAttr(t, second, "portico.attempt", int64(2))
		for _, a := range attempts {
			if a.TraceID != s.TraceID {
				t.Errorf("attempt span trace %s, want %s", a.TraceID, s.TraceID)
			}
		}
		deadHost, deadPort, _ := net.SplitHostPort(dead)
		var p int64
		fmt.Sscan(deadPort, &p)
		trWantAttr(t, first, "server.address", deadHost)
		trWantAttr(t, first, "server.port", p)
		trWantAttr(t, first, "error.type", "connect_failure")
		if first.Status != tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("failed attempt status = %v, want Error", first.Status)
		}
		if len(first.Events) == 0 || first.Events[0] != "exception" {
			t.Errorf("failed attempt events = %v, want the recorded error", first.Events)
		}
		if _, ok := first.Attrs["http.response.status_code"]; ok {
			t.Errorf("failed attempt has a response status")
		}
		trWantAttr(t, second, "http.response.status_code", int64(200))
		if second.Status == tracepb.Status_STATUS_CODE_ERROR {
			t.Errorf("successful attempt status is Error")
		}
		trWantAttr(t, s, "http.response.status_code", int64(200))
	}
	if retried == nil {
		t.Fatalf("no server span with two attempt spans: %+v", spans)
	}
	// The backend's traceparent names the second (successful) attempt.
	found := false
	for _, tp := range be.traceparents() {
		tid, pid, _ := trParent(t, tp)
		for _, c := range trByKind(spans, tracepb.Span_SPAN_KIND_CLIENT) {
			if tid == retried.TraceID && c.SpanID == pid && c.Attrs["portico.attempt"] == int64(2) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("backend never saw the retried request's second attempt as parent: %v", be.traceparents())
	}
}

func TestTracingSamplerNever(t *testing.T) {
	sink, collector := trHTTPReceiver(t)
	be := trNewBackend(t)
	g := trStart(t, trConfig, trVars("otlp_http", collector, "never", "1", be.URL))
	for i := range 3 {
		g.get(t, fmt.Sprintf("/users/%d", i), nil)
	}
	g.shutdown(t)
	if spans := sink.all(); len(spans) != 0 {
		t.Fatalf("sampler never exported %d spans: %+v", len(spans), spans)
	}
	// The backend is still handed a (not sampled) trace context.
	for _, tp := range be.traceparents() {
		if _, _, flags := trParent(t, tp); flags != "00" {
			t.Errorf("backend traceparent %q, want flags 00", tp)
		}
	}
}

func TestTracingParentRatioFollowsIncomingSampled(t *testing.T) {
	const clientTrace = "0af7651916cd43dd8448eb211c80319c"
	sink, collector := trHTTPReceiver(t)
	be := trNewBackend(t)
	g := trStart(t, trConfig, trVars("otlp_http", collector, "parent_ratio", "0", be.URL))
	g.get(t, "/users/1", map[string]string{"Traceparent": "00-" + clientTrace + "-b7ad6b7169203331-01"})
	g.get(t, "/users/2", nil) // no parent: ratio 0 drops it
	g.get(t, "/users/3", map[string]string{"Traceparent": "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-00"})
	g.shutdown(t)
	spans := sink.all()
	if len(spans) != 2 {
		t.Fatalf("exported %d spans, want the server and attempt span of the sampled request: %+v", len(spans), spans)
	}
	for _, s := range spans {
		if s.TraceID != clientTrace {
			t.Errorf("span %q in trace %s, want %s", s.Name, s.TraceID, clientTrace)
		}
	}
}

func TestTracingAccessLogTraceID(t *testing.T) {
	sink, collector := trHTTPReceiver(t)
	be := trNewBackend(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	g := trStart(t, trConfig+"\nlog: {access: {output: \""+logPath+"\", format: json}}\n",
		trVars("otlp_http", collector, "always", "1", be.URL))
	g.get(t, "/users/7", nil)
	g.getStatus(t, "/nowhere-x", nil, http.StatusNotFound)
	g.shutdown(t)
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := map[string]map[string]any{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("access log line %q: %v", sc.Text(), err)
		}
		p, _ := m["path"].(string)
		lines[p] = m
	}
	servers := trByKind(sink.all(), tracepb.Span_SPAN_KIND_SERVER)
	if len(servers) != 2 {
		t.Fatalf("server spans = %+v, want 2", servers)
	}
	for _, s := range servers {
		path, _ := s.Attrs["url.path"].(string)
		line, ok := lines[path]
		if !ok {
			t.Errorf("no access log line for %s: %v", path, lines)
			continue
		}
		if line["trace_id"] != s.TraceID || line["span_id"] != s.SpanID {
			t.Errorf("access log %s trace_id/span_id = %v/%v, want %s/%s", path, line["trace_id"], line["span_id"], s.TraceID, s.SpanID)
		}
	}
	for _, s := range servers {
		if s.Attrs["url.path"] == "/nowhere-x" && s.Name != "GET unmatched" {
			t.Errorf("unmatched request span name = %q, want \"GET unmatched\"", s.Name)
		}
	}
}

func TestTracingOffLeavesRequestsAlone(t *testing.T) {
	be := trNewBackend(t)
	logPath := filepath.Join(t.TempDir(), "access.log")
	g := trStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  api: {targets: [{url: "{{BACKEND}}"}]}
routes:
  - {name: users, match: {path_prefix: /users}, upstream: api}
log: {access: {output: "{{LOG}}", format: json}}
`, map[string]string{"BACKEND": be.URL, "LOG": logPath})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	g.get(t, "/users/1", map[string]string{"Traceparent": tp})
	g.shutdown(t)
	if got := be.traceparents(); len(got) != 1 || got[0] != tp {
		t.Errorf("backend traceparent = %q, want the client's unchanged", got)
	}
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "trace_id") || !strings.Contains(string(data), `"route":"users"`) {
		t.Errorf("access log with tracing off = %s", data)
	}
}

func TestTracingConfigValidation(t *testing.T) {
	cases := []struct{ yaml, path string }{
		{`tracing: {exporter: zipkin}`, "tracing.exporter"},
		{`tracing: {exporter: otlp_http, endpoint: "http://collector:4318/v1/traces"}`, "tracing.endpoint"},
		{`tracing: {exporter: otlp_grpc, endpoint: "collector"}`, "tracing.endpoint"},
		{`tracing: {exporter: otlp_http, sampler: sometimes}`, "tracing.sampler"},
		{`tracing: {exporter: otlp_http, ratio: 1.5}`, "tracing.ratio"},
		{`tracing: {exporter: otlp_http, ratio: -0.1}`, "tracing.ratio"},
	}
	for _, c := range cases {
		_, err := config.Parse([]byte(c.yaml), "test", func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: error %v, want one at %s", c.yaml, err, c.path)
		}
	}
	cfg, err := config.Parse([]byte(`tracing: {exporter: otlp_grpc}`), "test", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	tr := cfg.Tracing
	if tr.Endpoint != "localhost:4317" || tr.Sampler != "parent_ratio" || *tr.Ratio != 1 || tr.ServiceName != "portico" || tr.Insecure {
		t.Errorf("defaults = %+v", *tr)
	}
	cfg, err = config.Parse([]byte(`tracing: {}`), "test", func(string) (string, bool) { return "", false })
	if err != nil || cfg.Tracing.Exporter != "none" {
		t.Errorf("empty tracing: %v, exporter %q, want none", err, cfg.Tracing.Exporter)
	}
}

func TestTracingConsumerAndErrorStatus(t *testing.T) {
	sink, collector := trHTTPReceiver(t)
	be := trNewBackend(t)
	g := trStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
tracing: {exporter: otlp_http, endpoint: "{{COLLECTOR}}", insecure: true}
consumers:
  - {name: alice, credentials: {key_auth: [{key: alice-key-123456}]}}
upstreams:
  api: {targets: [{url: "{{BACKEND}}"}]}
  dead: {targets: [{url: "http://{{DEAD}}"}], retry: {attempts: 0}}
routes:
  - {name: users, match: {path_prefix: /users}, upstream: api, plugins: [{name: key_auth}]}
  - {name: broken, match: {path_prefix: /broken}, upstream: dead}
`, map[string]string{"COLLECTOR": collector, "BACKEND": be.URL, "DEAD": e2eGRPCClosedPort(t)})
	g.get(t, "/users/1", map[string]string{"X-API-Key": "alice-key-123456"})
	g.getStatus(t, "/broken", nil, http.StatusBadGateway)
	g.shutdown(t)
	var users, broken *trSpan
	for _, s := range trByKind(sink.all(), tracepb.Span_SPAN_KIND_SERVER) {
		switch s.Name {
		case "GET users":
			users = &s
		case "GET broken":
			broken = &s
		}
	}
	if users == nil || broken == nil {
		t.Fatalf("server spans = %+v", sink.all())
	}
	trWantAttr(t, *users, "portico.consumer", "alice")
	trWantAttr(t, *broken, "http.response.status_code", int64(502))
	if broken.Status != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("502 server span status = %v, want Error", broken.Status)
	}
	if _, ok := broken.Attrs["portico.consumer"]; ok {
		t.Errorf("portico.consumer on an unauthenticated request")
	}
}

// BenchmarkServeRespondTraced is BenchmarkServeRespond's direct response
// with tracing on, sampled and not, exporting to an in-process collector.
func BenchmarkServeRespondTraced(b *testing.B) {
	for _, sampler := range []string{"always", "never"} {
		b.Run(sampler, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			}))
			defer srv.Close()
			rt := gateway.NewRuntime(testutil.Logger(b))
			cfg := testutil.ParseConfig(b, `
server: {listen: [{addr: "127.0.0.1:0"}]}
tracing: {exporter: otlp_http, endpoint: "`+strings.TrimPrefix(srv.URL, "http://")+`", insecure: true, sampler: `+sampler+`}
log: {access: {output: "off"}}
routes:
  - {name: bench, match: {path: "/bench/{id}"}, respond: {body: ok}}
`)
			if err := rt.Apply(cfg); err != nil {
				b.Fatal(err)
			}
			defer rt.Close()
			benchServe(b, rt, "/bench/123")
		})
	}
}
