package httpcache

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func reqFor(method, target string, https bool) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if https {
		r.TLS = &tls.ConnectionState{}
	} else {
		r.TLS = nil
	}
	return r
}

func TestNewKey(t *testing.T) {
	opts := &KeyOptions{IgnoreQuery: []string{"utm_source", "fbclid"}}
	k := func(method, target string, https bool, extra ...string) Key {
		return NewKey(reqFor(method, target, https), opts, extra)
	}
	tests := []struct {
		name string
		a, b Key
		same bool
	}{
		{"identical", k("GET", "http://a.example/x?q=1", false), k("GET", "http://a.example/x?q=1", false), true},
		{"method", k("GET", "http://a.example/x", false), k("HEAD", "http://a.example/x", false), false},
		{"scheme", k("GET", "http://a.example/x", false), k("GET", "http://a.example/x", true), false},
		{"host case", k("GET", "http://A.Example/x", false), k("GET", "http://a.example/x", false), true},
		{"host trailing dot", k("GET", "http://a.example./x", false), k("GET", "http://a.example/x", false), true},
		{"default port http", k("GET", "http://a.example:80/x", false), k("GET", "http://a.example/x", false), true},
		{"default port https", k("GET", "https://a.example:443/x", true), k("GET", "https://a.example/x", true), true},
		{"443 is not http's default", k("GET", "http://a.example:443/x", false), k("GET", "http://a.example/x", false), false},
		{"other port", k("GET", "http://a.example:8080/x", false), k("GET", "http://a.example/x", false), false},
		{"host", k("GET", "http://a.example/x", false), k("GET", "http://b.example/x", false), false},
		{"path", k("GET", "http://a.example/x", false), k("GET", "http://a.example/y", false), false},
		{"path case", k("GET", "http://a.example/X", false), k("GET", "http://a.example/x", false), false},
		{"unreserved decoded", k("GET", "http://a.example/%61%62c", false), k("GET", "http://a.example/abc", false), true},
		{"hex case", k("GET", "http://a.example/a%2fb", false), k("GET", "http://a.example/a%2Fb", false), true},
		{"encoded slash is not slash", k("GET", "http://a.example/a%2Fb", false), k("GET", "http://a.example/a/b", false), false},
		{"dot segments", k("GET", "http://a.example/a/./b/../c", false), k("GET", "http://a.example/a/c", false), true},
		{"encoded dot segments", k("GET", "http://a.example/a/%2E%2E/c", false), k("GET", "http://a.example/c", false), true},
		{"dot-dot above root", k("GET", "http://a.example/../../c", false), k("GET", "http://a.example/c", false), true},
		{"trailing slash kept", k("GET", "http://a.example/a/", false), k("GET", "http://a.example/a", false), false},
		{"literal percent vs escape", k("GET", "http://a.example/a%2520b", false), k("GET", "http://a.example/a%20b", false), false},
		{"space escapes", k("GET", "http://a.example/a%20b", false), k("GET", "http://a.example/a%20b", false), true},
		{"query order", k("GET", "http://a.example/x?b=2&a=1", false), k("GET", "http://a.example/x?a=1&b=2", false), true},
		{"query same name order", k("GET", "http://a.example/x?a=2&a=1", false), k("GET", "http://a.example/x?a=1&a=2", false), true},
		{"query value", k("GET", "http://a.example/x?a=1", false), k("GET", "http://a.example/x?a=2", false), false},
		{"query ignored", k("GET", "http://a.example/x?a=1&utm_source=z&fbclid=q", false), k("GET", "http://a.example/x?a=1", false), true},
		{"query empty parts", k("GET", "http://a.example/x?&a=1&&", false), k("GET", "http://a.example/x?a=1", false), true},
		{"query plus is space", k("GET", "http://a.example/x?a=b+c", false), k("GET", "http://a.example/x?a=b%20c", false), true},
		{"query encoded unreserved", k("GET", "http://a.example/x?%61=1", false), k("GET", "http://a.example/x?a=1", false), true},
		{"query no equals", k("GET", "http://a.example/x?a", false), k("GET", "http://a.example/x?a=", false), true},
		{"query encoded separators", k("GET", "http://a.example/x?a=1%26b%3D2", false), k("GET", "http://a.example/x?a=1&b=2", false), false},
		{"query vs none", k("GET", "http://a.example/x?", false), k("GET", "http://a.example/x", false), true},
		{"query name/value boundary", k("GET", "http://a.example/x?ab=c", false), k("GET", "http://a.example/x?a=bc", false), false},
		{"query vs path", k("GET", "http://a.example/x?y", false), k("GET", "http://a.example/xy", false), false},
		{"extra", k("GET", "http://a.example/x", false, "u1"), k("GET", "http://a.example/x", false, "u2"), false},
		{"extra boundary", k("GET", "http://a.example/x", false, "ab", "c"), k("GET", "http://a.example/x", false, "a", "bc"), false},
		{"extra count", k("GET", "http://a.example/x", false, ""), k("GET", "http://a.example/x", false), false},
		{"many query params", k("GET", "http://a.example/x?"+manyParams(40, false), false), k("GET", "http://a.example/x?"+manyParams(40, true), false), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.a == tt.b) != tt.same {
				t.Errorf("same = %v, want %v", tt.a == tt.b, tt.same)
			}
		})
	}
	r := reqFor("GET", "http://a.example/x", false)
	r.Host = ""
	if NewKey(r, nil, nil) != NewKey(reqFor("GET", "http://a.example/x", false), nil, nil) {
		t.Fatal("empty Host did not fall back to the URL's host")
	}
	if s := k("GET", "http://a.example/", false).String(); len(s) != 64 {
		t.Fatalf("key string %q", s)
	}
	if NewKey(reqFor("GET", "http://a.example/x?a=1", false), nil, nil) != NewKey(reqFor("GET", "http://a.example/x?a=1", false), &KeyOptions{}, nil) {
		t.Fatal("nil options differ from empty options")
	}
}

