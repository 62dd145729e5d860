package main

import (
	"os"
	"path/filepath"
	"testing"
)

// exampleSpecs is the examples' specs directory, resolved when the test
// binary starts (tests later change the working directory).
var exampleSpecs, _ = filepath.Abs("../../examples/specs")

// linkExampleSpecs makes dir/specs the examples' specs directory, so a
// README block validated from a file in dir finds the API descriptions its
// request_validation plugins name (specs/…, relative to the config file)
// as examples/openapi-validation.yaml does.
func linkExampleSpecs(t *testing.T, dir string) {
	t.Helper()
	if err := os.Symlink(exampleSpecs, filepath.Join(dir, "specs")); err != nil {
		t.Fatal(err)
	}
}
