#!/usr/bin/env bash
# Portico load-test harness: measures nginx, Caddy, the standard library's
# httputil.ReverseProxy and Portico (without and with access log) in front of
# the same 100-byte backend, one at a time, and writes a markdown table to
# bench/results/latest.md and bench/results/YYYY-MM-DD.md. Two more runs add
# their own tables: "h2" (clients speaking HTTP/2 without TLS, h2load, to
# nginx, Caddy, an h2c httputil.ReverseProxy and Portico) and "grpc" (unary
# gRPC calls, bench/grpcload, to a gRPC backend directly, through Portico and
# through nginx). A third, "features", measures what Portico's plugins (jwt,
# key_auth, rate_limit with a local or a Redis backend) add to the plain route.
# A fourth, "cache", puts a cache hit served by Portico (memory or Redis store)
# beside nginx proxy_cache serving the same hit, gives the cost of a cache miss
# and of gzip, zstd and brotli compression of a 16 KiB JSON response.
#
# Usage: bench/run.sh [--duration 10s] [--only nginx,caddy,httputil,portico,portico-log,h2,grpc,features,cache]
#
# See bench/README.md for the methodology. All traffic stays on 127.0.0.1; every
# load run is bounded in time and every process started here is stopped on exit.
set -euo pipefail

ALL_PROXIES="nginx,caddy,httputil,portico,portico-log,h2,grpc,features,cache"

usage() {
	cat <<EOF
Usage: bench/run.sh [--duration 10s] [--only LIST]

  --duration D   length of each measured run (wrk, h2load, grpcload; seconds:
                 "10s", "10" or "1m"); default \$DURATION or 10s
  --only LIST    comma-separated proxies to measure, from: $ALL_PROXIES
                 (default: all). "h2" is the HTTP/2 (h2c) table, "grpc" the
                 gRPC unary table, "features" the plugin-cost table and
                 "cache" the caching and compression table (run alone, or
                 the two together, they add or replace their sections in the
                 existing report); the others are HTTP/1.1 rows.

Environment:
  BENCH_PORT_BASE  first of sixteen consecutive 127.0.0.1 ports to use (default 28080)
  BENCH_KEEP_TMP   set to 1 to keep the temp dir (configs, logs, load tool output)
  BENCH_FEATURES   comma-separated rows of the "features" table to measure
                   (default: all), e.g. split-weighted,mirror-100
  BENCH_CACHE      comma-separated rows of the "cache" table to measure
                   (default: all), e.g. portico-hit,nginx-hit; the baselines
                   (portico-plain, nginx-plain for nginx-hit, plain-16k for
                   the compression rows) are always measured
EOF
}

DURATION="${DURATION:-10s}"
ONLY="$ALL_PROXIES"
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) DURATION="${2:?--duration needs a value}"; shift 2 ;;
	--duration=*) DURATION="${1#*=}"; shift ;;
	--only) ONLY="${2:?--only needs a value}"; shift 2 ;;
	--only=*) ONLY="${1#*=}"; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
	esac
done

# Duration in whole seconds.
if [[ "$DURATION" =~ ^([0-9]+)s?$ ]]; then
	DUR_S="${BASH_REMATCH[1]}"
elif [[ "$DURATION" =~ ^([0-9]+)m$ ]]; then
	DUR_S=$((BASH_REMATCH[1] * 60))
else
	echo "run.sh: bad --duration '$DURATION' (use e.g. 10s or 1m)" >&2
	exit 2
fi
if [ "$DUR_S" -lt 1 ] || [ "$DUR_S" -gt 600 ]; then
	echo "run.sh: --duration must be between 1s and 10m" >&2
	exit 2
fi

IFS=',' read -r -a SELECTED <<<"$ONLY"
for p in "${SELECTED[@]}"; do
	case ",$ALL_PROXIES," in
	*",$p,"*) ;;
	*) echo "run.sh: unknown proxy '$p' (known: $ALL_PROXIES)" >&2; exit 2 ;;
	esac
done

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH_DIR")"
RESULTS_DIR="$BENCH_DIR/results"

PORT_BASE="${BENCH_PORT_BASE:-28080}"
BACKEND_PORT=$PORT_BASE
declare -A PORT=(
	[nginx]=$((PORT_BASE + 1))
	[caddy]=$((PORT_BASE + 2))
	[httputil]=$((PORT_BASE + 3))
	[portico]=$((PORT_BASE + 4))
	[portico-log]=$((PORT_BASE + 5))
	[h2:nginx]=$((PORT_BASE + 6))
	[h2:caddy]=$((PORT_BASE + 7))
	[h2:httputil]=$((PORT_BASE + 8))
	[h2:portico]=$((PORT_BASE + 9))
	[grpc:portico]=$((PORT_BASE + 11))
	[grpc:nginx]=$((PORT_BASE + 12))
	[features]=$((PORT_BASE + 13))
	[cache]=$((PORT_BASE + 15))
)
FEATURES_REDIS_PORT=$((PORT_BASE + 14))
GRPC_BACKEND_PORT=$((PORT_BASE + 10))
PORT[grpc:direct]=$GRPC_BACKEND_PORT

# Rows of the HTTP/2 and gRPC tables, in order.
H2_ROWS=(nginx caddy httputil portico)
GRPC_ROWS=(direct portico nginx)
# h2load: connections, streams in flight per connection.
H2_CONNS=16
H2_STREAMS=10
# grpcload: closed-loop workers (calls in flight) and connections.
GRPC_WORKERS=64
GRPC_CONNS=4

# selected NAME: true if NAME was selected with --only (or by default).
selected() {
	local p
	for p in "${SELECTED[@]}"; do
		[ "$p" != "$1" ] || return 0
	done
	return 1
}
# HTTP/1.1 rows selected, in order.
HTTP1_SELECTED=()
for p in "${SELECTED[@]}"; do
	case "$p" in h2 | grpc | features | cache) ;; *) HTTP1_SELECTED+=("$p") ;; esac
done

THREADS=1
CONNS=64
WARMUP_S=2
BODY_BYTES=100

