package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestExamplesValidate runs `portico validate` on every file in examples/, so
// each documented example keeps building exactly as the README shows it. The
// files' ${VAR} references get values from exampleWorld (certificates it
// generates, its local OpenID provider) or their defaults.
func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for i, f := range files {
		if files[i], err = filepath.Abs(f); err != nil {
			t.Fatal(err)
		}
	}
	w := newExampleWorld(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			w.setEnv(t, data)
			var doc yaml.Node
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("not YAML: %v", err)
			}
			checkOffline(t, filepath.Base(f), &doc)
			var stdout, stderr bytes.Buffer
			if code := cmdValidate([]string{"--config", f}, &stdout, &stderr); code != 0 {
				t.Errorf("validate exit %d:\n%s", code, stderr.String())
			}
		})
	}
	// jwt-jwks.yaml and oidc-login.yaml fetch their keys and discovery
	// document while being built: from the test's provider, not the network.
	if w.idpFetches.Load() == 0 {
		t.Error("no example fetched from the test's OpenID provider; are the issuer and JWKS URLs still ${VAR:-…} references?")
	}
}

// TestExamplesInREADME checks that the README shows each example file (the
// quick start, which the README links, excepted) exactly as shipped, as one
// whole YAML block, and that its Examples section lists every file with the
// command that runs it.
func TestExamplesInREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	for _, b := range readmeYAMLBlocks(t, readme) {
		shown[b.text] = true
	}
	_, examples, ok := bytes.Cut(readme, []byte("\n## Examples\n"))
	if !ok {
		t.Fatal("README.md has no \"## Examples\" section")
	}
	if i := bytes.Index(examples, []byte("\n## ")); i >= 0 {
		examples = examples[:i]
	}
	files, _ := filepath.Glob("../../examples/*.yaml")
	for _, f := range files {
		base := filepath.Base(f)
		run := "`portico run --config examples/" + base + "`"
		if !bytes.Contains(examples, []byte(run)) {
			t.Errorf("the README's Examples section does not list %s with %s", base, run)
		}
		if base == "quickstart.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !shown[string(data)] {
			t.Errorf("README.md does not show %s as shipped (one ```yaml block holding exactly the file)", base)
		}
	}
}
