package keyauth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzQueryKeys: the key-counting query parser never panics; after the
// configured names are stripped no key is left for an upstream to read;
// and a single key it reports is the one url.ParseQuery would decode.
func FuzzQueryKeys(f *testing.F) {
	for _, s := range []string{
		"apikey=a", "apikey=a&apikey=b", "apikey=a&api%6Bey=b", "x=1&apikey=&apikey=b",
		"apikey=%zz", "apikey=%zz&apikey=b", "a%70ikey=k", "apikey=a+b", "apikey", "&&apikey=a&&",
		"apikey=a;apikey=b", "APIKEY=a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		names := []string{"apikey", "key"}
		key, n := queryValue(raw, names)
		if n < 0 || n > 2 {
			t.Fatalf("n = %d", n)
		}
		if n == 0 && key != "" {
			t.Fatalf("key %q with no occurrence", key)
		}
		stripped, _ := removeQuery(raw, names)
		if _, m := queryValue(stripped, names); m != 0 {
			t.Fatalf("%q stripped to %q still carries a key", raw, stripped)
		}
		if n == 1 && key != "" && !strings.Contains(raw, ";") {
			if q, err := url.ParseQuery(raw); err == nil {
				var vals []string
				for _, name := range names {
					for _, v := range q[name] {
						if v != "" {
							vals = append(vals, v)
						}
					}
				}
				if len(vals) != 1 || vals[0] != key {
					t.Fatalf("%q: key %q, url.ParseQuery sees %q", raw, key, vals)
				}
			}
		}
	})
}

// FuzzFind: find never panics and reports more than one key whenever the
// header lines alone carry two non-empty values.
func FuzzFind(f *testing.F) {
	f.Add("k1", "k2", "apikey=k3", "apikey=k4")
	f.Add("", "", "", "")
	f.Add("k1", "", "", "")
	f.Fuzz(func(t *testing.T, h1, h2, query, cookie string) {
		p := &KeyAuth{headers: []string{"X-Api-Key"}, queries: []string{"apikey"}, cookies: []string{"apikey"}}
		r := &http.Request{Header: http.Header{}, URL: &url.URL{RawQuery: query}}
		for _, v := range []string{h1, h2} {
			if v != "" || h1 != "" {
				r.Header.Add("X-Api-Key", v)
			}
		}
		if cookie != "" {
			r.Header.Set("Cookie", cookie)
		}
		key, n := p.find(r)
		if h1 != "" && h2 != "" && n < 2 {
			t.Fatalf("two header values, n = %d", n)
		}
		if n == 1 && key == "" && h1 != "" {
			t.Fatalf("one key from the header, but none returned")
		}
	})
}
