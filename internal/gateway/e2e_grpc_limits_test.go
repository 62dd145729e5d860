package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestGRPCMessageLimit checks that gRPC calls are bounded per message, not
// by the body's total: a stream carrying more than max_body_bytes in
// messages under the per-message limit passes, and a message over it ends
// the call with RESOURCE_EXHAUSTED and a message — as a Trailers-Only
// answer before the response started, and in the trailers of a stream that
// had already answered.
func TestGRPCMessageLimit(t *testing.T) {
	t.Parallel()
	be := e2eGRPCStartBackend(t, "be")
	tg := e2eGRPCStart(t, be, `server: {listen: [{addr: "127.0.0.1:0"}]}`, nil)
	small := e2eGRPCStart(t, be, `server: {listen: [{addr: "127.0.0.1:0"}], limits: {max_grpc_message_bytes: 64KiB}}`, nil)
	client := grpc_testing.NewTestServiceClient(e2eGRPCDial(t, e2eHostPort(tg.URL), nil))
	smallClient := grpc_testing.NewTestServiceClient(e2eGRPCDial(t, e2eHostPort(small.URL), nil))

	t.Run("bidirectional stream past max_body_bytes", func(t *testing.T) {
		t.Parallel()
		var msgs [][]byte
		for i := range 12 {
			msgs = append(msgs, bytes.Repeat([]byte{byte('a' + i)}, 1<<20))
		}
		e2eGRPCPingPong(t, client, 30*time.Second, msgs)
	})

	t.Run("client stream past max_body_bytes", func(t *testing.T) {
		t.Parallel()
		e2eGRPCClientStreamPastBody(t, client)
	})

	// The default per-message limit is max_body_bytes (10 MiB).
	t.Run("unary message over the default limit", func(t *testing.T) {
		t.Parallel()
		_, err := client.UnaryCall(e2eGRPCCtx(t, 10*time.Second), &grpc_testing.SimpleRequest{Payload: &grpc_testing.Payload{Body: make([]byte, 10<<20+1)}})
		e2eGRPCWantTooLarge(t, err)
	})

	t.Run("unary message at the default limit passes", func(t *testing.T) {
		t.Parallel()
		// 10 MiB minus the protobuf framing of the payload field.
		_, err := client.UnaryCall(e2eGRPCCtx(t, 10*time.Second), &grpc_testing.SimpleRequest{Payload: &grpc_testing.Payload{Body: make([]byte, 10<<20-16)}})
		if err != nil {
			t.Fatalf("UnaryCall just under 10 MiB: %v", err)
		}
	})

	t.Run("message over the limit mid-stream", func(t *testing.T) {
		t.Parallel()
		e2eGRPCOversizedMidStream(t, client)
	})

	for _, tc := range []struct {
		desc string
		size int
		ok   bool
	}{{"configured limit, under", 32 << 10, true}, {"configured limit, over", 100 << 10, false}} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			e2eGRPCSizedMessages(t, smallClient, tc.size, tc.ok)
		})
	}
}

// e2eGRPCWantTooLarge checks that err is the gateway's RESOURCE_EXHAUSTED
// for a message over the limit.
func e2eGRPCWantTooLarge(t *testing.T, err error) {
	t.Helper()
	st := e2eGRPCWantCode(t, err, codes.ResourceExhausted)
	if st.Message() != "grpc message too large" {
		t.Errorf("message %q, want %q", st.Message(), "grpc message too large")
	}
}

