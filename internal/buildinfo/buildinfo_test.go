package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	vcs := func(rev, when, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: when}, {Key: "vcs.modified", Value: modified}}
	}
	full := "892a030f0e1d2c3b4a5968778695a4b3c2d1e0f1"
	tests := []struct {
		desc            string
		ver, rev, when  string
		bi              *debug.BuildInfo
		version, commit string
		date            string
	}{
		{desc: "linker values win", ver: "v0.1.0", rev: "892a030", when: "2026-12-05T11:41:35Z",
			bi:      &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("ffffffffff", "2020-01-01T00:00:00Z", "true")},
			version: "v0.1.0", commit: "892a030", date: "2026-12-05T11:41:35Z"},
		{desc: "go install module@version", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"}},
			version: "v0.2.0"},
		{desc: "checkout build, clean", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(full, "2026-12-05T11:41:35Z", "false")},
			version: "dev-892a030", commit: "892a030", date: "2026-12-05T11:41:35Z"},
		{desc: "checkout build, modified", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs(full, "2026-12-05T11:41:35Z", "true")},
			version: "dev-892a030-dirty", commit: "892a030", date: "2026-12-05T11:41:35Z"},
		{desc: "toolchain pseudo-version keeps its +dirty", bi: &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205114135-892a030f0e1d+dirty"}, Settings: vcs(full, "2026-12-05T11:41:35Z", "true")},
			version: "v0.0.0-20261205114135-892a030f0e1d+dirty", commit: "892a030", date: "2026-12-05T11:41:35Z"},
		{desc: "linker version, commit from vcs", ver: "v1.0.0", bi: &debug.BuildInfo{Settings: vcs(full, "2026-12-05T11:41:35Z", "true")},
			version: "v1.0.0", commit: "892a030", date: "2026-12-05T11:41:35Z"},
		{desc: "nothing known", version: "dev"},
		{desc: "no vcs, devel", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, version: "dev"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			in := resolve(tc.ver, tc.rev, tc.when, tc.bi)
			if in.Version != tc.version || in.Commit != tc.commit || in.Date != tc.date {
				t.Fatalf("got %+v, want version %q commit %q date %q", in, tc.version, tc.commit, tc.date)
			}
			if in.Platform != runtime.GOOS+"/"+runtime.GOARCH || !strings.HasPrefix(in.GoVersion, "go") {
				t.Fatalf("platform/go: %+v", in)
			}
		})
	}
}

func TestString(t *testing.T) {
	in := Info{Version: "v0.1.0", Commit: "892a030", Date: "2026-12-05T11:41:35Z", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	if got, want := in.String(), "portico v0.1.0 (commit 892a030, built 2026-12-05T11:41:35Z, go1.26.8 linux/amd64)"; got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	in.Commit, in.Date, in.Version = "", "", "dev"
	if got, want := in.String(), "portico dev (go1.26.8 linux/amd64)"; got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestGet(t *testing.T) {
	if in := Get(); in.Version == "" || in.GoVersion == "" || Version() != in.Version {
		t.Fatalf("Get() = %+v", in)
	}
}
