// Command gen writes schema/portico.schema.json from the config types; run
// it with `go generate ./internal/schema`.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/portico-gw/portico/internal/schema"
)

func main() {
	root, err := moduleRoot()
	if err == nil {
		var out []byte
		if out, err = schema.Generate(root); err == nil {
			err = os.WriteFile(filepath.Join(root, schema.File), out, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// moduleRoot is the nearest directory at or above the working directory
// that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
