package config

import "testing"

// TestRouteUsesUpstream: a split route uses each of its variants' upstreams
// (the admin API refuses to delete an upstream a route uses).
func TestRouteUsesUpstream(t *testing.T) {
	plain := &Route{Upstream: "a"}
	split := &Route{Split: &Split{Variants: []SplitVariant{{Upstream: "s", Weight: 9}, {Upstream: "c", Weight: 1}}}}
	for _, tc := range []struct {
		r    *Route
		name string
		want bool
	}{{plain, "a", true}, {plain, "s", false}, {split, "s", true}, {split, "c", true}, {split, "a", false}} {
		if got := tc.r.UsesUpstream(tc.name); got != tc.want {
			t.Errorf("UsesUpstream(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
