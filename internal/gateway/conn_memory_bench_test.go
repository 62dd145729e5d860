package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
)

// rssBytes reads the process's resident set size (Linux; 0 elsewhere).
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			if f := bytes.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseUint(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// BenchmarkIdleConnMemory opens idle keep-alive client connections, each
// after one proxied request, and reports what each costs: Go heap +
// goroutine stacks before and after a GC, and process RSS. Run with
// -benchtime=1x; IDLE_HEAP_PROFILE=file writes a heap profile taken while
// the connections are open.
//
//   - http1: 2,000 raw sockets after one GET; the clients hold no buffers,
//     so nearly all of it is the gateway's. The listener has
//     max_connections set, so its per-connection wrapper is counted.
//   - h2c-upload: 100 HTTP/2 (prior knowledge) connections from Go clients,
//     each after a 1 MiB upload. This one includes the clients' own
//     connection state (~40 KiB each).
func BenchmarkIdleConnMemory(b *testing.B) {
	backend := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	addr := freeAddr(b)
	g := testutil.NewGateway(testutil.Logger(b))
	if err := g.Start(testutil.ParseConfig(b, fmt.Sprintf(`
server: {listen: [{addr: %q, max_connections: 100000}]}
admin: {listen: "off"}
log: {access: {output: "off"}}
upstreams:
  be: {targets: [{url: %q}]}
routes:
  - {name: all, match: {path_prefix: /}, upstream: be}
plugins: [{name: request_id}]
`, addr, backend.URL))); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	}()

	b.Run("http1", func(b *testing.B) {
		req := []byte("GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n")
		idleConnMemory(b, 2000, func() io.Closer {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Write(req)
			resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return c
		})
	})
	b.Run("h2c-upload", func(b *testing.B) {
		body := make([]byte, 1<<20)
		idleConnMemory(b, 100, func() io.Closer {
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			resp, err := (&http.Client{Transport: tr}).Post("http://"+addr+"/x", "application/octet-stream", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				b.Fatalf("proto %s", resp.Proto)
			}
			return closerFunc(tr.CloseIdleConnections)
		})
	})
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// idleConnMemory opens n connections with open and reports their cost.
func idleConnMemory(b *testing.B, n int, open func() io.Closer) {
	mem := func() (uint64, uint64) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse + ms.StackInuse, rssBytes()
	}
	var stats [3]float64
	for b.Loop() {
		runtime.GC()
		heap0, rss0 := mem()
		conns := make([]io.Closer, 0, n)
		for range n {
			conns = append(conns, open())
		}
		heap1, rss1 := mem()
		runtime.GC()
		heap2, _ := mem()
		if p := os.Getenv("IDLE_HEAP_PROFILE"); p != "" {
			// The heap profile as of that GC, with the connections open.
			if f, err := os.Create(p); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		f := float64(n)
		stats = [3]float64{(float64(heap1) - float64(heap0)) / f, (float64(heap2) - float64(heap0)) / f, (float64(rss1) - float64(rss0)) / f}
		for _, c := range conns {
			c.Close()
		}
	}
	b.ReportMetric(stats[0], "heap+stack-B/conn")
	b.ReportMetric(stats[1], "after-GC-B/conn")
	b.ReportMetric(stats[2], "RSS-B/conn")
}
