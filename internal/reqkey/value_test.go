package reqkey

import (
	"net/http/httptest"
	"testing"
)

func TestValue(t *testing.T) {
	r := httptest.NewRequest("GET", "/x?v=%62&e=", nil)
	r.Header.Set("X-Beta", "1")
	r.Header.Set("Cookie", "a=1; variant=\"b\"")
	cases := []struct {
		part, want string
		ok         bool
	}{
		{"header:x-beta", "1", true},
		{"header:X-Other", "", false},
		{"cookie:variant", "b", true},
		{"cookie:none", "", false},
		{"query:v", "b", true},
		{"query:e", "", false},
		{"ip", "", false},
	}
	for _, tc := range cases {
		got, ok := MustParse(tc.part).Value(r, nil)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %q, %v; want %q, %v", tc.part, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := (Key{}).Value(r, nil); ok {
		t.Error("empty key has a value")
	}
}
