package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

// e2eGRPCProxyEnv is the gateway, started from e2eGRPCConfig, and the
// backend that TestGRPCProxy's subtests share.
type e2eGRPCProxyEnv struct {
	be     *e2eGRPCBackend
	url    string // the gateway's
	client grpc_testing.TestServiceClient
	// unrouted's service has no route: its paths are not under
	// /grpc.testing.TestService/.
	unrouted grpc_testing.UnimplementedServiceClient
}

// unary checks that a unary call echoes payload, metadata,
// headers and trailers.
func (env *e2eGRPCProxyEnv) unary(t *testing.T) {
	ctx := metadata.AppendToOutgoingContext(e2eGRPCCtx(t, 5*time.Second), "x-user", "alice")
	want := e2eGRPCRandom(t, 1024)
	var hdr, trl metadata.MD
	resp, err := env.client.UnaryCall(ctx, &grpc_testing.SimpleRequest{Payload: &grpc_testing.Payload{Body: want}},
		grpc.Header(&hdr), grpc.Trailer(&trl))
	if err != nil {
		t.Fatalf("UnaryCall: %v", err)
	}
	if !bytes.Equal(resp.GetPayload().GetBody(), want) {
		t.Errorf("payload not echoed: got %d bytes, want the %d sent", len(resp.GetPayload().GetBody()), len(want))
	}
	if got := hdr.Get("x-echo-user"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("server saw x-user %q, want [alice]", got)
	}
	if got := hdr.Get("x-backend"); len(got) != 1 || got[0] != "be" {
		t.Errorf("header x-backend = %q, want [be]", got)
	}
	if got := trl.Get("x-trailer"); len(got) != 1 || got[0] != "done-alice" {
		t.Errorf("trailer x-trailer = %q, want [done-alice]; trailers %v", got, trl)
	}
}

// serverStream checks that a server stream is forwarded
// message by message, not buffered.
func (env *e2eGRPCProxyEnv) serverStream(t *testing.T) {
	h := &e2eGRPCHooks{gate: make(chan struct{})}
	ctx := metadata.AppendToOutgoingContext(e2eGRPCCtx(t, 5*time.Second), "x-test-id", env.be.hooksFor(t, h))
	var params []*grpc_testing.ResponseParameters
	for i := 1; i <= 5; i++ {
		params = append(params, &grpc_testing.ResponseParameters{Size: int32(i * 100)})
	}
	stream, err := env.client.StreamingOutputCall(ctx, &grpc_testing.StreamingOutputCallRequest{ResponseParameters: params})
	if err != nil {
		t.Fatalf("StreamingOutputCall: %v", err)
	}
	first := make(chan error, 1)
	var firstMsg *grpc_testing.StreamingOutputCallResponse
	go func() {
		var err error
		firstMsg, err = stream.Recv()
		first <- err
	}()
	// The backend sends nothing more until the gate opens, so the first
	// message can only arrive here if the gateway forwards it at once.
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("first Recv: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("first message held back until the stream ends: the response is buffered")
	}
	close(h.gate)
	got := []*grpc_testing.StreamingOutputCallResponse{firstMsg}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv after %d messages: %v", len(got), err)
		}
		got = append(got, m)
	}
	if len(got) != 5 {
		t.Fatalf("received %d messages, want 5", len(got))
	}
	for i, m := range got {
		want := bytes.Repeat([]byte{byte('a' + i)}, (i+1)*100)
		if !bytes.Equal(m.GetPayload().GetBody(), want) {
			t.Errorf("message %d: %d bytes of %q…, want %d bytes of %q", i, len(m.GetPayload().GetBody()),
				m.GetPayload().GetBody()[:min(1, len(m.GetPayload().GetBody()))], len(want), want[:1])
		}
	}
}

