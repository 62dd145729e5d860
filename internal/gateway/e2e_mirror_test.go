package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/gateway"
	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// e2eMirrorConfig routes /api to v1 with a mirror to v2 ({{MIRROR}} holds
// the mirror's extra settings) and /plain to v1 without one.
const e2eMirrorConfig = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  v1: {targets: [{url: "{{V1}}"}]}
  v2: {targets: [{url: "{{V2}}"}], request_timeout: 5s}
routes:
  - name: api
    match: {path_prefix: /api}
    upstream: v1
    mirror: {upstream: v2{{MIRROR}}}
  - {name: plain, match: {path_prefix: /plain}, upstream: v1}
`

// e2eMirrorStart starts a gateway mirroring /api from primary to shadow.
func e2eMirrorStart(t *testing.T, primary, shadow string, settings string) *testutil.Gateway {
	t.Helper()
	return e2eStart(t, e2eMirrorConfig, map[string]string{"V1": primary, "V2": shadow, "MIRROR": settings})
}

// e2eMirrorPair starts recording backends v1 and v2 and a gateway
// mirroring /api from v1 to v2 with the given extra settings.
func e2eMirrorPair(t *testing.T, settings string) (v1, v2 *e2eRecorder, tg *testutil.Gateway) {
	t.Helper()
	v1, v2 = e2eNewRecorder(t, "v1", nil), e2eNewRecorder(t, "v2", nil)
	return v1, v2, e2eMirrorStart(t, v1.URL, v2.URL, settings)
}

// mirrorCount reads the mirror counter of route api with the given result.
func mirrorCount(tg *testutil.Gateway, result string) int64 {
	return tg.Stats().Counter(gateway.MirrorRequestsMetric, fmt.Sprintf("route=%q,result=%q", "api", result)).Value()
}

// mirrorClass reads the mirror response counter of route api for a status
// class such as "2xx".
func mirrorClass(tg *testutil.Gateway, class string) int64 {
	return tg.Stats().Counter(gateway.MirrorResponsesMetric, fmt.Sprintf("route=%q,class=%q", "api", class)).Value()
}

// mirrorBody returns a reader of b, which the client sends with a
// Content-Length or, when chunked, with chunked encoding.
func mirrorBody(b []byte, chunked bool) io.Reader {
	rd := io.Reader(strings.NewReader(string(b)))
	if chunked {
		rd = io.MultiReader(rd) // unknown length: sent chunked
	}
	return rd
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestMirrorCopiesRequest(t *testing.T) {
	_, v2, tg := e2eMirrorPair(t, "")
	body := []byte(strings.Repeat("mirror me ", 100))
	for i, chunked := range []bool{false, true} {
		req := e2eReq(t, http.MethodPost, tg.URL+"/api/items/7?a=1&b=x%20y", mirrorBody(body, chunked))
		req.Header.Set("X-Test", "yes")
		req.Header.Set("Connection", "X-Hop")
		req.Header.Set("X-Hop", "1")
		resp, got := e2eDo(t, req)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "v1" {
			t.Fatalf("primary answer: %d from %q", resp.StatusCode, resp.Header.Get("X-Backend"))
		}
		prim := e2eDecodeSeen(t, got)
		wait.For(t, 5*time.Second, "mirror receives the copy", func() bool { return v2.count() == i+1 })
		m := v2.all()[i]
		if m.Method != http.MethodPost || m.Path != "/api/items/7" || m.RawQuery != "a=1&b=x%20y" {
			t.Errorf("chunked=%v: mirror got %s %s?%s", chunked, m.Method, m.Path, m.RawQuery)
		}
		if m.BodyLen != int64(len(body)) || m.BodySHA != sha(body) || prim.BodySHA != sha(body) {
			t.Errorf("chunked=%v: bodies: mirror %d bytes (sha ok %v), primary sha ok %v", chunked, m.BodyLen,
				m.BodySHA == sha(body), prim.BodySHA == sha(body))
		}
		if m.Header.Get("X-Test") != "yes" || m.Header.Get("X-Portico-Mirror") != "1" {
			t.Errorf("chunked=%v: mirror headers %v", chunked, m.Header)
		}
		if m.Header.Get("X-Hop") != "" || m.Header.Get("Connection") != "" {
			t.Errorf("chunked=%v: hop-by-hop headers reached the mirror: %v", chunked, m.Header)
		}
		if id := prim.Header.Get("X-Request-Id"); id == "" || m.Header.Get("X-Request-Id") != id {
			t.Errorf("chunked=%v: request IDs primary %q mirror %q", chunked, id, m.Header.Get("X-Request-Id"))
		}
		if m.Header.Get("X-Forwarded-For") != "127.0.0.1" || m.Header.Get("X-Forwarded-For") != prim.Header.Get("X-Forwarded-For") {
			t.Errorf("chunked=%v: X-Forwarded-For primary %q mirror %q", chunked, prim.Header.Get("X-Forwarded-For"), m.Header.Get("X-Forwarded-For"))
		}
		if prim.Header.Get("X-Portico-Mirror") != "" {
			t.Errorf("chunked=%v: the primary got the marker header", chunked)
		}
	}
	wait.For(t, 5*time.Second, "two copies counted as sent", func() bool { return mirrorCount(tg, "sent") == 2 })
	if n := mirrorClass(tg, "2xx"); n != 2 {
		t.Errorf("2xx mirror responses = %d, want 2", n)
	}
	// A route without a mirror sends nothing to v2.
	e2eGet(t, tg.URL+"/plain")
	e2eGet(t, tg.URL+"/api/last")
	wait.For(t, 5*time.Second, "third copy", func() bool { return v2.count() == 3 })
	if p := v2.all()[2].Path; p != "/api/last" {
		t.Errorf("mirror got %q, want only /api requests", p)
	}
}

func TestMirrorCustomHeader(t *testing.T) {
	_, v2, tg := e2eMirrorPair(t, ", header: x-shadow")
	e2eGet(t, tg.URL+"/api")
	wait.For(t, 5*time.Second, "copy", func() bool { return v2.count() == 1 })
	if h := v2.all()[0].Header; h.Get("X-Shadow") != "1" || h.Get("X-Portico-Mirror") != "" {
		t.Errorf("mirror headers %v", h)
	}
}

func TestMirrorSamplingRate(t *testing.T) {
	v1, v2, tg := e2eMirrorPair(t, ", percent: 20, max_concurrent: 4096")
	const total, workers = 2000, 8
	var next atomic.Int64
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= total {
				resp, err := e2eClient.Get(tg.URL + "/api/s")
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d primary requests failed", bad.Load())
	}
	// 20% of 2000 is 400, with a standard deviation of about 18: allow
	// 4.5 of them either side. Every copy is started before its primary
	// answer is written, so the count is complete once the mirror has
	// answered all it received.
	var n int64
	wait.For(t, 10*time.Second, "every copy answered", func() bool {
		n = mirrorCount(tg, "sent")
		return n > 0 && int64(v2.count()) == n
	})
	if f, d := mirrorCount(tg, "failed"), mirrorCount(tg, "dropped"); f != 0 || d != 0 {
		t.Errorf("failed %d dropped %d, want none", f, d)
	}
	t.Logf("mirrored %d of %d requests (%.1f%%)", n, total, float64(n)*100/total)
	if n < 320 || n > 480 {
		t.Errorf("mirrored %d of %d at 20%%, want 320..480", n, total)
	}
	if v1.count() != total {
		t.Errorf("primary got %d requests, want %d", v1.count(), total)
	}
}

// mirrorLatencies sends n sequential GETs to url and returns their sorted
// latencies; every answer must be 200 from v1.
func mirrorLatencies(t *testing.T, url string, n int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		resp, body := e2eGet(t, url)
		out = append(out, time.Since(start))
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Backend") != "v1" {
			t.Fatalf("primary answer %d from %q: %s", resp.StatusCode, resp.Header.Get("X-Backend"), body)
		}
	}
	slices.Sort(out)
	return out
}

func pct(d []time.Duration, p int) time.Duration { return d[(len(d)-1)*p/100] }

func TestMirrorSlowMirrorLeavesPrimaryLatency(t *testing.T) {
	v1 := e2eNewRecorder(t, "v1", nil)
	release := make(chan struct{})
	v2 := e2eNewRecorder(t, "v2", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) })
	tg := e2eMirrorStart(t, v1.URL, v2.URL, ", max_concurrent: 1000")
	const n = 200
	mirrorLatencies(t, tg.URL+"/plain", 20) // warm the connections
	without := mirrorLatencies(t, tg.URL+"/plain", n)
	with := mirrorLatencies(t, tg.URL+"/api", n)
	t.Logf("primary latency without mirror: p50 %v p99 %v; with a 2 s mirror: p50 %v p99 %v",
		pct(without, 50), pct(without, 99), pct(with, 50), pct(with, 99))
	if p := pct(with, 99); p > time.Second {
		t.Errorf("p99 primary latency with a slow mirror = %v, want well under the mirror's 2 s", p)
	}
	if got := v2.count(); got == 0 {
		t.Error("the slow mirror received no copies")
	}
}

func TestMirrorFailingMirrorLeavesPrimary(t *testing.T) {
	v1 := e2eNewRecorder(t, "v1", nil)
	v5 := e2eNewRecorder(t, "v2", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	t.Run("refused", func(t *testing.T) {
		tg := e2eMirrorStart(t, v1.URL, "http://"+e2eFreePort(t), "")
		const n = 20
		lat := mirrorLatencies(t, tg.URL+"/api/f", n)
		t.Logf("primary latency with an unreachable mirror: p50 %v p99 %v", pct(lat, 50), pct(lat, 99))
		wait.For(t, 10*time.Second, "every copy counted as failed", func() bool { return mirrorCount(tg, "failed") == n })
		if s := mirrorCount(tg, "sent"); s != 0 {
			t.Errorf("sent = %d, want 0", s)
		}
	})
	t.Run("5xx", func(t *testing.T) {
		tg := e2eMirrorStart(t, v1.URL, v5.URL, "")
		const n = 10
		mirrorLatencies(t, tg.URL+"/api/f", n)
		wait.For(t, 5*time.Second, "every 500 counted", func() bool { return mirrorClass(tg, "5xx") == n })
		if s, f := mirrorCount(tg, "sent"), mirrorCount(tg, "failed"); s != n || f != 0 {
			t.Errorf("sent %d failed %d, want %d and 0", s, f, n)
		}
	})
}

func TestMirrorBodyOverMaxBody(t *testing.T) {
	_, v2, tg := e2eMirrorPair(t, ", max_body: 1KiB")
	big := []byte(strings.Repeat("x", 4096))
	for i, chunked := range []bool{false, true} {
		resp, got := e2eDo(t, e2eReq(t, http.MethodPost, tg.URL+"/api/big", mirrorBody(big, chunked)))
		s := e2eDecodeSeen(t, got)
		if resp.StatusCode != http.StatusOK || s.BodyLen != int64(len(big)) || s.BodySHA != sha(big) {
			t.Fatalf("chunked=%v: primary %d got %d bytes (%s)", chunked, resp.StatusCode, s.BodyLen, s.BodyErr)
		}
		if n := mirrorCount(tg, "too_large"); n != int64(i+1) {
			t.Errorf("chunked=%v: too_large = %d, want %d", chunked, n, i+1)
		}
	}
	// A body of exactly max_body is mirrored, and it is the first copy.
	limit := []byte(strings.Repeat("y", 1024))
	e2eDo(t, e2eReq(t, http.MethodPost, tg.URL+"/api/limit", mirrorBody(limit, true)))
	wait.For(t, 5*time.Second, "copy of the body at the limit", func() bool { return v2.count() >= 1 })
	if all := v2.all(); len(all) != 1 || all[0].Path != "/api/limit" || all[0].BodySHA != sha(limit) {
		t.Errorf("mirror got %+v, want only /api/limit with its body", all)
	}
}

func TestMirrorMaxConcurrentDrops(t *testing.T) {
	v1 := e2eNewRecorder(t, "v1", nil)
	release := make(chan struct{})
	v2 := e2eNewRecorder(t, "v2", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	tg := e2eMirrorStart(t, v1.URL, v2.URL, ", max_concurrent: 2")
	for range 2 {
		e2eGet(t, tg.URL+"/api/c")
	}
	wait.For(t, 5*time.Second, "two copies in flight", func() bool { return v2.count() == 2 })
	for range 3 {
		if resp, _ := e2eGet(t, tg.URL+"/api/c"); resp.StatusCode != http.StatusOK {
			t.Fatalf("primary status %d", resp.StatusCode)
		}
	}
	if d := mirrorCount(tg, "dropped"); d != 3 {
		t.Errorf("dropped = %d, want 3", d)
	}
	free()
	wait.For(t, 5*time.Second, "the two copies answered", func() bool { return mirrorCount(tg, "sent") == 2 })
	// Slots are free again.
	e2eGet(t, tg.URL+"/api/c")
	wait.For(t, 5*time.Second, "a later copy is sent", func() bool { return mirrorCount(tg, "sent") == 3 })
}

func TestMirrorClientDisconnectDoesNotCancelMirror(t *testing.T) {
	primaryGone := make(chan struct{})
	v1 := e2eNewRecorder(t, "v1", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(primaryGone)
	})
	release := make(chan struct{})
	var mirrorErr atomic.Value
	v2 := e2eNewRecorder(t, "v2", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			mirrorErr.Store(fmt.Sprint(r.Context().Err()))
		case <-time.After(10 * time.Second):
			mirrorErr.Store("not released")
		}
	})
	tg := e2eMirrorStart(t, v1.URL, v2.URL, "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tg.URL+"/api/d", nil)
		resp, err := e2eClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	wait.For(t, 5*time.Second, "both upstreams have the request", func() bool { return v1.count() == 1 && v2.count() == 1 })
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled client got a response")
	}
	select {
	case <-primaryGone:
	case <-time.After(5 * time.Second):
		t.Fatal("the primary request was not cancelled with the client")
	}
	close(release)
	wait.For(t, 5*time.Second, "the copy completes", func() bool { return mirrorCount(tg, "sent") == 1 })
	if e := mirrorErr.Load(); e != "<nil>" {
		t.Errorf("mirror request context: %v, want not cancelled", e)
	}
}

func TestMirrorValidation(t *testing.T) {
	// Table test: its length is the table of cases.
	const base = `
