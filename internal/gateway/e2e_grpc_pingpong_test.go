package gateway_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc/interop/grpc_testing"
)

// e2eGRPCPingPong opens a bidirectional stream (deadline d), sends msgs
// one at a time and checks that each echo arrives before the next is sent
// (a gateway that waited for the whole request stream would deadlock),
// then half-closes the stream and checks that it ends cleanly.
func e2eGRPCPingPong(t *testing.T, client grpc_testing.TestServiceClient, d time.Duration, msgs [][]byte) {
	t.Helper()
	stream, err := client.FullDuplexCall(e2eGRPCCtx(t, d))
	if err != nil {
		t.Fatalf("FullDuplexCall: %v", err)
	}
	for i, msg := range msgs {
		if err := stream.Send(&grpc_testing.StreamingOutputCallRequest{Payload: &grpc_testing.Payload{Body: msg}}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		m, err := stream.Recv()
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		if got := m.GetPayload().GetBody(); !bytes.Equal(got, msg) {
			if len(msg) > 64 {
				t.Fatalf("echo %d differs (%d bytes, sent %d)", i, len(got), len(msg))
			}
			t.Fatalf("pong %d = %q, want %q", i, got, msg)
		}
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatalf("CloseSend: %v", err)
	}
	if m, err := stream.Recv(); err != io.EOF {
		t.Fatalf("after CloseSend: Recv = %v, %v; want io.EOF", m, err)
	}
}
