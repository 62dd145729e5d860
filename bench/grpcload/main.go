// Command grpcload is the gRPC load client of the Portico load-test harness
// (bench/run.sh). It is closed-loop: -workers goroutines each send one
// grpc.testing.TestService/UnaryCall with a -payload-byte payload, wait for
// the answer and send the next, spread round-robin over -conns client
// connections (one HTTP/2 connection each, plain text). After a -warmup
// period it measures for -duration and prints one JSON line:
//
//	{"requests":..., "errors":..., "duration_s":..., "rps":..., "p50_ms":..., "p90_ms":..., "p99_ms":..., ...}
//
// requests counts the calls that completed successfully during the measured
// period, errors the calls that failed in it (an RPC error, or a response
// whose payload is not the request's size); rps is requests / duration_s.
// Latencies are per successful call, from sending the request to receiving
// the whole response, recorded in a log-linear histogram (buckets under 0.8 %
// wide) and reported as the bucket's midpoint.
//
// With -check it instead makes one call, retrying for up to -wait, and exits
// 0 if it succeeded with the expected payload (non-zero with the error
// otherwise): the harness uses it to see that a proxy forwards gRPC before
// loading it.
//
// Usage:
//
//	grpcload -addr 127.0.0.1:28087 -workers 64 -conns 4 -warmup 2s -duration 10s
//	grpcload -addr 127.0.0.1:28087 -check -wait 10s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
)

