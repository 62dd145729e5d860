package gateway_test

import (
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"

	"github.com/portico-gw/portico/internal/testutil/steps"
)

// e2eGRPCSplitConfig sends the TestService through a 50/50 split of two
// h2c upstreams (the same backend, each its own pool), with a mirror
// configured on a second route (gRPC calls are never copied).
const e2eGRPCSplitConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  a: {protocol: h2c, targets: [{url: "{{BE}}"}]}
  b: {protocol: h2c, targets: [{url: "{{BE}}"}]}
routes:
  - name: grpc
    match: {path_prefix: /grpc.testing.TestService/}
    split: {variants: [{upstream: a, weight: 1}, {upstream: b, weight: 1}], header: X-Portico-Variant}
  - name: api
    match: {path_prefix: /grpc.testing.TestService/, headers: {x-route: mirrored}}
    upstream: a
    mirror: {upstream: b, percent: 100}
`

// TestGRPCThroughSplit: unary, streaming and large gRPC calls behave the
// same through a split route's variants as through a plain route.
func TestGRPCThroughSplit(t *testing.T) {
	t.Parallel()
	be := e2eGRPCStartBackend(t, "be")
	tg := e2eStart(t, e2eGRPCSplitConfig, map[string]string{"BE": be.url()})
	cc := e2eGRPCDial(t, e2eHostPort(tg.URL), nil)
	env := &e2eGRPCProxyEnv{be: be, url: tg.URL, client: grpc_testing.NewTestServiceClient(cc)}
	t.Run("the split names the variant", func(t *testing.T) {
		var hdr metadata.MD
		if _, err := env.client.UnaryCall(e2eGRPCCtx(t, 5*time.Second), &grpc_testing.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
			t.Fatalf("UnaryCall: %v", err)
		}
		if v := hdr.Get("x-portico-variant"); len(v) != 1 || (v[0] != "a" && v[0] != "b") {
			t.Errorf("x-portico-variant = %q, want a or b", v)
		}
	})
	steps.Parallel(t,
		steps.Step{Name: "unary echoes payload, metadata, headers and trailers", Run: env.unary},
		steps.Step{Name: "server streaming is not buffered", Run: env.serverStream},
		steps.Step{Name: "client streaming aggregates", Run: env.clientStream},
		steps.Step{Name: "bidirectional ping-pong", Run: env.pingPong},
		steps.Step{Name: "large message round-trips", Run: env.large},
	)
	t.Run("a mirrored route forwards gRPC calls without copying them", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(e2eGRPCCtx(t, 5*time.Second), "x-route", "mirrored")
		for range 5 {
			var hdr metadata.MD
			if _, err := env.client.UnaryCall(ctx, &grpc_testing.SimpleRequest{}, grpc.Header(&hdr)); err != nil {
				t.Fatalf("UnaryCall: %v", err)
			}
			if v := hdr.Get("x-portico-variant"); len(v) != 0 {
				t.Fatalf("call went through the split route (variant %q), not the mirrored one", v)
			}
		}
		for _, result := range []string{"sent", "failed", "dropped", "too_large"} {
			if n := mirrorCount(tg, result); n != 0 {
				t.Errorf("mirror %s = %d, want 0: gRPC calls are not copied", result, n)
			}
		}
	})
}