log() { printf '==> %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------
# Dependencies

apt_install() {
	[ "$(id -u)" -eq 0 ] || { log "not root: cannot apt-get install $*"; return 1; }
	local opts=(-y -q -o DPkg::Lock::Timeout=600)
	DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >&2 && return 0
	DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || true
	DEBIAN_FRONTEND=noninteractive apt-get install "${opts[@]}" "$@" >&2
}

find_nginx() {
	command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

install_deps() {
	local need=()
	command -v wrk >/dev/null 2>&1 || need+=(wrk)
	command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
	command -v caddy >/dev/null 2>&1 || need+=(caddy)
	command -v curl >/dev/null 2>&1 || need+=(curl)
	command -v taskset >/dev/null 2>&1 || need+=(util-linux)
	command -v pgrep >/dev/null 2>&1 || need+=(procps)
	if selected features || selected cache; then
		command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
		command -v openssl >/dev/null 2>&1 || need+=(openssl)
	fi
	if [ -z "$(find_nginx)" ]; then
		if apt-cache show nginx-light >/dev/null 2>&1; then
			need+=(nginx-light)
		else
			need+=(nginx)
		fi
	fi
	if [ ${#need[@]} -gt 0 ]; then
		log "installing: ${need[*]}"
		if ! apt_install "${need[@]}"; then
			# One package may be missing from the archive (nginx-light is not
			# in every release): try them one by one, nginx as a fallback.
			local p
			for p in "${need[@]}"; do
				apt_install "$p" || { [ "$p" = nginx-light ] && apt_install nginx; } || log "could not install $p"
			done
		fi
	fi
	command -v wrk >/dev/null 2>&1 || { echo "run.sh: wrk is required and could not be installed" >&2; exit 1; }
	command -v curl >/dev/null 2>&1 || { echo "run.sh: curl is required and could not be installed" >&2; exit 1; }
	command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || { echo "run.sh: the go toolchain is required" >&2; exit 1; }
	command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
}

install_deps
NGINX="$(find_nginx)"
CLK_TCK="$(getconf CLK_TCK)"

# Core 0 for the proxy under test, core 1 for the backend and wrk.
NCPU="$(nproc)"
if [ "$NCPU" -ge 2 ]; then
	PROXY_CPU=0
	LOAD_CPU=1
else
	log "only $NCPU CPU: proxy, backend and wrk will share it"
	PROXY_CPU=0
	LOAD_CPU=0
fi

# ---------------------------------------------------------------------------
# Processes and cleanup

TMP="$(mktemp -d /tmp/portico-bench.XXXXXX)"
PIDS=()

stop_pid() {
	local pid="$1" i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

forget_pid() {
	local pid="$1" keep=() p
	for p in "${PIDS[@]}"; do
		[ "$p" = "$pid" ] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

cleanup() {
	local pid
	set +e
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then
		log "temp dir kept: $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_busy PORT: true if something already accepts connections on 127.0.0.1:PORT.
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_http PID URL: wait up to 10 s for URL to answer while PID lives.
wait_http() {
	local pid="$1" url="$2" i
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 1
		curl -s -o /dev/null --max-time 1 "$url" && return 0
		sleep 0.1
	done
	return 1
}

# check_body URL: prints "ok", or what was wrong with the answer.
check_body() {
	local url="$1" code size
	code="$(curl -s -o "$TMP/body" --max-time 3 -w '%{http_code}' "$url" || true)"
	size="$(stat -c %s "$TMP/body" 2>/dev/null || echo 0)"
	if [ "$code" = 200 ] && [ "$size" = "$BODY_BYTES" ]; then
		echo ok
	else
		echo "answered ${code:-nothing} with a ${size}-byte body, want 200 with $BODY_BYTES bytes"
	fi
}

# cpu_ticks PID...: utime+stime of the processes (all threads), in clock ticks.
cpu_ticks() {
	local total=0 pid rest
	for pid in "$@"; do
		rest="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
		rest="${rest##*) }" # fields from 3 (state) on; comm may contain spaces
		# shellcheck disable=SC2086
		set -- $rest
		total=$((total + ${12} + ${13}))
	done
	echo "$total"
}

# core_ticks CPU: "busy total" clock ticks of one core from /proc/stat.
core_ticks() {
	awk -v c="cpu$1" '$1 == c {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6; exit}' /proc/stat
}

# hwm_kib PID: peak resident set size (VmHWM) in KiB.
hwm_kib() {
	awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# last_log FILE: the last non-empty line of a log, cleaned for a table cell.
last_log() {
	local line
	line="$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1 || true)"
	printf '%s' "${line:-no output}" | tr '|\t' '/ ' | cut -c1-160
}

# ---------------------------------------------------------------------------
# Build

log "building Go programs"
(cd "$ROOT" && go build -o "$TMP/backend" ./bench/backend)
(cd "$ROOT" && go build -o "$TMP/httputilproxy" ./bench/httputilproxy)

PORTICO_BUILD_ERR=""
for p in "${SELECTED[@]}"; do
	case "$p" in portico | portico-log | h2 | grpc | features | cache) want_portico=1 ;; esac
done
if [ "${want_portico:-0}" = 1 ]; then
	if ! (cd "$ROOT" && timeout 600 go build -o "$TMP/portico" ./cmd/portico) >"$TMP/portico-build.log" 2>&1; then
		PORTICO_BUILD_ERR="go build ./cmd/portico failed: $(grep -m 1 -v -e '^#' -e '^[[:space:]]*$' "$TMP/portico-build.log" | tr '|\t' '/ ' | cut -c1-160 || true)"
		log "$PORTICO_BUILD_ERR"
	fi
fi

# The gRPC programs import google.golang.org/grpc: a failure to build them
# turns the gRPC rows into SKIPPED ones.
GRPC_BUILD_ERR=""
if selected grpc; then
	for prog in grpcbackend grpcload; do
		if ! (cd "$ROOT" && timeout 600 go build -o "$TMP/$prog" "./bench/$prog") >"$TMP/$prog-build.log" 2>&1; then
			GRPC_BUILD_ERR="go build ./bench/$prog failed: $(grep -m 1 -v -e '^#' -e '^[[:space:]]*$' "$TMP/$prog-build.log" | tr '|\t' '/ ' | cut -c1-160 || true)"
			log "$GRPC_BUILD_ERR"
			break
		fi
	done
fi

# bench/mintjwt signs the RS256 token of the plugin table; without it that row
# is SKIPPED.
MINTJWT_BUILD_ERR=""
if selected features; then
	if ! (cd "$ROOT" && timeout 600 go build -o "$TMP/mintjwt" ./bench/mintjwt) >"$TMP/mintjwt-build.log" 2>&1; then
		MINTJWT_BUILD_ERR="go build ./bench/mintjwt failed: $(grep -m 1 -v -e '^#' -e '^[[:space:]]*$' "$TMP/mintjwt-build.log" | tr '|\t' '/ ' | cut -c1-160 || true)"
		log "$MINTJWT_BUILD_ERR"
	fi
fi

# ---------------------------------------------------------------------------
# Backend (for the HTTP/1.1 and HTTP/2 rows; the gRPC run starts its own)

if [ ${#HTTP1_SELECTED[@]} -gt 0 ] || selected h2 || selected features || selected cache; then
	if port_busy "$BACKEND_PORT"; then
		echo "run.sh: 127.0.0.1:$BACKEND_PORT is already in use (set BENCH_PORT_BASE)" >&2
		exit 1
	fi
	log "starting backend on 127.0.0.1:$BACKEND_PORT (cpu $LOAD_CPU)"
	GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/backend" -addr "127.0.0.1:$BACKEND_PORT" >"$TMP/backend.log" 2>&1 &
	BACKEND_PID=$!
	PIDS+=("$BACKEND_PID")
	if ! wait_http "$BACKEND_PID" "http://127.0.0.1:$BACKEND_PORT/"; then
		echo "run.sh: backend did not start: $(last_log "$TMP/backend.log")" >&2
		exit 1
	fi
	if [ "$(check_body "http://127.0.0.1:$BACKEND_PORT/")" != ok ]; then
		echo "run.sh: backend: $(check_body "http://127.0.0.1:$BACKEND_PORT/")" >&2
		exit 1
	fi
fi

# ---------------------------------------------------------------------------
# Proxies. Each start_* function starts one proxy on core PROXY_CPU and sets
# PROXY_PID (the process to wait on and stop), CPU_PIDS (processes whose CPU
# time is summed, found after start-up), RSS_PID and LOG_FILE; it returns
# non-zero with SKIP_REASON set when the proxy cannot be started.

# start_nginx_with DIR: writes DIR/nginx.conf, one worker and no access log,
# with the upstream and server blocks read from stdin inside its http block,
# and starts nginx on it.
start_nginx_with() {
	local dir="$1"
	[ -n "$NGINX" ] || { SKIP_REASON="nginx is not installed"; return 1; }
	mkdir -p "$dir/logs"
	{
		echo "worker_processes 1;"
		if [ "$(id -u)" -eq 0 ]; then echo "user root;"; fi
		cat <<EOF
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
EOF
		cat
		echo "}"
	} >"$dir/nginx.conf"
	LOG_FILE="$dir/logs/error.log"
	taskset -c "$PROXY_CPU" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
	PROXY_PID=$!
}

start_nginx() {
	local port="$1"
	start_nginx_with "$TMP/nginx" <<EOF
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
EOF
}

# After start-up: nginx's CPU is master + workers, its RSS the worker's.
nginx_pids() {
	local workers
	workers="$(pgrep -P "$PROXY_PID" | tr '\n' ' ')"
	CPU_PIDS=("$PROXY_PID")
	# shellcheck disable=SC2206
	CPU_PIDS+=($workers)
	RSS_PID="${CPU_PIDS[1]:-$PROXY_PID}"
}

start_caddy() {
	local port="$1" dir="$TMP/caddy"
	command -v caddy >/dev/null 2>&1 || { SKIP_REASON="caddy is not installed"; return 1; }
	mkdir -p "$dir"
	cat >"$dir/Caddyfile" <<EOF
{
	admin off
	auto_https off
	log {
		output discard
	}
}

:$port {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$BACKEND_PORT {
		transport http {
			keepalive 90s
			keepalive_idle_conns_per_host 256
		}
	}
}
EOF
	LOG_FILE="$dir/caddy.log"
	HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" GOMAXPROCS=1 \
		taskset -c "$PROXY_CPU" caddy run --config "$dir/Caddyfile" --adapter caddyfile >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
}

start_httputil() {
	local port="$1"
	LOG_FILE="$TMP/httputil.log"
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/httputilproxy" -addr "127.0.0.1:$port" \
		-upstream "http://127.0.0.1:$BACKEND_PORT" >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
}

# portico_config PORT ACCESS_OUTPUT FILE: bench/portico.yaml with this run's
# ports and access log output.
portico_config() {
	sed -e "s#127\.0\.0\.1:28084#127.0.0.1:$1#" \
		-e "s#http://127\.0\.0\.1:28080#http://127.0.0.1:$BACKEND_PORT#" \
		-e "s#^\([[:space:]]*output:\).*#\1 \"$2\"#" \
		"$BENCH_DIR/portico.yaml" >"$3"
}

start_portico_variant() {
	local port="$1" name="$2" output="$3"
	[ -z "$PORTICO_BUILD_ERR" ] || { SKIP_REASON="$PORTICO_BUILD_ERR"; return 1; }
	portico_config "$port" "$output" "$TMP/$name.yaml"
	LOG_FILE="$TMP/$name.log"
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/portico" run --config "$TMP/$name.yaml" >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
}

start_portico() { start_portico_variant "$1" portico off; }
start_portico-log() { start_portico_variant "$1" portico-log "$TMP/access.log"; }

# ---------------------------------------------------------------------------
# Measurement

declare -A RPS P50 P99 CPU_US RSS_MIB SKIP NOTE

# latency_of FILE PCT: the wrk --latency percentile, as printed ("1.23ms").
latency_of() {
	awk -v p="$2%" '/Latency Distribution/ {d=1; next} d && $1 == p {print $2; exit}' "$1"
}

# run_wrk OUT TIMEOUT ARGS...: wrk on the load core, killed after TIMEOUT
# seconds at most; run in the background so a signal stops it at once.
run_wrk() {
	local out="$1" limit="$2" pid rc=0
	shift 2
	timeout "$limit" taskset -c "$LOAD_CPU" wrk "$@" >"$out" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	forget_pid "$pid"
	return "$rc"
}

# core_use NAME PROXY_BUSY PROXY_TOTAL LOAD_BUSY LOAD_TOTAL OWN: core use over
# a measured run (clock-tick deltas from /proc/stat and the proxy's own CPU
# time), as "core 0 N% busy (proxy N%, other N%), core 1 N% busy; ". The
# proxy's share of its core shows whether anything else ran there; a load core
# near 100% means the load tool and the backend, not the proxy, bounded req/s.
# Warns when other processes used more than 10% of the proxy's core.
core_use() {
	local name="$1" out
	out="$(awk -v pb="$2" -v pt="$3" -v lb="$4" -v lt="$5" -v own="$6" \
		-v pc="$PROXY_CPU" -v lc="$LOAD_CPU" 'BEGIN {
			if (pt < 1) pt = 1; if (lt < 1) lt = 1
			other = 100 * (pb - own) / pt; if (other < 0) other = 0
			printf "core %s %.0f%% busy (proxy %.0f%%, other %.0f%%), core %s %.0f%% busy; ", pc, 100 * pb / pt, 100 * own / pt, other, lc, 100 * lb / lt
		}')"
	if [[ "$out" =~ other\ ([0-9]+)% ]] && [ "${BASH_REMATCH[1]}" -gt 10 ]; then
		log "$name: warning: other processes used ${BASH_REMATCH[1]}% of core $PROXY_CPU during the run; latency and req/s are disturbed"
	fi
	printf '%s' "$out"
}

measure() {
	local name="$1" port="${PORT[$1]}" url cpu0 cpu1 wrk_out requests body status extra
	local pb0 pt0 lb0 lt0 pb1 pt1 lb1 lt1
	url="http://127.0.0.1:$port/"
	SKIP_REASON="" PROXY_PID="" CPU_PIDS=() RSS_PID="" LOG_FILE=""
	log "$name: 127.0.0.1:$port (cpu $PROXY_CPU)"
	if port_busy "$port"; then
		SKIP[$name]="127.0.0.1:$port is already in use"
		return
	fi
	if ! "start_$name" "$port"; then
		SKIP[$name]="$SKIP_REASON"
		return
	fi
	PIDS+=("$PROXY_PID")
	if ! wait_http "$PROXY_PID" "$url"; then
		if kill -0 "$PROXY_PID" 2>/dev/null; then
			SKIP[$name]="no answer on $url within 10 s: $(last_log "$LOG_FILE")"
		else
			SKIP[$name]="exited at start-up: $(last_log "$LOG_FILE")"
		fi
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return
	fi
	body="$(check_body "$url")"
	if [ "$body" != ok ]; then
		SKIP[$name]="$body"
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return
	fi
	if [ "$name" = nginx ]; then nginx_pids; else CPU_PIDS=("$PROXY_PID"); RSS_PID="$PROXY_PID"; fi

	log "$name: warm-up ${WARMUP_S}s"
	run_wrk "$TMP/$name-warmup.txt" $((WARMUP_S + 30)) -t"$THREADS" -c"$CONNS" -d"${WARMUP_S}s" "$url" || true

	log "$name: measuring ${DUR_S}s"
	wrk_out="$TMP/$name-wrk.txt"
	read -r pb0 pt0 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb0 lt0 <<<"$(core_ticks "$LOAD_CPU")"
	cpu0="$(cpu_ticks "${CPU_PIDS[@]}")"
	status=0
	run_wrk "$wrk_out" $((DUR_S + 30)) -t"$THREADS" -c"$CONNS" -d"${DUR_S}s" --latency "$url" || status=$?
	cpu1="$(cpu_ticks "${CPU_PIDS[@]}")"
	read -r pb1 pt1 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb1 lt1 <<<"$(core_ticks "$LOAD_CPU")"

	wrk_results "$name" "$wrk_out" "$status" "$RSS_PID" || return

	extra="$(core_use "$name" $((pb1 - pb0)) $((pt1 - pt0)) $((lb1 - lb0)) $((lt1 - lt0)) $((cpu1 - cpu0)))"
	extra+="$(wrk_socket_errors "$wrk_out")"
	if grep -q 'Non-2xx or 3xx' "$wrk_out"; then
		extra+="$(grep 'Non-2xx or 3xx' "$wrk_out" | sed 's/^[[:space:]]*//'); "
	fi
	if [ "$name" = portico-log ] && [ -f "$TMP/access.log" ]; then
		extra+="access log: $(wc -l <"$TMP/access.log") lines, $(du -h "$TMP/access.log" | cut -f1); "
	fi
	NOTE[$name]="$requests requests in ${DUR_S}s${extra:+; ${extra%; }}"

	stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
	log "$name: ${RPS[$name]} req/s, p50 ${P50[$name]}, p99 ${P99[$name]}, ${CPU_US[$name]} µs CPU/req, ${RSS_MIB[$name]} MiB"
}

# ---------------------------------------------------------------------------
# HTTP/2 (h2c) and gRPC runs. Their rows are keyed "h2:NAME" and "grpc:NAME"
# in the result arrays. Each start_h2_* / start_grpc_* function starts one
# proxy like the start_* functions above.

start_h2_nginx() {
	local port="$1"
	# keepalive_requests: nginx closes an HTTP/2 connection after this many
	# requests (default 1000); raised so that the client connections last the
	# whole run, as they do with the other proxies.
	start_nginx_with "$TMP/nginx-h2" <<EOF
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port http2;
        keepalive_requests 1000000;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
EOF
}

start_h2_caddy() {
	local port="$1" dir="$TMP/caddy-h2"
	command -v caddy >/dev/null 2>&1 || { SKIP_REASON="caddy is not installed"; return 1; }
	mkdir -p "$dir"
	cat >"$dir/Caddyfile" <<EOF
{
	admin off
	auto_https off
	servers {
		protocols h1 h2c
	}
	log {
		output discard
	}
}

:$port {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$BACKEND_PORT {
		transport http {
			keepalive 90s
			keepalive_idle_conns_per_host 256
		}
	}
}
EOF
	LOG_FILE="$dir/caddy.log"
	HOME="$dir" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" GOMAXPROCS=1 \
		taskset -c "$PROXY_CPU" caddy run --config "$dir/Caddyfile" --adapter caddyfile >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
}

start_h2_httputil() {
	local port="$1"
	LOG_FILE="$TMP/httputil-h2.log"
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/httputilproxy" -h2c -addr "127.0.0.1:$port" \
		-upstream "http://127.0.0.1:$BACKEND_PORT" >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
}

# Portico's plain listener accepts h2c by default: the HTTP/1.1 config as is.
start_h2_portico() { start_portico_variant "$1" portico-h2 off; }

start_grpc_nginx() {
	local port="$1"
	start_nginx_with "$TMP/nginx-grpc" <<EOF
    upstream grpc_backend {
        server 127.0.0.1:$GRPC_BACKEND_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port http2;
        keepalive_requests 1000000;
        location / {
            grpc_pass grpc://grpc_backend;
        }
    }
EOF
}

# portico_grpc_config PORT FILE: bench/portico.yaml with this run's listener,
# the gRPC backend as the upstream's target, "protocol: h2c" on the upstream
# and the route's path_prefix narrowed to the gRPC service.
portico_grpc_config() {
	sed -e "s#127\.0\.0\.1:28084#127.0.0.1:$1#" \
		-e "s#http://127\.0\.0\.1:28080#http://127.0.0.1:$GRPC_BACKEND_PORT#" \
		-e "s#^\([[:space:]]*path_prefix:\)[[:space:]]*/[[:space:]]*\$#\1 /grpc.testing.TestService/#" \
		-e "s#^\([[:space:]]*\)targets:[[:space:]]*\$#\1protocol: h2c\n&#" \
		"$BENCH_DIR/portico.yaml" >"$2"
	grep -q "127.0.0.1:$1" "$2" && grep -q "http://127.0.0.1:$GRPC_BACKEND_PORT" "$2" &&
		grep -q 'path_prefix: /grpc.testing.TestService/' "$2" && grep -q 'protocol: h2c' "$2"
}

start_grpc_portico() {
	local port="$1"
	[ -z "$PORTICO_BUILD_ERR" ] || { SKIP_REASON="$PORTICO_BUILD_ERR"; return 1; }
	if ! portico_grpc_config "$port" "$TMP/portico-grpc.yaml"; then
		SKIP_REASON="could not derive the gRPC config from bench/portico.yaml (listener, target, route or upstream not found)"
		return 1
	fi
	LOG_FILE="$TMP/portico-grpc.log"
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/portico" run --config "$TMP/portico-grpc.yaml" >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
}

# wait_port PID PORT: wait up to 10 s for 127.0.0.1:PORT to accept connections
# while PID lives.
wait_port() {
	local pid="$1" port="$2" i
	for i in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 1
		port_busy "$port" && return 0
		sleep 0.1
	done
	return 1
}

# check_h2 PORT: prints "ok" when GET / over h2c (prior knowledge) answers 200
# with the backend's body, retrying for up to 5 s; else what was wrong.
check_h2() {
	local url="http://127.0.0.1:$1/" got size i
	curl -V 2>/dev/null | grep -q 'HTTP2' || { echo "curl has no HTTP/2 support"; return; }
	for i in $(seq 10); do
		got="$(curl -s --http2-prior-knowledge -o "$TMP/body" --max-time 3 -w '%{http_code} HTTP/%{http_version}' "$url" || true)"
		size="$(stat -c %s "$TMP/body" 2>/dev/null || echo 0)"
		if [ "$got" = "200 HTTP/2" ] && [ "$size" = "$BODY_BYTES" ]; then
			echo ok
			return
		fi
		sleep 0.5
	done
	echo "h2c GET / answered ${got:-nothing} with a ${size}-byte body, want 200 HTTP/2 with $BODY_BYTES bytes"
}

# check_grpc PORT: prints "ok" when one UnaryCall succeeds (retrying for up to
# 5 s); else the error.
check_grpc() {
	local err
	if err="$(timeout 20 "$TMP/grpcload" -addr "127.0.0.1:$1" -check -wait 5s 2>&1)"; then
		echo ok
	else
		printf 'UnaryCall failed: %s' "$(printf '%s' "${err:-timed out}" | tail -n 1 | sed 's/^grpcload: //' | tr '|\t' '/ ' | cut -c1-200)"
	fi
}

# load_h2 PORT OUT / load_grpc PORT OUT: start the bounded load run in the
# background on the load core; LOAD_PID is what to wait for.
load_h2() {
	timeout $((WARMUP_S + DUR_S + 30)) taskset -c "$LOAD_CPU" \
		h2load -t "$THREADS" -c "$H2_CONNS" -m "$H2_STREAMS" -D "$DUR_S" --warm-up-time "$WARMUP_S" \
		"http://127.0.0.1:$1/" >"$2" 2>&1 &
	LOAD_PID=$!
}

load_grpc() {
	GOMAXPROCS=1 timeout $((WARMUP_S + DUR_S + 30)) taskset -c "$LOAD_CPU" \
		"$TMP/grpcload" -addr "127.0.0.1:$1" -workers "$GRPC_WORKERS" -conns "$GRPC_CONNS" \
		-warmup "${WARMUP_S}s" -duration "${DUR_S}s" >"$2" 2>"$2.err" &
	LOAD_PID=$!
}

declare -A MEAN SD LMIN LMAX

# parse_h2 KEY OUT STATUS: h2load's results into the row's arrays; REQUESTS
# and LOAD_NOTE for the per-run line. Fails with SKIP_REASON if it failed.
parse_h2() {
	local key="$1" out="$2" status="$3" ok fail err codes
	ok="$(awk '/^requests: / {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^succeeded/) {print $i; exit}}' "$out")"
	if [ "$status" -ne 0 ] || [ -z "$ok" ] || [ "$ok" -eq 0 ]; then
		SKIP_REASON="h2load failed (exit $status): $(last_log "$out")"
		return 1
	fi
	REQUESTS="$ok"
	RPS[$key]="$(awk '/^finished in / {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^req\/s/) {printf "%.0f", $i; exit}}' "$out")"
	read -r LMIN[$key] LMAX[$key] MEAN[$key] SD[$key] <<<"$(awk '/^time for request:/ {print $4, $5, $6, $7; exit}' "$out")"
	fail="$(awk '/^requests: / {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^failed/) {print $i; exit}}' "$out")"
	err="$(awk '/^requests: / {for (i = 1; i < NF; i++) if ($(i + 1) ~ /^errored/) {print $i; exit}}' "$out")"
	codes="$(sed -n 's/^status codes: //p' "$out" | head -n 1)"
	LOAD_NOTE=""
	if [ "${fail:-0}" != 0 ] || [ "${err:-0}" != 0 ]; then
		LOAD_NOTE="h2load: ${fail:-0} failed, ${err:-0} errored; "
	fi
	if [[ "$codes" =~ ([1-9][0-9]*)\ [345]xx ]]; then
		LOAD_NOTE+="status codes: $codes; "
	fi
}

# json_num FILE KEY: a number from grpcload's JSON line.
json_num() {
	grep -o "\"$2\":[-0-9.e+]*" "$1" 2>/dev/null | head -n 1 | cut -d: -f2
}

parse_grpc() {
	local key="$1" out="$2" status="$3" n errs first
	n="$(json_num "$out" requests)"
	errs="$(json_num "$out" errors)"
	first="$(sed -n 's/.*"first_error":"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$out" 2>/dev/null | head -n 1 | sed 's/\\"/"/g' | tr '|\t' '/ ' | cut -c1-160 || true)"
	if [ "$status" -ne 0 ] || [ -z "$n" ] || [ "$n" -eq 0 ]; then
		if [ -n "$first" ]; then
			SKIP_REASON="grpcload: no successful call (${errs:-?} errors, first: $first)"
		else
			SKIP_REASON="grpcload failed (exit $status): $(last_log "$out.err")"
		fi
		return 1
	fi
	REQUESTS="$n"
	RPS[$key]="$(awk -v v="$(json_num "$out" rps)" 'BEGIN {printf "%.0f", v}')"
	P50[$key]="$(awk -v v="$(json_num "$out" p50_ms)" 'BEGIN {printf "%.2fms", v}')"
	P99[$key]="$(awk -v v="$(json_num "$out" p99_ms)" 'BEGIN {printf "%.2fms", v}')"
	LOAD_NOTE=""
	if [ "${errs:-0}" != 0 ]; then
		LOAD_NOTE="$errs failed calls (first: $first); "
	fi
}

# wrk_results KEY WRK_OUT STATUS RSS_PID: after a wrk run (exit STATUS,
# output WRK_OUT) against PROXY_PID, whose CPU ticks the caller holds in
# cpu0 and cpu1, records RPS, P50, P99, CPU_US and RSS_MIB (of RSS_PID) for
# KEY and sets requests. When the proxy exited or wrk failed it records why
# in SKIP[KEY], stops the proxy and returns 1.
wrk_results() {
	local key="$1" wrk_out="$2" status="$3" rss_pid="$4"
	if ! kill -0 "$PROXY_PID" 2>/dev/null; then
		SKIP[$key]="exited during the load run: $(last_log "$LOG_FILE")"
		wait "$PROXY_PID" 2>/dev/null || true
		forget_pid "$PROXY_PID"
		return 1
	fi
	requests="$(awk '/ requests in / {print $1; exit}' "$wrk_out")"
	if [ "$status" -ne 0 ] || [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
		SKIP[$key]="wrk failed (exit $status): $(last_log "$wrk_out")"
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return 1
	fi
	RPS[$key]="$(awk '/^Requests\/sec:/ {printf "%.0f", $2; exit}' "$wrk_out")"
	P50[$key]="$(latency_of "$wrk_out" 50)"
	P99[$key]="$(latency_of "$wrk_out" 99)"
	CPU_US[$key]="$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
	RSS_MIB[$key]="$(awk -v k="$(hwm_kib "$rss_pid")" 'BEGIN {printf "%.1f", k / 1024}')"
}

# wrk_socket_errors WRK_OUT: wrk's "Socket errors" line for a run's note
# ("wrk Socket errors: …; "), or nothing.
wrk_socket_errors() {
	if grep -q 'Socket errors' "$1"; then
		printf 'wrk %s; ' "$(grep 'Socket errors' "$1" | sed 's/^[[:space:]]*//')"
	fi
}

# measure_load KEY START CHECK LOAD PARSE: one row of the HTTP/2 or gRPC
# table. START PORT starts the proxy (or is "-": the load goes to the
# backend directly and only req/s and latency are reported); CHECK PORT
# prints "ok" when the proxy forwards correctly; LOAD PORT OUT starts the
# load tool, which warms up for WARMUP_S and then measures for DUR_S; PARSE
# KEY OUT STATUS reads its results. CPU time and core use are sampled from
# the end of the warm-up to the end of the load run.
measure_load() {
	local key="$1" start="$2" check="$3" load="$4" parse="$5" port="${PORT[$1]}"
	local out res status=0 cpu0=0 cpu1=0 extra pb0 pt0 lb0 lt0 pb1 pt1 lb1 lt1
	SKIP_REASON="" PROXY_PID="" CPU_PIDS=() RSS_PID="" LOG_FILE="" LOAD_PID="" REQUESTS="" LOAD_NOTE=""
	if [ "$start" != - ]; then
		log "$key: 127.0.0.1:$port (cpu $PROXY_CPU)"
		if port_busy "$port"; then
			SKIP[$key]="127.0.0.1:$port is already in use"
			return
		fi
		if ! "$start" "$port"; then
			SKIP[$key]="$SKIP_REASON"
			return
		fi
		PIDS+=("$PROXY_PID")
		if ! wait_port "$PROXY_PID" "$port"; then
			if kill -0 "$PROXY_PID" 2>/dev/null; then
				SKIP[$key]="not listening on 127.0.0.1:$port within 10 s: $(last_log "$LOG_FILE")"
			else
				SKIP[$key]="exited at start-up: $(last_log "$LOG_FILE")"
			fi
			stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
			return
		fi
	else
		log "$key: 127.0.0.1:$port (no proxy)"
	fi
	res="$("$check" "$port")"
	if [ "$res" != ok ]; then
		if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
			res="exited: $(last_log "$LOG_FILE")"
		elif [ -n "$LOG_FILE" ] && [ -s "$LOG_FILE" ]; then
			res+=" (log: $(last_log "$LOG_FILE"))"
		fi
		SKIP[$key]="$res"
		if [ -n "$PROXY_PID" ]; then stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"; fi
		return
	fi
	if [ -n "$PROXY_PID" ]; then
		case "$key" in
		*:nginx) nginx_pids ;;
		*) CPU_PIDS=("$PROXY_PID"); RSS_PID="$PROXY_PID" ;;
		esac
	fi

	log "$key: ${WARMUP_S}s warm-up, measuring ${DUR_S}s"
	out="$TMP/${key/:/-}-load.txt"
	"$load" "$port" "$out"
	PIDS+=("$LOAD_PID")
	sleep "$WARMUP_S"
	read -r pb0 pt0 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb0 lt0 <<<"$(core_ticks "$LOAD_CPU")"
	if [ -n "$PROXY_PID" ]; then cpu0="$(cpu_ticks "${CPU_PIDS[@]}")"; fi
	wait "$LOAD_PID" || status=$?
	forget_pid "$LOAD_PID"
	if [ -n "$PROXY_PID" ]; then cpu1="$(cpu_ticks "${CPU_PIDS[@]}")"; fi
	read -r pb1 pt1 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb1 lt1 <<<"$(core_ticks "$LOAD_CPU")"

	if [ -n "$PROXY_PID" ] && ! kill -0 "$PROXY_PID" 2>/dev/null; then
		SKIP[$key]="exited during the load run: $(last_log "$LOG_FILE")"
		wait "$PROXY_PID" 2>/dev/null || true
		forget_pid "$PROXY_PID"
		return
	fi
	if ! "$parse" "$key" "$out" "$status"; then
		SKIP[$key]="$SKIP_REASON"
		if [ -n "$PROXY_PID" ]; then stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"; fi
		return
	fi
	if [ -n "$PROXY_PID" ]; then
		CPU_US[$key]="$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$REQUESTS" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
		RSS_MIB[$key]="$(awk -v k="$(hwm_kib "$RSS_PID")" 'BEGIN {printf "%.1f", k / 1024}')"
		extra="$(core_use "$key" $((pb1 - pb0)) $((pt1 - pt0)) $((lb1 - lb0)) $((lt1 - lt0)) $((cpu1 - cpu0)))"
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
	else
		extra="$(awk -v pb=$((pb1 - pb0)) -v pt=$((pt1 - pt0)) -v lb=$((lb1 - lb0)) -v lt=$((lt1 - lt0)) \
			-v pc="$PROXY_CPU" -v lc="$LOAD_CPU" 'BEGIN {
				if (pt < 1) pt = 1; if (lt < 1) lt = 1
				printf "core %s %.0f%% busy (no proxy), core %s %.0f%% busy; ", pc, 100 * pb / pt, lc, 100 * lb / lt
			}')"
	fi
	extra+="$LOAD_NOTE"
	NOTE[$key]="$REQUESTS requests in ${DUR_S}s; ${extra%; }"
	log "$key: ${RPS[$key]} req/s${CPU_US[$key]:+, ${CPU_US[$key]} µs CPU/req, ${RSS_MIB[$key]} MiB}"
}

measure_h2() {
	local row
	for row in "${H2_ROWS[@]}"; do
		if ! command -v h2load >/dev/null 2>&1; then
			SKIP[h2:$row]="h2load is not installed (Debian package nghttp2-client)"
		else
			measure_load "h2:$row" "start_h2_$row" check_h2 load_h2 parse_h2
		fi
		[ -z "${SKIP[h2:$row]:-}" ] || log "h2:$row: SKIPPED: ${SKIP[h2:$row]}"
	done
}

measure_grpc() {
	local row pid="" reason=""
	if [ -n "$GRPC_BUILD_ERR" ]; then
		reason="$GRPC_BUILD_ERR"
	elif port_busy "$GRPC_BACKEND_PORT"; then
		reason="127.0.0.1:$GRPC_BACKEND_PORT (gRPC backend) is already in use"
	else
		log "starting gRPC backend on 127.0.0.1:$GRPC_BACKEND_PORT (cpu $LOAD_CPU)"
		GOMAXPROCS=1 taskset -c "$LOAD_CPU" "$TMP/grpcbackend" -addr "127.0.0.1:$GRPC_BACKEND_PORT" >"$TMP/grpcbackend.log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		if ! wait_port "$pid" "$GRPC_BACKEND_PORT"; then
			reason="gRPC backend did not start: $(last_log "$TMP/grpcbackend.log")"
		fi
	fi
	for row in "${GRPC_ROWS[@]}"; do
		if [ -n "$reason" ]; then
			SKIP[grpc:$row]="$reason"
		elif [ "$row" = direct ]; then
			measure_load grpc:direct - check_grpc load_grpc parse_grpc
		else
			measure_load "grpc:$row" "start_grpc_$row" check_grpc load_grpc parse_grpc
		fi
		[ -z "${SKIP[grpc:$row]:-}" ] || log "grpc:$row: SKIPPED: ${SKIP[grpc:$row]}"
	done
	if [ -n "$pid" ]; then stop_pid "$pid"; forget_pid "$pid"; fi
}

# ---------------------------------------------------------------------------
# Plugin-cost table ("features"): the bench route of portico.yaml, measured
# like the HTTP/1.1 rows, once as is (plain) and once per plugin setup, each
# with its own generated config. Rows are keyed "feat:NAME".

FEATURE_ROWS=(plain jwt-hs256 jwt-rs256 key_auth rate_limit-local rate_limit-redis-exact rate_limit-redis-lease
	split-weighted split-sticky mirror-100 rewrite-regex)
# BENCH_FEATURES (comma-separated) measures only those rows; plain, the
# baseline, is always measured first.
if [ -n "${BENCH_FEATURES:-}" ]; then
	IFS=',' read -r -a FEATURE_ROWS <<<"plain,${BENCH_FEATURES}"
fi
# HS256: a fixed token for this secret, issuer, audience and scope, valid until 2100.
FEAT_HS256_SECRET="portico-bench-hs256-secret-0123456789abcdef"
FEAT_HS256_TOKEN="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJwb3J0aWNvLWJlbmNoIiwiYXVkIjoiYmVuY2giLCJzdWIiOiJiZW5jaC11c2VyIiwic2NvcGUiOiJyZWFkIiwiaWF0IjoxNzY0MDAwMDAwLCJleHAiOjQxMDI0NDQ4MDB9.T_8wdxF-EAn5uTTkDstOsJSdjyQkdM3ze4lY8h4Jfas"
FEAT_ISSUER="portico-bench"
FEAT_AUDIENCE="bench"
FEAT_SCOPE="read"
# key_auth: the key wrk sends, and how many other consumers the config holds.
FEAT_API_KEY="portico-bench-api-key-0123456789"
FEAT_EXTRA_CONSUMERS=10000
# rate_limit: a limit no run can reach, so every request is decided and
# allowed. 1,000,000 per second is the highest rate the plugin accepts (at
# most one request per microsecond).
FEAT_RATE=1000000
# Redis timeout: above the default 100 ms, so that a burst of other load on
# the machine (a stalled core) does not turn into timeouts, during which
# fail_closed would answer 503 without a decision.
FEAT_REDIS_TIMEOUT=1s
FEAT_DIR="$TMP/features"
FEAT_RS256_TOKEN=""
FEAT_RS256_ERR=""
REDIS_PID=""
REDIS_VERSION=""
declare -A FEAT_REDIS_US FEAT_REDIS_CMDS FEAT_DPS FEAT_NON2XX

# feature_route_plugins ROW: the route's plugins for ROW (YAML under the
# route, indented), empty for plain.
feature_route_plugins() {
	case "$1" in
	plain) ;;
	jwt-hs256)
		cat <<YAML
    plugins:
      - name: jwt
        config:
          algorithms: [HS256]
          secret: $FEAT_HS256_SECRET
          issuer: $FEAT_ISSUER
          audiences: [$FEAT_AUDIENCE]
          required_scopes: [$FEAT_SCOPE]
YAML
		;;
	jwt-rs256)
		cat <<YAML
    plugins:
      - name: jwt
        config:
          algorithms: [RS256]
          key_files: [$FEAT_DIR/pub.pem]
          issuer: $FEAT_ISSUER
          audiences: [$FEAT_AUDIENCE]
          required_scopes: [$FEAT_SCOPE]
YAML
		;;
	key_auth)
		cat <<YAML
    plugins:
      - name: key_auth
        config:
          header_names: [X-API-Key]
YAML
		;;
	rate_limit-local)
		cat <<YAML
    plugins:
      - name: rate_limit
        config:
          key: [ip]
          limits: [{rate: $FEAT_RATE, per: 1s}]
          backend: local
YAML
		;;
	split-weighted | split-sticky)
		# Replaces the route's "upstream: backend" (see feature_config).
		cat <<YAML
    split:
      variants: [{upstream: backend, weight: 95}, {upstream: canary, weight: 5}]
      rules: [{header: {name: X-Beta, value: "1"}, upstream: canary}]
YAML
		[ "$1" = split-weighted ] || echo "      sticky: {key: [ip]}"
		;;
	mirror-100)
		cat <<YAML
    mirror: {upstream: shadow, percent: 100}
YAML
		;;
	rewrite-regex)
		cat <<YAML
    rewrite: {regex: {pattern: "^/(.*)\$", replacement: "/v2/\$1"}}
