package plugintest

import (
	"testing"

	"github.com/portico-gw/portico/internal/plugin"
)

// ConfigError is one case of a table of invalid plugin configs: Config
// must fail to build, with an error that mentions each of Want.
type ConfigError struct {
	Desc   string
	Config string
	Want   []string // substrings of the error
}

// ExpectErrors builds plugin name from each case's Config, in a parallel
// subtest named by Desc with the StaticContext adjusted by opts, and
// checks the build error with ErrorMentions.
func ExpectErrors(t *testing.T, name string, cases []ConfigError, opts ...Option) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Desc, func(t *testing.T) {
			t.Parallel()
			_, _, err := Build[plugin.Plugin](t, name, tc.Config, opts...)
			ErrorMentions(t, err, tc.Want...)
		})
	}
}

// RunCases runs check on each of cases in a parallel subtest named by
// name: the loop of a table test.
func RunCases[C any](t *testing.T, cases []C, name func(C) string, check func(*testing.T, C)) {
	t.Helper()
	for _, tc := range cases {
		t.Run(name(tc), func(t *testing.T) {
			t.Parallel()
			check(t, tc)
		})
	}
}