// e2eGRPCClientStreamPastBody sends a client stream of 12 1 MiB messages,
// more than max_body_bytes in all, and checks that all of it arrives.
func e2eGRPCClientStreamPastBody(t *testing.T, client grpc_testing.TestServiceClient) {
	stream, err := client.StreamingInputCall(e2eGRPCCtx(t, 30*time.Second))
	if err != nil {
		t.Fatalf("StreamingInputCall: %v", err)
	}
	for i := range 12 {
		if err := stream.Send(&grpc_testing.StreamingInputCallRequest{Payload: &grpc_testing.Payload{Body: make([]byte, 1<<20)}}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("CloseAndRecv: %v", err)
	}
	if got := resp.GetAggregatedPayloadSize(); got != 12<<20 {
		t.Errorf("backend received %d bytes, want %d", got, 12<<20)
	}
}

// e2eGRPCOversizedMidStream sends a message over the default limit after
// the response has started, and checks that the call ends with
// RESOURCE_EXHAUSTED before the message reaches the backend.
func e2eGRPCOversizedMidStream(t *testing.T, client grpc_testing.TestServiceClient) {
	stream, err := client.FullDuplexCall(e2eGRPCCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("FullDuplexCall: %v", err)
	}
	// The response has started (headers and one message) when the
	// oversized message arrives.
	if err := stream.Send(&grpc_testing.StreamingOutputCallRequest{Payload: &grpc_testing.Payload{Body: []byte("ping")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("first Recv: %v", err)
	}
	if err := stream.Send(&grpc_testing.StreamingOutputCallRequest{Payload: &grpc_testing.Payload{Body: make([]byte, 11<<20)}}); err != nil && err != io.EOF {
		t.Fatalf("Send: %v", err)
	}
	for {
		m, err := stream.Recv()
		if err == nil {
			if len(m.GetPayload().GetBody()) > 10<<20 {
				t.Fatal("the oversized message reached the backend")
			}
			continue
		}
		e2eGRPCWantTooLarge(t, err)
		break
	}
}

// e2eGRPCSizedMessages sends messages of size bytes on a full-duplex
// stream: all answered when ok, else the first refused as too large.
func e2eGRPCSizedMessages(t *testing.T, client grpc_testing.TestServiceClient, size int, ok bool) {
	stream, err := client.FullDuplexCall(e2eGRPCCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("FullDuplexCall: %v", err)
	}
	for i := range 3 {
		if err := stream.Send(&grpc_testing.StreamingOutputCallRequest{Payload: &grpc_testing.Payload{Body: make([]byte, size)}}); err != nil && err != io.EOF {
			t.Fatalf("Send %d: %v", i, err)
		}
		_, err := stream.Recv()
		if ok && err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		if !ok {
			e2eGRPCWantTooLarge(t, err)
			return
		}
	}
}

// e2eGRPCRawStatus sends an empty gRPC message over h2c with the given
// headers and returns the grpc-status and grpc-message it ends with. It is
// safe to call from several goroutines.
func e2eGRPCRawStatus(client *http.Client, url string, headers map[string]string) (code, msg string, err error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(make([]byte, 5)))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if code = resp.Header.Get("Grpc-Status"); code != "" {
		return code, resp.Header.Get("Grpc-Message"), nil
	}
	return resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message"), nil
}

// TestGRPCDeadlineMany checks, over many concurrent calls, that a call
// whose deadline expires while the backend blocks until its own context
// ends is answered DEADLINE_EXCEEDED — never UNAVAILABLE — although the
// backend resets its stream as its copy of the deadline fires, racing the
// gateway's own timer. (On a loaded machine the reset can be seen before
// that timer has cancelled the request; the classification therefore looks
// at the deadline itself, see TestClassify's "timer not yet run" cases.)
func TestGRPCDeadlineMany(t *testing.T) {
	t.Parallel()
	be := e2eGRPCStartBackend(t, "be")
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  grpc: {protocol: h2c, targets: [{url: "{{BE}}"}]}
  slow: {protocol: h2c, request_timeout: 150ms, targets: [{url: "{{BE}}"}]}
routes:
  - {name: grpc, match: {path_prefix: /grpc.testing.TestService/}, upstream: grpc}
  - {name: slow, match: {path_prefix: /grpc.testing.TestService/, headers: {x-route: slow}}, upstream: slow}
`, map[string]string{"BE": be.url()})
	const calls = 200
	tally := func(t *testing.T, codes map[string]int, want string) {
		t.Helper()
		if codes[want] != calls {
			t.Errorf("%d of %d calls ended %s; all outcomes: %v", codes[want], calls, want, codes)
		}
	}

	t.Run("grpc-go client deadline", func(t *testing.T) {
		t.Parallel()
		client := grpc_testing.NewTestServiceClient(e2eGRPCDial(t, e2eHostPort(tg.URL), nil))
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for range calls {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
				defer cancel()
				ctx = metadata.AppendToOutgoingContext(ctx, "x-sleep", "30s")
				_, err := client.UnaryCall(ctx, &grpc_testing.SimpleRequest{})
				k := status.Code(err).String()
				if st, ok := status.FromError(err); ok && st.Code() != codes.DeadlineExceeded {
					k += " " + st.Message()
				}
				mu.Lock()
				got[k]++
				mu.Unlock()
			})
		}
		wg.Wait()
		tally(t, got, codes.DeadlineExceeded.String())
	})

	for _, tc := range []struct {
		desc    string
		headers map[string]string
	}{
		{"grpc-timeout only", map[string]string{"grpc-timeout": "150m", "x-sleep": "30s"}},
		{"route request_timeout", map[string]string{"x-route": "slow", "x-sleep": "30s"}},
	} {
		t.Run("raw h2c "+tc.desc, func(t *testing.T) {
			t.Parallel()
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			t.Cleanup(tr.CloseIdleConnections)
			hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for range calls {
				wg.Go(func() {
					code, msg, err := e2eGRPCRawStatus(hc, tg.URL+"/grpc.testing.TestService/UnaryCall", tc.headers)
					k := code
					if err != nil {
						k = "error " + err.Error()
					} else if code != strconv.Itoa(int(codes.DeadlineExceeded)) {
						k += " " + msg
					}
					mu.Lock()
					got[k]++
					mu.Unlock()
				})
			}
			wg.Wait()
			tally(t, got, strconv.Itoa(int(codes.DeadlineExceeded)))
			for k := range got {
				if strings.HasPrefix(k, "14") {
					t.Errorf("UNAVAILABLE answered for an expired deadline: %q", k)
				}
			}
		})
	}
}
