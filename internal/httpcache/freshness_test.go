package httpcache

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestFreshnessLifetime(t *testing.T) {
	date := httpDate(t0)
	tests := []struct {
		name string // cache-tests id where one applies
		h    http.Header
		p    Policy
		want time.Duration
	}{
		{"freshness-none", hdr("Date", date), Policy{}, 0},
		{"freshness-max-age", hdr("Date", date, "Cache-Control", "max-age=3600"), Policy{}, time.Hour},
		{"freshness-max-age-0", hdr("Cache-Control", "max-age=0"), Policy{}, 0},
		{"freshness-max-age-expires", hdr("Date", date, "Cache-Control", "max-age=3600", "Expires", httpDate(t0.Add(-time.Hour))), Policy{}, time.Hour},
		{"freshness-max-age-expires-invalid", hdr("Cache-Control", "max-age=3600", "Expires", "0"), Policy{}, time.Hour},
		{"freshness-max-age-0-expires", hdr("Date", date, "Cache-Control", "max-age=0", "Expires", httpDate(t0.Add(time.Hour))), Policy{}, 0},
		{"freshness-s-maxage-shared", hdr("Cache-Control", "s-maxage=3600"), Policy{}, time.Hour},
		{"freshness-max-age-s-maxage-shared-longer", hdr("Cache-Control", "max-age=3600, s-maxage=1"), Policy{}, time.Second},
		{"freshness-max-age-s-maxage-shared-longer-reversed", hdr("Cache-Control", "s-maxage=1, max-age=3600"), Policy{}, time.Second},
		{"freshness-max-age-s-maxage-shared-longer-multiple", hdr("Cache-Control", "max-age=3600", "Cache-Control", "s-maxage=1"), Policy{}, time.Second},
		{"freshness-max-age-s-maxage-shared-shorter", hdr("Cache-Control", "max-age=1, s-maxage=3600"), Policy{}, time.Hour},
		{"freshness-max-age-s-maxage-shared-shorter-expires", hdr("Date", date, "Cache-Control", "max-age=0, s-maxage=3600", "Expires", httpDate(t0.Add(-time.Hour))), Policy{}, time.Hour},
		{"freshness-max-age-negative", hdr("Cache-Control", "max-age=-3600"), Policy{}, 0},
		{"freshness-max-age-max", hdr("Cache-Control", "max-age=2147483648"), Policy{}, MaxDelta * time.Second},
		{"freshness-expires-future", hdr("Date", date, "Expires", httpDate(t0.Add(time.Hour))), Policy{}, time.Hour},
		{"freshness-expires-past", hdr("Date", date, "Expires", httpDate(t0.Add(-time.Hour))), Policy{}, 0},
		{"freshness-expires-rfc850", hdr("Date", date, "Expires", t0.Add(time.Hour).Format(time.RFC850)), Policy{}, time.Hour},
		{"freshness-expires-ansi-c", hdr("Date", date, "Expires", t0.Add(time.Hour).Format(time.ANSIC)), Policy{}, time.Hour},
		{"freshness-expires-32bit", hdr("Date", date, "Expires", "Tue, 19 Jan 2038 14:14:08 GMT"), Policy{}, time.Date(2038, 1, 19, 14, 14, 8, 0, time.UTC).Sub(t0)},
		{"freshness-expires-invalid-utc", hdr("Date", date, "Expires", "Thu, 01 Jan 2099 00:00:00 UTC"), Policy{}, 0},
		{"freshness-expires-invalid-aest", hdr("Date", date, "Expires", "Thu, 01 Jan 2099 00:00:00 AEST"), Policy{}, 0},
		{"freshness-expires-invalid-2-digit-year", hdr("Date", date, "Expires", "Thu, 01 Jan 99 00:00:00 GMT"), Policy{}, 0},
		{"freshness-expires-invalid-no-comma", hdr("Date", date, "Expires", "Thu 01 Jan 2099 00:00:00 GMT"), Policy{}, 0},
		{"freshness-expires-invalid-multiple-spaces", hdr("Date", date, "Expires", "Thu, 01  Jan 2099 00:00:00 GMT"), Policy{}, 0},
		{"freshness-expires-invalid-date-dashes", hdr("Date", date, "Expires", "Thu, 01-Jan-2099 00:00:00 GMT"), Policy{}, 0},
		{"freshness-expires-invalid-time-periods", hdr("Date", date, "Expires", "Thu, 01 Jan 2099 00.00.00 GMT"), Policy{}, 0},
		{"freshness-expires-invalid-1-digit-hour", hdr("Date", date, "Expires", "Thu, 01 Jan 2099 0:00:00 GMT"), Policy{}, 0},
		{"freshness-expires-invalid-multiple-lines", hdr("Date", date, "Expires", httpDate(t0.Add(time.Hour)), "Expires", httpDate(t0.Add(time.Hour))), Policy{}, 0},
		{"expires without Date uses response time", hdr("Expires", httpDate(t0.Add(time.Hour))), Policy{}, time.Hour},
		{"heuristic off", hdr("Date", date, "Last-Modified", httpDate(t0.Add(-100*time.Hour))), Policy{}, 0},
		{"heuristic-200-cached", hdr("Date", date, "Last-Modified", httpDate(t0.Add(-100*time.Hour))), Policy{Heuristic: true}, 10 * time.Hour},
		{"heuristic capped", hdr("Date", date, "Last-Modified", httpDate(t0.Add(-1000*time.Hour))), Policy{Heuristic: true}, 24 * time.Hour},
		{"heuristic fraction and cap", hdr("Date", date, "Last-Modified", httpDate(t0.Add(-100*time.Hour))), Policy{Heuristic: true, HeuristicFraction: 0.5, HeuristicMax: 30 * time.Hour}, 30 * time.Hour},
		{"heuristic future lm", hdr("Date", date, "Last-Modified", httpDate(t0.Add(time.Hour))), Policy{Heuristic: true}, 0},
		{"ttl cap shortens", hdr("Cache-Control", "max-age=3600"), Policy{TTL: time.Minute}, time.Minute},
		{"ttl cap keeps shorter", hdr("Cache-Control", "max-age=30"), Policy{TTL: time.Minute}, 30 * time.Second},
		{"ttl cap no freshness", hdr("Date", date), Policy{TTL: time.Minute}, 0},
		{"ttl replace longer", hdr("Cache-Control", "max-age=30"), Policy{TTL: time.Minute, Mode: TTLReplace}, time.Minute},
		{"ttl replace max-age=0", hdr("Cache-Control", "max-age=0"), Policy{TTL: time.Minute, Mode: TTLReplace}, time.Minute},
		{"ttl replace no freshness", hdr(), Policy{TTL: time.Minute, Mode: TTLReplace}, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Freshness(tt.h, t0, t0, &tt.p)
			if m.Lifetime != tt.want {
				t.Errorf("Lifetime = %v, want %v", m.Lifetime, tt.want)
			}
		})
	}
}

