package oidclogin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/testutil/testredis"
)

// TestSessionWithoutIDAndRedis: a session cookie written before session
// IDs existed (no "sid") keeps working without redis, and is refused once
// (reason invalid, cookie deleted) when redis is set, since it could not
// be revoked.
func TestSessionWithoutIDAndRedis(t *testing.T) {
	rs := testredis.Start(t)
	for _, withRedis := range []bool{false, true} {
		extra := ""
		if withRedis {
			extra = fmt.Sprintf("redis: {addr: %q, timeout: 2s}", rs.Addr)
		}
		e := newEnv(t, envOpts{extraYAML: extra})
		old := &session{Sub: "alice-sub", Name: "alice-sub", Expires: e.clock.Now().Add(time.Hour).Unix()}
		v, err := e.plugin.sealer.seal(purposeSession, DefaultCookieName, old)
		if err != nil {
			t.Fatal(err)
		}
		e.setCookie(DefaultCookieName, v)
		resp := e.get(e.step, "/app", "Accept", "application/json")
		switch {
		case !withRedis && resp.StatusCode != http.StatusOK:
			t.Errorf("without redis: %d, want the old session accepted", resp.StatusCode)
		case withRedis && (resp.StatusCode != http.StatusUnauthorized || e.lastReason != "invalid" || setCookieHeader(resp, DefaultCookieName) == ""):
			t.Errorf("with redis: %d reason %q Set-Cookie %q, want 401 invalid deleting the cookie",
				resp.StatusCode, e.lastReason, setCookieHeader(resp, DefaultCookieName))
		}
	}
}

func TestRevocationConfigErrors(t *testing.T) {
	base := "issuer: https://idp.example\nclient_id: c\ncookie_secret: " + testSecret + "\n"
	for _, tc := range []struct{ src, want string }{
		{base + "on_redis_error: fail_open", "on_redis_error: only applies with redis"},
		{base + "redis: {addr: '127.0.0.1:1'}\non_redis_error: deny", `on_redis_error: "deny" is not fail_closed or fail_open`},
		{base + "redis: {}", "redis: set exactly one of addr, cluster, sentinel"},
	} {
		_, err := build(t, tc.src, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}
