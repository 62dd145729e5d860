package upstream

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/request"
)

// balHashPicks maps keys to target URLs through b with path keys.
func balHashPicks(t testing.TB, b Balancer, ts []*Target, f Filter, keys int) []string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	out := make([]string, keys)
	for i := range out {
		r.URL.Path = "/key/" + strconv.Itoa(i)
		ff := f
		tg := b.Pick(ts, r, &ff)
		if tg == nil {
			t.Fatalf("key %d: no target", i)
		}
		out[i] = tg.URL.String()
	}
	return out
}

// TestMaglevReloadStability checks that keys map to the same target URL in
// independently built balancers (a reload or restart), whatever the order
// the targets are listed in.
func TestMaglevReloadStability(t *testing.T) {
	t.Parallel()
	weights := []int{1, 2, 3, 1, 1, 5, 1, 1}
	urls := make([]string, len(weights))
	for i := range urls {
		urls[i] = fmt.Sprintf("https://backend-%d.internal:8443/api", i)
	}
	revURLs, revWeights := slices.Clone(urls), slices.Clone(weights)
	slices.Reverse(revURLs)
	slices.Reverse(revWeights)
	now := time.Now()
	tests := []struct {
		desc    string
		urls    []string
		weights []int
	}{
		{desc: "same order", urls: urls, weights: weights},
		{desc: "reversed order", urls: revURLs, weights: revWeights},
	}
	ts0 := balTargetsAt(urls, weights)
	base := balHashPicks(t, balNew(t, "consistent_hash", ts0, nil), ts0, NewFilter(now, 0), 10_000)
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts := balTargetsAt(tc.urls, tc.weights)
			got := balHashPicks(t, balNew(t, "consistent_hash", ts, nil), ts, NewFilter(now, 0), 10_000)
			for i := range got {
				if got[i] != base[i] {
					t.Fatalf("key %d: %s, first build said %s", i, got[i], base[i])
				}
			}
		})
	}
}

// TestMaglevKeys checks each key source: the same key always reaches the
// same target, different keys spread over the pool, and a request without
// the key still gets a (random) target.
func TestMaglevKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		hash config.HashOn
		// req builds a request carrying key.
		req func(key int) *http.Request
		// noKey builds a request without a key; nil when every request has one.
		noKey func() *http.Request
	}{
		{
			desc: "header",
			hash: config.HashOn{Header: "x-user-id"},
			req: func(k int) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/same", nil)
				r.Header.Set("X-User-Id", "user-"+strconv.Itoa(k))
				return r
			},
			noKey: func() *http.Request { return httptest.NewRequest(http.MethodGet, "/same", nil) },
		},
		{
			desc: "cookie",
			hash: config.HashOn{Cookie: "session"},
			req: func(k int) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/same", nil)
				r.Header.Set("Cookie", "theme=dark; session=s"+strconv.Itoa(k)+"; lang=en")
				return r
			},
			noKey: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/same", nil)
				r.Header.Set("Cookie", "theme=dark; sessionx=1")
				return r
			},
		},
		{
			desc: "client ip",
			hash: config.HashOn{ClientIP: true},
			req: func(k int) *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/same", nil)
				r.RemoteAddr = fmt.Sprintf("198.51.%d.%d:%d", k/256, k%256, 1024+k%7)
				return r
			},
			noKey: func() *http.Request {
				r := httptest.NewRequest(http.MethodGet, "/same", nil)
				r.RemoteAddr = "not-an-address"
				return r
			},
		},
		{
			desc: "path",
			hash: config.HashOn{Path: true},
			req: func(k int) *http.Request {
				return httptest.NewRequest(http.MethodGet, "/users/"+strconv.Itoa(k)+"?q=1", nil)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(balOnes(10)...)
			b := balNew(t, "consistent_hash", ts, &tc.hash)
			f := NewFilter(time.Now(), 0)
			spread := map[int]bool{}
			for k := range 300 {
				first := b.Pick(ts, tc.req(k), &f)
				if first == nil {
					t.Fatalf("key %d: no target", k)
				}
				spread[first.Index] = true
				for range 5 {
					if tg := b.Pick(ts, tc.req(k), &f); tg != first {
						t.Fatalf("key %d: picked target %v, then %v", k, first.Index, tg)
					}
				}
			}
			if len(spread) < 8 {
				t.Fatalf("300 keys reached only targets %v of 10", spread)
			}
			if tc.noKey == nil {
				return
			}
			seen := map[int]bool{}
			for range 300 {
				tg := b.Pick(ts, tc.noKey(), &f)
				if tg == nil {
					t.Fatal("request without key: no target")
				}
				seen[tg.Index] = true
			}
			if len(seen) < 5 {
				t.Fatalf("requests without key reached only targets %v, want random spread", seen)
			}
		})
	}
}

