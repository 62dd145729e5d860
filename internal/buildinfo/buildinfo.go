// Package buildinfo describes the running Portico build: its version, commit
// and build date. Release builds set them with the linker:
//
//	go build -ldflags "-X github.com/portico-gw/portico/internal/buildinfo.version=v0.1.0 \
//	  -X github.com/portico-gw/portico/internal/buildinfo.commit=892a030 \
//	  -X github.com/portico-gw/portico/internal/buildinfo.date=2026-12-05T11:41:35Z" ./cmd/portico
//
// Any value left unset is taken from the build information the Go toolchain
// embeds: the module version for `go install …@vX`, and the VCS revision,
// time and modified flag for a build inside a git checkout.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// Set at link time with -ldflags "-X <package>.version=…" (and commit, date).
var (
	version string
	commit  string
	date    string
)

// Info is what is known about the running build.
type Info struct {
	// Version is the release version ("v0.1.0"), the module pseudo-version,
	// or "dev" when nothing better is known. A build from a checkout with
	// uncommitted changes ends in "-dirty".
	Version string
	// Commit is the VCS revision (abbreviated to 7 characters), or "".
	Commit string
	// Date is when the build (or its commit) was made, RFC 3339, or "".
	Date string
	// GoVersion is the toolchain that built the binary, e.g. "go1.26.8".
	GoVersion string
	// Platform is GOOS/GOARCH, e.g. "linux/amd64".
	Platform string
}

var get = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, date, bi)
})

// Get returns the running build's Info (computed once).
func Get() Info { return get() }

// Version is Get().Version.
func Version() string { return get().Version }

// resolve combines the linker values with the toolchain's build info; the
// linker values win where set.
func resolve(ver, rev, when string, bi *debug.BuildInfo) Info {
	in := Info{Version: ver, Commit: rev, Date: when, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		var vcsRev, vcsTime string
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRev = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if in.Commit == "" {
			in.Commit = vcsRev
		}
		if in.Date == "" {
			in.Date = vcsTime
		}
		if in.Version == "" {
			// "(devel)" is what a build inside the main module reports.
			if v := bi.Main.Version; v != "" && v != "(devel)" {
				in.Version = v
			} else if vcsRev != "" {
				in.Version = "dev-" + short(vcsRev)
			}
			if in.Version != "" && modified && !strings.HasSuffix(in.Version, "-dirty") && !strings.HasSuffix(in.Version, "+dirty") {
				in.Version += "-dirty"
			}
		}
	}
	if in.Version == "" {
		in.Version = "dev"
	}
	in.Commit = short(in.Commit)
	return in
}

func short(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}

// String is the one-line description `portico version` prints, e.g.
// "portico v0.1.0 (commit 892a030, built 2026-12-05T11:41:35Z, go1.26.8 linux/amd64)".
func (in Info) String() string {
	var b strings.Builder
	b.WriteString("portico ")
	b.WriteString(in.Version)
	b.WriteString(" (")
	if in.Commit != "" {
		b.WriteString("commit ")
		b.WriteString(in.Commit)
		b.WriteString(", ")
	}
	if in.Date != "" {
		b.WriteString("built ")
		b.WriteString(in.Date)
		b.WriteString(", ")
	}
	b.WriteString(in.GoVersion)
	b.WriteString(" ")
	b.WriteString(in.Platform)
	b.WriteString(")")
	return b.String()
}
