#!/usr/bin/env bash
# Portico load-test harness: measures nginx, Caddy, the standard library's
# httputil.ReverseProxy and Portico (without and with access log) in front of
# the same 100-byte backend, one at a time, and writes a markdown table to
# bench/results/latest.md and bench/results/YYYY-MM-DD.md.
#
# Usage: bench/run.sh [--duration 10s] [--only nginx,caddy,httputil,portico,portico-log]
#
# See bench/README.md for the methodology. All traffic stays on 127.0.0.1; every
# load run is bounded in time and every process started here is stopped on exit.
set -euo pipefail

ALL_PROXIES="nginx,caddy,httputil,portico,portico-log"

usage() {
	cat <<EOF
Usage: bench/run.sh [--duration 10s] [--only LIST]

  --duration D   length of each measured wrk run (seconds: "10s", "10" or "1m"); default \$DURATION or 10s
  --only LIST    comma-separated proxies to measure, from: $ALL_PROXIES
                 (default: all)

Environment:
  BENCH_PORT_BASE  first of six consecutive 127.0.0.1 ports to use (default 28080)
  BENCH_KEEP_TMP   set to 1 to keep the temp dir (configs, logs, wrk output)
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
)

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
	command -v caddy >/dev/null 2>&1 || need+=(caddy)
	command -v curl >/dev/null 2>&1 || need+=(curl)
	command -v taskset >/dev/null 2>&1 || need+=(util-linux)
	command -v pgrep >/dev/null 2>&1 || need+=(procps)
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
	case "$p" in portico | portico-log) want_portico=1 ;; esac
done
if [ "${want_portico:-0}" = 1 ]; then
	if ! (cd "$ROOT" && timeout 600 go build -o "$TMP/portico" ./cmd/portico) >"$TMP/portico-build.log" 2>&1; then
		PORTICO_BUILD_ERR="go build ./cmd/portico failed: $(grep -m 1 -v -e '^#' -e '^[[:space:]]*$' "$TMP/portico-build.log" | tr '|\t' '/ ' | cut -c1-160 || true)"
		log "$PORTICO_BUILD_ERR"
	fi
fi

# ---------------------------------------------------------------------------
# Backend

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

# ---------------------------------------------------------------------------
# Proxies. Each start_* function starts one proxy on core PROXY_CPU and sets
# PROXY_PID (the process to wait on and stop), CPU_PIDS (processes whose CPU
# time is summed, found after start-up), RSS_PID and LOG_FILE; it returns
# non-zero with SKIP_REASON set when the proxy cannot be started.