YAML
		;;
	rate_limit-redis-exact | rate_limit-redis-lease)
		cat <<YAML
    plugins:
      - name: rate_limit
        config:
          key: [ip]
          limits: [{rate: $FEAT_RATE, per: 1s}]
          backend: redis
          redis: {addr: 127.0.0.1:$FEATURES_REDIS_PORT, timeout: $FEAT_REDIS_TIMEOUT}
          redis_mode: ${1#rate_limit-redis-}
          on_redis_error: fail_closed
YAML
		;;
	esac
}

# feature_config ROW PORT FILE: portico_config plus ROW's route plugins (after
# the route's "upstream: backend") and, for key_auth, the consumers.
feature_config() {
	local row="$1" port="$2" file="$3"
	portico_config "$port" off "$file.base" || return 1
	feature_route_plugins "$row" >"$file.plugins"
	if [ -s "$file.plugins" ]; then
		sed -e "/^    upstream: backend[[:space:]]*\$/r $file.plugins" "$file.base" >"$file"
		grep -q "^    \(plugins\|split\|mirror\|rewrite\):" "$file" || return 1
	else
		cp "$file.base" "$file"
	fi
	case "$row" in
	split-*)
		# The split names the upstream instead of the route; a second
		# upstream (the same backend, its own pool) is the canary.
		sed -i -e "/^    upstream: backend[[:space:]]*\$/d" "$file"
		sed -i -e "/^upstreams:\$/a\\  canary: {targets: [{url: \"http://127.0.0.1:$BACKEND_PORT\"}]}" "$file"
		;;
	mirror-*)
		sed -i -e "/^upstreams:\$/a\\  shadow: {targets: [{url: \"http://127.0.0.1:$BACKEND_PORT\"}]}" "$file"
		;;
	esac
	if [ "$row" = key_auth ]; then
		cat "$FEAT_DIR/consumers.yaml" >>"$file"
	fi
	rm -f "$file.base" "$file.plugins"
}

