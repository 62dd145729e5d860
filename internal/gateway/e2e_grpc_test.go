package gateway_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/steps"
)

// e2eGRPCMaxMsg is the message size limit of the test backend and clients,
// above the 4 MiB gRPC default so a 4 MiB payload plus framing fits.
const e2eGRPCMaxMsg = 16 << 20

// e2eGRPCHooks lets one subtest observe and steer the backend's handling of
// its calls; calls carry the hooks' key in the "x-test-id" metadata.
type e2eGRPCHooks struct {
	// gate, when set, holds StreamingOutputCall after its first message
	// until it is closed.
	gate chan struct{}
	// entered receives, for a sleeping UnaryCall, how far away the server
	// context's deadline was when the handler started (0: no deadline).
	entered chan time.Duration
	// ended receives the server context's error when a sleeping UnaryCall
	// is cut short (nil when it slept to the end).
	ended chan error
}

// e2eGRPCBackend is a plain-text (h2c) gRPC TestService.
//
//   - EmptyCall answers with an empty message.
//   - UnaryCall echoes the request payload, answers with the status in
//     response_status when it is set, and sleeps for the "x-sleep" metadata
//     duration (cut short by the context). It sets the "x-backend" and
//     "x-echo-user" (the request's "x-user") headers and the "x-trailer"
//     trailer. fill_server_id fills server_id with the backend's name.
//   - StreamingOutputCall sends one message per response parameter, of the
//     requested size, then ends with response_status.
//   - StreamingInputCall sums the request payload sizes.
//   - FullDuplexCall answers each request at once with its payload.
type e2eGRPCBackend struct {
	grpc_testing.UnimplementedTestServiceServer
	name  string
	addr  string
	srv   *grpc.Server
	hooks sync.Map // x-test-id → *e2eGRPCHooks
}

// e2eGRPCStartBackend serves a TestService on 127.0.0.1 until the test ends.
func e2eGRPCStartBackend(t testing.TB, name string) *e2eGRPCBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &e2eGRPCBackend{
		name: name,
		addr: ln.Addr().String(),
		srv:  grpc.NewServer(grpc.MaxRecvMsgSize(e2eGRPCMaxMsg), grpc.MaxSendMsgSize(e2eGRPCMaxMsg)),
	}
	grpc_testing.RegisterTestServiceServer(b.srv, b)
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.srv.Stop)
	return b
}

// url is the backend's target URL for the gateway config.
func (b *e2eGRPCBackend) url() string { return "http://" + b.addr }

// hooksFor registers hooks under a fresh key and returns the key.
func (b *e2eGRPCBackend) hooksFor(t testing.TB, h *e2eGRPCHooks) string {
	id := fmt.Sprintf("%s-%p", t.Name(), h)
	b.hooks.Store(id, h)
	t.Cleanup(func() { b.hooks.Delete(id) })
	return id
}

func (b *e2eGRPCBackend) hooksOf(ctx context.Context) *e2eGRPCHooks {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-test-id"); len(v) > 0 {
		if h, ok := b.hooks.Load(v[0]); ok {
			return h.(*e2eGRPCHooks)
		}
	}
	return &e2eGRPCHooks{}
}

func (b *e2eGRPCBackend) EmptyCall(ctx context.Context, _ *grpc_testing.Empty) (*grpc_testing.Empty, error) {
	return &grpc_testing.Empty{}, nil
}

func (b *e2eGRPCBackend) UnaryCall(ctx context.Context, req *grpc_testing.SimpleRequest) (*grpc_testing.SimpleResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	user := strings.Join(md.Get("x-user"), ",")
	if err := grpc.SetHeader(ctx, metadata.Pairs("x-backend", b.name, "x-echo-user", user)); err != nil {
		return nil, err
	}
	if err := grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "done-"+user)); err != nil {
		return nil, err
	}
	if v := md.Get("x-sleep"); len(v) > 0 {
		d, err := time.ParseDuration(v[0])
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "x-sleep: %v", err)
		}
		h := b.hooksOf(ctx)
		var left time.Duration
		if dl, ok := ctx.Deadline(); ok {
			left = time.Until(dl)
		}
		if h.entered != nil {
			h.entered <- left
		}
		var ctxErr error
		select {
		case <-time.After(d):
		case <-ctx.Done():
			ctxErr = ctx.Err()
		}
		if h.ended != nil {
			h.ended <- ctxErr
		}
		if ctxErr != nil {
			return nil, status.FromContextError(ctxErr).Err()
		}
	}
	if rs := req.GetResponseStatus(); rs != nil && rs.GetCode() != 0 {
		return nil, status.Error(codes.Code(rs.GetCode()), rs.GetMessage())
	}
	resp := &grpc_testing.SimpleResponse{Payload: req.GetPayload()}
	if req.GetFillServerId() {
		resp.ServerId = b.name
	}
	return resp, nil
}

