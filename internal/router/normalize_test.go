package router

import (
	"errors"
	"strings"
	"testing"
	"unsafe"
)

type normCase struct {
	desc    string
	in      string
	want    string
	special bool
	err     bool
}

var normCases = []normCase{
	{desc: "root", in: "/", want: "/"},
	{desc: "plain", in: "/admin", want: "/admin"},
	{desc: "trailing slash kept", in: "/users/", want: "/users/"},
	{desc: "deep normal path", in: "/api/v1/users/42", want: "/api/v1/users/42"},
	{desc: "encoded slash after dots is one segment", in: "/admin/..%2fsecret", want: "/admin/..%2Fsecret", special: true},
	{desc: "encoded unreserved decoded", in: "/%61dmin", want: "/admin"},
	{desc: "leading dot segment", in: "/./admin", want: "/admin"},
	{desc: "leading double slash", in: "//admin", want: "/admin"},
	{desc: "dot-dot removes segment", in: "/api/../private", want: "/private"},
	{desc: "encoded dot-dot lower", in: "/api/%2e%2e/private", want: "/private"},
	{desc: "encoded dot-dot upper", in: "/api/%2E%2E/private", want: "/private"},
	{desc: "mixed dot-dot", in: "/a/.%2E/b", want: "/b"},
	{desc: "encoded dot segment", in: "/%2e/admin", want: "/admin"},
	{desc: "dot-dot clamps at root", in: "/a/b/../../..", want: "/"},
	{desc: "dot-dot at root", in: "/..", want: "/"},
	{desc: "dot-dot then name", in: "/../x", want: "/x"},
	{desc: "encoded dot-dot at root", in: "/.%2e", want: "/"},
	{desc: "traversal to etc", in: "/%2e%2e/%2e%2e/etc/passwd", want: "/etc/passwd"},
	{desc: "trailing dot-dot leaves slash", in: "/a/b/..", want: "/a/"},
	{desc: "trailing dot leaves slash", in: "/a/b/.", want: "/a/b/"},
	{desc: "trailing encoded dot", in: "/a/%2e", want: "/a/"},
	{desc: "dots and trailing slash", in: "/a/./b/./", want: "/a/b/"},
	{desc: "middle dot-dot", in: "/a/b/../c", want: "/a/c"},
	{desc: "three dots are a name", in: "/a/...", want: "/a/..."},
	{desc: "dot prefix is a name", in: "/.well-known/x", want: "/.well-known/x"},
	{desc: "double slash in middle", in: "/a//b", want: "/a/b"},
	{desc: "only slashes", in: "///", want: "/"},
	{desc: "trailing double slash", in: "/a/b//", want: "/a/b/"},
	{desc: "encoded NUL", in: "/%00", want: "/%00", special: true},
	{desc: "encoded backslash", in: "/a%5cb", want: "/a%5Cb", special: true},
	{desc: "encoded slash", in: "/%2F", want: "/%2F", special: true},
	{desc: "encoded semicolon", in: "/a%3bb", want: "/a%3Bb", special: true},
	{desc: "encoded percent", in: "/a%25b", want: "/a%25b", special: true},
	{desc: "encoded question mark", in: "/a%3fb", want: "/a%3Fb", special: true},
	{desc: "encoded hash", in: "/a%23b", want: "/a%23b", special: true},
	{desc: "encoded traversal stays in segment", in: "/a/%2e%2e%2f..%2fetc", want: "/a/..%2F..%2Fetc", special: true},
	{desc: "encoded backslash traversal", in: "/a/..%5c..%5cwin", want: "/a/..%5C..%5Cwin", special: true},
	{desc: "special popped by dot-dot", in: "/a%2f/../b", want: "/b"},
	{desc: "special before dots kept", in: "/a/b%2F../c", want: "/a/b%2F../c", special: true},
	{desc: "raw semicolon literal", in: "/a;b", want: "/a;b"},
	{desc: "raw sub-delims kept", in: "/a!$&'()*+,=:@b", want: "/a!$&'()*+,=:@b"},
	{desc: "reserved escape kept", in: "/%21", want: "/%21"},
	{desc: "utf-8 escape upper-cased", in: "/%c3%a9", want: "/%C3%A9"},
	{desc: "raw utf-8 encoded", in: "/caf\xc3\xa9", want: "/caf%C3%A9"},
	{desc: "raw braces encoded", in: "/a{b}", want: "/a%7Bb%7D"},
	{desc: "tilde decoded", in: "/%7Euser", want: "/~user"},
	{desc: "several unreserved decoded", in: "/%41%5A%30%2D%5F", want: "/AZ0-_"},
	{desc: "empty", in: "", err: true},
	{desc: "relative", in: "admin", err: true},
	{desc: "asterisk form", in: "*", err: true},
	{desc: "bad escape", in: "/%zz", err: true},
	{desc: "half bad escape", in: "/%4z", err: true},
	{desc: "truncated escape", in: "/a%", err: true},
	{desc: "truncated escape one digit", in: "/a%4", err: true},
	{desc: "raw backslash", in: "/a\\b", err: true},
	{desc: "raw NUL", in: "/a\x00b", err: true},
	{desc: "raw DEL", in: "/a\x7fb", err: true},
	{desc: "raw newline", in: "/a\nb", err: true},
	{desc: "raw tab", in: "/a\tb", err: true},
	{desc: "raw space", in: "/a b", err: true},
	{desc: "raw hash", in: "/a#b", err: true},
	{desc: "raw question mark", in: "/a?b", err: true},
	{desc: "bad byte after work needed", in: "//a\\b", err: true},
}

