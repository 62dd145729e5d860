package redisclient

import (
	"strings"
	"testing"
)

func TestKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"redis: connection pool: failed to dial after %d attempts: %v", "connection pool: failed to dial after _ attempts: _"},
		{"sentinel: new master=%q addr=%q", "sentinel: new master=_ addr=_"},
		{"100%% done in %-8.3fs", "100% done in _s"},
		{"conn[%d] rejected", "conn[_] rejected"},
		{"trailing %", "trailing _"},
		{"%[2]*[1]d", "_"},
		{"plain", "plain"},
	} {
		if got := kind(tc.in); got != tc.want {
			t.Errorf("kind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzKind checks that any format yields a message without verbs and no
// longer than the format.
func FuzzKind(f *testing.F) {
	for _, s := range []string{"redis: %v", "%%", "%", "%+#08.3[2]*v", "a%%%d%", "ünïcode %s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, format string) {
		got := kind(format)
		if len(got) > len(strings.TrimPrefix(format, "redis: ")) {
			t.Fatalf("kind(%q) = %q is longer than the format", format, got)
		}
		if strings.Count(got, "%") > strings.Count(format, "%%") {
			t.Fatalf("kind(%q) = %q keeps a verb", format, got)
		}
	})
}
