package gateway_test

import (
	"testing"

	"github.com/portico-gw/portico/internal/testutil"
)

// e2eRecYAML starts a config with one listener and an upstream "rec" at
// {{REC}}; e2eStartRec appends the test's routes and plugins to it.
const e2eRecYAML = `
server: {listen: [{addr: "127.0.0.1:0"}]}
upstreams:
  rec: {targets: [{url: "{{REC}}"}]}
`

// e2eRecAll routes every path to rec.
const e2eRecAll = "routes:\n  - {name: all, match: {path_prefix: /}, upstream: rec}\n"

// e2eStartRec starts a gateway whose upstream rec is the recorder, with
// cfg (routes, plugins, …) after the listener and upstream.
func e2eStartRec(t testing.TB, rec *e2eRecorder, cfg string) *testutil.Gateway {
	t.Helper()
	return e2eStart(t, e2eRecYAML+cfg, map[string]string{"REC": rec.URL})
}
