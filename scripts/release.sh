#!/usr/bin/env bash
# Builds Portico's release archives: static binaries (CGO_ENABLED=0,
# -trimpath, stripped) for linux and darwin on amd64 and arm64, each packed
# with LICENSE, README.md and CHANGELOG.md as
# dist/portico_<version>_<os>_<arch>.tar.gz, plus dist/checksums.txt (SHA-256).
#
# Usage: scripts/release.sh [VERSION]
#   VERSION  defaults to `git describe --tags --always --dirty`, else "dev".
# Environment:
#   DIST=dir                  output directory (default: dist)
#   TARGETS="linux/amd64 …"   build only these os/arch pairs
#   SOURCE_DATE_EPOCH=secs    build date to record (default: now), for
#                             reproducible archives
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
command -v go >/dev/null 2>&1 || { echo "release.sh: Go 1.26.8 or newer is required" >&2; exit 1; }

version="${1:-}"
if [ -z "$version" ]; then
  version="$(git describe --tags --always --dirty 2>/dev/null || true)"
  version="${version:-dev}"
fi
if ! [[ "$version" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]]; then
  echo "release.sh: version \"$version\" may contain only letters, digits, '.', '_', '+' and '-'" >&2
  exit 2
fi
commit="$(git rev-parse --short=7 HEAD 2>/dev/null || true)"
if [ -n "$commit" ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="${commit}-dirty"
fi
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
  date="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
else
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fi
dist="${DIST:-dist}"
targets="${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"

pkg=github.com/portico-gw/portico/internal/buildinfo
ldflags="-s -w -X $pkg.version=$version -X $pkg.date=$date"
[ -n "$commit" ] && ldflags="$ldflags -X $pkg.commit=$commit"

mkdir -p "$dist"
dist="$(cd "$dist" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

archives=()
for target in $targets; do
  os="${target%/*}"; arch="${target#*/}"
  name="portico_${version}_${os}_${arch}"
  echo "release.sh: building $name"
  mkdir -p "$work/$name"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -buildvcs=false \
    -ldflags "$ldflags" -o "$work/$name/portico" ./cmd/portico
  cp LICENSE README.md CHANGELOG.md "$work/$name/"
  # Flat archive, stable order and owner, so the same inputs give the same bytes.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$date" \
    -C "$work/$name" -cf - portico LICENSE README.md CHANGELOG.md | gzip -n -9 > "$dist/$name.tar.gz"
  archives+=("$name.tar.gz")
done

cd "$dist"
if command -v sha256sum >/dev/null 2>&1; then
  sha256sum "${archives[@]}" > checksums.txt
else
  shasum -a 256 "${archives[@]}" > checksums.txt
fi
echo "release.sh: wrote ${#archives[@]} archives and checksums.txt to $dist"