func (b *e2eGRPCBackend) StreamingOutputCall(req *grpc_testing.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[grpc_testing.StreamingOutputCallResponse]) error {
	ctx := stream.Context()
	h := b.hooksOf(ctx)
	for i, p := range req.GetResponseParameters() {
		body := bytes.Repeat([]byte{byte('a' + i)}, int(p.GetSize()))
		if err := stream.Send(&grpc_testing.StreamingOutputCallResponse{Payload: &grpc_testing.Payload{Body: body}}); err != nil {
			return err
		}
		if i == 0 && h.gate != nil {
			select {
			case <-h.gate:
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			case <-time.After(3 * time.Second):
				return status.Error(codes.FailedPrecondition, "the client never confirmed the first message")
			}
		}
	}
	if rs := req.GetResponseStatus(); rs != nil && rs.GetCode() != 0 {
		return status.Error(codes.Code(rs.GetCode()), rs.GetMessage())
	}
	return nil
}

func (b *e2eGRPCBackend) StreamingInputCall(stream grpc.ClientStreamingServer[grpc_testing.StreamingInputCallRequest, grpc_testing.StreamingInputCallResponse]) error {
	var n int32
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&grpc_testing.StreamingInputCallResponse{AggregatedPayloadSize: n})
		}
		if err != nil {
			return err
		}
		n += int32(len(req.GetPayload().GetBody()))
	}
}

func (b *e2eGRPCBackend) FullDuplexCall(stream grpc.BidiStreamingServer[grpc_testing.StreamingOutputCallRequest, grpc_testing.StreamingOutputCallResponse]) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&grpc_testing.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// e2eGRPCStart starts a gateway from the YAML server section server and
// vars, with one h2c upstream, grpc, whose target is be, and one route
// sending the TestService to it.
func e2eGRPCStart(t testing.TB, be *e2eGRPCBackend, server string, vars map[string]string) *testutil.Gateway {
	t.Helper()
	all := map[string]string{"BE": be.url()}
	maps.Copy(all, vars)
	return e2eStart(t, server+`
upstreams:
  grpc: {protocol: h2c, targets: [{url: "{{BE}}"}]}
routes:
  - {name: grpc, match: {path_prefix: /grpc.testing.TestService/}, upstream: grpc}
`, all)
}