// TestMaglevKeyForms checks that different spellings of one key reach the
// same target: cookie position, quoting and header lines; client IP port,
// IPv4-mapped form and the gateway record's client IP (trusted proxies)
// over the TCP peer.
func TestMaglevKeyForms(t *testing.T) {
	t.Parallel()
	withCookies := func(lines ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header["Cookie"] = lines
		return r
	}
	fromAddr := func(addr string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = addr
		return r
	}
	withRecord := func(peer, client string) *http.Request {
		r := fromAddr(peer)
		rec := &request.Record{ClientIP: netip.MustParseAddr(client)}
		return r.WithContext(request.WithRecord(context.Background(), rec))
	}
	tests := []struct {
		desc  string
		hash  config.HashOn
		forms []*http.Request
	}{
		{
			desc: "cookie",
			hash: config.HashOn{Cookie: "sid"},
			forms: []*http.Request{
				withCookies("sid=abc123"),
				withCookies("a=1;sid=abc123"),
				withCookies("a=1;  sid=abc123 ; b=2"),
				withCookies(`sid="abc123"`),
				withCookies("a=1", "b=2; sid=abc123"),
				withCookies("xsid=zzz; sid=abc123"),
			},
		},
		{
			desc: "client ip",
			hash: config.HashOn{ClientIP: true},
			forms: []*http.Request{
				fromAddr("203.0.113.7:1234"),
				fromAddr("203.0.113.7:9"),
				fromAddr("203.0.113.7"),
				fromAddr("[::ffff:203.0.113.7]:80"),
				withRecord("10.9.9.9:5555", "203.0.113.7"),
			},
		},
		{
			desc: "client ip v6",
			hash: config.HashOn{ClientIP: true},
			forms: []*http.Request{
				fromAddr("[2001:db8::1]:443"),
				fromAddr("[2001:db8:0:0::1]:80"),
				withRecord("10.9.9.9:5555", "2001:db8::1"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(balOnes(50)...)
			b := balNew(t, "consistent_hash", ts, &tc.hash)
			m := b.(*maglev)
			h0, ok := m.key(tc.forms[0])
			if !ok {
				t.Fatal("form 0: no key")
			}
			f := NewFilter(time.Now(), 0)
			want := b.Pick(ts, tc.forms[0], &f)
			for i, r := range tc.forms[1:] {
				if h, ok := m.key(r); !ok || h != h0 {
					t.Fatalf("form %d: key %x %v, want %x", i+1, h, ok, h0)
				}
				if got := b.Pick(ts, r, &f); got != want {
					t.Fatalf("form %d: target %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

// TestMaglevRemap checks Maglev's minimal disruption: removing one of N
// targets moves its keys and few others; adding one moves about 1/(N+1).
func TestMaglevRemap(t *testing.T) {
	t.Parallel()
	const keys = 10_000
	urls := make([]string, 11)
	for i := range urls {
		urls[i] = fmt.Sprintf("http://10.2.0.%d:80", i+1)
	}
	now := time.Now()
	tests := []struct {
		desc         string
		before, next []string
		// maxMoved bounds the fraction of keys that change target.
		maxMoved float64
	}{
		{desc: "remove one of 10", before: urls[:10], next: slices.Delete(slices.Clone(urls[:10]), 3, 4), maxMoved: 1.0/10 + 0.05},
		{desc: "remove the last of 10", before: urls[:10], next: urls[:9], maxMoved: 1.0/10 + 0.05},
		{desc: "add an 11th", before: urls[:10], next: urls[:11], maxMoved: 1.0/11 + 0.05},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts0 := balTargetsAt(tc.before, balOnes(len(tc.before)))
			ts1 := balTargetsAt(tc.next, balOnes(len(tc.next)))
			before := balHashPicks(t, balNew(t, "consistent_hash", ts0, nil), ts0, NewFilter(now, 0), keys)
			after := balHashPicks(t, balNew(t, "consistent_hash", ts1, nil), ts1, NewFilter(now, 0), keys)
			moved, movedElsewhere := 0, 0
			for i := range before {
				if before[i] == after[i] {
					continue
				}
				moved++
				gone := !slices.Contains(tc.next, before[i])
				added := !slices.Contains(tc.before, after[i])
				if !gone && !added {
					movedElsewhere++
				}
			}
			for i := range before {
				if !slices.Contains(tc.next, before[i]) && before[i] == after[i] {
					t.Fatalf("key %d stayed on removed target %s", i, before[i])
				}
			}
			t.Logf("moved %.4f of keys, %.4f between unchanged targets", float64(moved)/keys, float64(movedElsewhere)/keys)
			if got := float64(moved) / keys; got > tc.maxMoved {
				t.Fatalf("%.3f of keys moved, want at most %.3f", got, tc.maxMoved)
			}
			if got := float64(movedElsewhere) / keys; got > 0.05 {
				t.Fatalf("%.3f of keys moved between unchanged targets, want at most 0.05", got)
			}
		})
	}
}

// TestMaglevUnavailable checks that when a target becomes unavailable (or
// was already tried by this request) only its keys move, spread over the
// other targets, and they come back when it recovers.
func TestMaglevUnavailable(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		desc    string
		disable func(tg *Target, f *Filter)
	}{
		{desc: "unhealthy", disable: func(tg *Target, f *Filter) { tg.State.SetHealthy(false, now) }},
		{desc: "ejected", disable: func(tg *Target, f *Filter) { tg.State.Eject(now, time.Minute, 0) }},
		{desc: "tried", disable: func(tg *Target, f *Filter) { f.MarkTried(tg) }},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(balOnes(10)...)
			b := balNew(t, "consistent_hash", ts, nil)
			f := NewFilter(now, 0)
			before := balHashPicks(t, b, ts, f, 10_000)
			down := ts[4]
			tc.disable(down, &f)
			after := balHashPicks(t, b, ts, f, 10_000)
			dest := map[string]int{}
			for i := range before {
				switch {
				case before[i] == down.URL.String():
					if after[i] == before[i] {
						t.Fatalf("key %d stayed on the unavailable target", i)
					}
					dest[after[i]]++
				case after[i] != before[i]:
					t.Fatalf("key %d moved from %s to %s though its target is available", i, before[i], after[i])
				}
			}
			if len(dest) < 8 {
				t.Fatalf("keys of the unavailable target went to only %d targets: %v", len(dest), dest)
			}
			if tc.desc == "unhealthy" {
				down.State.SetHealthy(true, now)
				if again := balHashPicks(t, b, ts, NewFilter(now.Add(time.Hour), 0), 10_000); !slices.Equal(again, before) {
					t.Fatal("keys did not return to the recovered target")
				}
			}
		})
	}
}

// TestMaglevTable checks table sizes and that each target's share of the
// table follows its weight.
func TestMaglevTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		weights  []int
		wantSize int
	}{
		{desc: "equal", weights: balOnes(7), wantSize: 65537},
		{desc: "weighted", weights: []int{5, 3, 2}, wantSize: 65537},
		{desc: "skewed", weights: []int{100, 1, 1, 1}, wantSize: 65537},
		{desc: "largest small table", weights: balOnes(655), wantSize: 65537},
		{desc: "large pool", weights: balOnes(1000), wantSize: 100003},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			ts := balTargets(tc.weights...)
			if len(ts) > 254 {
				for i, tg := range ts {
					tg.URL.Host = fmt.Sprintf("backend-%d:80", i)
				}
			}
			m := balNew(t, "consistent_hash", ts, nil).(*maglev)
			if len(m.table) != tc.wantSize || !isPrime(len(m.table)) {
				t.Fatalf("table size %d, want prime %d", len(m.table), tc.wantSize)
			}
			counts := make([]int, len(ts))
			for _, i := range m.table {
				counts[i]++
			}
			balCheckShares(t, counts, balWeightShares(tc.weights), 0.02)
		})
	}
}

