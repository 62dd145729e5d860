package httpcache

import (
	"net/http"
	"slices"
	"testing"
)

func TestVaryNames(t *testing.T) {
	tests := []struct {
		name string // cache-tests id (vary-parse.mjs) where one applies
		in   []string
		want []string
		star bool
	}{
		{"none", nil, nil, false},
		{"normalised", []string{"Accept-Encoding, accept-language", "ACCEPT-ENCODING , X-Foo"}, []string{"accept-encoding", "accept-language", "x-foo"}, false},
		{"vary-syntax-star", []string{"*"}, nil, true},
		{"vary-syntax-star-star", []string{"*, *"}, nil, true},
		{"vary-syntax-star-star-lines", []string{"*", "*"}, nil, true},
		{"vary-syntax-empty-star", []string{", *"}, nil, true},
		{"vary-syntax-empty-star-lines", []string{"", "*"}, nil, true},
		{"vary-syntax-star-foo", []string{"*, Foo"}, nil, true},
		{"vary-syntax-foo-star", []string{"Foo, *"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, star := VaryNames(tt.in)
			if star != tt.star || !slices.Equal(got, tt.want) {
				t.Errorf("VaryNames = %q %v, want %q %v", got, star, tt.want, tt.star)
			}
			if VaryStar(tt.in) != tt.star {
				t.Errorf("VaryStar = %v", !tt.star)
			}
		})
	}
}

func TestSecondaryKey(t *testing.T) {
	names, _ := VaryNames([]string{"Foo, Bar"})
	key := func(kv ...string) string { return SecondaryKey(names, hdr(kv...)) }
	// Rows name the cache-tests id (vary.mjs) where one applies; same says
	// whether the two requests may share a stored response.
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"vary-match", key("Foo", "1"), key("Foo", "1"), true},
		{"vary-no-match", key("Foo", "1"), key("Foo", "2"), false},
		{"vary-omit", key("Foo", "1"), key(), false},
		{"empty vs absent", key("Foo", ""), key(), false},
		{"vary-2-match", key("Foo", "1", "Bar", "abc"), key("Bar", "abc", "Foo", "1"), true},
		{"vary-2-no-match", key("Foo", "1", "Bar", "abc"), key("Foo", "1", "Bar", "abcd"), false},
		{"vary-2-match-omit", key("Foo", "1"), key("Foo", "1"), true},
		{"vary-normalise-space", key("Foo", "a,b"), key("Foo", " a , b "), true},
		{"vary-normalise-combine", key("Foo", "a", "Foo", "b"), key("Foo", "a, b"), true},
		{"element order is significant", key("Foo", "a, b"), key("Foo", "b, a"), false},
		{"values do not leak across names", key("Foo", "1\nbar:2"), key("Foo", "1", "Bar", "2"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.a == tt.b) != tt.same {
				t.Errorf("keys %q and %q: same = %v, want %v", tt.a, tt.b, tt.a == tt.b, tt.same)
			}
		})
	}
	// vary-3-order: the order of the names in Vary does not matter.
	n1, _ := VaryNames([]string{"Foo, Bar, Baz"})
	n2, _ := VaryNames([]string{"baz", "bar, FOO"})
	h := hdr("Foo", "1", "Bar", "2", "Baz", "3")
	if SecondaryKey(n1, h) != SecondaryKey(n2, h) {
		t.Fatal("Vary name order changed the secondary key")
	}
	if SecondaryKey(nil, hdr("Foo", "1")) != "" {
		t.Fatal("no Vary must give the empty secondary key")
	}
	// Canonical name lookup: a lower-case name finds a canonical header.
	if SecondaryKey([]string{"accept-encoding"}, http.Header{"Accept-Encoding": {"gzip"}}) != "accept-encoding:gzip\n" {
		t.Fatal("lower-case Vary name did not find the canonical header")
	}
}
