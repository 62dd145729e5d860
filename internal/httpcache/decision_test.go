package httpcache

import (
	"net/http"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	sec := time.Second
	// stored builds the Meta of a response received at t0 with header kv.
	stored := func(kv ...string) *Meta {
		m := Freshness(hdr(append([]string{"Date", httpDate(t0)}, kv...)...), t0, t0, &Policy{})
		return &m
	}
	tests := []struct {
		name string // cache-tests id (cc-request, cc-response, stale) where one applies
		m    *Meta
		req  []string // request Cache-Control
		at   time.Duration
		want Decision
	}{
		{"nothing stored", nil, nil, 0, Miss},
		{"ccreq-oic", nil, []string{"only-if-cached"}, 0, GatewayTimeout},
		{"freshness-max-age", stored("Cache-Control", "max-age=3600"), nil, 10 * sec, Fresh},
		{"freshness-max-age-stale", stored("Cache-Control", "max-age=1"), nil, 2 * sec, Revalidate},
		{"freshness-max-age-0", stored("Cache-Control", "max-age=0"), nil, 0, Revalidate},
		{"freshness-max-age-age", stored("Cache-Control", "max-age=3600", "Age", "7200"), nil, 0, Revalidate},
		{"freshness-none", stored(), nil, 0, Revalidate},
		{"ccreq-ma0", stored("Cache-Control", "max-age=3600"), []string{"max-age=0"}, sec, Revalidate},
		{"ccreq-ma1", stored("Cache-Control", "max-age=3600"), []string{"max-age=1"}, 2 * sec, Revalidate},
		{"ccreq-ma within", stored("Cache-Control", "max-age=3600"), []string{"max-age=10"}, 2 * sec, Fresh},
		{"ccreq-magreaterage", stored("Cache-Control", "max-age=3600", "Age", "1800"), []string{"max-age=600"}, 0, Revalidate},
		{"ccreq-max-stale", stored("Cache-Control", "max-age=1"), []string{"max-stale=1000"}, 10 * sec, StaleOK},
		{"ccreq-max-stale-age", stored("Cache-Control", "max-age=1", "Age", "2000"), []string{"max-stale=1000"}, 0, Revalidate},
		{"ccreq-max-stale any", stored("Cache-Control", "max-age=1", "Age", "2000"), []string{"max-stale"}, 0, StaleOK},
		{"ccreq-min-fresh", stored("Cache-Control", "max-age=1500"), []string{"min-fresh=2000"}, 0, Revalidate},
		{"ccreq-min-fresh-age", stored("Cache-Control", "max-age=3000", "Age", "1500"), []string{"min-fresh=2000"}, 0, Revalidate},
		{"ccreq-min-fresh ok", stored("Cache-Control", "max-age=3000"), []string{"min-fresh=2000"}, 0, Fresh},
		{"ccreq-no-cache", stored("Cache-Control", "max-age=3600"), []string{"no-cache"}, 0, Revalidate},
		{"ccreq-no-store", stored("Cache-Control", "max-age=3600"), []string{"no-store"}, 0, Miss},
		{"ccreq-oic fresh", stored("Cache-Control", "max-age=3600"), []string{"only-if-cached"}, 0, Fresh},
		{"ccreq-oic stale", stored("Cache-Control", "max-age=1"), []string{"only-if-cached"}, 5 * sec, GatewayTimeout},
		{"ccreq-oic no-store", nil, []string{"only-if-cached, no-store"}, 0, Miss},
		{"cc-resp-no-cache", stored("Cache-Control", "no-cache, max-age=3600"), nil, 0, Revalidate},
		{"cc-resp-must-revalidate-fresh", stored("Cache-Control", "max-age=3600, must-revalidate"), nil, 0, Fresh},
		{"cc-resp-must-revalidate-stale", stored("Cache-Control", "max-age=1, must-revalidate"), []string{"max-stale"}, 5 * sec, Revalidate},
		{"stale-close-proxy-revalidate", stored("Cache-Control", "max-age=1, proxy-revalidate, stale-while-revalidate=60"), nil, 5 * sec, Revalidate},
		{"stale-close-s-maxage", stored("Cache-Control", "s-maxage=1, stale-while-revalidate=60"), []string{"max-stale"}, 5 * sec, Revalidate},
		{"cc-resp-immutable-fresh", stored("Cache-Control", "max-age=3600, immutable"), nil, 0, Fresh},
		{"cc-resp-immutable-stale", stored("Cache-Control", "max-age=1, immutable"), nil, 5 * sec, Revalidate},
		{"stale-while-revalidate", stored("Cache-Control", "max-age=1, stale-while-revalidate=4"), nil, 3 * sec, StaleRevalidate},
		{"stale-while-revalidate edge", stored("Cache-Control", "max-age=1, stale-while-revalidate=4"), nil, 5 * sec, StaleRevalidate},
		{"stale-while-revalidate-window", stored("Cache-Control", "max-age=1, stale-while-revalidate=4"), nil, 6 * sec, Revalidate},
		{"swr with only-if-cached", stored("Cache-Control", "max-age=1, stale-while-revalidate=4"), []string{"only-if-cached"}, 3 * sec, StaleRevalidate},
		{"swr but request no-cache", stored("Cache-Control", "max-age=1, stale-while-revalidate=4"), []string{"no-cache"}, 3 * sec, Revalidate},
		{"pragma-response-no-cache (ignored)", stored("Cache-Control", "max-age=3600", "Pragma", "no-cache"), nil, 0, Fresh},
		{"swr=0", stored("Cache-Control", "max-age=1, stale-while-revalidate=0"), nil, sec, Revalidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ParseCacheControl(tt.req)
			if got := Decide(tt.m, &req, t0.Add(tt.at)); got != tt.want {
				t.Errorf("Decide = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStaleIfErrorAllowed(t *testing.T) {
	sec := time.Second
	stored := func(cc string) *Meta {
		m := Freshness(hdr("Date", httpDate(t0), "Cache-Control", cc), t0, t0, &Policy{})
		return &m
	}
	tests := []struct {
		name string // cache-tests id (stale.mjs) where one applies
		m    *Meta
		req  []string
		at   time.Duration
		want bool
	}{
		{"stale-sie-503", stored("max-age=1, stale-if-error=60"), nil, 30 * sec, true},
		{"stale-sie-close window passed", stored("max-age=1, stale-if-error=60"), nil, 62 * sec, false},
		{"no stale-if-error", stored("max-age=1"), nil, 30 * sec, false},
		{"request stale-if-error", stored("max-age=1"), []string{"stale-if-error=60"}, 30 * sec, true},
		{"request widens window", stored("max-age=1, stale-if-error=5"), []string{"stale-if-error=60"}, 30 * sec, true},
		{"stale-close-must-revalidate", stored("max-age=1, must-revalidate, stale-if-error=60"), nil, 30 * sec, false},
		{"stale-close-proxy-revalidate", stored("max-age=1, proxy-revalidate, stale-if-error=60"), nil, 30 * sec, false},
		{"stale-close-s-maxage", stored("s-maxage=1, stale-if-error=60"), nil, 30 * sec, false},
		{"stale-close-no-cache", stored("max-age=1, no-cache, stale-if-error=60"), nil, 30 * sec, false},
		{"request no-cache", stored("max-age=1, stale-if-error=60"), []string{"no-cache"}, 30 * sec, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := ParseCacheControl(tt.req)
			if got := tt.m.StaleIfErrorAllowed(&req, t0.Add(tt.at)); got != tt.want {
				t.Errorf("StaleIfErrorAllowed = %v, want %v", got, tt.want)
			}
		})
	}
	for s, want := range map[int]bool{500: true, 502: true, 503: true, 504: true, 501: false, 404: false, 200: false} {
		if ErrorStatus(s) != want {
			t.Errorf("ErrorStatus(%d) != %v", s, want)
		}
	}
}

func TestNilArguments(t *testing.T) {
	m := Freshness(hdr("Cache-Control", "max-age=60, stale-if-error=60"), t0, t0, nil)
	if Decide(&m, nil, t0) != Fresh || !m.StaleIfErrorAllowed(nil, t0.Add(90*time.Second)) {
		t.Fatal("nil request directives")
	}
	if ok, _ := Storable(httptestGet(), 200, hdr("Cache-Control", "max-age=1"), nil); !ok {
		t.Fatal("nil policy")
	}
	if ParseCacheControl(nil) != NoDirectives {
		t.Fatal("NoDirectives differs from parsing nothing")
	}
}

func httptestGet() *http.Request { r, _ := http.NewRequest("GET", "http://a.example/", nil); return r }

func TestRequestCacheControlPragma(t *testing.T) {
	// pragma-request-no-cache: Pragma counts only without Cache-Control.
	if !RequestCacheControl(http.Header{"Pragma": {"no-cache"}}).NoCache {
		t.Fatal("Pragma: no-cache ignored")
	}
	if RequestCacheControl(http.Header{"Pragma": {"no-cache"}, "Cache-Control": {"max-age=10"}}).NoCache {
		t.Fatal("Pragma used despite Cache-Control")
	}
	if Decision(99).String() != "unknown" || StaleRevalidate.String() != "stale-while-revalidate" {
		t.Fatal("Decision.String")
	}
}

func BenchmarkLookupDecision(b *testing.B) {
	stored := Freshness(hdr("Date", httpDate(t0), "Cache-Control", "public, max-age=60, stale-while-revalidate=30"), t0, t0, &Policy{})
	reqH := http.Header{"Cache-Control": {"max-age=120"}}
	b.ReportAllocs()
	for b.Loop() {
		req := RequestCacheControl(reqH)
		if Decide(&stored, &req, t0.Add(10*time.Second)) != Fresh {
			b.Fatal("not fresh")
		}
	}
}
