package config

import (
	"slices"
	"strings"
	"testing"
)

// TestStringList checks that a StringList field takes one string or a list,
// as hash_on.key does.
func TestStringList(t *testing.T) {
	t.Parallel()
	up := func(hash string) string {
		return "upstreams:\n  u:\n    balancer: consistent_hash\n    hash_on: " + hash + "\n    targets: [{url: 'http://127.0.0.1:9001'}]\n"
	}
	for _, tc := range []struct {
		hash string
		want []string
		err  string
	}{
		{hash: "{key: ip}", want: []string{"ip"}},
		{hash: "{key: [consumer, 'header:X-Tenant']}", want: []string{"consumer", "header:X-Tenant"}},
		{hash: "{key: ''}", err: "hash_on: set exactly one of header, cookie, client_ip, path, key"},
		{hash: "{key: {a: b}}", err: "hash_on.key: expected a string or a list of strings, got a mapping"},
		{hash: "{key: [ip, [x]]}", err: "hash_on.key: item 1: expected a string, got a list"},
		{hash: "{key: ip, path: true}", err: "set exactly one of header, cookie, client_ip, path, key"},
	} {
		c, err := Parse([]byte(up(tc.hash)), "test", env(nil))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.hash, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.hash, err)
			continue
		}
		if got := c.Upstreams["u"].HashOn.Key; !slices.Equal(got, tc.want) {
			t.Errorf("%s: key %q, want %q", tc.hash, got, tc.want)
		}
	}
}
