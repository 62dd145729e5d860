#!/usr/bin/env bash
# Runs Portico's whole test suite: vet, staticcheck, unit and end-to-end tests
# under the race detector, and the fuzzers' seed corpora. Installs what the tests need
# on a fresh Debian machine first. Usage: scripts/test.sh [go test flags]
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/usr/local/go/bin:$HOME/go/bin:$PATH"
if ! command -v go >/dev/null 2>&1; then
  echo "test.sh: the Go toolchain (Go 1.26.8 or newer) is required" >&2
  exit 1
fi

# System packages the tests talk to (real servers, never mocks). Installed
# only when missing, so a prepared machine pays nothing.
need_pkgs=()
for pkg in $(grep -v '^#' scripts/test-packages.txt 2>/dev/null || true); do
  bin="${pkg%%:*}"; deb="${pkg#*:}"
  command -v "$bin" >/dev/null 2>&1 || need_pkgs+=("$deb")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "test.sh: installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

echo "== go test -race (unit, end-to-end, fuzz seed corpora)"
go test -race -count=1 -timeout 20m "$@" ./...
