package httpcache

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

func TestInvalidates(t *testing.T) {
	// invalidation.mjs: invalidate-${method} and invalidate-${method}-failed.
	for _, tt := range []struct {
		method string
		status int
		want   bool
	}{
		{"POST", 200, true}, {"PUT", 201, true}, {"DELETE", 204, true}, {"PATCH", 303, true}, {"M-SEARCH", 200, true},
		{"POST", 404, false}, {"PUT", 500, false}, {"DELETE", 100, false},
		{"GET", 200, false}, {"HEAD", 200, false}, {"OPTIONS", 200, false}, {"TRACE", 200, false},
	} {
		if got := Invalidates(tt.method, tt.status); got != tt.want {
			t.Errorf("Invalidates(%s, %d) = %v", tt.method, tt.status, got)
		}
	}
}

func TestInvalidationTargets(t *testing.T) {
	r := httptest.NewRequest("POST", "http://a.example/items/1?x=1", nil)
	tests := []struct {
		name string // invalidation.mjs ids where one applies
		h    http.Header
		want []string
	}{
		{"invalidate-POST", hdr(), []string{"/items/1?x=1"}},
		{"invalidate-POST-location", hdr("Location", "/items/2"), []string{"/items/1?x=1", "/items/2"}},
		{"invalidate-POST-cl", hdr("Content-Location", "3?y=2"), []string{"/items/1?x=1", "/items/3?y=2"}},
		{"same origin absolute", hdr("Location", "http://A.example/items/4"), []string{"/items/1?x=1", "/items/4"}},
		{"other host ignored", hdr("Location", "http://b.example/items/4"), []string{"/items/1?x=1"}},
		{"other scheme ignored", hdr("Location", "https://a.example/items/4"), []string{"/items/1?x=1"}},
		{"invalid ignored", hdr("Location", "http://[::1"), []string{"/items/1?x=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, u := range InvalidationTargets(r, tt.h) {
				got = append(got, u.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("targets %q, want %q", got, tt.want)
			}
		})
	}
}
