package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateOnePassOutput runs `portico validate` on a file with mistakes
// of every stage (decode, validation, build) and checks the whole output:
// every mistake once, in line order, in plain words, then a count.
func TestValidateOnePassOutput(t *testing.T) {
	t.Parallel()
	file := filepath.Join("testdata", "mistakes.yaml")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, "validate", "--config", file)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit = %v, want 1; stderr:\n%s", err, stderr.String())
	}
	want := `invalid: line 3: server.listen[0].addr: listen address ":99999": port 99999 is out of range (1 to 65535)
invalid: line 5: server.listen[1].max_connections: expected an integer, got the string "200" (remove the quotes)
invalid: line 8: upstreams.api.targets[0].url: target URL "127.0.0.1:9001" is missing its scheme: write "http://127.0.0.1:9001" (or https://)
invalid: line 9: upstreams.api.health_check.timeout: timeout 3s must be shorter than interval 2s: lower timeout or raise interval
invalid: line 12: upstreams.users.connect_timeout: expected a duration such as 10s, 250ms or 2m, got a list
invalid: line 18: routes[1].match: path "/x/{id}/{id}": duplicate parameter name "id"
invalid: line 22: routes[1].plugins[0].config.request.sett: unknown field "sett" (known: add, remove, rename, set)
invalid: line 25: routes[2].timeout: expected a duration such as 10s, 250ms or 2m, got a mapping
invalid: line 28: routes[3].match.methods[0]: method "get" must be an upper-case token such as GET
invalid: line 31: routes[4].match: path "/e/{id}/{id}": duplicate parameter name "id"
invalid: line 32: routes[4].upstream: upstream "nowhere" is not defined (defined: api, users)
invalid: line 35: plugins[0].config.allow_origins: expected a list, got the integer 5
invalid: line 39: consumers[0].credentials.basic_auth[0].password_hash: consumer "alice": malformed bcrypt hash: it has 15 characters, a bcrypt hash has 60
` + file + `: 13 errors
`
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout: %q", stdout.String())
	}
	// run reports the same list and does not start.
	out, err := exec.Command(binary, "run", "--config", file).CombinedOutput()
	if err == nil {
		t.Fatal("run started with an invalid config")
	}
	for _, line := range strings.Split(strings.TrimSpace(want), "\n")[:13] {
		if w := strings.Replace(line, "invalid: ", "config: ", 1); !strings.Contains(string(out), w) {
			t.Errorf("run output lacks %q:\n%s", w, out)
		}
	}
}
