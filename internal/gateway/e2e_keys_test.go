package gateway_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil/wait"
)

// TestE2EKeysMissingHeader checks that rate_limit and concurrency_limit
// treat a request without their key header alike: it is counted by its
// client IP, so clients without the header do not share one bucket, a
// client without it does not share the bucket of any header value, and the
// client's repeated requests do share one.
func TestE2EKeysMissingHeader(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	rec := e2eNewRecorder(t, "rec", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			<-release
		}
	})
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}], trusted_proxies: [127.0.0.1]}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
routes:
  - name: rl
    match: {path: /rl}
    upstream: rec
    plugins: [{name: rate_limit, config: {key: "header:X-Tenant", headers: none, limits: [{rate: 1, per: 1h}]}}]
  - name: cl
    match: {path: /cl}
    upstream: rec
    plugins: [{name: concurrency_limit, config: {key: ["header:X-Tenant"], max: 1}}]
`, map[string]string{"REC": rec.URL})

	send := func(path, ip, tenant string, hold bool) int {
		req := e2eReq(t, http.MethodGet, tg.URL+path, nil)
		req.Header.Set("X-Forwarded-For", ip)
		if tenant != "" {
			req.Header.Set("X-Tenant", tenant)
		}
		if hold {
			req.Header.Set("X-Hold", "1")
		}
		resp, _ := e2eDo(t, req)
		return resp.StatusCode
	}
	// Each case is a request after a first one from 192.0.2.1 without the
	// header; want429 says whether it shares that first request's key.
	cases := []struct {
		desc    string
		ip      string
		tenant  string
		want429 bool
	}{
		{"same client, no header", "192.0.2.1", "", true},
		{"other client, no header", "192.0.2.2", "", false},
		{"same client with a header", "192.0.2.1", "t1", false},
		{"header value naming the address", "192.0.2.1", "%ip:192.0.2.1", false},
	}
	// check sends each case to path and checks which share the key.
	check := func(t *testing.T, path string) {
		for _, tc := range cases {
			want := http.StatusOK
			if tc.want429 {
				want = http.StatusTooManyRequests
			}
			if got := send(path, tc.ip, tc.tenant, false); got != want {
				t.Errorf("%s: status %d, want %d", tc.desc, got, want)
			}
		}
	}
	t.Run("rate_limit", func(t *testing.T) {
		if got := send("/rl", "192.0.2.1", "", false); got != http.StatusOK {
			t.Fatalf("first request: %d", got)
		}
		check(t, "/rl")
	})
	t.Run("concurrency_limit", func(t *testing.T) {
		before := rec.count()
		held := make(chan int, 1)
		go func() { held <- send("/cl", "192.0.2.1", "", true) }()
		wait.For(t, 10*time.Second, "held request at the backend", func() bool { return rec.count() == before+1 })
		check(t, "/cl")
		unblock()
		if got := <-held; got != http.StatusOK {
			t.Errorf("held request: %d", got)
		}
	})
}