func TestNormalizePath(t *testing.T) {
	t.Parallel()
	for _, tc := range normCases {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			got, special, err := NormalizePath(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("NormalizePath(%q) = %q, want error", tc.in, got)
				}
				if !errors.Is(err, ErrInvalidPath) {
					t.Fatalf("error %v does not wrap ErrInvalidPath", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizePath(%q): %v", tc.in, err)
			}
			if got != tc.want || special != tc.special {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q, %v", tc.in, got, special, tc.want, tc.special)
			}
		})
	}
}

// TestNormalizePathAlreadyNormal is not parallel: AllocsPerRun refuses to run
// in parallel tests.
func TestNormalizePathAlreadyNormal(t *testing.T) {
	for _, tc := range []struct {
		desc string
		in   string
	}{
		{desc: "root", in: "/"},
		{desc: "static", in: "/api/v1/users/42"},
		{desc: "trailing slash", in: "/users/"},
		{desc: "escapes", in: "/files/caf%C3%A9/a%2Fb"},
		{desc: "sub-delims", in: "/a;b=c,d"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, _, err := NormalizePath(tc.in)
			if err != nil || got != tc.in {
				t.Fatalf("NormalizePath(%q) = %q, %v", tc.in, got, err)
			}
			if unsafe.StringData(got) != unsafe.StringData(tc.in) {
				t.Fatalf("NormalizePath(%q) copied an already normal path", tc.in)
			}
			allocs := testing.AllocsPerRun(100, func() {
				_, _, _ = NormalizePath(tc.in)
			})
			if allocs != 0 {
				t.Fatalf("NormalizePath(%q): %v allocs, want 0", tc.in, allocs)
			}
		})
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc, in, want string
	}{
		{desc: "plain", in: "api.example.com", want: "api.example.com"},
		{desc: "upper case", in: "API.Example.COM", want: "api.example.com"},
		{desc: "port", in: "api.example.com:8080", want: "api.example.com"},
		{desc: "upper case and port", in: "Api.Example.com:443", want: "api.example.com"},
		{desc: "trailing dot", in: "api.example.com.", want: "api.example.com"},
		{desc: "trailing dot and port", in: "api.example.com.:80", want: "api.example.com"},
		{desc: "ipv6 with port", in: "[::1]:80", want: "[::1]"},
		{desc: "ipv6 without port", in: "[::1]", want: "[::1]"},
		{desc: "ipv6 upper", in: "[FE80::1]:80", want: "[fe80::1]"},
		{desc: "bare ipv6 kept", in: "::1", want: "::1"},
		{desc: "ipv4 with port", in: "10.0.0.1:8080", want: "10.0.0.1"},
		{desc: "empty", in: "", want: ""},
		{desc: "port only", in: ":80", want: ""},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			if got := NormalizeHost(tc.in); got != tc.want {
				t.Fatalf("NormalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if got := NormalizeHost(tc.want); got != tc.want {
				t.Fatalf("NormalizeHost not idempotent on %q: %q", tc.want, got)
			}
		})
	}
}

