package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// quickstartCurl is one curl line of the README quick start with the answer
// its comment documents: "# 200 ... \"substring\" ...".
type quickstartCurl struct {
	line   string   // the command as written
	status int      // the documented status code
	want   []string // the documented output substrings (the quoted parts)
}

// readmeQuickstartCurls parses the curl lines of the ```sh blocks of the
// README's "## Quick start" section.
func readmeQuickstartCurls(t *testing.T, readme string) []quickstartCurl {
	t.Helper()
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []quickstartCurl
	inSection, inSh := false, false
	quoted := regexp.MustCompile(`"([^"]+)"`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			inSection = line == "## Quick start"
		case inSection && line == "```sh":
			inSh = true
		case inSh && line == "```":
			inSh = false
		case inSh && strings.HasPrefix(line, "curl "):
			cmd, comment, ok := strings.Cut(line, " # ")
			if !ok {
				t.Fatalf("README quick start line %q documents no answer (\"# <status> ...\")", line)
			}
			comment = strings.TrimSpace(comment)
			code, rest, _ := strings.Cut(comment, " ")
			status, err := strconv.Atoi(code)
			if err != nil {
				t.Fatalf("README quick start line %q: the comment must start with the status code", line)
			}
			q := quickstartCurl{line: strings.TrimSpace(cmd), status: status}
			for _, m := range quoted.FindAllStringSubmatch(rest, -1) {
				q.want = append(q.want, m[1])
			}
			out = append(out, q)
		}
	}
	return out
}

// TestQuickstartWalkthrough is what a new user does: a clean checkout of the
// committed HEAD, a build there, `portico run` with no config (ports moved to
// free ones with the documented overrides), then every curl line of the
// README quick start, run as written by a shell, must give its documented
// status and output.
func TestQuickstartWalkthrough(t *testing.T) {
	t.Parallel()
	inCI := os.Getenv("CI") == "true"
	for _, tool := range []string{"git", "curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			if inCI {
				t.Fatalf("%s is required: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		if inCI {
			t.Fatalf("not in a git checkout: %v", err)
		}
		t.Skipf("not in a git checkout: %v", err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	clone := filepath.Join(t.TempDir(), "portico")
	for _, args := range [][]string{
		{"clone", "--quiet", "--no-checkout", strings.TrimSpace(string(top)), clone},
		{"-C", clone, "checkout", "--quiet", "--detach", strings.TrimSpace(string(head))},
	} {
		if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(clone, "portico.yaml")); err == nil {
		t.Fatal("the checkout has a portico.yaml; the quick start must run with no config")
	}
	curls := readmeQuickstartCurls(t, filepath.Join(clone, "README.md"))
	if len(curls) < 4 {
		t.Fatalf("found %d curl lines in the README quick start, want its walkthrough", len(curls))
	}

	bin := buildPortico(t, clone, "-buildvcs=true")
	checkVCSVersion(t, bin, strings.TrimSpace(string(head)))
	listen, admin, echoAddr := freePort(t), freePort(t), freePort(t)
	_, echoPort, _ := strings.Cut(echoAddr, ":")
	cmd := exec.Command(bin, "run", "--listen", listen, "--admin", admin)
	cmd.Dir = clone
	cmd.Env = append(os.Environ(), "PORTICO_ECHO_PORT="+echoPort)
	p := startCmd(t, cmd)
	p.waitLog(t, "portico started")

	_, listenPort, _ := strings.Cut(listen, ":")
	for _, c := range curls {
		// The documented ports become the free ones.
		ports := strings.NewReplacer("localhost:8080", "localhost:"+listenPort, "127.0.0.1:9901", admin)
		line := ports.Replace(c.line)
		// -sS -w prints the status after the output the user would see.
		line = strings.Replace(line, "curl ", "curl -sS -w '\\n%{http_code}' ", 1)
		out, err := exec.Command("bash", "-c", line).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", c.line, err, out)
			continue
		}
		text := strings.TrimRight(string(out), "\n")
		i := strings.LastIndexByte(text, '\n')
		status, _ := strconv.Atoi(text[i+1:])
		if status != c.status {
			t.Errorf("%s: status %d, README says %d", c.line, status, c.status)
		}
		for _, w := range c.want {
			if w = ports.Replace(w); !strings.Contains(text, w) {
				t.Errorf("%s: output lacks %q, which the README promises:\n%s", c.line, w, text)
			}
		}
	}
}
