package reqkey

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/request"
)

// FuzzParse checks that Parse never panics, that a key it accepts has one
// part per input, and that its canonical spec parses back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"consumer", "ip,route", "header:x-user,param:id", "cookie:sid", "query:a[b]", "header:",
		"header:a b", "nope", "method,path", "", "query:&", "param:x,header:Y,cookie:z,ip,consumer,route,path,method",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts := strings.Split(s, ",")
		k, err := Parse(parts)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if k.Len() != len(parts) {
			t.Fatalf("%d parts from %q", k.Len(), parts)
		}
		spec := k.String()
		if !strings.HasPrefix(spec, "[") || !strings.HasSuffix(spec, "]") {
			t.Fatalf("spec %q", spec)
		}
		again, err := Parse(strings.Split(spec[1:len(spec)-1], ", "))
		if err != nil || again.String() != spec {
			t.Fatalf("spec %q parses to %q, %v", spec, again.String(), err)
		}
	})
}

// FuzzRender checks that requests whose key values differ never render to
// the same text: values may contain the separator, the escape character,
// hash-tag braces, or the missing value's own text; an empty value is a
// missing one (the client IP stands for it).
func FuzzRender(f *testing.F) {
	f.Add("a", "b", "a", "b", false)
	f.Add("x|y", "z", "x", "y|z", false)
	f.Add("", "b", "%ip:192.0.2.1", "b", false)
	f.Add("%7C", "", "|", "", true)
	f.Add("{", "}", "%7B", "%7D", false)
	k := MustParse("header:A", "cookie:b", "consumer")
	rec := &request.Record{ClientIP: netip.MustParseAddr("192.0.2.1")}
	f.Fuzz(func(t *testing.T, a1, b1, a2, b2 string, other bool) {
		if strings.ContainsAny(b1+b2, ";\"") || strings.TrimSpace(b1) != b1 || strings.TrimSpace(b2) != b2 {
			return // not representable as one cookie value
		}
		r1 := httptest.NewRequest("GET", "/", nil)
		r2 := httptest.NewRequest("GET", "/", nil)
		r1.Header["A"], r2.Header["A"] = []string{a1}, []string{a2}
		r1.Header["Cookie"], r2.Header["Cookie"] = []string{"b=" + b1}, []string{"b=" + b2}
		rec2 := *rec
		if other {
			rec2.ClientIP = netip.MustParseAddr("2001:db8::1")
		}
		s1, s2 := k.Render(r1, rec), k.Render(r2, &rec2)
		// The consumer part is always missing: the client IP stands in.
		same := a1 == a2 && b1 == b2 && !other
		if (s1 == s2) != same {
			t.Fatalf("(%q, %q) renders %q, (%q, %q) renders %q", a1, b1, s1, a2, b2, s2)
		}
		for _, s := range []string{s1, s2} {
			if strings.ContainsAny(s, "{}") {
				t.Fatalf("%q contains a hash-tag brace", s)
			}
		}
	})
}
