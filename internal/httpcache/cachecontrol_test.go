package httpcache

import (
	"strings"
	"testing"
)

func TestParseCacheControl(t *testing.T) {
	// Rows name the cache-tests id (http-tests/cache-tests, tests/cc-parse.mjs,
	// cc-freshness.mjs) where one applies.
	tests := []struct {
		name   string
		in     []string
		maxAge int64
		check  func(CacheControl) bool
	}{
		{"empty", nil, -1, nil},
		{"freshness-max-age", []string{"max-age=3600"}, 3600, nil},
		{"freshness-max-age-case-insenstive", []string{"MaX-AgE=3600"}, 3600, nil},
		{"freshness-max-age-two-fresh-stale-sameline", []string{"max-age=1800, max-age=1"}, 1800, nil},
		{"freshness-max-age-two-fresh-stale-sepline", []string{"max-age=1800", "max-age=1"}, 1800, nil},
		{"freshness-max-age-two-stale-fresh-sameline", []string{"max-age=1, max-age=1800"}, 1, nil},
		{"freshness-max-age-quoted", []string{`max-age="3600"`}, 3600, nil},
		{"freshness-max-age-ignore-quoted", []string{`extension="max-age=3600", max-age=1`}, 1, nil},
		{"freshness-max-age-ignore-quoted-rev", []string{`max-age=1, extension="max-age=3600"`}, 1, nil},
		{"freshness-max-age-ignore-quoted-comma", []string{`extension="a, max-age=3600, b"`}, -1, nil},
		{"freshness-max-age-space-before-equals", []string{"max-age =3600"}, -1, nil},
		{"freshness-max-age-space-after-equals", []string{"max-age= 3600"}, 0, nil},
		{"freshness-max-age-leading-zero", []string{"max-age=003600"}, 3600, nil},
		{"freshness-max-age-single-quoted", []string{"max-age='3600'"}, 0, nil},
		{"freshness-max-age-decimal-zero", []string{"max-age=3600.0"}, 0, nil},
		{"freshness-max-age-decimal-five", []string{"max-age=3600.5"}, 0, nil},
		{"freshness-max-age-a100", []string{"max-age=a3600"}, 0, nil},
		{"freshness-max-age-100a", []string{"max-age=3600a"}, 0, nil},
		{"freshness-max-age-negative", []string{"max-age=-3600"}, 0, nil},
		{"freshness-max-age-max-minus-1", []string{"max-age=2147483647"}, 2147483647, nil},
		{"freshness-max-age-max", []string{"max-age=2147483648"}, MaxDelta, nil},
		{"freshness-max-age-max-plus", []string{"max-age=99999999999999999999999"}, MaxDelta, nil},
		{"max-age without value", []string{"max-age"}, 0, nil},
		{"freshness-max-age-extension", []string{"max-age=3600, foo=bar"}, 3600, nil},
		{"unterminated quote", []string{`max-age="36`}, 36, nil},
		{"junk after quote", []string{`max-age="36"x, public`}, 0, func(c CacheControl) bool { return c.Public }},
		{"cc-resp-no-store-case-insensitive", []string{"nO-StOrE"}, -1, func(c CacheControl) bool { return c.NoStore }},
		{"cc-resp-no-cache-case-insensitive", []string{"No-CaChE, max-age=3600"}, 3600, func(c CacheControl) bool { return c.NoCache }},
		{"qualified no-cache is no-cache", []string{`no-cache="Set-Cookie, X-A"`}, -1, func(c CacheControl) bool { return c.NoCache }},
		{"qualified private is private", []string{`private="X-A"`}, -1, func(c CacheControl) bool { return c.Private }},
		{"s-maxage", []string{"max-age=1, s-maxage=10"}, 1, func(c CacheControl) bool { return c.SMaxAge == 10 }},
		{"max-stale any", []string{"max-stale"}, -1, func(c CacheControl) bool { return c.MaxStaleAny && c.MaxStale == -1 }},
		{"max-stale value", []string{"max-stale=5"}, -1, func(c CacheControl) bool { return !c.MaxStaleAny && c.MaxStale == 5 }},
		{"request directives", []string{"min-fresh=4, only-if-cached, no-transform"}, -1, func(c CacheControl) bool {
			return c.MinFresh == 4 && c.OnlyIfCached && c.NoTransform
		}},
		{"rfc5861", []string{"max-age=1, stale-while-revalidate=30, stale-if-error=60"}, 1, func(c CacheControl) bool {
			return c.StaleWhileRevalidate == 30 && c.StaleIfError == 60
		}},
		{"revalidation flags", []string{"must-revalidate,proxy-revalidate , immutable,public"}, -1, func(c CacheControl) bool {
			return c.MustRevalidate && c.ProxyRevalidate && c.Immutable && c.Public
		}},
		{"empty elements", []string{" , ,max-age=5,,"}, 5, nil},
		{"escaped quote", []string{`foo="a\"b, max-age=9", max-age=2`}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cc := ParseCacheControl(tt.in)
			if cc.MaxAge != tt.maxAge {
				t.Errorf("MaxAge = %d, want %d (%+v)", cc.MaxAge, tt.maxAge, cc)
			}
			if tt.check != nil && !tt.check(cc) {
				t.Errorf("check failed: %+v", cc)
			}
		})
	}
}

func TestParseCacheControlNoAlloc(t *testing.T) {
	in := []string{`max-age=60, s-maxage=120, stale-while-revalidate=30, ext="a, b", public`}
	if n := testing.AllocsPerRun(100, func() { _ = ParseCacheControl(in) }); n != 0 {
		t.Fatalf("ParseCacheControl allocates %v times", n)
	}
}

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `a="b,c", max-age="1"`, "max-stale", `x="\`, "s-maxage=99999999999999999999", ",,=,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cc := ParseCacheControl([]string{s})
		for _, d := range []int64{cc.MaxAge, cc.SMaxAge, cc.MaxStale, cc.MinFresh, cc.StaleWhileRevalidate, cc.StaleIfError} {
			if d < -1 || d > MaxDelta {
				t.Fatalf("delta %d out of range for %q", d, s)
			}
		}
		// A directive the input does not mention is never set.
		if !strings.Contains(strings.ToLower(s), "no-store") && cc.NoStore {
			t.Fatalf("no-store set for %q", s)
		}
		// Splitting the same directives over two lines reads the same as a
		// comma between them, when the first line ends a directive cleanly.
		if !strings.ContainsAny(s, `"\`) {
			two := ParseCacheControl([]string{s, "max-age=7"})
			one := ParseCacheControl([]string{s + ",max-age=7"})
			if one != two {
				t.Fatalf("%q: one line %+v != two lines %+v", s, one, two)
			}
		}
	})
}

func BenchmarkParseCacheControl(b *testing.B) {
	in := []string{"public, max-age=60, s-maxage=120, stale-while-revalidate=30, stale-if-error=600"}
	b.ReportAllocs()
	for b.Loop() {
		_ = ParseCacheControl(in)
	}
}
