package gateway_test

import (
	"testing"
)

// trafficBenchConfig has one route per traffic-management feature, all to
// the same real backend, beside a plain route: each sub-benchmark of
// BenchmarkTrafficFeatures minus "plain" is what the feature adds to a
// request (README "Performance").
const trafficBenchConfig = splitHead + `upstreams:
  stable: {targets: [{url: "{{stable}}"}]}
  canary: {targets: [{url: "{{stable}}"}]}
  shadow: {targets: [{url: "{{stable}}"}]}
routes:
  - {name: plain, match: {path_prefix: /plain}, upstream: stable}
  - name: split
    match: {path_prefix: /split}
    split:
      variants: [{upstream: stable, weight: 95}, {upstream: canary, weight: 5}]
      rules: [{header: {name: X-Beta, value: "1"}, upstream: canary}]
  - name: sticky
    match: {path_prefix: /sticky}
    split:
      variants: [{upstream: stable, weight: 95}, {upstream: canary, weight: 5}]
      rules: [{header: {name: X-Beta, value: "1"}, upstream: canary}]
      sticky: {key: [ip]}
  - {name: mirror, match: {path_prefix: /mirror}, upstream: stable, mirror: {upstream: shadow, percent: 100}}
  - name: regex
    match: {path_prefix: /regex}
    upstream: stable
    rewrite: {regex: {pattern: "^/regex/(.*)$", replacement: "/v2/$1"}}
`

// BenchmarkTrafficFeatures serves GET requests through each feature's
// route to a real backend on 127.0.0.1.
func BenchmarkTrafficFeatures(b *testing.B) {
	bs := map[string]*splitBackend{"stable": newSplitBackend(b, "stable")}
	rt := splitRuntime(b, trafficBenchConfig, bs)
	for _, path := range []string{"/plain/users/42", "/split/users/42", "/sticky/users/42", "/mirror/users/42", "/regex/users/42"} {
		b.Run(path[1:], func(b *testing.B) { benchServe(b, rt, path) })
	}
}
