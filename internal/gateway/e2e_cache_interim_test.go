package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"sync"
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// TestCacheInterimHeadersDoNotLeak: a 103 Early Hints answer passes
// through a cached route with its own fields, and those fields do not
// reach the final response, on a miss or on a hit.
func TestCacheInterimHeadersDoNotLeak(t *testing.T) {
	t.Parallel()
	be := testutil.Backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Cache-Control", "max-age=60")
		_, _ = w.Write([]byte("final"))
	}))
	tg := e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams: {be: {targets: [{url: "{{BE}}"}]}}
routes:
  - {name: hints, match: {path_prefix: /}, upstream: be, plugins: [{name: cache}]}
`, map[string]string{"BE": be.URL})
	for _, want := range []string{"MISS", "HIT"} {
		var mu sync.Mutex
		var interim []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			mu.Lock()
			defer mu.Unlock()
			interim = append(interim, h.Get("Link"))
			return nil
		}}
		req := e2eReq(t, http.MethodGet, tg.URL+"/page", nil)
		req = req.WithContext(httptrace.WithClientTrace(context.Background(), trace))
		resp, body := e2eDo(t, req)
		if resp.Header.Get("X-Cache") != want || string(body) != "final" {
			t.Fatalf("X-Cache %q body %q, want %s and the final body", resp.Header.Get("X-Cache"), body, want)
		}
		if l := resp.Header.Get("Link"); l != "" {
			t.Errorf("%s: the final response carries the 103's Link %q", want, l)
		}
		mu.Lock()
		if want == "MISS" && (len(interim) != 1 || interim[0] == "") {
			t.Errorf("miss: interim responses %q, want one 103 with its Link", interim)
		}
		mu.Unlock()
	}
}