# feature_setup: the RS256 key pair and token, the key_auth consumers.
feature_setup() {
	local i
	mkdir -p "$FEAT_DIR"
	if [ -n "$MINTJWT_BUILD_ERR" ]; then
		FEAT_RS256_ERR="$MINTJWT_BUILD_ERR"
	elif ! command -v openssl >/dev/null 2>&1; then
		FEAT_RS256_ERR="openssl is not installed"
	elif ! openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$FEAT_DIR/priv.pem" >"$FEAT_DIR/openssl.log" 2>&1 ||
		! openssl pkey -in "$FEAT_DIR/priv.pem" -pubout -out "$FEAT_DIR/pub.pem" >>"$FEAT_DIR/openssl.log" 2>&1; then
		FEAT_RS256_ERR="openssl could not generate the RSA key pair: $(last_log "$FEAT_DIR/openssl.log")"
	elif ! FEAT_RS256_TOKEN="$("$TMP/mintjwt" -alg RS256 -key "$FEAT_DIR/priv.pem" -iss "$FEAT_ISSUER" \
		-aud "$FEAT_AUDIENCE" -scope "$FEAT_SCOPE" 2>"$FEAT_DIR/mintjwt.log")" || [ -z "$FEAT_RS256_TOKEN" ]; then
		FEAT_RS256_ERR="mintjwt failed: $(last_log "$FEAT_DIR/mintjwt.log")"
	fi
	{
		echo "consumers:"
		printf '  - name: bench\n    credentials:\n      key_auth:\n        - key: %s\n' "$FEAT_API_KEY"
		for ((i = 1; i <= FEAT_EXTRA_CONSUMERS; i++)); do
			printf '  - name: consumer-%05d\n    credentials:\n      key_auth:\n        - key: portico-bench-other-key-%05d\n' "$i" "$i"
		done
	} >"$FEAT_DIR/consumers.yaml"
}