start_nginx() {
	local port="$1" dir="$TMP/nginx"
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
}
EOF
	} >"$dir/nginx.conf"
	LOG_FILE="$dir/logs/error.log"
	taskset -c "$PROXY_CPU" "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log" -g 'daemon off;' >"$dir/stdout.log" 2>&1 &
	PROXY_PID=$!
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

	if ! kill -0 "$PROXY_PID" 2>/dev/null; then
		SKIP[$name]="exited during the load run: $(last_log "$LOG_FILE")"
		wait "$PROXY_PID" 2>/dev/null || true
		forget_pid "$PROXY_PID"
		return
	fi
	requests="$(awk '/ requests in / {print $1; exit}' "$wrk_out")"
	if [ "$status" -ne 0 ] || [ -z "$requests" ] || [ "$requests" -eq 0 ]; then
		SKIP[$name]="wrk failed (exit $status): $(last_log "$wrk_out")"
		stop_pid "$PROXY_PID"; forget_pid "$PROXY_PID"
		return
	fi
	RPS[$name]="$(awk '/^Requests\/sec:/ {printf "%.0f", $2; exit}' "$wrk_out")"
	P50[$name]="$(latency_of "$wrk_out" 50)"
	P99[$name]="$(latency_of "$wrk_out" 99)"
	CPU_US[$name]="$(awk -v d=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')"
	RSS_MIB[$name]="$(awk -v k="$(hwm_kib "$RSS_PID")" 'BEGIN {printf "%.1f", k / 1024}')"

	# Core use over the measured run: the proxy's share of its core shows
	# whether anything else ran there; a load core near 100% means wrk and
	# the backend, not the proxy, bounded req/s.
	extra="$(awk -v pb=$((pb1 - pb0)) -v pt=$((pt1 - pt0)) -v lb=$((lb1 - lb0)) -v lt=$((lt1 - lt0)) -v own=$((cpu1 - cpu0)) \
		-v pc="$PROXY_CPU" -v lc="$LOAD_CPU" 'BEGIN {
			if (pt < 1) pt = 1; if (lt < 1) lt = 1
			other = 100 * (pb - own) / pt; if (other < 0) other = 0
			printf "core %s %.0f%% busy (proxy %.0f%%, other %.0f%%), core %s %.0f%% busy; ", pc, 100 * pb / pt, 100 * own / pt, other, lc, 100 * lb / lt
		}')"
	if [[ "$extra" =~ other\ ([0-9]+)% ]] && [ "${BASH_REMATCH[1]}" -gt 10 ]; then
		log "$name: warning: other processes used ${BASH_REMATCH[1]}% of core $PROXY_CPU during the run; latency and req/s are disturbed"
	fi
	if grep -q 'Socket errors' "$wrk_out"; then
		extra+="wrk $(grep 'Socket errors' "$wrk_out" | sed 's/^[[:space:]]*//'); "
	fi
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

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
START_TS="$(date +%s)"
for p in "${SELECTED[@]}"; do
	measure "$p"
	[ -z "${SKIP[$p]:-}" ] || log "$p: SKIPPED: ${SKIP[$p]}"
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
	for p in "${SELECTED[@]}"; do
		if [ -n "${SKIP[$p]:-}" ]; then
			echo "| $p | SKIPPED: $(printf '%s' "${SKIP[$p]}" | tr '|\n' '/ ') | | | | | | |"
		else
			echo "| $p | ${RPS[$p]} | ${P50[$p]} | ${P99[$p]} | ${CPU_US[$p]} | ${RSS_MIB[$p]} | $(ratio "$p" nginx) | $(ratio "$p" httputil) |"
		fi
	done
}

CPU_MODEL="$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
MEM_GIB="$(awk '/^MemTotal:/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
WRK_CMD="taskset -c $LOAD_CPU wrk -t$THREADS -c$CONNS -d${DUR_S}s --latency http://127.0.0.1:PORT/"
versions() {
	echo "- go: $(go version | awk '{print $3}')"
	if [ -n "$NGINX" ]; then echo "- nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"; fi
	if command -v caddy >/dev/null 2>&1; then echo "- caddy: $(caddy version 2>/dev/null | awk '{print $1}')"; fi
	echo "- wrk: $(wrk -v 2>&1 | head -n 1 | awk '{print $2}')"
	local rev
	if rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)"; then
		if [ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)" ]; then
			rev+=" with local changes"
		fi
		echo "- portico: $rev"
	fi
}

REPORT="$TMP/report.md"
{
	echo "# Portico load test — $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $NCPU CPUs ($CPU_MODEL), ${MEM_GIB} GiB RAM, Linux $(uname -r); load average at start: $LOADAVG_START."
	echo
	echo "Load: \`$WRK_CMD\` after a ${WARMUP_S} s warm-up run with the same flags."
	echo "The proxy under test runs alone on core $PROXY_CPU (\`taskset -c $PROXY_CPU\`, one worker / GOMAXPROCS=1);"
	echo "wrk and the backend (Go net/http, $BODY_BYTES-byte responses, GOMAXPROCS=1) share core $LOAD_CPU."
	echo "CPU µs/req is the proxy's utime+stime (from /proc/PID/stat, nginx master + worker) over the measured run"
	echo "divided by the requests wrk completed; peak RSS is VmHWM (nginx: the worker)."
	echo
	table
	echo
	echo "Runs:"
	for p in "${SELECTED[@]}"; do
		if [ -z "${SKIP[$p]:-}" ]; then echo "- $p: ${NOTE[$p]}"; fi
	done
	echo
	echo "Versions:"
	versions
} >"$REPORT"

mkdir -p "$RESULTS_DIR"
cp "$REPORT" "$RESULTS_DIR/latest.md"
cp "$REPORT" "$RESULTS_DIR/$(date -u +%Y-%m-%d).md"

echo
table
echo
log "took $(($(date +%s) - START_TS)) s of load; report: $RESULTS_DIR/latest.md"
