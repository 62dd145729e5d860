package httpx

import (
	"slices"
	"strings"
	"testing"
)

// refTokens is the obvious (allocating) reading of a comma-separated list.
func refTokens(values []string) []string {
	var out []string
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			if p = strings.Trim(p, " \t"); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func collect(values []string) []string {
	var out []string
	Tokens(values, func(t string) bool { out = append(out, t); return true })
	return out
}

func TestTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{"close"}, []string{"close"}},
		{[]string{" keep-alive ,X-A,, x-b ,"}, []string{"keep-alive", "X-A", "x-b"}},
		{[]string{"Upgrade", "\tHTTP2-Settings\t"}, []string{"Upgrade", "HTTP2-Settings"}},
		{[]string{",,,"}, nil},
	} {
		if got := collect(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Tokens(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !HasToken([]string{"keep-alive, UPGRADE"}, "upgrade") || HasToken([]string{"upgrades"}, "upgrade") {
		t.Errorf("HasToken wrong")
	}
}

// FuzzTokens checks the Connection-header token parser against the
// reference reading, and that it stops when asked.
func FuzzTokens(f *testing.F) {
	for _, s := range []string{"", "close", "Upgrade, HTTP2-Settings", " a ,, b ,", "\t,\t", "X-A,x-b , keep-alive", "a\x00,b", "é, ü"} {
		f.Add(s, "second, line")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		in := []string{a, b}
		if got, want := collect(in), refTokens(in); !slices.Equal(got, want) {
			t.Fatalf("Tokens(%q) = %q, want %q", in, got, want)
		}
		n := 0
		Tokens(in, func(string) bool { n++; return false })
		if want := min(1, len(refTokens(in))); n != want {
			t.Fatalf("Tokens did not stop: %d calls", n)
		}
	})
}

func TestFoldName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"x_user": "X-User", "X_Consumer_Id": "X-Consumer-Id", "X-User": "X-User", "x-consumer_username": "X-Consumer-Username", "_": "-",
	} {
		if got := FoldName(in); got != want {
			t.Errorf("FoldName(%q) = %q, want %q", in, got, want)
		}
	}
	for _, h := range HopByHop {
		if !IsHopByHop(h) {
			t.Errorf("IsHopByHop(%q) = false", h)
		}
	}
	if IsHopByHop("X-Forwarded-For") || !ValidToken("X_a-b") || ValidToken("a b") || ValidToken("") {
		t.Errorf("IsHopByHop/ValidToken wrong")
	}
}
