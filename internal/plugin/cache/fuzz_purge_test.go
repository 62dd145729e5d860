package cache

import (
	"net/http"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/httpcache"
	"github.com/portico-gw/portico/internal/plugin"
	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// FuzzTagParse: whatever the upstream sends, the tags are within the
// store's limits (so storing never fails on them), distinct, and free of
// separators and control bytes.
func FuzzTagParse(f *testing.F) {
	for _, s := range []string{"a, b c", "", " ,\t,", strings.Repeat("t ", 40), strings.Repeat("x", 300) + " y", "a\x00b c"} {
		f.Add(s, "k1 k2")
	}
	c := plugintest.MustBuild[*Cache](f, Name, "{}")
	f.Fuzz(func(t *testing.T, tag, key string) {
		tags := c.Tags.parse(http.Header{"Cache-Tag": {tag}, "Surrogate-Key": {key}})
		if len(tags) > httpcache.MaxTags {
			t.Fatalf("%d tags", len(tags))
		}
		seen := map[string]bool{}
		for _, tg := range tags {
			if tg == "" || len(tg) > httpcache.MaxTagLen || strings.ContainsAny(tg, ", \t\r\n") || !visible(tg) || seen[tg] {
				t.Fatalf("bad tag %q in %q", tg, tags)
			}
			seen[tg] = true
		}
		e := &httpcache.Entry{Status: 200, Header: http.Header{}, Tags: tags, TTL: 1e9}
		if err := c.store.Set(t.Context(), e); err != nil {
			t.Fatalf("store refused the tags %q: %v", tags, err)
		}
	})
}

// FuzzPurgeSelector: a purge request never panics; a refused one is a
// PurgeInputError naming its field, and a URL that is accepted as a URL
// is accepted as a prefix too.
func FuzzPurgeSelector(f *testing.F) {
	for _, s := range []string{"https://API.example.com:443/v1/../items?b=2&a=1#x", "api.example.com/v1/", "/v1/", "http://[::1]:80/a?", "ftp://x/", "http://u@h/", "http://h/%zz", "%", "::"} {
		f.Add(s)
	}
	c := plugintest.MustBuild[*Cache](f, Name, "{key: {ignore_query: [utm]}}")
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return
		}
		_, errURL := c.purgeSelector(plugin.PurgeRequest{URL: s})
		_, errPrefix := c.purgeSelector(plugin.PurgeRequest{Prefix: s})
		for _, err := range []error{errURL, errPrefix} {
			if _, ok := err.(*plugin.PurgeInputError); err != nil && !ok {
				t.Fatalf("%q: %T %v", s, err, err)
			}
		}
		if errURL == nil && errPrefix != nil {
			t.Fatalf("%q is a URL but not a prefix: %v", s, errPrefix)
		}
		_, _ = c.purgeSelector(plugin.PurgeRequest{Tag: s})
	})
}