func TestFreshnessAge(t *testing.T) {
	tests := []struct {
		name        string // cache-tests id (age-parse.mjs, cc-freshness.mjs) where one applies
		h           http.Header
		reqT, respT time.Time
		want        time.Duration // corrected initial age
	}{
		{"no age", hdr("Date", httpDate(t0)), t0, t0, 0},
		{"age", hdr("Date", httpDate(t0), "Age", "30"), t0, t0, 30 * time.Second},
		{"age plus response delay", hdr("Date", httpDate(t0), "Age", "30"), t0, t0.Add(2 * time.Second), 32 * time.Second},
		{"freshness-max-age-date (apparent age wins)", hdr("Date", httpDate(t0.Add(-time.Hour)), "Age", "10"), t0, t0, time.Hour},
		{"date in the future", hdr("Date", httpDate(t0.Add(time.Hour))), t0, t0, 0},
		{"age-parse-nonnumeric", hdr("Age", "old"), t0, t0, 0},
		{"age-parse-negative", hdr("Age", "-7200"), t0, t0, 0},
		{"age-parse-float", hdr("Age", "7200.0"), t0, t0, 0},
		{"age-parse-large", hdr("Age", "2147483648"), t0, t0, MaxDelta * time.Second},
		{"age-parse-larger", hdr("Age", "2147483649"), t0, t0, MaxDelta * time.Second},
		{"age-parse-suffix", hdr("Age", "7200, 0"), t0, t0, 2 * time.Hour},
		{"age-parse-prefix", hdr("Age", "0, 7200"), t0, t0, 0},
		{"age-parse-suffix-twoline", hdr("Age", "7200", "Age", "0"), t0, t0, 2 * time.Hour},
		{"age-parse-prefix-twoline", hdr("Age", "0", "Age", "7200"), t0, t0, 0},
		{"age-parse-dup-0", hdr("Age", "0, 0"), t0, t0, 0},
		{"age-parse-parameter", hdr("Age", "7200;foo=bar"), t0, t0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Freshness(tt.h, tt.reqT, tt.respT, &Policy{})
			if m.InitialAge != tt.want {
				t.Errorf("InitialAge = %v, want %v", m.InitialAge, tt.want)
			}
		})
	}
}