# feature_headers ROW: sets FEAT_HDR, the request header ROW needs, for curl
# and wrk ("-H" "Name: value"), or () for none.
feature_headers() {
	FEAT_HDR=()
	case "$1" in
	jwt-hs256) FEAT_HDR=(-H "Authorization: Bearer $FEAT_HS256_TOKEN") ;;
	jwt-rs256) FEAT_HDR=(-H "Authorization: Bearer $FEAT_RS256_TOKEN") ;;
	key_auth) FEAT_HDR=(-H "X-API-Key: $FEAT_API_KEY") ;;
	esac
}

# redis_cmd ARGS...: one redis-cli command to the harness's Redis.
redis_cmd() {
	timeout 5 redis-cli -h 127.0.0.1 -p "$FEATURES_REDIS_PORT" "$@" 2>/dev/null
}

# redis_script_calls: how many EVAL/EVALSHA calls Redis has served (the
# commands the scripts run inside are not counted), or empty.
redis_script_calls() {
	command -v redis-cli >/dev/null 2>&1 || return 0
	redis_cmd info commandstats | tr -d '\r' | awk -F'[:=,]' '
		$1 ~ /^cmdstat_eval(sha)?(_ro)?$/ {n += $3}
		/^# Commandstats/ {ok = 1}
		END {if (ok) print n + 0}'
}

# start_redis: a redis-server without persistence on the load core; sets
# REDIS_PID, or REDIS_ERR when it could not start.
start_redis() {
	local i
	REDIS_ERR=""
	command -v redis-server >/dev/null 2>&1 || { REDIS_ERR="redis-server is not installed"; return 1; }
	if port_busy "$FEATURES_REDIS_PORT"; then
		REDIS_ERR="127.0.0.1:$FEATURES_REDIS_PORT (Redis) is already in use"
		return 1
	fi
	log "starting redis-server on 127.0.0.1:$FEATURES_REDIS_PORT (cpu $LOAD_CPU)"
	taskset -c "$LOAD_CPU" redis-server --port "$FEATURES_REDIS_PORT" --bind 127.0.0.1 \
		--save '' --appendonly no --dir "$FEAT_DIR" >"$FEAT_DIR/redis.log" 2>&1 &
	REDIS_PID=$!
	PIDS+=("$REDIS_PID")
	for i in $(seq 100); do
		kill -0 "$REDIS_PID" 2>/dev/null || break
		if port_busy "$FEATURES_REDIS_PORT"; then
			REDIS_VERSION="$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')"
			return 0
		fi
		sleep 0.1
	done
	REDIS_ERR="redis-server did not start: $(last_log "$FEAT_DIR/redis.log")"
	stop_pid "$REDIS_PID"; forget_pid "$REDIS_PID"
	REDIS_PID=""
	return 1
}

# check_feature URL: like check_body, with the row's FEAT_HDR.
check_feature() {
	local url="$1" code size
	rm -f "$TMP/body"
	code="$(curl -s "${FEAT_HDR[@]}" -o "$TMP/body" --max-time 3 -w '%{http_code}' "$url" || true)"
	size="$(stat -c %s "$TMP/body" 2>/dev/null || echo 0)"
	if [ "$code" = 200 ] && [ "$size" = "$BODY_BYTES" ]; then
		echo ok
	else
		echo "answered ${code:-nothing} with a ${size}-byte body, want 200 with $BODY_BYTES bytes"
	fi
}

# measure_feature ROW: one row of the plugin table, as measure() does for the
# HTTP/1.1 rows, with the row's config and request header; for the Redis rows
# also Redis's CPU time and commands over the measured run.
measure_feature() {
	local row="$1" key="feat:$1" port="${PORT[features]}" url cfg body status=0 requests extra
	local cpu0 cpu1 r0=0 r1=0 c0="" c1="" pb0 pt0 lb0 lt0 pb1 pt1 lb1 lt1 non2xx wrk_out
	url="http://127.0.0.1:$port/"
	cfg="$FEAT_DIR/portico-$row.yaml"
	PROXY_PID="" LOG_FILE="$FEAT_DIR/portico-$row.log"
	log "$key: 127.0.0.1:$port (cpu $PROXY_CPU)"
	[ -z "$PORTICO_BUILD_ERR" ] || { SKIP[$key]="$PORTICO_BUILD_ERR"; return; }
	if [ "$row" = jwt-rs256 ] && [ -n "$FEAT_RS256_ERR" ]; then SKIP[$key]="$FEAT_RS256_ERR"; return; fi
	if port_busy "$port"; then SKIP[$key]="127.0.0.1:$port is already in use"; return; fi
	if ! feature_config "$row" "$port" "$cfg"; then
		SKIP[$key]="could not derive the config from bench/portico.yaml (route \"upstream: backend\" not found)"
		return
	fi
	feature_headers "$row"
	if [ -n "$REDIS_PID" ]; then redis_cmd flushall >/dev/null || true; fi
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/portico" run --config "$cfg" >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
	PIDS+=("$PROXY_PID")
	if ! wait_port "$PROXY_PID" "$port"; then
		if kill -0 "$PROXY_PID" 2>/dev/null; then
			SKIP[$key]="not listening on 127.0.0.1:$port within 10 s: $(last_log "$LOG_FILE")"
		else
			SKIP[$key]="exited at start-up: $(last_log "$LOG_FILE")"
		fi
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return
	fi
	body="$(check_feature "$url")"
	if [ "$body" != ok ]; then
		SKIP[$key]="$body"
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return
	fi

	log "$key: warm-up ${WARMUP_S}s"
	run_wrk "$FEAT_DIR/$row-warmup.txt" $((WARMUP_S + 30)) -t"$THREADS" -c"$CONNS" -d"${WARMUP_S}s" "${FEAT_HDR[@]}" "$url" || true

	log "$key: measuring ${DUR_S}s"
	wrk_out="$FEAT_DIR/$row-wrk.txt"
	if [ -n "$REDIS_PID" ]; then c0="$(redis_script_calls)"; r0="$(cpu_ticks "$REDIS_PID")"; fi
	read -r pb0 pt0 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb0 lt0 <<<"$(core_ticks "$LOAD_CPU")"
	cpu0="$(cpu_ticks "$PROXY_PID")"
	run_wrk "$wrk_out" $((DUR_S + 30)) -t"$THREADS" -c"$CONNS" -d"${DUR_S}s" --latency "${FEAT_HDR[@]}" "$url" || status=$?
	cpu1="$(cpu_ticks "$PROXY_PID")"
	read -r pb1 pt1 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb1 lt1 <<<"$(core_ticks "$LOAD_CPU")"
	if [ -n "$REDIS_PID" ]; then r1="$(cpu_ticks "$REDIS_PID")"; c1="$(redis_script_calls)"; fi

	wrk_results "$key" "$wrk_out" "$status" "$PROXY_PID" || return
	non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $NF; exit}' "$wrk_out")"
	FEAT_NON2XX[$key]="${non2xx:-0}"

	extra="$(core_use "$key" $((pb1 - pb0)) $((pt1 - pt0)) $((lb1 - lb0)) $((lt1 - lt0)) $((cpu1 - cpu0)))"
	if [ -n "$REDIS_PID" ]; then
		FEAT_REDIS_US[$key]="$(awk -v d=$((r1 - r0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
		FEAT_DPS[$key]="$(awk -v p="${CPU_US[$key]}" -v r="${FEAT_REDIS_US[$key]}" 'BEGIN {if (p + r > 0) printf "%.0f", 1e6 / (p + r)}')"
		if [ -n "$c0" ] && [ -n "$c1" ]; then
			FEAT_REDIS_CMDS[$key]="$(awk -v d=$((c1 - c0)) -v n="$requests" 'BEGIN {printf "%.3f", d / n}')"
		fi
		extra+="redis-server $((r1 - r0)) ticks of CPU (core $LOAD_CPU)${c1:+, $((c1 - c0)) script calls}; "
	fi
	extra+="$(wrk_socket_errors "$wrk_out")"
	if [ -n "$non2xx" ]; then
		extra+="$(grep 'Non-2xx or 3xx' "$wrk_out" | sed 's/^[[:space:]]*//'); "
	fi
	NOTE[$key]="$requests requests in ${DUR_S}s; ${extra%; }"

	stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
	log "$key: ${RPS[$key]} req/s, p50 ${P50[$key]}, p99 ${P99[$key]}, ${CPU_US[$key]} µs CPU/req, ${RSS_MIB[$key]} MiB${FEAT_REDIS_US[$key]:+, Redis ${FEAT_REDIS_US[$key]} µs CPU/req}"
}

measure_features() {
	local row
	REDIS_ERR=""
	feature_setup
	for row in "${FEATURE_ROWS[@]}"; do
		case "$row" in
		rate_limit-redis-*)
			if [ -z "$REDIS_PID" ] && [ -z "$REDIS_ERR" ]; then start_redis || log "$REDIS_ERR"; fi
			if [ -n "$REDIS_ERR" ]; then
				SKIP[feat:$row]="$REDIS_ERR"
				log "feat:$row: SKIPPED: ${SKIP[feat:$row]}"
				continue
			fi
			;;
		esac
		measure_feature "$row"
		[ -z "${SKIP[feat:$row]:-}" ] || log "feat:$row: SKIPPED: ${SKIP[feat:$row]}"
	done
	if [ -n "$REDIS_PID" ]; then stop_pid "$REDIS_PID"; forget_pid "$REDIS_PID"; REDIS_PID=""; fi
}


# ---------------------------------------------------------------------------
# Caching and compression table ("cache"): a cache HIT served by Portico (memory
# store, and Redis store when the build has one) beside nginx proxy_cache
# serving the same hit, a MISS on a route whose responses are not storable, and
# gzip, zstd and brotli compression of a 16 KiB JSON response, each measured
# like the HTTP/1.1 rows. Rows are keyed "cache:NAME"; each runs on its own
# port (PORT[cache]) with its own generated config.

CACHE_ALL_ROWS=(portico-plain portico-hit nginx-plain nginx-hit portico-miss portico-redis-hit portico-redis-front-hit plain-16k gzip-16k zstd-16k br-16k hit-gzip-16k)
CACHE_ROWS=("${CACHE_ALL_ROWS[@]}")
# BENCH_CACHE (comma-separated) measures only those rows, in table order,
# with their baselines: portico-plain always, nginx-plain with nginx-hit,
# plain-16k with a compression row.
if [ -n "${BENCH_CACHE:-}" ]; then
	IFS=',' read -r -a CACHE_WANT <<<"portico-plain,${BENCH_CACHE}"
	for r in "${CACHE_WANT[@]}"; do
		case " ${CACHE_ALL_ROWS[*]} " in
		*" $r "*) ;;
		*) echo "run.sh: unknown BENCH_CACHE row '$r' (known: ${CACHE_ALL_ROWS[*]})" >&2; exit 2 ;;
		esac
		case "$r" in *-16k) CACHE_WANT+=(plain-16k) ;; nginx-hit) CACHE_WANT+=(nginx-plain) ;; esac
	done
	CACHE_ROWS=()
	for r in "${CACHE_ALL_ROWS[@]}"; do
		case " ${CACHE_WANT[*]} " in *" $r "*) CACHE_ROWS+=("$r") ;; esac
	done
fi
CACHE_DIR="$TMP/cache"
# Size of /json-16k's body (bench/backend).
CACHE_JSON_BYTES=16384
declare -A CACHE_REDIS_US CACHE_OUT_BYTES

# cache_path ROW: the backend path ROW requests.
cache_path() {
	case "$1" in
	portico-miss) echo /no-store ;;
	*-16k) echo /json-16k ;;
	*) echo /cacheable ;;
	esac
}

