package claims

import (
	"testing"

	"github.com/portico-gw/portico/internal/httpx"
)

func TestReserved(t *testing.T) {
	shared := []string{"Host", "Content-Length", "Content-Type", "Cookie"}
	shared = append(shared, httpx.HopByHop[:]...)
	shared = append(shared, httpx.IdentityHeaders[:]...)
	for _, h := range shared {
		if !Reserved(h) {
			t.Errorf("Reserved(%q) = false", h)
		}
	}
	for _, h := range append([]string{"X-User-Email", "Authorization", "X-Tenant"}, httpx.ForeignIdentityHeaders[:]...) {
		if Reserved(h) {
			t.Errorf("Reserved(%q) = true without extra", h)
		}
	}
	if !Reserved("Authorization", "authorization") || !Reserved("X-Token", "x-token", "Authorization") {
		t.Error("extra headers are not reserved")
	}
}

func TestMappings(t *testing.T) {
	ms, errs := Mappings(map[string]string{"sub": "x-user", "email": "X-Email", "roles": "x-roles"})
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	want := []Mapping{{"email", "X-Email"}, {"roles", "X-Roles"}, {"sub", "X-User"}}
	if len(ms) != len(want) {
		t.Fatalf("Mappings = %v", ms)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Fatalf("Mappings = %v, want %v", ms, want)
		}
	}
	if h := Headers(ms); len(h) != 3 || h[0] != "X-Email" || h[2] != "X-User" {
		t.Fatalf("Headers = %v", h)
	}
	ms, errs = Mappings(map[string]string{"": "X-A", "a": "bad header", "b": "Cookie", "c": "X-Token", "d": "x-dup", "e": "X-Dup", "f": "X-Ok"}, "x-token")
	wantErrs := []string{
		"claims_to_headers: empty claim name",
		`claims_to_headers.a: "bad header" is not a valid header name`,
		"claims_to_headers.b: Cookie is reserved and cannot be set by this plugin",
		"claims_to_headers.c: X-Token is reserved and cannot be set by this plugin",
		`claims_to_headers: "d" and "e" both map to X-Dup`,
	}
	if len(errs) != len(wantErrs) {
		t.Fatalf("errors = %v", errs)
	}
	for i, e := range errs {
		if e.Error() != wantErrs[i] {
			t.Errorf("error %d = %q, want %q", i, e, wantErrs[i])
		}
	}
	if len(ms) != 2 || ms[0] != (Mapping{"d", "X-Dup"}) || ms[1] != (Mapping{"f", "X-Ok"}) {
		t.Fatalf("valid entries = %v", ms)
	}
}
