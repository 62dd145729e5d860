// Package steps runs the independent, named steps of a test as parallel
// subtests, so a long test reads as a list of named functions. It imports
// nothing of Portico, so any package's tests, internal or external, can
// use it.
package steps

import "testing"

// Step is one named step of a test.
type Step struct {
	Name string
	Run  func(t *testing.T)
}

// Parallel runs each of steps as a parallel subtest of t named by its Name.
func Parallel(t *testing.T, steps ...Step) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			s.Run(t)
		})
	}
}