# cache_base ROW: the row ROW is compared with (its Δ columns), or nothing.
cache_base() {
	case "$1" in
	portico-plain | plain-16k | nginx-plain) ;;
	*-16k) echo plain-16k ;;
	nginx-hit) echo nginx-plain ;;
	*) echo portico-plain ;;
	esac
}

# cache_encoding ROW: the Accept-Encoding a compression row sends, or nothing.
cache_encoding() {
	case "$1" in
	gzip-16k | zstd-16k | br-16k) echo "${1%-16k}" ;;
	hit-gzip-16k) echo gzip ;;
	esac
}

# cache_route_plugins ROW: the route's plugins for a Portico row (YAML under
# the route, indented), empty for the plain rows.
cache_route_plugins() {
	case "$1" in
	portico-hit | portico-miss)
		cat <<YAML
    plugins:
      - name: cache
        config: {store: memory}
YAML
		;;
	portico-redis-hit | portico-redis-front-hit)
		cat <<YAML
    plugins:
      - name: cache
        config:
          store: redis
          redis: {addr: 127.0.0.1:$FEATURES_REDIS_PORT, timeout: $FEAT_REDIS_TIMEOUT}
YAML
		[ "$1" = portico-redis-hit ] || echo "          memory_front: {}"
		;;
	gzip-16k | zstd-16k | br-16k)
		cat <<YAML
    plugins:
      - name: compression
        config: {}
YAML
		;;
	hit-gzip-16k)
		# The backend sends no Cache-Control for /json-16k: the route
		# gives it a lifetime. The identity copy is stored; every hit is
		# compressed on its way out.
		cat <<YAML
    plugins:
      - name: compression
        config: {}
      - name: cache
        config: {store: memory, ttl: 1h, ttl_mode: override}
YAML
		;;
	esac
}

# cache_config ROW PORT FILE: portico_config plus ROW's route plugins (after
# the route's "upstream: backend").
cache_config() {
	local row="$1" port="$2" file="$3"
	portico_config "$port" off "$file.base" || return 1
	cache_route_plugins "$row" >"$file.plugins"
	if [ -s "$file.plugins" ]; then
		sed -e "/^    upstream: backend[[:space:]]*\$/r $file.plugins" "$file.base" >"$file"
		grep -q "^    plugins:" "$file" || return 1
	else
		cp "$file.base" "$file"
	fi
	rm -f "$file.base" "$file.plugins"
}

# start_cache_nginx ROW PORT: nginx on the same upstream, with proxy_cache for
# nginx-hit: a keys_zone in the row's temp dir, the default key, lifetimes
# from the backend's Cache-Control, and the cache status in X-Cache-Status.
start_cache_nginx() {
	local row="$1" port="$2" dir="$CACHE_DIR/$1" zone="" cache=""
	if [ "$row" = nginx-hit ]; then
		zone="    proxy_cache_path $dir/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=60m use_temp_path=off;"
		cache="            proxy_cache bench;
            add_header X-Cache-Status \$upstream_cache_status;"
	fi
	start_nginx_with "$dir" <<EOF
$zone
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
$cache
        }
    }
EOF
}

# start_cache_portico ROW PORT: Portico with ROW's config; the Redis row first
# checks (portico validate) that this build has a Redis cache store, then
# starts redis-server.
start_cache_portico() {
	local row="$1" port="$2" cfg="$CACHE_DIR/$1.yaml" err
	[ -z "$PORTICO_BUILD_ERR" ] || { SKIP_REASON="$PORTICO_BUILD_ERR"; return 1; }
	if ! cache_config "$row" "$port" "$cfg"; then
		SKIP_REASON="could not derive the config from bench/portico.yaml (route \"upstream: backend\" not found)"
		return 1
	fi
	if [ "${row#portico-redis-}" != "$row" ]; then
		if ! err="$(timeout 60 "$TMP/portico" validate --config "$cfg" 2>&1)"; then
			SKIP_REASON="the Redis cache store is not available in this build (portico validate: $(printf '%s' "$err" | grep -m 1 -i -e 'redis' -e 'store' | sed -e 's/^invalid: //' -e 's/ (known: .*//' | tr '|\t' '/ ' | cut -c1-200))"
			return 1
		fi
		if [ -z "$REDIS_PID" ]; then start_redis || { SKIP_REASON="$REDIS_ERR"; return 1; }; fi
		redis_cmd flushall >/dev/null || true
	fi
	LOG_FILE="$CACHE_DIR/$row.log"
	GOMAXPROCS=1 taskset -c "$PROXY_CPU" "$TMP/portico" run --config "$cfg" >"$LOG_FILE" 2>&1 &
	PROXY_PID=$!
}

# cache_get ROW URL: one request as wrk makes it for ROW; sets GOT_CODE,
# GOT_SIZE (body bytes as received, not decoded), GOT_STATUS (X-Cache or
# X-Cache-Status) and GOT_CE (Content-Encoding).
cache_get() {
	local enc hdr=()
	enc="$(cache_encoding "$1")"
	[ -z "$enc" ] || hdr=(-H "Accept-Encoding: $enc")
	rm -f "$CACHE_DIR/body" "$CACHE_DIR/head"
	GOT_CODE="$(curl -s "${hdr[@]}" -D "$CACHE_DIR/head" -o "$CACHE_DIR/body" --max-time 3 -w '%{http_code}' "$2" || true)"
	GOT_SIZE="$(stat -c %s "$CACHE_DIR/body" 2>/dev/null || echo 0)"
	GOT_STATUS="$(tr -d '\r' <"$CACHE_DIR/head" 2>/dev/null | awk -F': *' 'tolower($1) == "x-cache" || tolower($1) == "x-cache-status" {print $2; exit}')"
	GOT_CE="$(tr -d '\r' <"$CACHE_DIR/head" 2>/dev/null | awk -F': *' 'tolower($1) == "content-encoding" {print $2; exit}')"
}

# check_cache ROW URL: prints "ok" when ROW's proxy answers as the row
# assumes, else what was wrong. The hit rows are primed with one request
# and must then answer HIT; the miss row must still answer MISS the second
# time; a compression row must answer in its encoding with a smaller body.
check_cache() {
	local row="$1" url="$2" want_size="$BODY_BYTES" want_status="" enc
	enc="$(cache_encoding "$row")"
	case "$row" in
	*-hit | hit-*) want_status=HIT ;;
	portico-miss) want_status=MISS ;;
	plain-16k) want_size="$CACHE_JSON_BYTES" ;;
	esac
	cache_get "$row" "$url"
	[ -z "$want_status" ] || cache_get "$row" "$url"
	if [ "$GOT_CODE" != 200 ]; then
		echo "answered ${GOT_CODE:-nothing} with a ${GOT_SIZE}-byte body, want 200"
	elif [ -n "$enc" ]; then
		if [ "$GOT_CE" != "$enc" ] || [ "$GOT_SIZE" -ge "$CACHE_JSON_BYTES" ] || [ "$GOT_SIZE" -eq 0 ]; then
			echo "answered Content-Encoding '${GOT_CE:-none}' with a ${GOT_SIZE}-byte body, want '$enc' and fewer than $CACHE_JSON_BYTES bytes"
		elif [ -n "$want_status" ] && [ "$GOT_STATUS" != "$want_status" ]; then
			echo "the second request answered X-Cache '${GOT_STATUS:-none}', want $want_status"
		else
			echo ok
		fi
	elif [ "$GOT_SIZE" != "$want_size" ]; then
		echo "answered 200 with a ${GOT_SIZE}-byte body, want $want_size bytes"
	elif [ -n "$want_status" ] && [ "$GOT_STATUS" != "$want_status" ]; then
		echo "the second request answered X-Cache '${GOT_STATUS:-none}', want $want_status"
	else
		echo ok
	fi
}

# measure_cache ROW: one row of the cache table, as measure() does for the
# HTTP/1.1 rows, with the row's proxy, path and Accept-Encoding; for the hit
# rows a request after the run must still be a HIT, and for the Redis row
# Redis's CPU time is read over the measured run too.
measure_cache() {
	local row="$1" key="cache:$1" port="${PORT[cache]}" url res enc hdr=() status=0 requests extra wrk_out
	local cpu0 cpu1 r0=0 r1=0 pb0 pt0 lb0 lt0 pb1 pt1 lb1 lt1
	url="http://127.0.0.1:$port$(cache_path "$row")"
	enc="$(cache_encoding "$row")"
	[ -z "$enc" ] || hdr=(-H "Accept-Encoding: $enc")
	SKIP_REASON="" PROXY_PID="" CPU_PIDS=() RSS_PID="" LOG_FILE=""
	log "$key: $url (cpu $PROXY_CPU)"
	if port_busy "$port"; then SKIP[$key]="127.0.0.1:$port is already in use"; return; fi
	case "$row" in
	nginx-*) start_cache_nginx "$row" "$port" || { SKIP[$key]="$SKIP_REASON"; return; } ;;
	*) start_cache_portico "$row" "$port" || { SKIP[$key]="$SKIP_REASON"; return; } ;;
	esac
	PIDS+=("$PROXY_PID")
	if ! wait_port "$PROXY_PID" "$port"; then
		if kill -0 "$PROXY_PID" 2>/dev/null; then
			SKIP[$key]="not listening on 127.0.0.1:$port within 10 s: $(last_log "$LOG_FILE")"
		else
			SKIP[$key]="exited at start-up: $(last_log "$LOG_FILE")"
		fi
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return
	fi
	res="$(check_cache "$row" "$url")"
	if [ "$res" != ok ]; then
		SKIP[$key]="$res"
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return
	fi
	# The compressed size, for the notes (check_cache ran in a subshell).
	if [ -n "$enc" ]; then cache_get "$row" "$url"; CACHE_OUT_BYTES[$key]="$GOT_SIZE"; fi
	case "$row" in nginx-*) nginx_pids ;; *) CPU_PIDS=("$PROXY_PID"); RSS_PID="$PROXY_PID" ;; esac

	log "$key: warm-up ${WARMUP_S}s"
	run_wrk "$CACHE_DIR/$row-warmup.txt" $((WARMUP_S + 30)) -t"$THREADS" -c"$CONNS" -d"${WARMUP_S}s" "${hdr[@]}" "$url" || true

	log "$key: measuring ${DUR_S}s"
	wrk_out="$CACHE_DIR/$row-wrk.txt"
	if [ "${row#portico-redis-}" != "$row" ]; then r0="$(cpu_ticks "$REDIS_PID")"; fi
	read -r pb0 pt0 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb0 lt0 <<<"$(core_ticks "$LOAD_CPU")"
	cpu0="$(cpu_ticks "${CPU_PIDS[@]}")"
	run_wrk "$wrk_out" $((DUR_S + 30)) -t"$THREADS" -c"$CONNS" -d"${DUR_S}s" --latency "${hdr[@]}" "$url" || status=$?
	cpu1="$(cpu_ticks "${CPU_PIDS[@]}")"
	read -r pb1 pt1 <<<"$(core_ticks "$PROXY_CPU")"
	read -r lb1 lt1 <<<"$(core_ticks "$LOAD_CPU")"
	if [ "${row#portico-redis-}" != "$row" ]; then r1="$(cpu_ticks "$REDIS_PID")"; fi

	wrk_results "$key" "$wrk_out" "$status" "$RSS_PID" || return

	extra="$(core_use "$key" $((pb1 - pb0)) $((pt1 - pt0)) $((lb1 - lb0)) $((lt1 - lt0)) $((cpu1 - cpu0)))"
	if [ "${row#portico-redis-}" != "$row" ]; then
		CACHE_REDIS_US[$key]="$(awk -v d=$((r1 - r0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
		extra+="redis-server $((r1 - r0)) ticks of CPU (core $LOAD_CPU); "
	fi
	case "$row" in
	*-hit | hit-*)
		# Still a hit after the run: the rows measured what they claim.
		cache_get "$row" "$url"
		[ "$GOT_STATUS" = HIT ] || extra+="after the run a request answered X-Cache '${GOT_STATUS:-none}', not HIT: the figures are not valid; "
		;;
	esac
	extra+="$(wrk_socket_errors "$wrk_out")"
	if grep -q 'Non-2xx or 3xx' "$wrk_out"; then
		extra+="$(grep 'Non-2xx or 3xx' "$wrk_out" | sed 's/^[[:space:]]*//'): the figures are not valid; "
	fi
	NOTE[$key]="$requests requests in ${DUR_S}s; ${extra%; }"

	stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
	log "$key: ${RPS[$key]} req/s, p50 ${P50[$key]}, p99 ${P99[$key]}, ${CPU_US[$key]} µs CPU/req, ${RSS_MIB[$key]} MiB${CACHE_REDIS_US[$key]:+, Redis ${CACHE_REDIS_US[$key]} µs CPU/req}"
}

