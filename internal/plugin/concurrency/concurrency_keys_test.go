package concurrency

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/testutil/wait"
)

// consumerKey is the limiter key of a request from 192.0.2.1 authenticated
// as id (unauthenticated when id is "").
func consumerKey(p *Concurrency, id string) lkey {
	r := newRequest(context.Background(), "192.0.2.1", id)
	return p.keyOf(r, request.RecordOf(r))
}

// TestKeyList checks that key accepts a list of parts (and one part as a
// string or a one-element list alike), and that a part without a value
// stands for the client IP.
func TestKeyList(t *testing.T) {
	t.Parallel()
	if a, b := mustBuild(t, `{max: 1, key: ip}`), mustBuild(t, `{max: 1, key: [ip]}`); a.key.String() != b.key.String() {
		t.Errorf("key: ip is %s, key: [ip] is %s", a.key, b.key)
	}
	for _, tc := range []struct{ src, err string }{
		{`{max: 1, key: [ip, user]}`, `key[1]: unknown key part "user"`},
		{`{max: 1, key: [ip, {a: b}]}`, "expected a string"},
		{`{max: 1, key: {a: b}}`, "a string or a list of strings"},
	} {
		if _, err := build(t, tc.src); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: error %v, want %q", tc.src, err, tc.err)
		}
	}

	p := mustBuild(t, `{max: 1, key: [consumer, "header:X-Tenant"]}`)
	g := newGate()
	h := p.Wrap(g)
	mk := func(ip, id, tenant string) *http.Request {
		r := newRequest(context.Background(), ip, id)
		if tenant != "" {
			r.Header.Set("X-Tenant", tenant)
		}
		return r
	}
	held := serve(h, mk("192.0.2.1", "alice", "t1"))
	heldAnon := serve(h, mk("192.0.2.1", "", ""))
	wait.For(t, 10*time.Second, "both inside", func() bool { return g.in.Load() == 2 })
	for _, tc := range []struct {
		desc string
		r    *http.Request
	}{
		{"same consumer and tenant, other IP", mk("192.0.2.9", "alice", "t1")},
		{"no consumer, no tenant, same IP", mk("192.0.2.1", "", "")},
	} {
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, tc.r)
		if rr.Code != http.StatusTooManyRequests {
			t.Errorf("%s: status %d, want 429 (shared key)", tc.desc, rr.Code)
		}
	}
	key := func(r *http.Request) lkey { return p.keyOf(r, request.RecordOf(r)) }
	for _, tc := range []struct {
		desc string
		a, b *http.Request
	}{
		{"same consumer, other tenant", mk("192.0.2.1", "alice", "t1"), mk("192.0.2.1", "alice", "t2")},
		{"no consumer, no tenant, other IPs", mk("192.0.2.1", "", ""), mk("192.0.2.2", "", "")},
		{"a tenant and none, same IP", mk("192.0.2.1", "", "t1"), mk("192.0.2.1", "", "")},
	} {
		if key(tc.a) == key(tc.b) {
			t.Errorf("%s: one key", tc.desc)
		}
	}
	close(g.release)
	recv(t, held)
	recv(t, heldAnon)
	checkNoKeys(t, p, "")
}
