package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/portico-gw/portico/examples"
	"github.com/portico-gw/portico/internal/config"
)

// dockerInstr is one Dockerfile instruction with its continuation lines joined.
type dockerInstr struct {
	op   string // upper case: FROM, RUN, ...
	args string
}

func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstr
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue // a comment inside a continued instruction
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{op: strings.ToUpper(op), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued instruction: %q", cur.String())
	}
	return out
}

// execForm decodes a JSON-array (exec form) argument list.
func execForm(t *testing.T, op, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil || len(args) == 0 {
		t.Fatalf("%s %s: want the exec form [\"...\"] (the final image has no shell): %v", op, s, err)
	}
	return args
}

// TestDockerfile checks the Dockerfile without a Docker engine: the build
// stage's Go version is go.mod's, the final stage is small and runs as
// non-root, EXPOSE lists the quick start's ports, the config path the image
// ships is the one CMD runs, the build flags are the release script's, and
// the HEALTHCHECK command really reports a running gateway healthy.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	instrs := parseDockerfile(t, filepath.Join(root, "Dockerfile"))

	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	goVersion := string(m[1])

	var froms []string
	var finalStage []dockerInstr // instructions after the last FROM
	var buildRun string
	for _, in := range instrs {
		switch in.op {
		case "FROM":
			froms = append(froms, in.args)
			finalStage = nil
		case "RUN":
			if strings.Contains(in.args, "go build") {
				buildRun = in.args
			}
		}
		finalStage = append(finalStage, in)
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM %v", froms)
	}
	if want := "golang:" + goVersion + " AS build"; froms[0] != want {
		t.Errorf("build stage FROM %q, want %q (go.mod says go %s)", froms[0], want, goVersion)
	}
	if last := froms[len(froms)-1]; !strings.HasPrefix(last, "gcr.io/distroless/static") || !strings.HasSuffix(last, ":nonroot") {
		t.Errorf("final stage FROM %q, want a distroless static :nonroot image", last)
	}
	for _, flag := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w",
		"-X github.com/portico-gw/portico/internal/buildinfo.version=", "-X github.com/portico-gw/portico/internal/buildinfo.commit=",
		"-X github.com/portico-gw/portico/internal/buildinfo.date="} {
		if !strings.Contains(buildRun, flag) {
			t.Errorf("the go build RUN lacks %q (the release script's flags): %s", flag, buildRun)
		}
	}

	var user, expose, healthcheck, entrypoint, cmd string
	copies := map[string]string{} // destination -> source, final stage
	for _, in := range finalStage {
		switch in.op {
		case "USER":
			user = in.args
		case "EXPOSE":
			expose += " " + in.args
		case "HEALTHCHECK":
			healthcheck = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "CMD":
			cmd = in.args
		case "COPY":
			var f []string
			for _, w := range strings.Fields(in.args) {
				if !strings.HasPrefix(w, "--") {
					f = append(f, w)
				}
			}
			if len(f) == 2 {
				copies[f[1]] = f[0]
			}
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q, want a non-root user", user)
	}

	// EXPOSE = the quick start's client and admin ports.
	qs, err := config.Parse(examples.Quickstart, "quickstart.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, l := range qs.Server.Listen {
		_, p, _ := net.SplitHostPort(l.Addr)
		want = append(want, p)
	}
	_, adminPort, _ := net.SplitHostPort(qs.Admin.Listen)
	want = append(want, adminPort)
	got := strings.Fields(expose)
	for i := range got {
		got[i] = strings.TrimSuffix(got[i], "/tcp")
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("EXPOSE %v, want the quick start's ports %v", got, want)
	}

	// The binary, the config CMD runs and the config the image ships.
	ep := execForm(t, "ENTRYPOINT", entrypoint)
	if src := copies[ep[0]]; src == "" {
		t.Errorf("ENTRYPOINT %s is not a file the final stage copies (copies: %v)", ep[0], copies)
	}
	args := execForm(t, "CMD", cmd)
	if args[0] != "run" {
		t.Errorf("CMD %v does not start with the run subcommand", args)
	}
	var cfgPath string
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			cfgPath = args[i+1]
		}
	}
	if cfgPath != "/etc/portico/portico.yaml" {
		t.Errorf("CMD runs config %q, want /etc/portico/portico.yaml (the documented mount point)", cfgPath)
	}
	if src := copies[cfgPath]; src != "examples/quickstart.yaml" {
		t.Errorf("the image ships %q at %s, want examples/quickstart.yaml", src, cfgPath)
	}

	// HEALTHCHECK runs the binary itself with an existing subcommand, and
	// that command passes against a real gateway and fails without one.
	_, hc, ok := strings.Cut(healthcheck, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", healthcheck)
	}
	hcArgs := execForm(t, "HEALTHCHECK CMD", strings.TrimSpace(hc))
	if hcArgs[0] != ep[0] || len(hcArgs) < 2 || hcArgs[1] != "health" {
		t.Fatalf("HEALTHCHECK CMD %v, want %s health", hcArgs, ep[0])
	}
	if u := healthURL("", func(string) (string, bool) { return "", false }); u != "http://"+qs.Admin.Listen+"/healthz" {
		t.Errorf("portico health checks %s, want the quick start's admin /healthz", u)
	}
	admin := freePort(t)
	health := func() error {
		c := exec.Command(binary, hcArgs[1:]...)
		c.Env = append(os.Environ(), "PORTICO_ADMIN="+admin)
		return c.Run()
	}
	if err := health(); err == nil {
		t.Error("the health check passed with no gateway running")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "portico.yaml"), []byte("server: {listen: [{addr: \"127.0.0.1:0\"}]}\nroutes: [{name: a, match: {path: /a}, respond: {}}]\n"), 0o644)
	p := startPortico(t, dir, "run", "--admin", admin)
	p.waitLog(t, "portico started")
	if err := health(); err != nil {
		t.Errorf("HEALTHCHECK command %v against a running gateway: %v", hcArgs[1:], err)
	}
}
