package quota

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
	"github.com/portico-gw/portico/internal/testutil/fakeclock"
	"github.com/portico-gw/portico/internal/testutil/testredis"
)

// doFrom sends one request from ip as consumer c (nil: unauthenticated)
// with the given X-Tenant header ("" for none).
func doFrom(h http.Handler, ip string, c *consumer.Consumer, tenant string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if tenant != "" {
		r.Header.Set("X-Tenant", tenant)
	}
	rec := &request.Record{RequestID: "req-1", Route: "api", Consumer: c, ClientIP: netip.MustParseAddr(ip)}
	r = r.WithContext(request.WithRecord(r.Context(), rec))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, r)
	return rr
}

func TestKeyConfig(t *testing.T) {
	t.Parallel()
	const r = `redis: {addr: "127.0.0.1:1"}`
	for _, tc := range []struct{ src, wantErr string }{
		{`{limit: 5, period: day, key: user, ` + r + `}`, `key[0]: unknown key part "user"`},
		{`{limit: 5, period: day, key: [ip, "header:"], ` + r + `}`, `key[1]: "header:": header name missing`},
		{`{limit: 5, period: day, key: "header:X-Tenant", ` + r + `}`, ""},
		{`{limit: 5, period: day, key: [consumer, route], ` + r + `}`, ""},
	} {
		_, err := build(t, tc.src, nil)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want %q", tc.src, err, tc.wantErr)
		}
	}
	p, err := build(t, `{limit: 5, period: day, `+r+`}`, nil)
	if err != nil || p.key.String() != "[consumer]" || !p.byConsumer {
		t.Fatalf("default key %s (%v)", p.key, err)
	}
}

// TestKeyWithoutConsumer counts by a header: consumers share its count, the
// consumer's metadata does not apply, requests without a consumer are
// counted (not refused), and a request without the header is counted by its
// client IP.
func TestKeyWithoutConsumer(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	clk := fakeclock.New(utc(2026, 3, 10, 12, 0, 0))
	h := mustBuild(t, `{limit: 2, period: day, key: "header:X-Tenant", redis: `+redisCfg(rs.Addr)+`}`, clk)
	big := cons("alice", map[string]string{"quota": "100"})
	expect(t, doFrom(h, "192.0.2.1", big, "t1"), http.StatusOK, "2", "1", "43200", "")
	expect(t, doFrom(h, "192.0.2.2", nil, "t1"), http.StatusOK, "2", "0", "43200", "")
	expect(t, doFrom(h, "192.0.2.3", cons("bob", nil), "t1"), http.StatusTooManyRequests, "2", "0", "43200", "43200")
	expect(t, doFrom(h, "192.0.2.1", nil, "t2"), http.StatusOK, "2", "1", "43200", "")
	// No header: each client IP has its own count.
	expect(t, doFrom(h, "192.0.2.1", nil, ""), http.StatusOK, "2", "1", "43200", "")
	expect(t, doFrom(h, "192.0.2.1", nil, ""), http.StatusOK, "2", "0", "43200", "")
	expect(t, doFrom(h, "192.0.2.1", nil, ""), http.StatusTooManyRequests, "2", "0", "43200", "43200")
	expect(t, doFrom(h, "192.0.2.9", nil, ""), http.StatusOK, "2", "1", "43200", "")

	c := rdb(t, rs.Addr)
	for key, want := range map[string]int{
		"portico:quota:api:t1:2026-03-10":            2,
		"portico:quota:api:%ip:192.0.2.1:2026-03-10": 2,
	} {
		if n, err := c.Get(context.Background(), key).Int(); err != nil || n != want {
			t.Errorf("%s = %d (%v), want %d", key, n, err, want)
		}
	}
}

// TestKeyWithConsumer keeps the consumer rule for keys with a consumer part:
// anonymous requests follow on_anonymous; the rest are counted per key.
func TestKeyWithConsumer(t *testing.T) {
	t.Parallel()
	rs := testredis.Start(t)
	clk := fakeclock.New(utc(2026, 3, 10, 12, 0, 0))
	src := `{limit: 1, period: day, key: [consumer, "header:X-Tenant"], redis: ` + redisCfg(rs.Addr) + `}`
	h := mustBuild(t, src, clk)
	expect(t, doFrom(h, "192.0.2.1", nil, "t1"), http.StatusForbidden, "", "", "", "")
	expect(t, doFrom(h, "192.0.2.1", cons("alice", nil), "t1"), http.StatusOK, "1", "0", "43200", "")
	expect(t, doFrom(h, "192.0.2.1", cons("alice", nil), "t2"), http.StatusOK, "1", "0", "43200", "")
	expect(t, doFrom(h, "192.0.2.1", cons("alice", nil), "t1"), http.StatusTooManyRequests, "1", "0", "43200", "43200")
	if n, err := rdb(t, rs.Addr).Get(context.Background(), "portico:quota:api:alice|t2:2026-03-10").Int(); err != nil || n != 1 {
		t.Errorf("count %d (%v), want 1", n, err)
	}
}
