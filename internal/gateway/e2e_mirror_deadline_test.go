package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// TestMirrorSlowPrimaryWithBody: a mirrored request with a body, sized or
// chunked, to a primary slower than body_read_timeout still answers, and
// the connection serves the next request. (That the body's end, which
// lifts the read deadline, is reached is checked directly by
// TestMirrorReadBodyReachesEnd.)
func TestMirrorSlowPrimaryWithBody(t *testing.T) {
	t.Parallel()
	v1 := e2eNewRecorder(t, "v1", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(600 * time.Millisecond) // the behaviour under test: an upstream slower than the body deadline
	})
	v2 := e2eNewRecorder(t, "v2", nil)
	tg := e2eStart(t, strings.Replace(e2eMirrorConfig, `server: {listen: [{addr: "127.0.0.1:0"}]}`,
		`server: {listen: [{addr: "127.0.0.1:0"}], limits: {body_read_timeout: 200ms}}`, 1),
		map[string]string{"V1": v1.URL, "V2": v2.URL, "MIRROR": ""})
	c := testutil.Client()
	for i := range 2 {
		for _, chunked := range []bool{false, true} {
			resp, err := c.Post(tg.URL+"/api/x", "application/json", mirrorBody([]byte(`{"n":1}`), chunked))
			if err != nil {
				t.Fatalf("request %d (chunked %v): %v", i, chunked, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d (chunked %v): status %d: %s", i, chunked, resp.StatusCode, b)
			}
		}
	}
}

// TestMirrorCopiesAreNotRetried: a copy that fails to connect is counted
// as failed, never retried on another target of the mirror upstream (the
// upstream's own retry policy applies to its routes, not to copies).
func TestMirrorCopiesAreNotRetried(t *testing.T) {
	t.Parallel()
	v1, v2 := e2eNewRecorder(t, "v1", nil), e2eNewRecorder(t, "v2", nil)
	cfg := strings.Replace(e2eMirrorConfig, `v2: {targets: [{url: "{{V2}}"}], request_timeout: 5s}`,
		`v2: {targets: [{url: "{{V2}}"}, {url: "http://{{DOWN}}"}], balancer: round_robin, retry: {attempts: 2, on: [connect_failure]}}`, 1)
	tg := e2eStart(t, cfg, map[string]string{"V1": v1.URL, "V2": v2.URL, "DOWN": e2eFreePort(t), "MIRROR": ""})
	const n = 10
	for range n {
		if resp, _ := e2eGet(t, tg.URL+"/api/x"); resp.StatusCode != 200 {
			t.Fatalf("primary status %d", resp.StatusCode)
		}
	}
	wait.For(t, 10*time.Second, "every copy counted", func() bool { return mirrorCount(tg, "sent")+mirrorCount(tg, "failed") == n })
	if f := mirrorCount(tg, "failed"); f == 0 {
		t.Errorf("no copy failed: copies to the closed target were retried on the open one (sent %d)", mirrorCount(tg, "sent"))
	}
	if got := int64(v2.count()); got != mirrorCount(tg, "sent") {
		t.Errorf("mirror backend got %d copies, sent counts %d", got, mirrorCount(tg, "sent"))
	}
}
