// Command grpcbackend is the gRPC upstream used by the Portico load-test
// harness (bench/run.sh). It serves grpc.testing.TestService/UnaryCall over
// plain-text HTTP/2 (h2c) and answers every call with the request's payload,
// so that with bench/grpcload's 100-byte payloads every response carries 100
// bytes too and the proxies under test are measured on their own overhead.
// The other TestService methods answer Unimplemented.
//
// The harness runs it with GOMAXPROCS=1 on the load core.
//
// Usage:
//
//	grpcbackend -addr 127.0.0.1:28086
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"runtime"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

type server struct {
	testpb.UnimplementedTestServiceServer
}

// UnaryCall echoes the request payload.
func (server) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:28086", "host:port to listen on")
	flag.Parse()

	// One thread runs Go code, like the HTTP backend, unless GOMAXPROCS is
	// set in the environment.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, server{})
	log.Printf("grpcbackend listening on %s (TestService/UnaryCall echoes the payload)", ln.Addr())
	log.Fatal(srv.Serve(ln))
}