func TestMetaAgeAndFresh(t *testing.T) {
	// freshness-max-age-age: Age above max-age is stale at once.
	m := Freshness(hdr("Cache-Control", "max-age=3600", "Age", "7200"), t0, t0, &Policy{})
	if m.Fresh(t0) {
		t.Fatal("response with Age > max-age is fresh")
	}
	// freshness-max-age-stale: fresh until lifetime passes.
	m = Freshness(hdr("Cache-Control", "max-age=2", "Date", httpDate(t0)), t0, t0, &Policy{})
	if !m.Fresh(t0.Add(time.Second)) || m.Fresh(t0.Add(2*time.Second)) {
		t.Fatal("max-age=2 freshness window wrong")
	}
	if got := m.Age(t0.Add(5 * time.Second)); got != 5*time.Second {
		t.Fatalf("Age = %v", got)
	}
	if got := m.Age(t0.Add(-5 * time.Second)); got != 0 {
		t.Fatalf("Age before response time = %v", got)
	}
	if got := AgeValue(&m, t0.Add(5500*time.Millisecond)); got != "5" {
		t.Fatalf("AgeValue = %q", got)
	}
	if got := AgeValue(&m, t0.Add(1234*time.Second)); got != "1234" {
		t.Fatalf("AgeValue = %q", got)
	}
	big := Meta{ResponseTime: t0, InitialAge: 3 * MaxDelta * time.Second}
	if got := AgeValue(&big, t0); got != "2147483648" {
		t.Fatalf("AgeValue capped = %q", got)
	}
	for i := int64(0); i < 200; i++ {
		mm := Meta{ResponseTime: t0, InitialAge: time.Duration(i) * time.Second}
		if got, want := AgeValue(&mm, t0), itoaRef(i); got != want {
			t.Fatalf("AgeValue(%d) = %q", i, got)
		}
	}
}

func itoaRef(i int64) string { return strconv.FormatInt(i, 10) }

func TestPolicyStaleIfError(t *testing.T) {
	p := &Policy{StaleIfError: 5 * time.Minute}
	for _, c := range []struct {
		cc   string
		want time.Duration
	}{
		{"max-age=1", 5 * time.Minute},
		{"max-age=1, stale-if-error=10", 10 * time.Second},
		{"max-age=1, stale-if-error=0", 0},
		{"max-age=1, must-revalidate", 0},
		{"max-age=1, proxy-revalidate", 0},
		{"s-maxage=1", 0},
		{"no-cache", 0},
	} {
		m := Freshness(hdr("Cache-Control", c.cc), t0, t0, p)
		if m.StaleIfError != c.want {
			t.Errorf("%s: stale-if-error %s, want %s", c.cc, m.StaleIfError, c.want)
		}
		if allowed := m.StaleIfErrorAllowed(nil, t0.Add(2*time.Minute)); allowed != (c.want >= 2*time.Minute) {
			t.Errorf("%s: allowed %v two minutes in", c.cc, allowed)
		}
	}
}
