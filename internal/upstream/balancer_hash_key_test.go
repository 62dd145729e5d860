package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/request"
)

// TestMaglevKeyForm checks hash_on: {key: [...]}: the same values reach the
// same target, and a request with a part that has no value is a request
// without a key (a random target), as documented for hash_on.
func TestMaglevKeyForm(t *testing.T) {
	t.Parallel()
	ts := balTargets(balOnes(20)...)
	m := balNew(t, "consistent_hash", ts, &config.HashOn{Key: config.StringList{"consumer", "header:x-tenant"}}).(*maglev)
	mk := func(id, tenant, ip string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tenant != "" {
			r.Header.Set("X-Tenant", tenant)
		}
		rec := &request.Record{ClientIP: netip.MustParseAddr(ip)}
		if id != "" {
			rec.Consumer = &consumer.Consumer{ID: id, Name: id}
		}
		return r.WithContext(request.WithRecord(context.Background(), rec))
	}
	h1, ok1 := m.key(mk("alice", "t1", "192.0.2.1"))
	h2, ok2 := m.key(mk("alice", "t1", "192.0.2.2"))
	h3, _ := m.key(mk("alice", "t2", "192.0.2.1"))
	if !ok1 || !ok2 || h1 != h2 || h1 == h3 {
		t.Fatalf("keys %x %v, %x %v, %x", h1, ok1, h2, ok2, h3)
	}
	for _, r := range []*http.Request{mk("", "t1", "192.0.2.1"), mk("alice", "", "192.0.2.1")} {
		if _, ok := m.key(r); ok {
			t.Error("a request with a missing part has a key")
		}
	}
	f := NewFilter(time.Now(), 0)
	seen := map[int]bool{}
	for range 200 {
		seen[m.Pick(ts, mk("", "t1", "192.0.2.1"), &f).Index] = true
	}
	if len(seen) < 5 {
		t.Errorf("requests without a key reached only targets %v", seen)
	}
}

// TestMaglevKeySameAsField checks that a one-field hash_on and the key it
// stands for hash alike, and that both hash a value as consistent hashing
// always has, so upgrading or rewriting a config moves no key.
func TestMaglevKeySameAsField(t *testing.T) {
	t.Parallel()
	ts := balTargets(balOnes(5)...)
	r := httptest.NewRequest(http.MethodGet, "/p/1", nil)
	r.Header.Set("X-User", "u1")
	r.Header.Set("Cookie", "sid=s1")
	r.RemoteAddr = "203.0.113.7:1234"
	for _, tc := range []struct {
		field config.HashOn
		key   string
		// legacy is the hash the previous release gave the request.
		legacy uint64
	}{
		{config.HashOn{Header: "x-user"}, "header:X-User", 0x715fdd7b59a9a19f},
		{config.HashOn{Cookie: "sid"}, "cookie:sid", 0x4c594168be82e9fe},
		{config.HashOn{Path: true}, "path", 0x2f1e0bbdc68f9ac2},
		{config.HashOn{ClientIP: true}, "ip", 0xe08e6a5eb0372eab},
	} {
		a, okA := balNew(t, "consistent_hash", ts, &tc.field).(*maglev).key(r)
		b, okB := balNew(t, "consistent_hash", ts, &config.HashOn{Key: config.StringList{tc.key}}).(*maglev).key(r)
		if !okA || !okB || a != b || a != tc.legacy {
			t.Errorf("%s: field %x %v, key %x %v, legacy %x", tc.key, a, okA, b, okB, tc.legacy)
		}
	}
}

func TestMaglevKeyValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		hash config.HashOn
		err  string
	}{
		{config.HashOn{Key: config.StringList{"user"}}, `hash_on: key[0]: unknown key part "user"`},
		{config.HashOn{Key: config.StringList{"ip", "cookie:"}}, `hash_on: key[1]: "cookie:": cookie name missing`},
		{config.HashOn{Header: "Bad Name"}, `header name "Bad Name" is not a valid token`},
		{config.HashOn{Path: true, Key: config.StringList{"ip"}}, "set exactly one of header, cookie, client_ip, path, key (2 set)"},
	} {
		_, err := newMaglev(&config.Upstream{Balancer: "consistent_hash", HashOn: &tc.hash}, balTargets(1, 1))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: error %v, want %q", tc.hash, err, tc.err)
		}
	}
}
