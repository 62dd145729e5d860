package cache

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

func TestTagConfigErrors(t *testing.T) {
	plugintest.ExpectErrors(t, Name, []plugintest.ConfigError{
		{Desc: "bad header name", Config: "{tags: {headers: ['Cache Tag']}}", Want: []string{"tags.headers[0]", "not a valid header name"}},
		{Desc: "empty header name", Config: "{tags: {headers: [Cache-Tag, '']}}", Want: []string{"tags.headers[1]"}},
		{Desc: "unknown field", Config: "{tags: {header: Cache-Tag}}", Want: []string{"header"}},
	})
}

// TestTagParse reads tags from the configured headers: split on commas and
// whitespace, deduplicated, at most MaxTags of at most MaxTagLen bytes;
// extra, overlong and control-character tags are dropped.
func TestTagParse(t *testing.T) {
	t.Parallel()
	many := make([]string, httpcache.MaxTags+3)
	for i := range many {
		many[i] = fmt.Sprintf("t%d", i)
	}
	long := strings.Repeat("x", httpcache.MaxTagLen)
	cases := []struct {
		desc   string
		config string
		header http.Header
		want   []string
	}{
		{desc: "default headers, commas and spaces", config: "{}",
			header: http.Header{"Cache-Tag": {"a, b,c  d\t e,,"}, "Surrogate-Key": {"f g"}},
			want:   []string{"a", "b", "c", "d", "e", "f", "g"}},
		{desc: "several lines and duplicates", config: "{}",
			header: http.Header{"Cache-Tag": {"a b", "b c"}, "Surrogate-Key": {"a"}},
			want:   []string{"a", "b", "c"}},
		{desc: "no tag header", config: "{}", header: http.Header{"X-Other": {"a"}}},
		{desc: "only separators", config: "{}", header: http.Header{"Cache-Tag": {" , ,\t"}}},
		{desc: "at most MaxTags", config: "{}",
			header: http.Header{"Cache-Tag": {strings.Join(many, ",")}},
			want:   many[:httpcache.MaxTags]},
		{desc: "overlong tags dropped, the limit kept", config: "{}",
			header: http.Header{"Cache-Tag": {long + "y " + long + " z"}},
			want:   []string{long, "z"}},
		{desc: "control characters dropped", config: "{}",
			header: http.Header{"Cache-Tag": {"a\x01b c\x7f d"}},
			want:   []string{"d"}},
		{desc: "configured header only", config: "{tags: {headers: [x-tags]}}",
			header: http.Header{"Cache-Tag": {"a"}, "X-Tags": {"b"}},
			want:   []string{"b"}},
		{desc: "no headers", config: "{tags: {headers: []}}",
			header: http.Header{"Cache-Tag": {"a"}, "Surrogate-Key": {"b"}}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := plugintest.MustBuild[*Cache](t, Name, tc.config)
			if got := c.Tags.parse(tc.header); !slices.Equal(got, tc.want) {
				t.Fatalf("tags = %q, want %q", got, tc.want)
			}
		})
	}
}

// tagBackend answers with Cache-Tag and Surrogate-Key and counts requests.
func tagBackend(n *int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*n++
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Cache-Tag", "product-42, catalog")
		w.Header().Set("Surrogate-Key", "key-1")
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprint(w, "body")
	})
}

// TestTagStrip removes the tag headers from every answer by default (miss,
// hit, 304, bypass, unsafe methods) and keeps them with strip: false; the
// stored entry has its tags either way.
func TestTagStrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		config string
		strip  bool
	}{
		{desc: "default", config: "{}", strip: true},
		{desc: "strip true", config: "{tags: {strip: true}}", strip: true},
		{desc: "strip false", config: "{tags: {strip: false}}", strip: false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			c := plugintest.MustBuild[*Cache](t, Name, tc.config)
			var n int
			h := c.Wrap(tagBackend(&n))
			do := func(method, label string, hdr ...string) {
				t.Helper()
				r := httptest.NewRequest(method, "http://api.example/items", nil)
				for i := 0; i+1 < len(hdr); i += 2 {
					r.Header.Set(hdr[i], hdr[i+1])
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if got := w.Header().Get("X-Cache"); label != "" && got != label {
					t.Fatalf("%s: X-Cache %q, want %q", method, got, label)
				}
				_, ct := w.Header()["Cache-Tag"]
				_, sk := w.Header()["Surrogate-Key"]
				if w.Code != http.StatusNotModified && (ct == tc.strip || sk == tc.strip) {
					t.Fatalf("%s %s: Cache-Tag present %v, Surrogate-Key present %v, strip %v", method, label, ct, sk, tc.strip)
				}
				if w.Code == http.StatusNotModified && (ct || sk) {
					t.Fatalf("304 carries tag headers")
				}
			}
			// HEAD first: after a GET, a HEAD is answered from the GET.
			do("HEAD", "MISS")
			do("HEAD", "HIT")
			do("GET", "MISS")
			do("GET", "HIT")
			do("GET", "HIT", "If-None-Match", `"v1"`)
			do("GET", "BYPASS", "Authorization", "Bearer x")
			e, _ := c.store.Get(t.Context(), httpcache.NewKey(httptest.NewRequest("GET", "http://api.example/items", nil), &c.keyOpts, nil))
			if e == nil || !slices.Equal(e.Tags, []string{"product-42", "catalog", "key-1"}) {
				t.Fatalf("stored entry %v", e)
			}
			do("POST", "")
			if n != 4 {
				t.Fatalf("backend saw %d requests, want 4 (GET, HEAD, bypass, POST)", n)
			}
		})
	}
}