func TestNormalizeHostAllocs(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_ = NormalizeHost("api.example.com")
		_ = NormalizeHost("api.example.com:8443")
	})
	if allocs != 0 {
		t.Fatalf("NormalizeHost of a lower-case host: %v allocs, want 0", allocs)
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, tc := range normCases {
		f.Add(tc.in)
	}
	for _, s := range pathParamSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, special, err := NormalizePath(raw)
		if err != nil {
			return
		}
		checkCanonical(t, raw, out)
		again, special2, err := NormalizePath(out)
		if err != nil {
			t.Fatalf("NormalizePath(%q) = %q, which fails again: %v", raw, out, err)
		}
		if again != out || special2 != special {
			t.Fatalf("not idempotent: %q → %q (%v) → %q (%v)", raw, out, special, again, special2)
		}
		if special != hasSpecialRef(out) {
			t.Fatalf("NormalizePath(%q) = %q with encodedSpecial=%v", raw, out, special)
		}
	})
}

// checkCanonical asserts the structural invariants of a normalised path.
func checkCanonical(t *testing.T, raw, out string) {
	t.Helper()
	if !strings.HasPrefix(out, "/") {
		t.Fatalf("NormalizePath(%q) = %q: no leading slash", raw, out)
	}
	if strings.Contains(out, "//") {
		t.Fatalf("NormalizePath(%q) = %q: contains //", raw, out)
	}
	if strings.Contains(out, "/./") || strings.Contains(out, "/../") ||
		strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
		t.Fatalf("NormalizePath(%q) = %q: dot segment", raw, out)
	}
	for i := 0; i < len(out); i++ {
		c := out[i]
		if c < 0x21 || c >= 0x7F || c == '\\' || c == '?' || c == '#' {
			t.Fatalf("NormalizePath(%q) = %q: raw byte 0x%02X", raw, out, c)
		}
		if c != '%' {
			continue
		}
		if i+2 >= len(out) {
			t.Fatalf("NormalizePath(%q) = %q: truncated escape", raw, out)
		}
		esc := out[i+1 : i+3]
		if strings.ToUpper(esc) != esc {
			t.Fatalf("NormalizePath(%q) = %q: lower-case escape %%%s", raw, out, esc)
		}
		hi, _, ok1 := unhex(esc[0])
		lo, _, ok2 := unhex(esc[1])
		if !ok1 || !ok2 {
			t.Fatalf("NormalizePath(%q) = %q: bad escape %%%s", raw, out, esc)
		}
		if v := hi<<4 | lo; strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", v) >= 0 {
			t.Fatalf("NormalizePath(%q) = %q: encoded unreserved %%%s", raw, out, esc)
		}
		i += 2
	}
}

func hasSpecialRef(p string) bool {
	for _, s := range []string{"%2F", "%5C", "%00", "%3B", "%25", "%3F", "%23"} {
		for i := 0; i+3 <= len(p); i++ {
			// Only escapes that start at an escape boundary count.
			if p[i:i+3] == s && escapeStart(p, i) {
				return true
			}
		}
	}
	return false
}

// escapeStart reports whether p[i] is a '%' that begins an escape (and is not
// the second hex digit position of an earlier one).
func escapeStart(p string, i int) bool {
	for j := 0; j < len(p); j++ {
		if j == i {
			return p[j] == '%'
		}
		if p[j] == '%' {
			j += 2
			if j >= i {
				return false
			}
		}
	}
	return false
}

// TestNormalizePathDotParam: dot segments with path parameters are refused,
// in raw and encoded forms, while other segments with ';' stay literal.
func TestNormalizePathDotParam(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in  string
		bad bool
	}{
		{"/a/..;/b", true}, {"/a/..;x/b", true}, {"/a/.;/b", true}, {"/a/%2e%2e;/b", true}, {"/..;", true},
		{"/a/b;c", false}, {"/a/x..;/b", false}, {"/a/...;/b", false},
	} {
		_, _, err := NormalizePath(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("NormalizePath(%q) error = %v, want error %v", tc.in, err, tc.bad)
		}
	}
}
