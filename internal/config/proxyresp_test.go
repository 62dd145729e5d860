package config

import (
	"strings"
	"testing"
	"time"
)

// parseUpstreamA parses a config of one upstream, a, and one route to it,
// after head (a server section, or "").
func parseUpstreamA(t *testing.T, head string) *Config {
	t.Helper()
	c, err := Parse([]byte(head+`
upstreams:
  a: {targets: [{url: "http://127.0.0.1:1"}]}
routes:
  - {name: r, match: {path: /}, upstream: a}
`), "t", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUpstreamResponseDefaults pins the defaults of the upstream response
// settings and of the per-message gRPC limit, and their validation.
func TestUpstreamResponseDefaults(t *testing.T) {
	t.Parallel()
	none := func(string) (string, bool) { return "", false }
	c := parseUpstreamA(t, "")
	u := c.Upstreams["a"]
	if u.BodyIdleTimeout.D() != 60*time.Second || u.MaxResponseHeaderBytes != 64<<10 || u.MaxResponseHeaderCount != 100 {
		t.Errorf("defaults: body_idle_timeout %v, max_response_header_bytes %d, max_response_header_count %d",
			u.BodyIdleTimeout.D(), u.MaxResponseHeaderBytes, u.MaxResponseHeaderCount)
	}
	if c.Routes[0].BodyIdleTimeout != 0 {
		t.Errorf("route body_idle_timeout defaults to %v, want unset (the upstream's)", c.Routes[0].BodyIdleTimeout.D())
	}
	if got := c.Server.Limits.MaxGRPCMessageBytes; got != 10<<20 {
		t.Errorf("max_grpc_message_bytes default %d, want max_body_bytes (10MiB)", got)
	}

	c = parseUpstreamA(t, "server: {limits: {max_body_bytes: 1MiB}}")
	if got := c.Server.Limits.MaxGRPCMessageBytes; got != 1<<20 {
		t.Errorf("max_grpc_message_bytes %d, want the configured max_body_bytes 1MiB", got)
	}

	for _, tc := range []struct{ server, upstream, route, want string }{
		{server: "limits: {max_grpc_message_bytes: -2}", want: "server.limits.max_grpc_message_bytes"},
		{upstream: "body_idle_timeout: -1s", want: "upstreams.a.body_idle_timeout"},
		{upstream: "max_response_header_bytes: 100", want: "upstreams.a.max_response_header_bytes"},
		{upstream: "max_response_header_count: -1", want: "upstreams.a.max_response_header_count"},
		{route: "body_idle_timeout: -1s", want: "routes[0].body_idle_timeout"},
	} {
		y := "server: {" + tc.server + "}\nupstreams:\n  a: {targets: [{url: \"http://127.0.0.1:1\"}], " + tc.upstream +
			"}\nroutes:\n  - {name: r, match: {path: /}, upstream: a, " + tc.route + "}\n"
		_, err := Parse([]byte(y), "t", none)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming it", tc.want, err)
		}
	}
}
