package httpcache

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func TestNotModified(t *testing.T) {
	lm := httpDate(t0)
	req := func(method string, kv ...string) *http.Request {
		r := httptest.NewRequest(method, "/", nil)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
		return r
	}
	tests := []struct {
		name   string // cache-tests id (conditional-etag.mjs, conditional-lm.mjs) where one applies
		r      *http.Request
		stored http.Header
		want   bool
	}{
		{"conditional-etag-strong-respond", req("GET", "If-None-Match", `"abcdef"`), hdr("Etag", `"abcdef"`), true},
		{"conditional-etag-weak-respond", req("GET", "If-None-Match", `W/"abcdef"`), hdr("Etag", `W/"abcdef"`), true},
		{"weak request, strong stored", req("GET", "If-None-Match", `W/"abcdef"`), hdr("Etag", `"abcdef"`), true},
		{"strong request, weak stored", req("GET", "If-None-Match", `"abcdef"`), hdr("Etag", `W/"abcdef"`), true},
		{"conditional-etag-weak-respond-lowercase", req("GET", "If-None-Match", `w/"abcdef"`), hdr("Etag", `w/"abcdef"`), true},
		{"conditional-etag-weak-respond-omit-slash", req("GET", "If-None-Match", `W"abcdef"`), hdr("Etag", `W/"abcdef"`), false},
		{"conditional-etag-strong-respond-multiple-first", req("GET", "If-None-Match", `"abcdef", "1234", "5678"`), hdr("Etag", `"abcdef"`), true},
		{"conditional-etag-strong-respond-multiple-second", req("GET", "If-None-Match", `"1234", "abcdef", "5678"`), hdr("Etag", `"abcdef"`), true},
		{"conditional-etag-strong-respond-multiple-last", req("GET", "If-None-Match", `"1234", "5678", "abcdef"`), hdr("Etag", `"abcdef"`), true},
		{"multiple lines", req("GET", "If-None-Match", `"1234"`, "If-None-Match", `W/"abcdef"`), hdr("Etag", `"abcdef"`), true},
		{"comma inside tag", req("GET", "If-None-Match", `"a,b"`), hdr("Etag", `"a,b"`), true},
		{"comma inside tag no split", req("GET", "If-None-Match", `"a,b"`), hdr("Etag", `"a"`), false},
		{"conditional-etag-quoted-respond-unquoted", req("GET", "If-None-Match", `abcdef`), hdr("Etag", `"abcdef"`), false},
		{"conditional-etag-unquoted-respond-unquoted", req("GET", "If-None-Match", `abcdef`), hdr("Etag", `abcdef`), true},
		{"no match", req("GET", "If-None-Match", `"x"`), hdr("Etag", `"abcdef"`), false},
		{"star", req("GET", "If-None-Match", `*`), hdr(), true},
		{"no stored etag", req("GET", "If-None-Match", `"x"`), hdr("Last-Modified", lm), false},
		{"HEAD", req("HEAD", "If-None-Match", `"abcdef"`), hdr("Etag", `"abcdef"`), true},
		{"POST never", req("POST", "If-None-Match", `"abcdef"`), hdr("Etag", `"abcdef"`), false},
		{"conditional-etag-precedence", req("GET", "If-None-Match", `"x"`, "If-Modified-Since", httpDate(t0.Add(time.Hour))), hdr("Etag", `"abcdef"`, "Last-Modified", lm), false},
		{"conditional-lm-fresh", req("GET", "If-Modified-Since", lm), hdr("Last-Modified", lm), true},
		{"If-Modified-Since after Last-Modified", req("GET", "If-Modified-Since", httpDate(t0.Add(time.Hour))), hdr("Last-Modified", lm), true},
		{"conditional-lm-fresh-earlier", req("GET", "If-Modified-Since", httpDate(t0.Add(-time.Hour))), hdr("Last-Modified", lm), false},
		{"conditional-lm-fresh-no-lm (Date)", req("GET", "If-Modified-Since", lm), hdr("Date", httpDate(t0.Add(-time.Hour))), true},
		{"conditional-lm-fresh-rfc850", req("GET", "If-Modified-Since", t0.Format(time.RFC850)), hdr("Last-Modified", lm), true},
		{"invalid IMS ignored", req("GET", "If-Modified-Since", "yesterday"), hdr("Last-Modified", lm), false},
		{"no validators", req("GET", "If-Modified-Since", lm), hdr(), false},
		{"no conditional", req("GET"), hdr("Etag", `"a"`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NotModified(tt.r, tt.stored); got != tt.want {
				t.Errorf("NotModified = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddValidators(t *testing.T) {
	// conditional-etag-strong-generate, conditional-etag-weak-generate-weak,
	// conditional-lm-stale: the validation request carries the stored validators.
	dst := hdr("If-None-Match", `"client"`, "If-Match", `"x"`, "If-Range", `"y"`, "Accept", "a")
	AddValidators(dst, hdr("Etag", `W/"v1"`, "Last-Modified", httpDate(t0)))
	if dst.Get("If-None-Match") != `W/"v1"` || dst.Get("If-Modified-Since") != httpDate(t0) {
		t.Fatalf("validators: %v", dst)
	}
	if dst.Get("If-Match") != "" || dst.Get("If-Range") != "" || dst.Get("Accept") != "a" {
		t.Fatalf("other fields: %v", dst)
	}
	dst = hdr("If-Modified-Since", "x")
	AddValidators(dst, hdr())
	if len(dst) != 0 {
		t.Fatalf("no validators stored but header %v", dst)
	}
}

func TestSelects304(t *testing.T) {
	tests := []struct {
		name       string
		stored, nm http.Header
		want       bool
	}{
		{"same strong", hdr("Etag", `"a"`), hdr("Etag", `"a"`), true},
		{"different", hdr("Etag", `"a"`), hdr("Etag", `"b"`), false},
		{"strong 304, weak stored", hdr("Etag", `W/"a"`), hdr("Etag", `"a"`), false},
		{"weak 304", hdr("Etag", `"a"`), hdr("Etag", `W/"a"`), true},
		{"304 etag, none stored", hdr(), hdr("Etag", `"a"`), false},
		{"last-modified equal", hdr("Last-Modified", httpDate(t0)), hdr("Last-Modified", httpDate(t0)), true},
		{"last-modified differs", hdr("Last-Modified", httpDate(t0)), hdr("Last-Modified", httpDate(t0.Add(time.Second))), false},
		{"no validators", hdr("Etag", `"a"`), hdr(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Selects304(tt.stored, tt.nm); got != tt.want {
				t.Errorf("Selects304 = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUpdate304(t *testing.T) {
	// update304.mjs: 304-etag-update-response-{Cache-Control,Expires,Test-Header}
	// update, 304-etag-update-response-Content-Length and hop-by-hop do not.
	stored := hdr("Etag", `"a"`, "Cache-Control", "max-age=1", "Content-Length", "10", "Content-Type", "text/plain",
		"Test-Header", "old", "Date", httpDate(t0))
	nm := hdr("Etag", `"a"`, "Cache-Control", "max-age=3600", "Content-Length", "0", "Test-Header", "new",
		"Connection", "X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5", "Age", "10", "Date", httpDate(t0.Add(time.Minute)),
		"Expires", httpDate(t0.Add(time.Hour)))
	later := t0.Add(time.Minute)
	m := Update304(stored, nm, later, later, &Policy{})
	want := map[string]string{
		"Cache-Control": "max-age=3600", "Content-Length": "10", "Test-Header": "new", "Content-Type": "text/plain",
		"Expires": httpDate(t0.Add(time.Hour)), "Date": httpDate(later), "X-Hop": "", "Keep-Alive": "", "Connection": "", "Age": "",
	}
	for k, v := range want {
		if got := stored.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if m.Lifetime != time.Hour || m.InitialAge != 10*time.Second || !m.ResponseTime.Equal(later) {
		t.Errorf("meta after 304: %+v", m)
	}
	// The stored header does not alias the 304's slices.
	nm["Test-Header"][0] = "mutated"
	if stored.Get("Test-Header") != "new" {
		t.Error("stored header aliases the 304")
	}
}

func TestUpdate304KeepsOmitted(t *testing.T) {
	// 304-lm-use-stored-Test-Header: a field the 304 omits stays stored.
	stored := hdr("Cache-Control", "max-age=2", "Last-Modified", httpDate(t0), "Test-Header", "A")
	nm := hdr("Last-Modified", httpDate(t0), "Date", httpDate(t0.Add(time.Minute)))
	if !Selects304(stored, nm) {
		t.Fatal("304 with the same Last-Modified not selected")
	}
	m := Update304(stored, nm, t0.Add(time.Minute), t0.Add(time.Minute), &Policy{})
	if stored.Get("Test-Header") != "A" || m.Lifetime != 2*time.Second {
		t.Fatalf("after 304: %v %+v", stored, m)
	}
}

func TestNotModifiedHeader(t *testing.T) {
	// conditional-304-etag: a 304 carries the ETag (and the other fields RFC
	// 9110 §15.4.5 lists) but not the content fields.
	stored := hdr("Etag", `"a"`, "Cache-Control", "max-age=60", "Vary", "Accept", "Date", httpDate(t0),
		"Expires", httpDate(t0), "Last-Modified", httpDate(t0), "Content-Location", "/a",
		"Content-Type", "text/plain", "Content-Length", "10", "Set-Cookie", "a=b")
	dst := http.Header{}
	NotModifiedHeader(dst, stored)
	var got []string
	for k := range dst {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"Cache-Control", "Content-Location", "Date", "Etag", "Expires", "Last-Modified", "Vary"}
	if !slices.Equal(got, want) {
		t.Fatalf("304 fields %v, want %v", got, want)
	}
}

func TestStoredHeader(t *testing.T) {
	// headers.mjs: hop-by-hop and Connection-listed fields are not stored.
	h := hdr("Connection", "X-Foo, close", "X-Foo", "1", "Keep-Alive", "timeout=1", "Transfer-Encoding", "chunked",
		"Proxy-Authenticate", "Basic", "Age", "5", "Content-Type", "text/plain", "X-Bar", "2", "Trailer", "X")
	out := StoredHeader(h)
	if len(out) != 2 || out.Get("Content-Type") != "text/plain" || out.Get("X-Bar") != "2" {
		t.Fatalf("stored header %v", out)
	}
	h["X-Bar"][0] = "changed"
	if out.Get("X-Bar") != "2" {
		t.Fatal("stored header aliases the response")
	}
}

func TestServeHeader(t *testing.T) {
	m := Freshness(hdr("Date", httpDate(t0), "Age", "3"), t0, t0, nil)
	e := &Entry{Header: StoredHeader(hdr("Content-Type", "text/plain", "X-A", "1", "Age", "3")), Meta: m}
	dst := http.Header{}
	ServeHeader(dst, e, t0.Add(2*time.Second))
	if dst.Get("Age") != "5" || dst.Get("Content-Type") != "text/plain" || e.Header.Get("Age") != "" {
		t.Fatalf("served %v, stored %v", dst, e.Header)
	}
	// Appending to a served field never reaches the stored slice's memory.
	dst.Add("X-A", "2")
	if len(e.Header["X-A"]) != 1 || cap(e.Header["X-A"]) != 1 {
		t.Fatalf("stored X-A %q cap %d", e.Header["X-A"], cap(e.Header["X-A"]))
	}
}
