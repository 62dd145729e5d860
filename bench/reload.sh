#!/usr/bin/env bash
# Measures reload cost: generates a config with ROUTES routes (default
# 10000), starts Portico on it, sends SIGHUP RELOADS times (default 1000),
# waiting for each reload to finish, and reports the reload times Portico
# logs and its RSS before and after. Loopback only; stops by itself.
# Usage: bench/reload.sh [ROUTES] [RELOADS]
set -euo pipefail
cd "$(dirname "$0")/.."
routes=${1:-10000}
reloads=${2:-1000}
tmp=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/portico" ./cmd/portico

{
  echo 'server: {listen: [{addr: "127.0.0.1:28190"}]}'
  echo 'admin: {listen: "off"}'
  echo 'log: {access: {output: "off"}}'
  echo 'upstreams: {b: {targets: [{url: "http://127.0.0.1:28191"}]}}'
  echo 'routes:'
  for ((i = 0; i < routes; i++)); do
    case $((i % 4)) in
      0) echo "  - {name: r$i, match: {path: \"/svc$i/users/{id}\"}, upstream: b}" ;;
      1) echo "  - {name: r$i, match: {path_prefix: /svc$i}, upstream: b, plugins: [{name: headers, config: {request: {set: {X-R: \"$i\"}}}}]}" ;;
      2) echo "  - {name: r$i, match: {path: /svc$i, methods: [GET]}, respond: {body: ok}}" ;;
      3) echo "  - {name: r$i, match: {hosts: [h$i.example.com], path_prefix: /}, upstream: b}" ;;
    esac
  done
  echo 'plugins: [{name: request_id}]'
} >"$tmp/portico.yaml"

"$tmp/portico" run --config "$tmp/portico.yaml" 2>"$tmp/log" &
pid=$!
for _ in $(seq 100); do grep -q 'portico started' "$tmp/log" && break; sleep 0.1; done
rss() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
hwm() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$pid/status"; }
rss0=$(rss)
start=$(date +%s.%N)
for ((i = 1; i <= reloads; i++)); do
  kill -HUP "$pid"
  until [ "$(grep -c 'config reloaded' "$tmp/log")" -ge "$i" ]; do sleep 0.005; done
  [ "$i" -eq 10 ] && rss10=$(rss)
done
end=$(date +%s.%N)
rss1=$(rss)
grep -o '"took":"[^"]*"' "$tmp/log" | sed 's/"took":"//; s/"//' >"$tmp/took"
median=$(go run ./bench/durstat <"$tmp/took")
printf '%d routes, %d reloads in %.0f s\n' "$routes" "$reloads" "$(echo "$end - $start" | bc)"
printf 'reload time (load + validate + build + swap): %s\n' "$median"
printf 'RSS after start %s MiB, after 10 reloads %s MiB, after %d reloads %s MiB (peak %s MiB)\n' "$rss0" "$rss10" "$reloads" "$rss1" "$(hwm)"
