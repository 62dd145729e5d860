package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/portico-gw/portico/examples"
)

// buildPortico builds ./ (cmd/portico) into a temp dir with extra go build
// flags. -trimpath lets every such build, here and in a clean clone, share
// the compiled packages; only the link differs.
func buildPortico(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "portico")
	args := append([]string{"build", "-trimpath", "-o", bin}, flags...)
	cmd := exec.Command("go", append(args, "./cmd/portico")...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	return bin
}

// TestVersionOutput checks `portico version` from a release build: the
// linker values, exactly. (TestVersion checks the plain test binary's
// output, checkVCSVersion a plain build in a git checkout.)
func TestVersionOutput(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	const pkg = "github.com/portico-gw/portico/internal/buildinfo"
	bin := buildPortico(t, root, "-ldflags", "-X "+pkg+".version=v1.2.3 -X "+pkg+".commit=abc1234 -X "+pkg+".date=2026-12-05T11:41:35Z")
	out, err := exec.Command(bin, "version").Output()
	want := fmt.Sprintf("portico v1.2.3 (commit abc1234, built 2026-12-05T11:41:35Z, %s %s/%s)\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if err != nil || string(out) != want {
		t.Fatalf("release build: version = %q %v, want %q", out, err, want)
	}
}

// checkVCSVersion checks `portico version` of a plain build made inside a
// git checkout at commit head: the toolchain's VCS information gives the
// version and commit, never a bare "dev". (TestQuickstartWalkthrough calls
// it with its clean clone's binary: the toolchain does not read VCS
// information in a git worktree, whose .git is a file.)
func checkVCSVersion(t *testing.T, bin, head string) {
	t.Helper()
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^portico (\S+) \(commit ([0-9a-f]{7}), built (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ), go1\.\S+ \S+/\S+\)\n$`)
	m := re.FindStringSubmatch(string(out))
	if m == nil || m[1] == "dev" || m[2] != head[:7] {
		t.Fatalf("checkout build: version = %q, want a version and commit %s from the build info", out, head[:7])
	}
}

func TestRunOverrideValues(t *testing.T) {
	t.Parallel()
	env := map[string]string{"PORTICO_LISTEN": "127.0.0.1:1111", "PORTICO_ADMIN": "127.0.0.1:2222"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ov, err := runOverrides("", "", lookup)
	if err != nil || ov.Listen != "127.0.0.1:1111" || ov.Admin != "127.0.0.1:2222" {
		t.Fatalf("env: %+v %v", ov, err)
	}
	ov, err = runOverrides(":3333", "127.0.0.1:4444", lookup)
	if err != nil || ov.Listen != ":3333" || ov.Admin != "127.0.0.1:4444" {
		t.Fatalf("a flag must win over its variable: %+v %v", ov, err)
	}
	env["PORTICO_LISTEN"] = "8080"
	if _, err := runOverrides("", "", lookup); err == nil || !strings.HasPrefix(err.Error(), `PORTICO_LISTEN: address "8080" must be host:port`) {
		t.Errorf("bad env value: %v", err)
	}
	if _, err := runOverrides(":8080", ":70000", lookup); err == nil || !strings.HasPrefix(err.Error(), `--admin: address ":70000": port "70000" must be a number from 1 to 65535`) {
		t.Errorf("bad flag value: %v", err)
	}

	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		flag, env, want string
	}{
		{"", "", "http://127.0.0.1:9901/healthz"},
		{"http://10.0.0.1:9901/", "", "http://10.0.0.1:9901/healthz"},
		{"127.0.0.1:5", ":6", "http://127.0.0.1:5/healthz"},
		{"", ":9902", "http://127.0.0.1:9902/healthz"},
		{"", "0.0.0.0:9903", "http://127.0.0.1:9903/healthz"},
		{"", "[::1]:9904", "http://[::1]:9904/healthz"},
		{"", "off", "http://127.0.0.1:9901/healthz"},
	} {
		lookup := none
		if tc.env != "" {
			lookup = func(k string) (string, bool) { return tc.env, k == "PORTICO_ADMIN" }
		}
		if got := healthURL(tc.flag, lookup); got != tc.want {
			t.Errorf("healthURL(%q, PORTICO_ADMIN=%q) = %q, want %q", tc.flag, tc.env, got, tc.want)
		}
	}
}

// TestRunBadOverride: an invalid --listen is refused before anything starts.
func TestRunBadOverride(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	cmd := exec.Command(binary, "run", "--listen", "127.0.0.1:0")
	cmd.Dir, cmd.Stderr = t.TempDir(), &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(stderr.String(), `run: --listen: address "127.0.0.1:0": port "0" must be a number from 1 to 65535`) {
		t.Fatalf("exit %v, stderr %q", err, stderr.String())
	}
	cmd = exec.Command(binary, "run", "--admin", "0.0.0.0:"+strings.Split(freePort(t), ":")[1], "--listen", freePort(t))
	cmd.Dir, cmd.Env = t.TempDir(), append(os.Environ(), "PORTICO_ECHO_PORT="+strings.Split(freePort(t), ":")[1])
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "admin.token is required when the admin address") {
		t.Fatalf("public admin override without a token: exit %v\n%s", err, out)
	}
}

// TestRunCopiedQuickstart runs a copy of examples/quickstart.yaml with
// --config: the echo backend starts from the file's echo setting, the
// --listen flag wins over PORTICO_LISTEN, and a reload that changes the echo
// setting is reported as needing a restart.
func TestRunCopiedQuickstart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(file, examples.Quickstart, 0o644); err != nil {
		t.Fatal(err)
	}
	listen, envListen, admin, echoAddr := freePort(t), freePort(t), freePort(t), freePort(t)
	_, echoPort, _ := strings.Cut(echoAddr, ":")
	p := startPorticoEnv(t, t.TempDir(), []string{"PORTICO_LISTEN=" + envListen, "PORTICO_ADMIN=" + admin, "PORTICO_ECHO_PORT=" + echoPort},
		"run", "--config", file, "--listen", listen)
	p.waitLog(t, `"msg":"echo backend listening","addr":"`+echoAddr+`"`)
	p.waitLog(t, "portico started")
	if code, body := httpGet(t, "http://"+listen+"/echo/x"); code != 200 || !strings.Contains(body, `"path": "/x"`) {
		t.Fatalf("/echo/x = %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+admin+"/readyz"); code != 200 {
		t.Fatalf("admin from PORTICO_ADMIN: /readyz = %d", code)
	}
	if _, err := httpDo("http://" + envListen + "/hello"); err == nil {
		t.Fatalf("PORTICO_LISTEN %s is served although --listen was given", envListen)
	}
	changed := strings.Replace(string(examples.Quickstart), "hello from portico", "hello again", 1)
	changed = strings.Replace(changed, `listen: "127.0.0.1:${PORTICO_ECHO_PORT:-9001}"`, `listen: "127.0.0.1:1"`, 1)
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "the echo setting changed; restart portico to apply it")
	p.waitLog(t, "config reloaded")
	if code, body := httpGet(t, "http://"+listen+"/hello"); code != 200 || body != "hello again\n" {
		t.Fatalf("after reload /hello = %d %q (the override must survive the reload)", code, body)
	}
}
