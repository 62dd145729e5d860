package gateway_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
)

// mirrorLatencyConfig serves /plain without a mirror and /fast, /slow and
// /down with every request mirrored to a fast, a slow (2 s) and an
// unreachable upstream, each with the default max_concurrent (64).
const mirrorLatencyConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
log: {access: {output: "off"}}
upstreams:
  primary: {targets: [{url: "{{PRIMARY}}"}]}
  fast: {targets: [{url: "{{FAST}}"}]}
  slow: {targets: [{url: "{{SLOW}}"}], request_timeout: 5s}
  down: {targets: [{url: "http://{{DOWN}}"}]}
routes:
  - {name: plain, match: {path_prefix: /plain}, upstream: primary}
  - {name: fast, match: {path_prefix: /fast}, upstream: primary, mirror: {upstream: fast, percent: 100}}
  - {name: slow, match: {path_prefix: /slow}, upstream: primary, mirror: {upstream: slow, percent: 100}}
  - {name: down, match: {path_prefix: /down}, upstream: primary, mirror: {upstream: down, percent: 100}}
`

// BenchmarkMirrorPrimaryLatency measures what mirroring every request
// does to the primary's latency when the gateway has CPU to spare: an
// open-loop client sends 1,000 GETs a second for 4 s through a real
// listener to each route and reports the client's p50 and p99. Run it
// with -benchtime 1x; b.N does not change the load. The plain route is
// measured first and last, to show the drift between runs.
func BenchmarkMirrorPrimaryLatency(b *testing.B) {
	primary, fast := newSplitBackend(b, "primary"), newSplitBackend(b, "fast")
	release := make(chan struct{})
	slow := testutil.Backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second): // the behaviour measured: a slow mirror
		case <-release:
		}
	}))
	b.Cleanup(func() { close(release) })
	tg := e2eStart(b, mirrorLatencyConfig, map[string]string{"PRIMARY": primary.url, "FAST": fast.url, "SLOW": slow.URL, "DOWN": e2eFreePort(b)})
	for i, route := range []string{"plain", "fast", "slow", "down", "plain"} {
		b.Run(fmt.Sprintf("%d-%s", i, route), func(b *testing.B) {
			for b.Loop() {
				lat := openLoop(b, tg.URL+"/"+route+"/x", time.Millisecond, 4*time.Second)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// openLoop sends a GET to url every interval for d, each on its own
// goroutine whatever the earlier ones are doing, and returns the sorted
// latencies; every answer must be 200.
func openLoop(b *testing.B, url string, interval, d time.Duration) []time.Duration {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.Now().Add(d)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		wg.Go(func() {
			start := time.Now()
			resp, err := c.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			took := time.Since(start)
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
			}
			mu.Lock()
			lat = append(lat, took)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat
}
