package httpcache

import (
	"net/http/httptest"
	"testing"
	"time"
)

// TestTargetedFields ports the cdn-cache-control group of cache-tests
// (RFC 9213): each row names the test it follows.
func TestTargetedFields(t *testing.T) {
	cdn := &Policy{Targeted: DefaultTargeted}
	date := httpDate(t0)
	past, future := httpDate(t0.Add(-time.Hour)), httpDate(t0.Add(time.Hour))
	tests := []struct {
		name     string
		kv       []string
		storable bool
		life     time.Duration
	}{
		{"cdn-max-age", []string{"CDN-Cache-Control", "max-age=3600"}, true, time.Hour},
		{"cdn-max-age-max", []string{"CDN-Cache-Control", "max-age=2147483648"}, true, MaxDelta * time.Second},
		{"cdn-max-age-max-plus", []string{"CDN-Cache-Control", "max-age=99999999999"}, true, MaxDelta * time.Second},
		{"cdn-max-age-space-before-equals", []string{"Cache-Control", "max-age=1", "CDN-Cache-Control", "max-age =100"}, true, time.Second},
		{"cdn-max-age-space-after-equals", []string{"Cache-Control", "max-age=1", "CDN-Cache-Control", "max-age= 100"}, true, time.Second},
		{"cdn-max-age-0", []string{"CDN-Cache-Control", "max-age=0"}, true, 0},
		{"cdn-max-age-extension", []string{"CDN-Cache-Control", "max-age=3600, foo=bar"}, true, time.Hour},
		{"cdn-max-age-case-insensitive (not a valid dictionary: ignored)", []string{"CDN-Cache-Control", "MaX-aGe=3600"}, false, 0},
		{"cdn-max-age-expires", []string{"Date", date, "CDN-Cache-Control", "max-age=3600", "Expires", past}, true, time.Hour},
		{"cdn-max-age-cc-max-age-invalid-expires", []string{"CDN-Cache-Control", "max-age=3600", "Cache-Control", "max-age=1", "Expires", "0"}, true, time.Hour},
		{"cdn-max-age-0-expires", []string{"Date", date, "CDN-Cache-Control", "max-age=0", "Expires", future}, true, 0},
		{"cdn-max-age-short-cc-max-age", []string{"CDN-Cache-Control", "max-age=3600", "Cache-Control", "max-age=1"}, true, time.Hour},
		{"cdn-max-age-long-cc-max-age", []string{"CDN-Cache-Control", "max-age=1", "Cache-Control", "max-age=3600"}, true, time.Second},
		{"cdn-private", []string{"Date", date, "CDN-Cache-Control", "private", "Cache-Control", "max-age=3600", "Expires", future}, false, 0},
		{"cdn-no-store-cc-fresh", []string{"Date", date, "CDN-Cache-Control", "no-store", "Cache-Control", "max-age=3600", "Expires", future}, false, 0},
		{"cdn-fresh-cc-nostore", []string{"CDN-Cache-Control", "max-age=3600", "Cache-Control", "no-store"}, true, time.Hour},
		{"cdn-cc-invalid-sh-type-unknown", []string{"CDN-Cache-Control", "max-age=10000, &&&&&", "Cache-Control", "no-store"}, false, 0},
		{"cdn-cc-invalid-sh-type-wrong", []string{"CDN-Cache-Control", `max-age="10000"`, "Cache-Control", "no-store"}, false, 0},
		{"negative max-age: ignored", []string{"CDN-Cache-Control", "max-age=-5", "Cache-Control", "max-age=7"}, true, 7 * time.Second},
		{"empty field: ignored", []string{"CDN-Cache-Control", "", "Cache-Control", "max-age=7"}, true, 7 * time.Second},
		{"qualified private", []string{"CDN-Cache-Control", `private="Set-Cookie", max-age=60`}, false, 0},
		{"boolean false", []string{"CDN-Cache-Control", "no-store=?0, max-age=60", "Cache-Control", "no-store"}, true, time.Minute},
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, tc := range tests {
		h := hdr(tc.kv...)
		if ok, reason := Storable(req, 200, h, cdn); ok != tc.storable {
			t.Errorf("%s: storable %v (%s), want %v", tc.name, ok, reason, tc.storable)
		}
		if !tc.storable {
			continue
		}
		if m := Freshness(h, t0, t0, cdn); m.Lifetime != tc.life {
			t.Errorf("%s: lifetime %s, want %s", tc.name, m.Lifetime, tc.life)
		}
	}

	// cdn-no-cache: stored, revalidated on every use.
	if m := Freshness(hdr("CDN-Cache-Control", "no-cache", "Cache-Control", "max-age=3600"), t0, t0, cdn); !m.NoCache {
		t.Error("cdn-no-cache: no-cache not taken from the targeted field")
	}
	// Without targeted fields (targeted_fields: []) the field is ignored.
	if ok, _ := Storable(req, 200, hdr("CDN-Cache-Control", "max-age=3600", "Cache-Control", "no-store"), &Policy{}); ok {
		t.Error("a policy without targeted fields obeyed CDN-Cache-Control")
	}
	// The first listed field with a valid value wins.
	two := &Policy{Targeted: []string{"Portico-Cache-Control", "Cdn-Cache-Control"}}
	h := hdr("Portico-Cache-Control", "max-age=5", "CDN-Cache-Control", "max-age=50")
	if m := Freshness(h, t0, t0, two); m.Lifetime != 5*time.Second {
		t.Errorf("precedence: lifetime %s, want 5s", m.Lifetime)
	}
	h = hdr("Portico-Cache-Control", "max-age=bad", "CDN-Cache-Control", "max-age=50")
	if m := Freshness(h, t0, t0, two); m.Lifetime != 50*time.Second {
		t.Errorf("invalid first field: lifetime %s, want 50s", m.Lifetime)
	}
}

func FuzzTargetedField(f *testing.F) {
	for _, s := range []string{"max-age=3600", "max-age =1", `max-age="1"`, "no-store, private=(a b)", "a=?1;q=2, b=:AQID:", "&&&", "max-age=1.5"} {
		f.Add(s)
	}
	p := &Policy{Targeted: DefaultTargeted}
	f.Fuzz(func(t *testing.T, v string) {
		h := hdr("CDN-Cache-Control", v)
		cc, _ := ResponseDirectives(h, p)
		if cc.MaxAge > MaxDelta || cc.SMaxAge > MaxDelta || cc.MaxAge < -1 {
			t.Fatalf("%q: out of range %+v", v, cc)
		}
	})
}