upstreams:
  v1: {targets: [{url: "http://127.0.0.1:1"}]}
  v2: {targets: [{url: "http://127.0.0.1:2"}]}
routes:
  - name: api
    match: {path_prefix: /api}
`
	tests := []struct {
		route, want string
	}{
		{"upstream: v1\n    mirror: {upstream: v3}", `routes[0].mirror.upstream: upstream "v3" is not defined`},
		{"upstream: v1\n    mirror: {percent: 10}", "routes[0].mirror.upstream: mirror upstream is required"},
		{"upstream: v1\n    mirror: {upstream: v2, percent: 150}", "routes[0].mirror.percent: percent must be between 0 and 100"},
		{"upstream: v1\n    mirror: {upstream: v2, percent: -1}", "routes[0].mirror.percent: percent must be between 0 and 100"},
		{"upstream: v1\n    mirror: {upstream: v2, max_concurrent: -1}", "routes[0].mirror.max_concurrent: max_concurrent must be greater than 0"},
		{"upstream: v1\n    mirror: {upstream: v2, max_body: -1}", "routes[0].mirror.max_body: max_body must be a size"},
		{"upstream: v1\n    mirror: {upstream: v2, max_body: lots}", "routes[0].mirror.max_body"},
		{"upstream: v1\n    mirror: {upstream: v2, header: \"X Bad\"}", `routes[0].mirror.header: header "X Bad" must be a valid header name`},
		{"upstream: v1\n    mirror: {upstream: v2, header: connection}", "routes[0].mirror.header: header \"connection\" is a hop-by-hop header"},
		{"respond: {body: hi}\n    mirror: {upstream: v2}", "routes[0].mirror: mirror needs the route to proxy to an upstream"},
		{"upstream: v1\n    mirror: {upstream: v2, sample: 3}", "routes[0].mirror"},
	}
	for _, tc := range tests {
		_, err := config.Parse([]byte(base+"    "+tc.route+"\n"), "test.yaml", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %q", tc.route, err, tc.want)
		}
	}
	c, err := config.Parse([]byte(base+"    upstream: v1\n    mirror: {upstream: v2}\n"), "test.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Routes[0].Mirror
	if *m.Percent != 100 || m.MaxConcurrent != 64 || m.MaxBody != 64<<10 || m.Header != "X-Portico-Mirror" {
		t.Errorf("defaults: percent %v max_concurrent %d max_body %d header %q", *m.Percent, m.MaxConcurrent, m.MaxBody, m.Header)
	}
}