// e2eGRPCDial connects a gRPC client to addr (host:port); the connection is
// closed when the test ends, before the gateway shuts down when the gateway
// was started first.
func e2eGRPCDial(t testing.TB, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(e2eGRPCMaxMsg), grpc.MaxCallSendMsgSize(e2eGRPCMaxMsg)),
	)
	if err != nil {
		t.Fatalf("grpc.NewClient(%s): %v", addr, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// e2eGRPCCtx is a context for one test call that ends with the test.
func e2eGRPCCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// e2eGRPCRandom returns n random bytes.
func e2eGRPCRandom(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// e2eGRPCWantCode fails the test unless err is a gRPC status with code want,
// and returns the status.
func e2eGRPCWantCode(t testing.TB, err error, want codes.Code) *status.Status {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want %v", want)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a gRPC status, want %v", err, want)
	}
	if st.Code() != want {
		t.Fatalf("code = %v (%q), want %v", st.Code(), st.Message(), want)
	}
	return st
}

// e2eGRPCRawUnary sends an empty gRPC message to url over HTTP/2 with prior
// knowledge, with the given extra headers and no deadline of the client's
// own, and returns the grpc-status and grpc-message it ends with (from the
// headers of a Trailers-Only response or from the trailers).
func e2eGRPCRawUnary(t testing.TB, url string, headers map[string]string) (code, msg string) {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	// One uncompressed, empty message: flag 0, length 0.
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(make([]byte, 5)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("read response body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP status %d, want 200 for a gRPC response", resp.StatusCode)
	}
	if code = resp.Header.Get("Grpc-Status"); code != "" {
		return code, resp.Header.Get("Grpc-Message")
	}
	return resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
}

// e2eGRPCClosedPort returns a 127.0.0.1 address nobody listens on, taken
// below the usual ephemeral port ranges (Linux 32768+, BSD and Windows
// 49152+) so that no listener bound to port 0 — such as another test's
// backend — is handed the same port while the test runs.
func e2eGRPCClosedPort(t testing.TB) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mathrand.IntN(10000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port found in 20000-29999")
	return ""
}

// e2eGRPCConfig routes the TestService to an h2c upstream; calls with
// "x-route: dead" go to a closed port and calls with "x-route: slow" to the
// same backend under a 200ms request timeout.
const e2eGRPCConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  grpc: {protocol: h2c, targets: [{url: "{{BE}}"}]}
  dead: {protocol: h2c, targets: [{url: "http://{{DEAD}}"}]}
  slow: {protocol: h2c, request_timeout: 200ms, targets: [{url: "{{BE}}"}]}
routes:
  - {name: grpc, match: {path_prefix: /grpc.testing.TestService/}, upstream: grpc}
  - {name: dead, match: {path_prefix: /grpc.testing.TestService/, headers: {x-route: dead}}, upstream: dead}
  - {name: slow, match: {path_prefix: /grpc.testing.TestService/, headers: {x-route: slow}}, upstream: slow}
`

func TestGRPCProxy(t *testing.T) {
	t.Parallel()
	be := e2eGRPCStartBackend(t, "be")
	tg := e2eStart(t, e2eGRPCConfig, map[string]string{"BE": be.url(), "DEAD": e2eGRPCClosedPort(t)})
	cc := e2eGRPCDial(t, e2eHostPort(tg.URL), nil)
	env := &e2eGRPCProxyEnv{
		be: be, url: tg.URL,
		client: grpc_testing.NewTestServiceClient(cc), unrouted: grpc_testing.NewUnimplementedServiceClient(cc),
	}
	steps.Parallel(t,
		steps.Step{Name: "unary echoes payload, metadata, headers and trailers", Run: env.unary},
		steps.Step{Name: "server streaming is not buffered", Run: env.serverStream},
		steps.Step{Name: "client streaming aggregates", Run: env.clientStream},
		steps.Step{Name: "bidirectional ping-pong", Run: env.pingPong},
		steps.Step{Name: "large message round-trips", Run: env.large},
		steps.Step{Name: "client deadline reaches the backend", Run: env.clientDeadline},
		steps.Step{Name: "grpc-timeout expiring at the backend is DeadlineExceeded", Run: env.grpcTimeout},
	)
	e2eGRPCProxyStatuses(t, env)
	e2eGRPCProxyGatewayErrors(t, env)
}

func TestGRPCOverTLS(t *testing.T) {
	t.Parallel()
	be := e2eGRPCStartBackend(t, "be")
	dir := t.TempDir()
	crt, key, cert := e2eSelfSigned(t, dir, "grpc", "grpc.test")
	tg := e2eGRPCStart(t, be, `
server:
  listen:
    - addr: "127.0.0.1:0"
      tls: {certificates: [{cert_file: "{{CRT}}", key_file: "{{KEY}}"}]}
`, map[string]string{"CRT": crt, "KEY": key})
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := grpc_testing.NewTestServiceClient(e2eGRPCDial(t, e2eHostPort(tg.URL), credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "grpc.test"})))

	t.Run("unary", func(t *testing.T) {
		t.Parallel()
		ctx := metadata.AppendToOutgoingContext(e2eGRPCCtx(t, 5*time.Second), "x-user", "bob")
		want := e2eGRPCRandom(t, 64<<10)
		var trl metadata.MD
		resp, err := client.UnaryCall(ctx, &grpc_testing.SimpleRequest{Payload: &grpc_testing.Payload{Body: want}}, grpc.Trailer(&trl))
		if err != nil {
			t.Fatalf("UnaryCall over TLS: %v", err)
		}
		if !bytes.Equal(resp.GetPayload().GetBody(), want) {
			t.Error("payload not echoed over TLS")
		}
		if got := trl.Get("x-trailer"); len(got) != 1 || got[0] != "done-bob" {
			t.Errorf("trailer x-trailer = %q, want [done-bob]", got)
		}
	})

	t.Run("bidirectional", func(t *testing.T) {
		t.Parallel()
		var pings [][]byte
		for i := range 5 {
			pings = append(pings, fmt.Appendf(nil, "tls-%d", i))
		}
		e2eGRPCPingPong(t, client, 5*time.Second, pings)
	})
}

func TestGRPCBackendKilledDuringTraffic(t *testing.T) {
	t.Parallel()
	a := e2eGRPCStartBackend(t, "a")
	b := e2eGRPCStartBackend(t, "b")
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  grpc:
    protocol: h2c
    balancer: round_robin
    retry: {attempts: 2, on: [connect_failure]}
    targets: [{url: "{{A}}"}, {url: "{{B}}"}]
routes:
  - {name: grpc, match: {path_prefix: /grpc.testing.TestService/}, upstream: grpc}
`, map[string]string{"A": a.url(), "B": b.url()})
	client := grpc_testing.NewTestServiceClient(e2eGRPCDial(t, e2eHostPort(tg.URL), nil))

	const total, killAfter = 200, 50
	servedBy := map[string]int{}
	var failures []string
	for i := range total {
		if i == killAfter {
			a.srv.Stop()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := client.UnaryCall(ctx, &grpc_testing.SimpleRequest{FillServerId: true})
		cancel()
		if err != nil {
			failures = append(failures, fmt.Sprintf("call %d: %v", i, err))
			continue
		}
		id := resp.GetServerId()
		if i >= killAfter && id != "b" {
			t.Errorf("call %d after backend a stopped was served by %q", i, id)
		}
		servedBy[id]++
	}
	t.Logf("served %v, failed %d: %v", servedBy, len(failures), failures)
	if len(failures) > 1 {
		t.Errorf("%d calls failed after a backend was stopped, want at most 1:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if servedBy["a"] == 0 || servedBy["b"] == 0 {
		t.Errorf("calls before the stop were not spread over both backends: %v", servedBy)
	}
	if got := servedBy["a"] + servedBy["b"] + len(failures); got != total {
		t.Errorf("accounted for %d calls, want %d: %v", got, total, servedBy)
	}
}
