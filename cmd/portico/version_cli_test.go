package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRouteRowVersions: `portico routes` shows a versioned route's
// versions and their upstreams as its action.
func TestRouteRowVersions(t *testing.T) {
	var r routeRow
	if err := json.Unmarshal([]byte(`{"name":"orders","match":{"path_prefix":"/orders"},
		"versions":{"from":["path"],"list":[{"name":"v1","upstream":"orders-v1"},{"name":"v2","upstream":"orders-v2"}]}}`), &r); err != nil {
		t.Fatal(err)
	}
	if got, want := r.action(), "versions v1 orders-v1, v2 orders-v2"; got != want {
		t.Errorf("action = %q, want %q", got, want)
	}
}

// TestValidateVersionsOnePass: `portico validate` reports every mistake of
// routes with versions once, with the plugins of a version as parts of
// their own (built and checked even when their route has other errors).
func TestValidateVersionsOnePass(t *testing.T) {
	t.Parallel()
	file := filepath.Join("testdata", "version-mistakes.yaml")
	out, err := exec.Command(binary, "validate", "--config", file).CombinedOutput()
	if err == nil {
		t.Fatal("validate accepted the file")
	}
	want := []string{
		`line 7: routes[0].versions.from[1]: header name "" is not a valid token`,
		`line 8: routes[0].versions.default: default "v3" is not one of the versions (v1, v1)`,
		`line 12: routes[0].versions.list[0].plugins[0].config.bogus: unknown field "bogus" (known: request, response)`,
		`line 12: routes[0].versions.list[0].plugins[1].name: unknown plugin "nosuch"`,
		`line 13: routes[0].versions.list[1].name: version "v1" is already list[0]`,
		`line 14: routes[0].versions.list[1].upstream: upstream "b" is not defined (defined: a)`,
		`line 15: routes[0].versions.list[1].deprecated.date: "2026-13-01" is not a date`,
		`line 23: routes[1].versions.list[0].plugins[0].config.bogus: unknown field "bogus"`,
		`line 23: routes[1].versions.list[0].plugins[1].config: limits: at least one limit is required`,
		file + ": 9 errors",
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("output has %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
}