measure_cache_table() {
	local row
	mkdir -p "$CACHE_DIR" "$FEAT_DIR"
	for row in "${CACHE_ROWS[@]}"; do
		measure_cache "$row"
		[ -z "${SKIP[cache:$row]:-}" ] || log "cache:$row: SKIPPED: ${SKIP[cache:$row]}"
	done
	if [ -n "$REDIS_PID" ]; then stop_pid "$REDIS_PID"; forget_pid "$REDIS_PID"; REDIS_PID=""; fi
}

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
START_TS="$(date +%s)"
for p in "${SELECTED[@]}"; do
	case "$p" in
	h2) measure_h2 ;;
	grpc) measure_grpc ;;
	features) measure_features ;;
	cache) measure_cache_table ;;
	*)
		measure "$p"
		[ -z "${SKIP[$p]:-}" ] || log "$p: SKIPPED: ${SKIP[$p]}"
		;;
	esac
done

# ---------------------------------------------------------------------------
# Report

# ratio NAME BASE: CPU per request of NAME relative to BASE, e.g. "3.10×".
ratio() {
	local a="${CPU_US[$1]:-}" b="${CPU_US[$2]:-}"
	if [ -z "$a" ] || [ -z "$b" ]; then
		echo "n/a"
	else
		awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "n/a" }'
	fi
}

table() {
	local p
	echo "| proxy | req/s | p50 | p99 | CPU µs/req | peak RSS MiB | CPU vs nginx | CPU vs httputil |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	for p in "${HTTP1_SELECTED[@]}"; do
		if [ -n "${SKIP[$p]:-}" ]; then
			echo "| $p | SKIPPED: $(printf '%s' "${SKIP[$p]}" | tr '|\n' '/ ') | | | | | | |"
		else
			echo "| $p | ${RPS[$p]} | ${P50[$p]} | ${P99[$p]} | ${CPU_US[$p]} | ${RSS_MIB[$p]} | $(ratio "$p" nginx) | $(ratio "$p" httputil) |"
		fi
	done
}

# skip_cell KEY: the SKIPPED text of a row, safe for a table cell.
skip_cell() {
	printf 'SKIPPED: %s' "$(printf '%s' "${SKIP[$1]}" | tr '|\n' '/ ')"
}

h2_table() {
	local r k
	echo "| proxy | req/s | mean | sd | min | max | CPU µs/req | peak RSS MiB | CPU vs nginx | CPU vs httputil |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for r in "${H2_ROWS[@]}"; do
		k="h2:$r"
		if [ -n "${SKIP[$k]:-}" ]; then
			echo "| $r | $(skip_cell "$k") | | | | | | | | |"
		else
			echo "| $r | ${RPS[$k]} | ${MEAN[$k]} | ${SD[$k]} | ${LMIN[$k]} | ${LMAX[$k]} | ${CPU_US[$k]} | ${RSS_MIB[$k]} | $(ratio "$k" h2:nginx) | $(ratio "$k" h2:httputil) |"
		fi
	done
}

grpc_table() {
	local r k
	echo "| proxy | req/s | p50 | p99 | CPU µs/req | peak RSS MiB | CPU vs nginx |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	for r in "${GRPC_ROWS[@]}"; do
		k="grpc:$r"
		if [ -n "${SKIP[$k]:-}" ]; then
			echo "| $r | $(skip_cell "$k") | | | | | |"
		elif [ "$r" = direct ]; then
			echo "| direct (no proxy) | ${RPS[$k]} | ${P50[$k]} | ${P99[$k]} | — | — | — |"
		else
			echo "| $r | ${RPS[$k]} | ${P50[$k]} | ${P99[$k]} | ${CPU_US[$k]} | ${RSS_MIB[$k]} | $(ratio "$k" grpc:nginx) |"
		fi
	done
}

# runs PREFIX ROW...: the per-run lines of the rows that were measured.
runs() {
	local prefix="$1" r
	shift
	echo "Runs:"
	for r in "$@"; do
		if [ -z "${SKIP[$prefix$r]:-}" ] && [ -n "${NOTE[$prefix$r]:-}" ]; then echo "- $r: ${NOTE[$prefix$r]}"; fi
	done
}

all_tables() {
	if [ ${#HTTP1_SELECTED[@]} -gt 0 ]; then
		table
		echo
	fi
	if selected h2; then
		echo "HTTP/2 (h2c):"
		echo
		h2_table
		echo
	fi
	if selected grpc; then
		echo "gRPC unary:"
		echo
		grpc_table
		echo
	fi
	if selected features; then
		echo "Plugins: cost over the plain route:"
		echo
		features_table
		echo
	fi
	if selected cache; then
		echo "Caching and compression:"
		echo
		cache_table
		echo
	fi
}

# to_ms LATENCY: a wrk latency ("850.00us", "1.23ms", "1.02s") in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) {sub(/us$/, "", v); printf "%.4f", v / 1000}
		else if (v ~ /ms$/) {sub(/ms$/, "", v); printf "%.4f", v}
		else if (v ~ /m$/) {sub(/m$/, "", v); printf "%.4f", v * 60000}
		else if (v ~ /s$/) {sub(/s$/, "", v); printf "%.4f", v * 1000}
	}'
}

# feature_note ROW: the notes cell of a measured row.
feature_note() {
	local k="feat:$1" n=""
	case "$1" in
	plain) n="baseline: catch-all route, global request_id" ;;
	jwt-hs256) n="HS256, iss + aud + scope checked" ;;
	jwt-rs256) n="RS256 (2048-bit key from key_files), iss + aud + scope checked" ;;
	key_auth) n="key in X-API-Key; $((FEAT_EXTRA_CONSUMERS + 1)) consumers configured" ;;
	rate_limit-local) n="key [ip], one limit, local GCRA" ;;
	split-weighted) n="95/5 split over two upstreams (one backend), a header rule that does not match" ;;
	split-sticky) n="as split-weighted, sticky by client IP" ;;
	mirror-100) n="every request also copied to a second upstream (the same backend); p99 is the client's" ;;
	rewrite-regex) n="path regex rewrite with one capture group" ;;
	rate_limit-redis-*)
		n="Redis ${FEAT_REDIS_US[$k]:-?} µs CPU/req${FEAT_REDIS_CMDS[$k]:+, ${FEAT_REDIS_CMDS[$k]} script calls/req}; ${FEAT_DPS[$k]:-?} decisions/s per core"
		;;
	esac
	if [ "${FEAT_NON2XX[$k]:-0}" != 0 ]; then
		n+="; ${FEAT_NON2XX[$k]} non-2xx responses: not every request was decided, the figures are not valid"
	fi
	printf '%s' "$n"
}

features_table() {
	local r k dcpu dp99 base_p99=""
	echo "| config | req/s | p50 | p99 | CPU µs/req | Δ CPU µs vs plain | Δ p99 vs plain | peak RSS MiB | notes |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
	if [ -z "${SKIP[feat:plain]:-}" ] && [ -n "${P99[feat:plain]:-}" ]; then base_p99="$(to_ms "${P99[feat:plain]}")"; fi
	for r in "${FEATURE_ROWS[@]}"; do
		k="feat:$r"
		if [ -n "${SKIP[$k]:-}" ]; then
			echo "| $r | $(skip_cell "$k") | | | | | | | |"
			continue
		fi
		[ -n "${CPU_US[$k]:-}" ] || continue
		if [ "$r" = plain ]; then
			dcpu="—" dp99="—"
		elif [ -n "${CPU_US[feat:plain]:-}" ] && [ -n "$base_p99" ]; then
			dcpu="$(awk -v a="${CPU_US[$k]}" -v b="${CPU_US[feat:plain]}" 'BEGIN {printf "%+.1f", a - b}')"
			dp99="$(awk -v a="$(to_ms "${P99[$k]}")" -v b="$base_p99" 'BEGIN {printf "%+.2fms", a - b}')"
		else
			dcpu="n/a" dp99="n/a"
		fi
		echo "| $r | ${RPS[$k]} | ${P50[$k]} | ${P99[$k]} | ${CPU_US[$k]} | $dcpu | $dp99 | ${RSS_MIB[$k]} | $(feature_note "$r") |"
	done
}

# features_section [STANDALONE]: the "## Plugins" section of the report. With
# STANDALONE (a features-only run added to an existing report) it also gives
# its own date, load average and versions.
features_section() {
	echo "## Plugins: cost over the plain route"
	echo
	if [ -n "${1:-}" ]; then
		echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $LOADAVG_START;"
		echo "go $(go version | awk '{print $3}'), wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}')$(portico_rev | sed 's/^/, portico /')${REDIS_VERSION:+, redis-server $REDIS_VERSION}."
		echo
	fi
	echo "Load: \`$WRK_CMD\` after a ${WARMUP_S} s warm-up run with the same flags,"
	echo "plus the row's credential header (\`-H\`); the same cores, backend and CPU accounting as the HTTP/1.1 table."
	echo "Each row is Portico with the bench config (\`portico.yaml\`: catch-all route, global request_id) and one"
	echo "plugin added to the route: jwt (\`Authorization: Bearer\`, a valid token: HS256 with a fixed token, RS256 with a"
	echo "2048-bit key pair generated for the run and a token signed for it), key_auth (\`X-API-Key\`, one matching consumer"
	echo "among $((FEAT_EXTRA_CONSUMERS + 1))), rate_limit with \`key: [ip]\` and \`limits: [{rate: $FEAT_RATE, per: 1s}]\` (never reached: every"
	echo "request is decided and allowed) on the local backend or on Redis (\`redis_mode: exact\`, one script call per"
	echo "request; \`lease\`, tokens leased in batches; \`timeout: $FEAT_REDIS_TIMEOUT\`; \`on_redis_error: fail_closed\`, so a failed Redis call would"
	echo "be a 503, not a skipped decision). redis-server (no persistence) runs on core $LOAD_CPU with wrk and the backend."
	echo "Δ columns: the row minus the plain row of this table. Redis rows: Redis's utime+stime over the measured run"
	echo "per request, Redis script calls (EVALSHA) per request, and decisions/s per core = 1e6 / (Portico + Redis CPU µs/req)."
	echo
	features_table
	echo
	runs feat: "${FEATURE_ROWS[@]}"
	echo
}

# splice_section FILE SECTION HEADING: FILE with its section under HEADING
# (if any) replaced by SECTION, placed before the "Versions:" list (or at the
# end).
splice_section() {
	local file="$1" section="$2"
	awk -v sec="$section" -v head="$3" '
		function put(  l) { while ((getline l < sec) > 0) print l; close(sec); done = 1 }
		index($0, head) == 1 { skip = 1; next }
		skip && (/^## / || /^Versions:/) { skip = 0 }
		skip { next }
		/^Versions:/ && !done { put() }
		{ print }
		END { if (!done) { print ""; put() } }
	' "$file" >"$file.tmp" && mv "$file.tmp" "$file"
}

# cache_note ROW: the notes cell of a measured cache row.
cache_note() {
	local k="cache:$1" n="" out
	case "$1" in
	portico-plain) n="baseline: the bench route, no cache; /cacheable (100 bytes, max-age=3600) from the backend every time" ;;
	portico-hit) n="\`cache\`, memory store; every request a HIT" ;;
	nginx-plain) n="nginx's baseline: no cache, the nginx config of the HTTP/1.1 table" ;;
	nginx-hit) n="nginx \`proxy_cache\`; every request a HIT" ;;
	portico-miss) n="\`cache\`, memory store; /no-store: every request a MISS, forwarded" ;;
	portico-redis-hit) n="\`cache\`, Redis store; every request a HIT from Redis; Redis ${CACHE_REDIS_US[$k]:-?} µs CPU/req" ;;
	portico-redis-front-hit) n="\`cache\`, Redis store with \`memory_front: {}\`; every request a HIT, from the front; Redis ${CACHE_REDIS_US[$k]:-?} µs CPU/req" ;;
	plain-16k) n="baseline: the bench route, /json-16k (16,384-byte JSON) sent uncompressed" ;;
	gzip-16k | zstd-16k | br-16k)
		out="${CACHE_OUT_BYTES[$k]:-}"
		n="\`compression\` (default levels); \`Accept-Encoding: ${1%-16k}\`"
		if [ -n "$out" ]; then
			n+="; $out of $CACHE_JSON_BYTES bytes ($(awk -v a="$out" -v b="$CACHE_JSON_BYTES" 'BEGIN {printf "%.1f", 100 * a / b}') %)"
		fi
		;;
	hit-gzip-16k) n="\`cache\` (memory, \`ttl: 1h\` override) and \`compression\`; \`Accept-Encoding: gzip\`; every request a HIT, the stored identity copy gzipped on its way out" ;;
	esac
	case "${NOTE[$k]:-}" in *"not valid"*) n+="; see the run line: the figures are not valid" ;; esac
	printf '%s' "$n"
}

