// Package scripts holds the tests of the repository's scripts.
package scripts

import (
	"bufio"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"archive/tar"
	"compress/gzip"
)

// TestReleaseScript runs scripts/release.sh into a temp dir and checks what a
// user downloads: the archives, their checksums, and that the linux/amd64
// binary is static and reports the version it was given. By default it
// builds linux/amd64 only: on a 2-core machine a target costs 3.5 to 4
// minutes with a cold build cache (8 to 26 s warm), so all four would take
// well over the 90 s a test may cost; PORTICO_RELEASE_ALL_TARGETS=1 builds
// and checks all four.
// Skipped with -short, never under CI=true.
func TestReleaseScript(t *testing.T) {
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("builds release binaries; skipped with -short")
	}
	for _, tool := range []string{"bash", "tar", "gzip", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is required: %v", tool, err)
		}
	}
	targets := []string{"linux/amd64"}
	if os.Getenv("PORTICO_RELEASE_ALL_TARGETS") == "1" {
		targets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}
	}
	const version = "v9.8.7-test"
	dist := t.TempDir()
	cmd := exec.Command("bash", "release.sh", version)
	cmd.Env = append(os.Environ(), "DIST="+dist, "TARGETS="+strings.Join(targets, " "), "SOURCE_DATE_EPOCH=1796471295")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("release.sh: %v\n%s", err, out)
	}
	t.Logf("release.sh built %d target(s) in %s", len(targets), time.Since(start).Round(time.Second))

	// checksums.txt lists every archive and each sum verifies.
	sums := map[string]string{}
	f, err := os.Open(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("checksums.txt line %q is not \"<sha256>  <file>\"", sc.Text())
		}
		sums[name] = sum
	}
	f.Close()
	if len(sums) != len(targets) {
		t.Errorf("checksums.txt has %d entries, want %d", len(sums), len(targets))
	}
	for _, target := range targets {
		goos, goarch, _ := strings.Cut(target, "/")
		name := "portico_" + version + "_" + goos + "_" + goarch + ".tar.gz"
		data, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatalf("archive missing: %v", err)
		}
		h := sha256.Sum256(data)
		if got := hex.EncodeToString(h[:]); sums[name] != got {
			t.Errorf("%s: checksums.txt says %q, file hashes to %q", name, sums[name], got)
		}
		files := untar(t, filepath.Join(dist, name), filepath.Join(dist, goos+"_"+goarch))
		for _, want := range []string{"portico", "LICENSE", "README.md", "CHANGELOG.md"} {
			if !files[want] {
				t.Errorf("%s lacks %s (has %v)", name, want, files)
			}
		}
	}

	bin := filepath.Join(dist, "linux_amd64", "portico")
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("linux/amd64 binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if ef.Section(".symtab") != nil {
		t.Errorf("linux/amd64 binary keeps its symbol table; -s -w should strip it")
	}
	ef.Close()
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("version: %v", err)
		}
		want := "portico " + version + " (commit "
		if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "built 2026-12-05T11:48:15Z, go1.") {
			t.Errorf("version printed %q, want it to start with %q and name the build date", out, want)
		}
	}
}

// untar extracts the regular files of a .tar.gz into dir and names them.
func untar(t *testing.T, archive, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg || strings.Contains(h.Name, "/") || strings.HasPrefix(h.Name, ".") {
			t.Fatalf("unexpected archive entry %q (type %c)", h.Name, h.Typeflag)
		}
		names[h.Name] = true
		out, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
}
