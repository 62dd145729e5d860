package httpcache

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStorable(t *testing.T) {
	get := func(kv ...string) *http.Request {
		r := httptest.NewRequest("GET", "http://a.example/x", nil)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
		return r
	}
	fresh := hdr("Cache-Control", "max-age=60")
	tests := []struct {
		name   string // cache-tests id (cc-response, status, method, authorization, heuristic) where one applies
		req    *http.Request
		status int
		h      http.Header
		p      Policy
		reason string // "" = storable
	}{
		{"freshness-max-age", get(), 200, fresh, Policy{}, ""},
		{"method-POST", httptest.NewRequest("POST", "/", nil), 200, fresh, Policy{}, ReasonMethod},
		{"method-PUT", httptest.NewRequest("PUT", "/", nil), 200, fresh, Policy{}, ReasonMethod},
		{"HEAD", httptest.NewRequest("HEAD", "/", nil), 200, fresh, Policy{}, ""},
		{"cc-resp-no-store", get(), 200, hdr("Cache-Control", "no-store"), Policy{}, ReasonNoStore},
		{"cc-resp-no-store-fresh", get(), 200, hdr("Cache-Control", "no-store, max-age=3600", "Expires", httpDate(t0)), Policy{}, ReasonNoStore},
		{"cc-resp-no-store-case-insensitive", get(), 200, hdr("Cache-Control", "nO-StOrE"), Policy{}, ReasonNoStore},
		{"ccreq-no-store", get("Cache-Control", "no-store"), 200, fresh, Policy{}, ReasonRequestNoStore},
		{"cc-resp-private-shared", get(), 200, hdr("Cache-Control", "private, max-age=3600"), Policy{}, ReasonPrivate},
		{"cc-resp-no-cache-revalidate (stored)", get(), 200, hdr("Cache-Control", "no-cache", "Etag", `"a"`), Policy{}, ""},
		{"cc-resp-no-cache-revalidate-fresh", get(), 200, hdr("Cache-Control", "no-cache, max-age=3600"), Policy{}, ""},
		{"vary-syntax-star", get(), 200, hdr("Cache-Control", "max-age=60", "Vary", "*"), Policy{}, ReasonVaryStar},
		{"vary-syntax-foo-star", get(), 200, hdr("Cache-Control", "max-age=60", "Vary", "Foo, *"), Policy{}, ReasonVaryStar},
		{"vary-syntax-star-star-lines", get(), 200, hdr("Cache-Control", "max-age=60", "Vary", "*", "Vary", "*"), Policy{}, ReasonVaryStar},
		{"vary-syntax-empty-star", get(), 200, hdr("Cache-Control", "max-age=60", "Vary", ", *"), Policy{}, ReasonVaryStar},
		{"206 never stored (partial-store-partial-reuse-partial)", get(), 206, fresh, Policy{}, ReasonRange},
		{"304 never", get(), 304, fresh, Policy{}, ReasonStatus},
		{"1xx never", get(), 103, fresh, Policy{}, ReasonStatus},
		{"status-500-fresh", get(), 500, fresh, Policy{}, ""},
		{"status-302-fresh", get(), 302, fresh, Policy{}, ""},
		{"status-599-fresh", get(), 599, hdr("Expires", httpDate(t0)), Policy{}, ""},
		{"freshness-none", get(), 200, hdr(), Policy{}, ReasonNoFreshness},
		{"validator only: stored for revalidation", get(), 200, hdr("Etag", `"v"`), Policy{}, ""},
		{"last-modified only: stored for revalidation", get(), 200, hdr("Last-Modified", httpDate(t0)), Policy{}, ""},
		{"heuristic-200-cached", get(), 200, hdr(), Policy{Heuristic: true}, ""},
		{"heuristic-404-cached", get(), 404, hdr(), Policy{Heuristic: true}, ""},
		{"heuristic-302-not_cached", get(), 302, hdr("Etag", `"v"`), Policy{Heuristic: true}, ReasonStatus},
		{"heuristic-500-not_cached", get(), 500, hdr(), Policy{Heuristic: true}, ReasonStatus},
		{"heuristic-500 public", get(), 500, hdr("Cache-Control", "public"), Policy{Heuristic: true}, ""},
		{"public without heuristic", get(), 500, hdr("Cache-Control", "public"), Policy{}, ReasonStatus},
		{"ttl replace stores without freshness", get(), 500, hdr(), Policy{TTL: 1, Mode: TTLReplace}, ""},
		{"ttl cap needs freshness", get(), 200, hdr(), Policy{TTL: 1}, ReasonNoFreshness},
		{"ttl replace keeps no-store", get(), 200, hdr("Cache-Control", "no-store"), Policy{TTL: 1, Mode: TTLReplace}, ReasonNoStore},
		{"other-authorization (off by default)", get("Authorization", "Bearer x"), 200, hdr("Cache-Control", "public, max-age=60"), Policy{}, ReasonAuthorization},
		{"authorization allowed needs directive", get("Authorization", "Bearer x"), 200, fresh, Policy{AllowAuthorized: true}, ReasonAuthorization},
		{"other-authorization-public", get("Authorization", "Bearer x"), 200, hdr("Cache-Control", "public, max-age=60"), Policy{AllowAuthorized: true}, ""},
		{"other-authorization-smaxage", get("Authorization", "Bearer x"), 200, hdr("Cache-Control", "s-maxage=60"), Policy{AllowAuthorized: true}, ""},
		{"other-authorization-must-revalidate", get("Authorization", "Bearer x"), 200, hdr("Cache-Control", "max-age=60, must-revalidate"), Policy{AllowAuthorized: true}, ""},
		{"set-cookie default off", get(), 200, hdr("Cache-Control", "max-age=60", "Set-Cookie", "a=b"), Policy{}, ReasonSetCookie},
		{"set-cookie allowed", get(), 200, hdr("Cache-Control", "max-age=60", "Set-Cookie", "a=b"), Policy{AllowSetCookie: true}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := Storable(tt.req, tt.status, tt.h, &tt.p)
			if ok != (tt.reason == "") || reason != tt.reason {
				t.Errorf("Storable = %v %q, want reason %q", ok, reason, tt.reason)
			}
		})
	}
}
