package plugintest

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/config"
	"github.com/portico-gw/portico/internal/consumer"
	"github.com/portico-gw/portico/internal/plugin"
)

// Store builds a consumer store of consumers, failing the test when the
// store refuses them.
func Store(t testing.TB, consumers []*config.Consumer) consumer.Store {
	t.Helper()
	s, err := consumer.NewStore(consumers)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s
}

// BuildWithStore builds plugin name from src with the consumer store
// store, returning the instance or the build error (see Build).
func BuildWithStore(t testing.TB, name, src string, store consumer.Store) (*plugin.Instance, error) {
	t.Helper()
	_, in, err := Build[plugin.Plugin](t, name, src, WithStore(store))
	return in, err
}

// MustBuildWithStore is BuildWithStore that fails the test on a build
// error.
func MustBuildWithStore(t testing.TB, name, src string, store consumer.Store) *plugin.Instance {
	t.Helper()
	in, err := BuildWithStore(t, name, src, store)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return in
}

// ErrorMentions fails the test unless err is an error whose text contains
// each of want: the check of a table of invalid configs.
func ErrorMentions(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// MustBuild is Build that fails the test on a build error and returns
// only the plugin.
func MustBuild[T plugin.Plugin](t testing.TB, name, src string, opts ...Option) T {
	t.Helper()
	p, _, err := Build[T](t, name, src, opts...)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return p
}
