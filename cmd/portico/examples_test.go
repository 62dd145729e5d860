package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// exampleEnv gives the ${VAR} references in examples/ values that pass
// validation (secrets of the required length, tokens).
var exampleEnv = map[string]string{}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestExamplesValidate runs `portico validate` on every file in examples/, so
// each documented example keeps building exactly as the README shows it.
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envRef.FindAllStringSubmatch(string(data), -1) {
			v, ok := exampleEnv[m[1]]
			if !ok {
				v = "example-value-0123456789abcdef0123456789abcdef"
			}
			t.Setenv(m[1], v)
		}
		var stdout, stderr bytes.Buffer
		if code := cmdValidate([]string{"--config", f}, &stdout, &stderr); code != 0 {
			t.Errorf("%s: validate exit %d:\n%s", filepath.Base(f), code, stderr.String())
		}
	}
}

// TestExamplesInREADME checks that the README shows each example file (the
// quick start, which the README links, excepted) exactly as shipped.
func TestExamplesInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		if filepath.Base(f) == "quickstart.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(readme, data) {
			t.Errorf("README.md does not show %s as shipped", filepath.Base(f))
		}
	}
}