// clientStream sends a client stream for the backend to
// aggregate.
func (env *e2eGRPCProxyEnv) clientStream(t *testing.T) {
	stream, err := env.client.StreamingInputCall(e2eGRPCCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("StreamingInputCall: %v", err)
	}
	want := int32(0)
	for i := 1; i <= 10; i++ {
		size := i * 1000
		want += int32(size)
		if err := stream.Send(&grpc_testing.StreamingInputCallRequest{Payload: &grpc_testing.Payload{Body: make([]byte, size)}}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("CloseAndRecv: %v", err)
	}
	if got := resp.GetAggregatedPayloadSize(); got != want {
		t.Errorf("aggregated size = %d, want %d", got, want)
	}
}

// pingPong runs a bidirectional stream.
func (env *e2eGRPCProxyEnv) pingPong(t *testing.T) {
	// Each ping waits for its pong.
	var pings [][]byte
	for i := range 20 {
		pings = append(pings, fmt.Appendf(nil, "ping-%02d", i))
	}
	e2eGRPCPingPong(t, env.client, 5*time.Second, pings)
}

// large round-trips a 4 MiB message.
func (env *e2eGRPCProxyEnv) large(t *testing.T) {
	want := e2eGRPCRandom(t, 4<<20)
	resp, err := env.client.UnaryCall(e2eGRPCCtx(t, 10*time.Second), &grpc_testing.SimpleRequest{Payload: &grpc_testing.Payload{Body: want}})
	if err != nil {
		t.Fatalf("UnaryCall with 4 MiB: %v", err)
	}
	if got := resp.GetPayload().GetBody(); !bytes.Equal(got, want) {
		t.Errorf("4 MiB payload changed in transit: got %d bytes", len(got))
	}
}

// clientDeadline checks that the client's deadline reaches
// the backend.
func (env *e2eGRPCProxyEnv) clientDeadline(t *testing.T) {
	h := &e2eGRPCHooks{entered: make(chan time.Duration, 1), ended: make(chan error, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-test-id", env.be.hooksFor(t, h), "x-sleep", "2s")
	start := time.Now()
	_, err := env.client.UnaryCall(ctx, &grpc_testing.SimpleRequest{})
	elapsed := time.Since(start)
	e2eGRPCWantCode(t, err, codes.DeadlineExceeded)
	if elapsed > 1500*time.Millisecond {
		t.Errorf("DeadlineExceeded after %v, want it promptly after the 200ms deadline", elapsed)
	}
	select {
	case left := <-h.entered:
		// The gateway forwards grpc-timeout, so the backend's context
		// carries (about) the client's deadline.
		if left <= 0 || left > 200*time.Millisecond {
			t.Errorf("backend context deadline in %v, want within the client's 200ms (grpc-timeout forwarded)", left)
		}
	case <-time.After(time.Second):
		t.Fatal("the call never reached the backend")
	}
	e2eGRPCWantEnded(t, h, "its context was not cancelled", "the client's deadline")
}

// grpcTimeout checks that a grpc-timeout expiring at the
// backend is DEADLINE_EXCEEDED.
func (env *e2eGRPCProxyEnv) grpcTimeout(t *testing.T) {
	// A caller that sends grpc-timeout but keeps no timer of its own
	// (another proxy, a client whose timer fires late) sees whatever
	// the gateway answers once the deadline passes: that must be
	// DEADLINE_EXCEEDED, not a retryable UNAVAILABLE.
	h := &e2eGRPCHooks{ended: make(chan error, 1)}
	start := time.Now()
	code, msg := e2eGRPCRawUnary(t, env.url+"/grpc.testing.TestService/UnaryCall", map[string]string{
		"grpc-timeout": "200m",
		"x-sleep":      "2s",
		"x-test-id":    env.be.hooksFor(t, h),
	})
	elapsed := time.Since(start)
	if code != strconv.Itoa(int(codes.DeadlineExceeded)) {
		t.Errorf("grpc-status = %s (%q), want %d (DEADLINE_EXCEEDED)", code, msg, codes.DeadlineExceeded)
	}
	if elapsed > 1500*time.Millisecond {
		t.Errorf("answered after %v, want soon after the 200ms grpc-timeout", elapsed)
	}
	e2eGRPCWantEnded(t, h, "grpc-timeout was not honoured", "the grpc-timeout")
}

// e2eGRPCProxyStatuses checks that statuses the backend returns reach the
// client, for a unary call and after a stream's messages.
func e2eGRPCProxyStatuses(t *testing.T, env *e2eGRPCProxyEnv) {
	statuses := []struct {
		desc string
		code codes.Code
		msg  string
	}{
		{desc: "not found", code: codes.NotFound, msg: "nope"},
		{desc: "permission denied", code: codes.PermissionDenied, msg: "denied"},
		{desc: "percent-encoded message", code: codes.InvalidArgument, msg: "100% wrong: ünïcode\nsecond line"},
		{desc: "resource exhausted", code: codes.ResourceExhausted, msg: "quota"},
	}
	for _, tc := range statuses {
		t.Run("status/unary/"+tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := env.client.UnaryCall(e2eGRPCCtx(t, 5*time.Second), &grpc_testing.SimpleRequest{
				ResponseStatus: &grpc_testing.EchoStatus{Code: int32(tc.code), Message: tc.msg},
			})
			st := e2eGRPCWantCode(t, err, tc.code)
			if st.Message() != tc.msg {
				t.Errorf("message = %q, want %q", st.Message(), tc.msg)
			}
		})
		t.Run("status/after-stream/"+tc.desc, func(t *testing.T) {
			t.Parallel()
			stream, err := env.client.StreamingOutputCall(e2eGRPCCtx(t, 5*time.Second), &grpc_testing.StreamingOutputCallRequest{
				ResponseParameters: []*grpc_testing.ResponseParameters{{Size: 10}, {Size: 20}},
				ResponseStatus:     &grpc_testing.EchoStatus{Code: int32(tc.code), Message: tc.msg},
			})
			if err != nil {
				t.Fatalf("StreamingOutputCall: %v", err)
			}
			n := 0
			for {
				_, err = stream.Recv()
				if err != nil {
					break
				}
				n++
			}
			if n != 2 {
				t.Errorf("received %d messages before the status, want 2", n)
			}
			st := e2eGRPCWantCode(t, err, tc.code)
			if st.Message() != tc.msg {
				t.Errorf("message = %q, want %q", st.Message(), tc.msg)
			}
		})
	}
}

// e2eGRPCProxyGatewayErrors checks the errors the gateway produces itself.
func e2eGRPCProxyGatewayErrors(t *testing.T, env *e2eGRPCProxyEnv) {
	// Errors the gateway itself produces must reach a gRPC client as a
	// gRPC status (a Trailers-Only response), not as an HTTP error status
	// that the client library would map on its own. The gateway's message
	// and its x-request-id prove the status came from the gateway.
	gwErrors := []struct {
		desc    string
		md      []string
		call    func(ctx context.Context, opts ...grpc.CallOption) error
		code    codes.Code
		msg     string
		backend bool // the call reaches the backend, which must see it cancelled
	}{
		{
			desc: "closed port is Unavailable",
			md:   []string{"x-route", "dead"},
			call: func(ctx context.Context, opts ...grpc.CallOption) error {
				_, err := env.client.EmptyCall(ctx, &grpc_testing.Empty{}, opts...)
				return err
			},
			code: codes.Unavailable,
			msg:  "upstream connection refused",
		},
		{
			desc: "no route is Unimplemented",
			call: func(ctx context.Context, opts ...grpc.CallOption) error {
				_, err := env.unrouted.UnimplementedCall(ctx, &grpc_testing.Empty{}, opts...)
				return err
			},
			code: codes.Unimplemented,
			msg:  "no route matched",
		},
		{
			desc: "request timeout is DeadlineExceeded",
			md:   []string{"x-route", "slow", "x-sleep", "2s"},
			call: func(ctx context.Context, opts ...grpc.CallOption) error {
				_, err := env.client.UnaryCall(ctx, &grpc_testing.SimpleRequest{}, opts...)
				return err
			},
			code:    codes.DeadlineExceeded,
			msg:     "upstream timed out",
			backend: true,
		},
	}
	for _, tc := range gwErrors {
		t.Run("gateway errors/"+tc.desc, func(t *testing.T) {
			t.Parallel()
			h := &e2eGRPCHooks{ended: make(chan error, 1)}
			md := append([]string{"x-test-id", env.be.hooksFor(t, h)}, tc.md...)
			ctx := metadata.AppendToOutgoingContext(e2eGRPCCtx(t, 5*time.Second), md...)
			var hdr, trl metadata.MD
			start := time.Now()
			err := tc.call(ctx, grpc.Header(&hdr), grpc.Trailer(&trl))
			elapsed := time.Since(start)
			st := e2eGRPCWantCode(t, err, tc.code)
			if st.Message() != tc.msg {
				t.Errorf("message = %q, want the gateway's %q", st.Message(), tc.msg)
			}
			if len(trl.Get("x-request-id")) == 0 && len(hdr.Get("x-request-id")) == 0 {
				t.Errorf("gateway error carries no x-request-id; headers %v, trailers %v", hdr, trl)
			}
			if elapsed > 1500*time.Millisecond {
				t.Errorf("%v after %v, want it promptly", tc.code, elapsed)
			}
			if !tc.backend {
				return
			}
			e2eGRPCWantEnded(t, h, "the gateway did not cancel the upstream call", "the gateway's error")
		})
	}
}

// e2eGRPCWantEnded checks that the backend handler hooked by h ended
// cancelled, within a second: why says what a handler that slept to the
// end shows, after what the cancellation was due.
func e2eGRPCWantEnded(t *testing.T, h *e2eGRPCHooks, why, after string) {
	t.Helper()
	select {
	case err := <-h.ended:
		if err == nil {
			t.Error("backend handler slept to the end: " + why)
		}
	case <-time.After(time.Second):
		t.Error("backend handler's context was not cancelled within 1s of " + after)
	}
}
