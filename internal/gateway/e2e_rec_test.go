package gateway_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// e2eRecAll routes every path to rec.
const e2eRecAll = "routes:\n  - {name: all, match: {path_prefix: /}, upstream: rec}\n"

// e2eStartRec starts a gateway whose upstream rec is the recorder, with
// cfg (routes, plugins, …) after the listener and upstream.
func e2eStartRec(t testing.TB, rec *e2eRecorder, cfg string) *testutil.Gateway {
	t.Helper()
	return e2eStartOne(t, "rec", rec.URL, cfg)
}

// e2eStartOne starts a gateway with one listener and one upstream, name,
// with one target, url; cfg (routes, plugins, …) follows them.
func e2eStartOne(t testing.TB, name, url, cfg string) *testutil.Gateway {
	t.Helper()
	return e2eStart(t, `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  `+name+`: {targets: [{url: "{{URL}}"}]}
`+cfg, map[string]string{"URL": url})
}

// e2eGetHost is e2eGet with the Host header host ("" for the URL's).
func e2eGetHost(t testing.TB, url, host string) (*http.Response, []byte) {
	t.Helper()
	req := e2eReq(t, http.MethodGet, url, nil)
	if host != "" {
		req.Host = host
	}
	return e2eDo(t, req)
}

// e2eServeEvents streams server-sent events "data: 0", "data: 1", …, each
// after the last once the channel next returns delivers, until the client
// goes away.
func e2eServeEvents[T any](w http.ResponseWriter, r *http.Request, next func() <-chan T) {
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i := 0; ; i++ {
		fmt.Fprintf(w, "data: %d\n\n", i)
		if rc.Flush() != nil {
			return
		}
		select {
		case <-next():
		case <-r.Context().Done():
			return
		}
	}
}