// result is the JSON line printed after a load run.
type result struct {
	Addr       string  `json:"addr"`
	Workers    int     `json:"workers"`
	Conns      int     `json:"conns"`
	Payload    int     `json:"payload_bytes"`
	Requests   uint64  `json:"requests"`
	Errors     uint64  `json:"errors"`
	DurationS  float64 `json:"duration_s"`
	RPS        float64 `json:"rps"`
	MeanMS     float64 `json:"mean_ms"`
	P50MS      float64 `json:"p50_ms"`
	P90MS      float64 `json:"p90_ms"`
	P99MS      float64 `json:"p99_ms"`
	MaxMS      float64 `json:"max_ms"`
	FirstError string  `json:"first_error,omitempty"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:28086", "host:port of the gRPC server or proxy (plain-text HTTP/2)")
	workers := flag.Int("workers", 64, "concurrent closed-loop workers (calls in flight)")
	conns := flag.Int("conns", 4, "client connections; workers are spread over them round-robin")
	payload := flag.Int("payload", 100, "request payload size in bytes (the backend echoes it)")
	warmup := flag.Duration("warmup", 2*time.Second, "load before the measured period, not counted")
	duration := flag.Duration("duration", 10*time.Second, "measured period")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each call")
	check := flag.Bool("check", false, "make one call (retrying for up to -wait) instead of a load run")
	wait := flag.Duration("wait", 10*time.Second, "with -check: how long to retry")
	flag.Parse()

	if *workers < 1 || *conns < 1 || *payload < 0 || *duration <= 0 || *warmup < 0 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "grpcload: -workers and -conns must be >= 1, -payload >= 0, -duration and -timeout > 0, -warmup >= 0")
		os.Exit(2)
	}
	if *conns > *workers {
		*conns = *workers
	}

	clients := make([]testpb.TestServiceClient, *conns)
	for i := range clients {
		cc, err := grpc.NewClient("passthrough:///"+*addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, "grpcload:", err)
			os.Exit(1)
		}
		defer cc.Close()
		clients[i] = testpb.NewTestServiceClient(cc)
	}
	req := &testpb.SimpleRequest{
		ResponseSize: int32(*payload),
		Payload:      &testpb.Payload{Body: bytes.Repeat([]byte{'x'}, *payload)},
	}

	if *check {
		if err := checkOnce(clients[0], req, *timeout, *wait); err != nil {
			fmt.Fprintln(os.Stderr, "grpcload:", err)
			os.Exit(1)
		}
		return
	}

	res := run(clients, req, *workers, *warmup, *duration, *timeout)
	res.Addr = *addr
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Requests == 0 {
		os.Exit(1)
	}
}

// call makes one UnaryCall and checks the echoed payload.
func call(ctx context.Context, c testpb.TestServiceClient, req *testpb.SimpleRequest) error {
	resp, err := c.UnaryCall(ctx, req)
	if err != nil {
		return err
	}
	if got, want := len(resp.GetPayload().GetBody()), len(req.GetPayload().GetBody()); got != want {
		return fmt.Errorf("response payload is %d bytes, want %d", got, want)
	}
	return nil
}

func checkOnce(c testpb.TestServiceClient, req *testpb.SimpleRequest, timeout, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(timeout, time.Until(deadline)+time.Second))
		err := call(ctx, c, req)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// worker is one closed-loop caller; its counters and histogram are its own
// until the run ends.
type worker struct {
	requests, errors uint64
	sumNS            uint64
	hist             histogram
	firstErr         error
}

func run(clients []testpb.TestServiceClient, req *testpb.SimpleRequest, n int, warmup, duration, timeout time.Duration) result {
	start := time.Now()
	t0 := start.Add(warmup) // measured period: completions in [t0, t1)
	t1 := t0.Add(duration)  // no call is started at or after t1
	var stop atomic.Bool
	ws := make([]*worker, n)
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{}
		ws[i] = w
		c := clients[i%len(clients)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				begin := time.Now()
				if !begin.Before(t1) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := call(ctx, c, req)
				cancel()
				end := time.Now()
				if end.Before(t0) || !end.Before(t1) {
					continue
				}
				if err != nil {
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				d := uint64(end.Sub(begin))
				w.requests++
				w.sumNS += d
				w.hist.record(d)
			}
		}()
	}
	time.Sleep(time.Until(t1))
	stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout + time.Second):
	}
	// A worker still blocked here is in a call that ends after t1, which it
	// will not record: its counters are final either way.
	select {
	case <-done:
	default:
		fmt.Fprintln(os.Stderr, "grpcload: some calls outlived their deadline")
	}

	var total worker
	var firstErr error
	for _, w := range ws {
		total.requests += w.requests
		total.errors += w.errors
		total.sumNS += w.sumNS
		total.hist.merge(&w.hist)
		if firstErr == nil && w.firstErr != nil {
			firstErr = w.firstErr
		}
	}
	secs := duration.Seconds()
	r := result{
		Workers:   n,
		Conns:     len(clients),
		Payload:   len(req.GetPayload().GetBody()),
		Requests:  total.requests,
		Errors:    total.errors,
		DurationS: secs,
		RPS:       round(float64(total.requests)/secs, 1),
	}
	if total.requests > 0 {
		r.MeanMS = ms(total.sumNS / total.requests)
		r.P50MS = ms(total.hist.quantile(0.50))
		r.P90MS = ms(total.hist.quantile(0.90))
		r.P99MS = ms(total.hist.quantile(0.99))
		r.MaxMS = ms(total.hist.quantile(1))
	}
	if firstErr != nil {
		r.FirstError = firstErr.Error()
	}
	return r
}

func ms(ns uint64) float64 { return round(float64(ns)/1e6, 3) }

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// histogram counts nanosecond values in log-linear buckets: values below 256
// exactly, larger ones with 128 buckets per power of two.
type histogram struct {
	counts [256 + 56*128]uint64
}

func bucket(v uint64) int {
	if v < 256 {
		return int(v)
	}
	e := bits.Len64(v) - 8 // v>>e is in [128, 256)
	return 256 + (e-1)*128 + int(v>>e) - 128
}

// mid is the midpoint of bucket i.
func mid(i int) uint64 {
	if i < 256 {
		return uint64(i)
	}
	e := (i-256)/128 + 1
	m := uint64((i-256)%128 + 128)
	return m<<e + (uint64(1)<<e)/2
}

func (h *histogram) record(v uint64) {
	i := bucket(v)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.counts[i]++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// quantile returns the value at quantile q (0 < q <= 1).
func (h *histogram) quantile(q float64) uint64 {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return mid(i)
		}
	}
	return mid(len(h.counts) - 1)
}