// TestMaglevValidation checks the hash_on rules.
func TestMaglevValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc     string
		balancer string
		hash     *config.HashOn
		wantErr  string // "" for no error
	}{
		{desc: "header", balancer: "consistent_hash", hash: &config.HashOn{Header: "X-User"}},
		{desc: "cookie", balancer: "consistent_hash", hash: &config.HashOn{Cookie: "sid"}},
		{desc: "client ip", balancer: "consistent_hash", hash: &config.HashOn{ClientIP: true}},
		{desc: "path", balancer: "consistent_hash", hash: &config.HashOn{Path: true}},
		{desc: "missing hash_on", balancer: "consistent_hash", wantErr: "consistent_hash needs hash_on"},
		{desc: "empty hash_on", balancer: "consistent_hash", hash: &config.HashOn{}, wantErr: "set exactly one of header, cookie, client_ip, path"},
		{desc: "two keys", balancer: "consistent_hash", hash: &config.HashOn{Header: "X-User", Path: true}, wantErr: "set exactly one of header, cookie, client_ip, path"},
		{desc: "hash_on with round_robin", balancer: "round_robin", hash: &config.HashOn{Path: true}, wantErr: "hash_on only applies to balancer: consistent_hash"},
		{desc: "round_robin alone", balancer: "round_robin"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			err := validateHashOn(tc.balancer, tc.hash)
			if tc.balancer == "consistent_hash" {
				_, err = newMaglev(&config.Upstream{Balancer: tc.balancer, HashOn: tc.hash}, balTargets(1, 1))
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