func manyParams(n int, reverse bool) string {
	var parts []string
	for i := 0; i < n; i++ {
		j := i
		if reverse {
			j = n - 1 - i
		}
		parts = append(parts, "p"+string(rune('a'+j%26))+string(rune('a'+j/26))+"=v")
	}
	return strings.Join(parts, "&")
}

func TestRemoveDotSegments(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b/c/./../../g": "/a/g", "/.": "/", "/..": "/", "/a/..": "/", "/a/.": "/a/", "/a/b/..": "/a/",
		"/./a": "/a", "/a//b/../c": "/a//c", "a/../b": "b", "../a": "a", ".": "",
	} {
		if got := string(removeDotSegments([]byte(in))); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewKeyAllocs(t *testing.T) {
	r := reqFor("GET", "http://api.example.com/v1/items/42?b=2&a=1&utm_source=x", false)
	o := &KeyOptions{IgnoreQuery: []string{"utm_source"}}
	extra := []string{"consumer-1"}
	if n := testing.AllocsPerRun(100, func() { _ = NewKey(r, o, extra) }); n != 0 {
		t.Fatalf("NewKey allocates %v times", n)
	}
}

func FuzzNewKey(f *testing.F) {
	for _, s := range []string{"/a/b?c=d", "/%2e%2E/x?a=%zz&b", "/a?+=+&=&", "/%", "/a%2"} {
		f.Add(s, "Host.Example:80")
	}
	f.Fuzz(func(t *testing.T, target, host string) {
		r, err := http.NewRequest("GET", "http://x"+target, nil)
		if err != nil || !strings.HasPrefix(target, "/") {
			return
		}
		r.Host = host
		k1 := NewKey(r, &KeyOptions{IgnoreQuery: []string{"a"}}, []string{target})
		k2 := NewKey(r, &KeyOptions{IgnoreQuery: []string{"a"}}, []string{target})
		if k1 != k2 {
			t.Fatal("key not deterministic")
		}
		// Host case never matters.
		r.Host = asciiUpper(host)
		if NewKey(r, &KeyOptions{IgnoreQuery: []string{"a"}}, []string{target}) != k1 {
			t.Fatalf("host case changed the key: %q", host)
		}
	})
}

func BenchmarkNewKey(b *testing.B) {
	r := reqFor("GET", "http://api.example.com/v1/items/42?b=2&a=1&utm_source=x", false)
	o := &KeyOptions{IgnoreQuery: []string{"utm_source"}}
	extra := []string{"consumer-1"}
	b.ReportAllocs()
	for b.Loop() {
		_ = NewKey(r, o, extra)
	}
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func TestURL(t *testing.T) {
	opts := &KeyOptions{IgnoreQuery: []string{"utm_source"}}
	for _, c := range []struct{ target, host, want string }{
		{"/v1/items", "API.Example.com:80", "api.example.com/v1/items"},
		{"/v1/./a/../items?b=2&a=1&utm_source=x", "api.example.com", "api.example.com/v1/items?a=1&b=2"},
		{"/v1/%7eitems?q=a+b&&e=", "h", "h/v1/~items?e&q=a%20b"},
		{"/x?utm_source=1", "h.", "h/x"},
	} {
		r := httptest.NewRequest("GET", c.target, nil)
		r.Host = c.host
		if got := URL(r, opts); got != c.want {
			t.Errorf("URL(%s, %s) = %q, want %q", c.host, c.target, got, c.want)
		}
		// Requests with the same key have the same URL.
		r2 := httptest.NewRequest("GET", c.target, nil)
		r2.Host = strings.ToUpper(c.host)
		if URL(r2, opts) != URL(r, opts) || NewKey(r2, opts, nil) != NewKey(r, opts, nil) {
			t.Errorf("%s: case of the host changes URL or key", c.target)
		}
	}
}
