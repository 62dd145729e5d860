package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portico-cli")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "portico")
	out, err := exec.Command("go", "build", "-race", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build portico: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "portico ") || !strings.Contains(string(out), runtime.Version()) {
		t.Fatalf("version: %q %v", out, err)
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	err := exec.Command(binary, "frobnicate").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit = %v, want 2", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("server: {listen: [{addr: \"127.0.0.1:0\"}]}\nroutes:\n  - {name: a, match: {path: /a}, respond: {body: a}}\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`routes:
  - name: a
    match: {pth: /a}
    respond: {}
  - name: b
    upstream: nowhere
  - name: c
    match: {path: "/x/{id}/{id}"}
    respond: {}
    plugins:
      - name: no_such_plugin
`), 0o644)
	tests := []struct {
		desc string
		file string
		code int
		want []string
	}{
		{desc: "valid", file: good, code: 0, want: []string{"valid (1 routes"}},
		{desc: "invalid lists every error with its line", file: bad, code: 1, want: []string{
			`line 3: routes[0].match.pth: unknown field "pth"`,
			`line 6: routes[1].upstream: upstream "nowhere" is not defined`,
		}},
		{desc: "missing file", file: filepath.Join(dir, "none.yaml"), code: 1, want: []string{"no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(binary, "validate", "--config", tc.file)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			all := stdout.String() + stderr.String()
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestValidateBuildErrors checks that errors found only when the snapshot
// is built (plugins, route templates) also carry their lines.
func TestValidateBuildErrors(t *testing.T) {
	t.Parallel()
	f := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(f, []byte(`routes:
  - name: c
    match: {path: /x}
    respond: {}
    plugins:
      - name: no_such_plugin
      - name: headers
        config:
          request: {sett: {A: b}}
`), 0o644)
	out, err := exec.Command(binary, "validate", "--config", f).CombinedOutput()
	if err == nil {
		t.Fatal("validate accepted an unknown plugin")
	}
	for _, w := range []string{`line 6: routes[0].plugins[0].name: unknown plugin "no_such_plugin"`, `line 9: routes[0].plugins[1].config.request.sett`} {
		if !strings.Contains(string(out), w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// proc is a running portico process whose stderr log is scanned.
type proc struct {
	cmd  *exec.Cmd
	logs chan string
	done chan error
}

func startPortico(t *testing.T, dir string, args ...string) *proc {
	t.Helper()
	return startPorticoEnv(t, dir, nil, args...)
}

// startPorticoEnv is startPortico with extra environment variables.
func startPorticoEnv(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	return startCmd(t, cmd)
}

// startCmd starts a prepared portico command and scans its stderr log.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, logs: make(chan string, 1000), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case p.logs <- sc.Text():
			default:
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

// waitLog waits for a log line containing s.
func (p *proc) waitLog(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	var seen []string
	for {
		select {
		case l := <-p.logs:
			if strings.Contains(l, s) {
				return l
			}
			seen = append(seen, l)
		case <-timeout:
			t.Fatalf("no log line containing %q within 10s; the process logged:\n%s", s, strings.Join(seen, "\n"))
		}
	}
}

// httpDo GETs url with a short timeout, for addresses that may not answer.
func httpDo(url string) (*http.Response, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(url)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRunReloadAndShutdown runs the binary on a file, reloads it with SIGHUP,
// and stops it with SIGTERM while a request is in flight.
func TestRunReloadAndShutdown(t *testing.T) {
	t.Parallel()
	// The slow backend answers once the test has seen shutdown begin, so
	// its request is in flight while the gateway drains.
	started, release := make(chan struct{}), make(chan struct{})
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		io.WriteString(w, "slow done")
	})}
	sln, _ := net.Listen("tcp", "127.0.0.1:0")
	go slow.Serve(sln)
	defer slow.Close()

	addr, admin := freePort(t), freePort(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.yaml")
	write := func(body string) {
		os.WriteFile(file, []byte(fmt.Sprintf(`server: {listen: [{addr: %q}], shutdown_grace: 5s}
admin: {listen: %q}
log: {access: {output: "off"}}
upstreams:
  slow: {targets: [{url: "http://%s"}]}
routes:
  - {name: v, match: {path: /v}, respond: {body: %q}}
  - {name: slow, match: {path: /slow}, upstream: slow}
`, addr, admin, sln.Addr(), body)), 0o644)
	}
	write("one")
	p := startPortico(t, dir, "run") // ./portico.yaml is picked up by default
	p.waitLog(t, "portico started")
	if code, body := httpGet(t, "http://"+addr+"/v"); code != 200 || body != "one" {
		t.Fatalf("/v = %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+admin+"/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+admin+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}

	write("two")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "config reloaded")
	if _, body := httpGet(t, "http://"+addr+"/v"); body != "two" {
		t.Fatalf("after SIGHUP /v = %q", body)
	}
	os.WriteFile(file, []byte("routes: [{name: broken"), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	line := p.waitLog(t, "config reload rejected")
	var rec map[string]any
	if json.Unmarshal([]byte(line), &rec) != nil || !strings.Contains(fmt.Sprint(rec["errors"]), "line") {
		t.Errorf("rejection log lacks located errors: %s", line)
	}
	if _, body := httpGet(t, "http://"+addr+"/v"); body != "two" {
		t.Fatalf("after invalid reload /v = %q", body)
	}

	result := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not reach the backend")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.waitLog(t, "shutting down")
	close(release)
	if got := <-result; got != "slow done" {
		t.Fatalf("in-flight request during shutdown: %q", got)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("portico did not exit after SIGTERM")
	}
}

// TestQuickstart runs `portico run` with no config in an empty directory:
// the embedded quick start must answer /hello itself and proxy /echo to the
// built-in echo backend. It moves the quick start's ports to free ones with
// --listen, --admin and PORTICO_ECHO_PORT, so it never needs 8080, 9901 or
// 9001 to be free.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	listen, admin, echoAddr := freePort(t), freePort(t), freePort(t)
	_, echoPort, _ := strings.Cut(echoAddr, ":")
	p := startPorticoEnv(t, t.TempDir(), []string{"PORTICO_ECHO_PORT=" + echoPort}, "run", "--listen", listen, "--admin", admin)
	p.waitLog(t, "portico started")
	if code, body := httpGet(t, "http://"+listen+"/hello"); code != 200 || body != "hello from portico\n" {
		t.Fatalf("/hello = %d %q", code, body)
	}
	code, body := httpGet(t, "http://"+listen+"/echo/abc?x=1")
	var echo struct {
		Path     string              `json:"path"`
		RawQuery string              `json:"raw_query"`
		Headers  map[string][]string `json:"headers"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &echo) != nil {
		t.Fatalf("/echo = %d %q", code, body)
	}
	if echo.Path != "/abc" || echo.RawQuery != "x=1" || echo.Headers["X-From"][0] != "portico" || len(echo.Headers["X-Request-Id"]) != 1 {
		t.Fatalf("echo saw %+v", echo)
	}
	if code, _ := httpGet(t, "http://"+admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no exit after SIGINT")
	}
}