cache_table() {
	local r k b dcpu dp99 vsb vsn
	echo "| config | req/s | p50 | p99 | CPU µs/req | baseline | Δ CPU µs vs baseline | CPU vs baseline | CPU vs nginx-hit | Δ p99 vs baseline | peak RSS MiB | notes |"
	echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"
	for r in "${CACHE_ROWS[@]}"; do
		k="cache:$r"
		if [ -n "${SKIP[$k]:-}" ]; then
			echo "| $r | $(skip_cell "$k") | | | | | | | | | | |"
			continue
		fi
		[ -n "${CPU_US[$k]:-}" ] || continue
		b="$(cache_base "$r")"
		dcpu="—" dp99="—" vsb="—"
		if [ -n "$b" ] && [ -n "${CPU_US[cache:$b]:-}" ]; then
			dcpu="$(awk -v a="${CPU_US[$k]}" -v b="${CPU_US[cache:$b]}" 'BEGIN {printf "%+.1f", a - b}')"
			dp99="$(awk -v a="$(to_ms "${P99[$k]}")" -v b="$(to_ms "${P99[cache:$b]}")" 'BEGIN {printf "%+.2fms", a - b}')"
			vsb="$(ratio "$k" "cache:$b")"
		elif [ -n "$b" ]; then
			dcpu="n/a" dp99="n/a" vsb="n/a"
		fi
		vsn="—"
		case "$r" in *-hit | portico-plain | nginx-plain) vsn="$(ratio "$k" cache:nginx-hit)" ;; esac
		echo "| $r | ${RPS[$k]} | ${P50[$k]} | ${P99[$k]} | ${CPU_US[$k]} | ${b:-—} | $dcpu | $vsb | $vsn | $dp99 | ${RSS_MIB[$k]} | $(cache_note "$r") |"
	done
}

# cache_section [STANDALONE]: the "## Caching and compression" section of the
# report; with STANDALONE also its own date, load average and versions.
cache_section() {
	echo "## Caching and compression"
	echo
	if [ -n "${1:-}" ]; then
		echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $LOADAVG_START;"
		echo "go $(go version | awk '{print $3}'), wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}')${NGINX:+, nginx $("$NGINX" -v 2>&1 | sed 's/^nginx version: nginx\///')}$(portico_rev | sed 's/^/, portico /')${REDIS_VERSION:+, redis-server $REDIS_VERSION}."
		echo
	fi
	echo "Load: \`taskset -c $LOAD_CPU wrk -t$THREADS -c$CONNS -d${DUR_S}s --latency http://127.0.0.1:PORT/PATH\` after a ${WARMUP_S} s warm-up"
	echo "run with the same flags (compression rows: plus \`-H 'Accept-Encoding: ENC'\`); the same cores, backend and CPU"
	echo "accounting as the HTTP/1.1 table (nginx: master + worker). Paths of \`bench/backend\`: \`/cacheable\` (the 100-byte"
	echo "body with \`Cache-Control: public, max-age=3600\`), \`/no-store\` (the same with \`no-store\`), \`/json-16k\` (a 16,384-byte"
	echo "JSON list of product records). Portico rows: the bench config (\`portico.yaml\`) with the \`cache\` plugin"
	echo "(\`{store: memory}\`, or \`store: redis\` with redis-server on core $LOAD_CPU and \`timeout: $FEAT_REDIS_TIMEOUT\`, without or with"
	echo "\`memory_front: {}\`; Redis emptied before each of these rows) or the \`compression\` plugin (\`{}\`: default"
	echo "levels gzip 5, zstd 3, br 4) on the route. nginx-hit: one worker, \`proxy_cache\` with a \`keys_zone\` in the temp dir"
	echo "(lifetime from the backend's max-age) and \`add_header X-Cache-Status \$upstream_cache_status\`. Before each hit row"
	echo "a first request fills the cache and a second must answer \`X-Cache: HIT\` (nginx: \`X-Cache-Status: HIT\`), and a"
	echo "request after the run must still be a HIT; the miss row's second request must answer \`X-Cache: MISS\`."
	echo "Baselines: portico-plain for Portico's cache rows, nginx-plain for nginx-hit, plain-16k for the compression rows"
	echo "(Δ = row minus baseline; CPU vs = CPU µs/req divided by the other row's)."
	echo
	cache_table
	echo
	runs cache: "${CACHE_ROWS[@]}"
	echo
}

CPU_MODEL="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
MEM_GIB="$(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
WRK_CMD="taskset -c $LOAD_CPU wrk -t$THREADS -c$CONNS -d${DUR_S}s --latency http://127.0.0.1:PORT/"
H2LOAD_CMD="taskset -c $LOAD_CPU h2load -t $THREADS -c $H2_CONNS -m $H2_STREAMS -D $DUR_S --warm-up-time $WARMUP_S http://127.0.0.1:PORT/"
GRPCLOAD_CMD="GOMAXPROCS=1 taskset -c $LOAD_CPU grpcload -addr 127.0.0.1:PORT -workers $GRPC_WORKERS -conns $GRPC_CONNS -warmup ${WARMUP_S}s -duration ${DUR_S}s"
versions() {
	echo "- go: $(go version | awk '{print $3}')"
	if [ -n "$NGINX" ]; then echo "- nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"; fi
	if command -v caddy >/dev/null 2>&1; then echo "- caddy: $(caddy version 2>/dev/null | awk '{print $1}')"; fi
	echo "- wrk: $(wrk -v 2>&1 | head -n 1 | awk '{print $2}')"
	if selected h2 && command -v h2load >/dev/null 2>&1; then
		echo "- h2load: $(h2load --version 2>&1 | head -n 1 | awk '{print $2}')"
	fi
	if selected grpc; then
		echo "- grpc-go: $(cd "$ROOT" && go list -m -f '{{.Version}}' google.golang.org/grpc 2>/dev/null || echo unknown)"
	fi
	if { selected features || selected cache; } && [ -n "$REDIS_VERSION" ]; then echo "- redis-server: $REDIS_VERSION"; fi
	local rev
	if rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"; then
		if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)" ]; then
			rev+=" with local changes"
		fi
		echo "- portico: $rev"
	fi
}

# portico_rev: the short commit of the tree measured ("abc1234 with local
# changes"), or nothing outside git.
portico_rev() {
	local rev
	if rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"; then
		if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)" ]; then
			rev+=" with local changes"
		fi
		echo "$rev"
	fi
}

REPORT="$TMP/report.md"
{
	echo "# Portico load test — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $NCPU CPUs ($CPU_MODEL), ${MEM_GIB} GiB RAM, Linux $(uname -r); load average at start: $LOADAVG_START."
	echo
	if [ ${#HTTP1_SELECTED[@]} -gt 0 ]; then
		echo "Load: \`$WRK_CMD\` after a ${WARMUP_S} s warm-up run with the same flags."
		echo "The proxy under test runs alone on core $PROXY_CPU (\`taskset -c $PROXY_CPU\`, one worker / GOMAXPROCS=1);"
		echo "wrk and the backend (Go net/http, $BODY_BYTES-byte responses, GOMAXPROCS=1) share core $LOAD_CPU."
		echo "CPU µs/req is the proxy's utime+stime (from /proc/PID/stat, nginx master + worker) over the measured run"
		echo "divided by the requests wrk completed; peak RSS is VmHWM (nginx: the worker)."
		echo
		table
		echo
		echo "Runs:"
		for p in "${HTTP1_SELECTED[@]}"; do
			if [ -z "${SKIP[$p]:-}" ]; then echo "- $p: ${NOTE[$p]}"; fi
		done
		echo
	fi
	if selected h2; then
		echo "## HTTP/2 (h2c)"
		echo
		echo "Load: \`$H2LOAD_CMD\` (HTTP/2 with prior knowledge, no TLS;"
		echo "$H2_CONNS connections × $H2_STREAMS concurrent streams), measured after its own ${WARMUP_S} s warm-up."
		echo "Each proxy accepts h2c on a plain listener and forwards over HTTP/1.1 with keep-alive to the same"
		echo "$BODY_BYTES-byte backend. The proxy runs alone on core $PROXY_CPU (one worker / GOMAXPROCS=1); h2load and"
		echo "the backend share core $LOAD_CPU. httputil here is \`bench/httputilproxy -h2c\`."
		echo "mean, sd, min and max are h2load's \"time for request\". CPU µs/req is the proxy's utime+stime (nginx"
		echo "master + worker) over the measured period divided by the requests h2load reports as succeeded;"
		echo "peak RSS is VmHWM (nginx: the worker)."
		echo
		h2_table
		echo
		runs h2: "${H2_ROWS[@]}"
		echo
	fi
	if selected grpc; then
		echo "## gRPC unary"
		echo
		echo "Load: \`$GRPCLOAD_CMD\`: $GRPC_WORKERS closed-loop workers over $GRPC_CONNS"
		echo "HTTP/2 connections calling grpc.testing.TestService/UnaryCall with a $BODY_BYTES-byte payload, measured after a"
		echo "${WARMUP_S} s warm-up. The backend (\`bench/grpcbackend\`, grpc-go, echoes the payload, GOMAXPROCS=1) shares"
		echo "core $LOAD_CPU with the client; the proxy runs alone on core $PROXY_CPU. direct: the client calls the backend itself."
		echo "portico: plain h2c listener, upstream \`protocol: h2c\`, route \`path_prefix: /grpc.testing.TestService/\`."
		echo "nginx: \`grpc_pass\` on an \`http2\` listener, upstream keepalive 64. p50/p99 are grpcload's"
		echo "per-call latencies. CPU µs/req is the proxy's utime+stime (nginx master + worker) over the measured"
		echo "period divided by the successful calls; peak RSS is VmHWM (nginx: the worker)."
		echo
		grpc_table
		echo
		runs grpc: "${GRPC_ROWS[@]}"
		echo
	fi
	if selected features; then
		features_section
	fi
	if selected cache; then
		cache_section
	fi
	echo "Versions:"
	versions
} >"$REPORT"

mkdir -p "$RESULTS_DIR"
STANDALONE=1
for p in "${SELECTED[@]}"; do
	case "$p" in features | cache) ;; *) STANDALONE=0 ;; esac
done
if [ "$STANDALONE" = 1 ]; then
	# Only the plugin and/or the cache table was measured: add their
	# sections to the reports already there (replacing older ones) rather
	# than replacing them.
	if selected features; then features_section standalone >"$TMP/features-section.md"; fi
	if selected cache; then cache_section standalone >"$TMP/cache-section.md"; fi
	for f in "$RESULTS_DIR/latest.md" "$RESULTS_DIR/$(date -u +%Y-%m-%d).md"; do
		if [ -s "$f" ] && grep -q '^Versions:' "$f"; then
			if selected features; then splice_section "$f" "$TMP/features-section.md" "## Plugins: cost over the plain route"; fi
			if selected cache; then splice_section "$f" "$TMP/cache-section.md" "## Caching and compression"; fi
		else
			cp "$REPORT" "$f"
		fi
	done
else
	cp "$REPORT" "$RESULTS_DIR/latest.md"
	cp "$REPORT" "$RESULTS_DIR/$(date -u +%Y-%m-%d).md"
fi

echo
all_tables
log "took $(($(date +%s) - START_TS)) s of load; report: $RESULTS_DIR/latest.md"
