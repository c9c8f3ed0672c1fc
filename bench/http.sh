#!/usr/bin/env bash
# Side-by-side HTTP benchmark: luapool serve vs OpenResty (nginx + lua module)
# vs a bare hyper server (plain, and calling one Lua function per request)
# vs pool-front (a hyper multi-thread front handing every request to a luapool::WorkerPool).
# See bench/README.md. Run bench/install.sh first.
#
# Environment (all optional):
#   WORKERS=1          workers for luapool, pool-front and nginx (the reference is always 1 thread)
#   FRONT_THREADS=1    pool-front's hyper front threads (tokio multi-thread runtime)
#   DURATION=10s       wrk duration for /, /echo, /json, /compute
#   CONNS=64           wrk connections for /, /echo, /json, /compute
#   SLEEP_DURATION=6s  wrk duration for /sleep
#   SLEEP_CONNS=1000   wrk connections for /sleep
#   ROUNDS=1           runs per server and endpoint, alternating servers; the median is reported
#   WARMUP=1s          an unmeasured wrk run per server and endpoint first ("0" to skip)
#   SERVERS="luapool luapool-luajit openresty reference reference-lua pool-front"   which servers
#                      to run (luapool-luajit: luapool built with `--features luajit`)
#   ENDPOINTS="/ /echo /json /compute /sleep"   which endpoints to run; add "/users/42" for the routed
#                      endpoint (luapool.router; OpenResty's regex location), "/assets/site.css" for a
#                      static file (4 KiB: luapool's --static, nginx's alias), "mix" for the slow-handler
#                      scenario: /compute under MIX_COMPUTE_CONNS connections in the background
#                      while / is measured with MIX_CONNS connections (servers with /compute)
#   MIX_CONNS=32       connections of the mix's / load
#   MIX_COMPUTE_CONNS="1 4"  connections of its background /compute load; one mix table per value
#   OUT=FILE           also write the report (the tables) to FILE
#   SKIP_BUILD=1       do not run cargo build
#   OPENRESTY_CONF     nginx.conf template (default ../shared/anchors/openresty/nginx.conf
#                      beside the repository)
#   LUAPOOL_BIN        luapool binary (default target/release/luapool)
#   LUAPOOL_LUAJIT_BIN luapool built on LuaJIT (default target/engines/luapool-luajit)
#   LUAPOOL_LUAJIT_ADDR=127.0.0.1:18085
#   LUAPOOL_ADDR=127.0.0.1:18081  REFERENCE_ADDR=127.0.0.1:18082  REFERENCE_LUA_ADDR=127.0.0.1:18083
#   POOL_FRONT_ADDR=127.0.0.1:18084
#   (OpenResty listens on 127.0.0.1:18080, fixed by the template.)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)

WORKERS=${WORKERS:-1}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
SLEEP_DURATION=${SLEEP_DURATION:-6s}
SLEEP_CONNS=${SLEEP_CONNS:-1000}
ROUNDS=${ROUNDS:-1}
WARMUP=${WARMUP:-1s}
FRONT_THREADS=${FRONT_THREADS:-1}
SERVERS=${SERVERS:-luapool luapool-luajit openresty reference reference-lua pool-front}
ENDPOINTS=${ENDPOINTS:-/ /echo /json /compute /sleep}
MIX_CONNS=${MIX_CONNS:-32}
MIX_COMPUTE_CONNS=${MIX_COMPUTE_CONNS:-1 4}
OUT=${OUT:-}
OPENRESTY_CONF=${OPENRESTY_CONF:-$BENCH_DIR/../../shared/anchors/openresty/nginx.conf}
LUAPOOL_BIN=${LUAPOOL_BIN:-$ROOT/target/release/luapool}
LUAPOOL_LUAJIT_BIN=${LUAPOOL_LUAJIT_BIN:-$ROOT/target/engines/luapool-luajit}
REFERENCE_BIN=$BENCH_DIR/reference/target/release/reference
POOL_FRONT_BIN=$BENCH_DIR/pool-front/target/release/pool-front
LUAPOOL_ADDR=${LUAPOOL_ADDR:-127.0.0.1:18081}
REFERENCE_ADDR=${REFERENCE_ADDR:-127.0.0.1:18082}
REFERENCE_LUA_ADDR=${REFERENCE_LUA_ADDR:-127.0.0.1:18083}
POOL_FRONT_ADDR=${POOL_FRONT_ADDR:-127.0.0.1:18084}
LUAPOOL_LUAJIT_ADDR=${LUAPOOL_LUAJIT_ADDR:-127.0.0.1:18085}
OPENRESTY_ADDR=127.0.0.1:18080
START_TIMEOUT=${START_TIMEOUT:-30}

CLK_TCK=$(getconf CLK_TCK)
SCRATCH=$(mktemp -d -t luapool-bench.XXXXXX)
# The static file of /assets/site.css: 4 KiB of CSS (152 lines of 27 bytes).
STATIC_DIR=$SCRATCH/static
mkdir -p "$STATIC_DIR"
for i in $(seq 1 152); do printf '.c%03d { margin: 0 auto; }\n' "$i"; done >"$STATIC_DIR/site.css"
chmod 755 "$SCRATCH" # nginx workers run as nobody
NGINX_PREFIX=""

log() { echo "[http.sh] $*" >&2; }
die() { log "error: $*"; exit 1; }
# The report: stdout, and $OUT if set.
say() {
    printf '%s\n' "$*"
    if [ -n "$OUT" ]; then printf '%s\n' "$*" >>"$OUT"; fi
}

declare -A PID=()  # server -> pid (nginx: the master)
declare -A ADDR=()
declare -A RSS=()
declare -A RSS_NOTE=()
declare -A LOGF=()

cleanup() {
    local s
    set +e
    for s in "${!PID[@]}"; do
        if [ "$s" = openresty ]; then continue; fi
        kill "${PID[$s]}" 2>/dev/null
    done
    if [ -n "$NGINX_PREFIX" ] && [ -f "$NGINX_PREFIX/nginx.pid" ]; then
        kill "$(cat "$NGINX_PREFIX/nginx.pid")" 2>/dev/null
    fi
    # give them a moment, then make sure
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for s in "${!PID[@]}"; do
            if kill -0 "${PID[$s]}" 2>/dev/null; then alive=1; fi
        done
        [ "$alive" = 0 ] && break
        sleep 0.2
    done
    for s in "${!PID[@]}"; do
        kill -9 "${PID[$s]}" 2>/dev/null
    done
    # nginx workers die with their master; if the master was killed hard, reap them too
    if [ -n "$NGINX_PREFIX" ] && [ -n "${PID[openresty]:-}" ]; then
        pkill -9 -P "${PID[openresty]}" 2>/dev/null
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- checks, build
command -v wrk >/dev/null || die "wrk not found: run bench/install.sh"
command -v curl >/dev/null || die "curl not found: run bench/install.sh"
has_server() { [[ " $SERVERS " == *" $1 "* ]]; }
if has_server openresty; then
    command -v nginx >/dev/null || die "nginx not found: run bench/install.sh"
    [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] ||
        die "libnginx-mod-http-lua not installed: run bench/install.sh"
    [ -f "$OPENRESTY_CONF" ] || die "OpenResty template not found: $OPENRESTY_CONF (set OPENRESTY_CONF)"
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    # First LuaJIT, then the default engine: both builds write target/release/luapool.
    if has_server luapool-luajit; then
        log "building luapool on LuaJIT (cargo build --release --no-default-features --features luajit)"
        (cd "$ROOT" && cargo build --release --quiet --no-default-features --features luajit &&
            mkdir -p target/engines && cp target/release/luapool target/engines/luapool-luajit) ||
            die "luapool (luajit) build failed"
    fi
    if has_server luapool; then
        log "building luapool (cargo build --release)"
        (cd "$ROOT" && cargo build --release --quiet) || die "luapool build failed"
    fi
    if has_server reference || has_server reference-lua; then
        log "building the reference server"
        cargo build --release --quiet --manifest-path "$BENCH_DIR/reference/Cargo.toml" ||
            die "reference build failed"
    fi
    if has_server pool-front; then
        log "building pool-front"
        cargo build --release --quiet --manifest-path "$BENCH_DIR/pool-front/Cargo.toml" ||
            die "pool-front build failed"
    fi
fi

# Raise the open-file limit for wrk -c1000 and the servers started below.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard" || true
[ "$(ulimit -n)" -ge $((SLEEP_CONNS + 100)) ] ||
    log "warning: ulimit -n is $(ulimit -n), low for $SLEEP_CONNS connections"

# ---------------------------------------------------------------- /proc helpers
# pid and all its descendants
tree_pids() {
    local p c
    for p in "$@"; do
        echo "$p"
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done
    done
}
# utime+stime (fields 14, 15 of /proc/PID/stat; all threads) summed over a process tree, in ticks
cpu_ticks() {
    local total=0 p rest
    for p in $(tree_pids "$1"); do
        rest=$(cat /proc/"$p"/stat 2>/dev/null) || continue
        rest=${rest##*) } # drop "pid (comm) ": fields from 3 on
        # shellcheck disable=SC2086
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}
threads() { awk '/^Threads:/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo '?'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo 0; }

# ---------------------------------------------------------------- servers
wait_ready() { # name url pid
    local name=$1 url=$2 pid=$3 deadline=$((SECONDS + START_TIMEOUT)) code
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited during start-up; its log:"
            tail -n 20 "${LOGF[$name]}" >&2 || true
            die "$name did not start"
        fi
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
        if [ "$code" = 200 ]; then return 0; fi
        sleep 0.05
    done
    log "$name did not answer $url within ${START_TIMEOUT}s; its log:"
    tail -n 20 "${LOGF[$name]}" >&2 || true
    die "$name did not start"
}

start_openresty() {
    NGINX_PREFIX=$SCRATCH/openresty
    mkdir -p "$NGINX_PREFIX"/{conf,logs,tmp}
    # /users/ID (the routed endpoint): a regex location, added to the template's server
    sed -e "s|__WORKERS__|$WORKERS|g" -e "s|__PREFIX__|$NGINX_PREFIX|g" \
        -e '0,/^\( *\)location = \/ {/s//\1location ~ ^\/users\/([0-9]+)$ { content_by_lua_block { ngx.header.content_type = "text\/plain" ngx.print("user ", ngx.var[1]) } }\n\1location \/assets\/ { alias '"${STATIC_DIR//\//\\/}"'\/; types { text\/css css; } }\n&/' \
        "$OPENRESTY_CONF" >"$NGINX_PREFIX/conf/nginx.conf"
    LOGF[openresty]=$NGINX_PREFIX/logs/error.log
    nginx -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/conf/nginx.conf" -e "$NGINX_PREFIX/logs/error.log" ||
        die "nginx failed to start (see above)"
    local deadline=$((SECONDS + 10))
    while [ ! -s "$NGINX_PREFIX/nginx.pid" ]; do
        [ $SECONDS -lt $deadline ] || die "nginx wrote no pid file"
        sleep 0.05
    done
    PID[openresty]=$(cat "$NGINX_PREFIX/nginx.pid")
    ADDR[openresty]=$OPENRESTY_ADDR
    wait_ready openresty "http://$OPENRESTY_ADDR/" "${PID[openresty]}"
    # idle RSS: the workers (children of the master), per worker
    local kids total=0 n=0 k
    kids=$(cat /proc/"${PID[openresty]}"/task/*/children)
    for k in $kids; do total=$((total + $(rss_kb "$k"))); n=$((n + 1)); done
    RSS[openresty]=$((total / (n > 0 ? n : 1)))
    RSS_NOTE[openresty]="per worker ($n workers); master $(rss_kb "${PID[openresty]}") KiB"
}

start_luapool() { # name binary addr
    [ -x "$2" ] || die "no luapool binary at $2"
    LOGF[$1]=$SCRATCH/$1.log
    (cd "$ROOT" && exec "$2" serve --listen "$3" --workers "$WORKERS" --static "/assets=$STATIC_DIR" bench/app.lua \
        </dev/null >"${LOGF[$1]}" 2>&1) &
    PID[$1]=$!
    ADDR[$1]=$3
    wait_ready "$1" "http://$3/" "${PID[$1]}"
    RSS[$1]=$(rss_kb "${PID[$1]}")
    RSS_NOTE[$1]="whole process, $WORKERS worker(s), $(threads "${PID[$1]}") threads, $("$2" --version)"
}

start_reference() { # name addr mode
    [ -x "$REFERENCE_BIN" ] || die "no reference binary at $REFERENCE_BIN"
    LOGF[$1]=$SCRATCH/$1.log
    "$REFERENCE_BIN" "$2" "$3" </dev/null >"${LOGF[$1]}" 2>&1 &
    PID[$1]=$!
    ADDR[$1]=$2
    wait_ready "$1" "http://$2/" "${PID[$1]}"
    RSS[$1]=$(rss_kb "${PID[$1]}")
    RSS_NOTE[$1]="whole process, $(threads "${PID[$1]}") thread(s)"
}

start_pool_front() {
    [ -x "$POOL_FRONT_BIN" ] || die "no pool-front binary at $POOL_FRONT_BIN"
    LOGF[pool-front]=$SCRATCH/pool-front.log
    "$POOL_FRONT_BIN" "$POOL_FRONT_ADDR" "$WORKERS" "$FRONT_THREADS" "$BENCH_DIR/app.lua" \
        </dev/null >"${LOGF[pool-front]}" 2>&1 &
    PID[pool-front]=$!
    ADDR[pool-front]=$POOL_FRONT_ADDR
    wait_ready pool-front "http://$POOL_FRONT_ADDR/" "${PID[pool-front]}"
    RSS[pool-front]=$(rss_kb "${PID[pool-front]}")
    RSS_NOTE[pool-front]="whole process, $WORKERS worker(s), $FRONT_THREADS front thread(s), $(threads "${PID[pool-front]}") threads"
}

order=()
for s in openresty luapool luapool-luajit reference reference-lua pool-front; do
    has_server "$s" || continue
    case $s in
        openresty) start_openresty ;;
        luapool) start_luapool luapool "$LUAPOOL_BIN" "$LUAPOOL_ADDR" ;;
        luapool-luajit) start_luapool luapool-luajit "$LUAPOOL_LUAJIT_BIN" "$LUAPOOL_LUAJIT_ADDR" ;;
        reference) start_reference reference "$REFERENCE_ADDR" plain ;;
        reference-lua) start_reference reference-lua "$REFERENCE_LUA_ADDR" lua ;;
        pool-front) start_pool_front ;;
    esac
    order+=("$s")
    log "$s up on ${ADDR[$s]} (pid ${PID[$s]}, idle RSS ${RSS[$s]} KiB)"
done
[ ${#order[@]} -gt 0 ] || die "no servers selected"

# ---------------------------------------------------------------- sanity checks
# Each server must answer each endpoint the same way before it is measured.
CHECK_FAILS=()
check() { # server method path expect_status expect_body expect_ctype
    local s=$1 m=$2 p=$3 st=$4 body=$5 ct=$6 f=$SCRATCH/check.body got
    local -a data=()
    if [ "$m" = POST ]; then data=(--data-binary "hello-echo" -H 'Content-Type: application/octet-stream'); fi
    got=$(curl -s -X "$m" "${data[@]}" -o "$f" -w '%{http_code} %{content_type}' --max-time 5 \
        "http://${ADDR[$s]}$p" || echo "curl-failed")
    local gst=${got%% *} gct=${got#* }
    gct=${gct%%;*}
    if [ "$gst" != "$st" ] || { [ -n "$body" ] && [ "$(cat "$f")" != "$body" ]; } ||
        { [ -n "$ct" ] && [ "$gct" != "$ct" ]; }; then
        CHECK_FAILS+=("$s $m $p: expected $st '$body' ${ct:-any}, got $gst '$(head -c 80 "$f")' $gct")
    fi
}
# /json: the same object (keys in any order), as application/json
check_json() { # server
    local s=$1 f=$SCRATCH/check.json got
    got=$(curl -s -o "$f" -w '%{http_code} %{content_type}' --max-time 5 "http://${ADDR[$s]}/json" ||
        echo "curl-failed")
    if [ "${got%%;*}" != "200 application/json" ] || ! python3 -c '
import json, sys
want = {"id": 12345, "name": "widget", "price": 19.99, "in_stock": True, "tags": ["a", "b", "c"],
        "owner": "alice", "count": 42, "ratio": 0.75, "description": "a small json object",
        "created": "2024-01-01T00:00:00Z"}
sys.exit(json.load(open(sys.argv[1])) != want)' "$f"; then
        CHECK_FAILS+=("$s GET /json: expected 200 application/json and the object, got $got '$(head -c 80 "$f")'")
    fi
}
endpoint_servers() { # endpoint -> servers that have it
    local s
    for s in "${order[@]}"; do
        case $1 in
            /json | /compute | /sleep | mix) [[ $s == reference* ]] && continue ;;
            /users/42 | /assets/site.css) [[ $s == reference* || $s == pool-front ]] && continue ;;
        esac
        echo "$s"
    done
}
for s in "${order[@]}"; do
    check "$s" GET / 200 "Hello, World!" text/plain
    check "$s" POST /echo 200 "hello-echo" application/octet-stream
    check "$s" GET /echo 405 "" ""
    if [[ $s != reference* ]]; then
        check "$s" GET /compute 200 300000 ""
        [[ " $ENDPOINTS " == *" /json "* ]] && check_json "$s"
        [[ " $ENDPOINTS " == *" /sleep "* ]] && check "$s" GET /sleep 200 slept ""
        [[ " $ENDPOINTS " == *" /users/42 "* && $s != pool-front ]] && check "$s" GET /users/42 200 "user 42" text/plain
        [[ " $ENDPOINTS " == *" /assets/site.css "* && $s != pool-front ]] && check "$s" GET /assets/site.css 200 "" text/css
    fi
done

# ---------------------------------------------------------------- wrk
# parse_wrk wrk_output server_cpu_ticks -> "rps p50ms p99ms cpu_us_per_req errors requests"
parse_wrk() {
    awk -v ticks="$2" -v hz="$CLK_TCK" '
        function ms(v,   n, u) { n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
            if (u == "us") return n / 1000; if (u == "s") return n * 1000
            if (u == "m") return n * 60000; return n }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        / requests in / { reqs = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { err += $5 }
        END { cpu = (reqs > 0) ? ticks / hz / reqs * 1e6 : -1
              printf "%.0f %.3f %.3f %.2f %d %d\n", rps, p50, p99, cpu, err, reqs }' "$1"
}

# run_wrk server endpoint -> "rps p50ms p99ms cpu_us_per_req errors requests"
run_wrk() {
    local s=$1 ep=$2 pid=${PID[$1]} url="http://${ADDR[$1]}$2" out=$SCRATCH/wrk.out
    local -a args
    case $ep in
        /sleep) args=(-t1 -c"$SLEEP_CONNS" -d"$SLEEP_DURATION" --timeout 5s --latency) ;;
        /echo) args=(-t1 -c"$CONNS" -d"$DURATION" --latency -s "$BENCH_DIR/post.lua") ;;
        *) args=(-t1 -c"$CONNS" -d"$DURATION" --latency) ;;
    esac
    local t0 t1
    t0=$(cpu_ticks "$pid")
    wrk "${args[@]}" "$url" >"$out" 2>&1 || { log "wrk failed against $s $ep:"; cat "$out" >&2; }
    t1=$(cpu_ticks "$pid")
    kill -0 "$pid" 2>/dev/null || log "warning: $s (pid $pid) died during $ep"
    cat "$out" >>"$SCRATCH/wrk.all"
    parse_wrk "$out" $((t1 - t0))
}

# wrk duration ("10s", "1m", "90") -> whole seconds
dur_secs() {
    case $1 in
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
        *h) echo $((${1%h} * 3600)) ;;
        *) echo "$1" ;;
    esac
}

# The slow-handler mix: /compute under $2 connections runs in the background (from 1 s
# before to 1 s after) while / is measured with MIX_CONNS connections for DURATION.
# run_mix server compute_conns -> "rps p50ms p99ms cores errors compute_rps compute_p99ms"
# (cores: the server's CPU time over the / run's wall time)
run_mix() {
    local s=$1 cc=$2 pid=${PID[$1]} base="http://${ADDR[$1]}" out=$SCRATCH/mix.out bg=$SCRATCH/mix-bg.out
    local secs bgpid t0 t1 w0 w1
    secs=$(dur_secs "$DURATION")
    wrk -t1 -c"$cc" -d$((secs + 2))s --latency "$base/compute" >"$bg" 2>&1 &
    bgpid=$!
    sleep 1
    t0=$(cpu_ticks "$pid")
    w0=$(date +%s%N)
    wrk -t1 -c"$MIX_CONNS" -d"$DURATION" --latency "$base/" >"$out" 2>&1 ||
        { log "wrk failed against $s mix /:"; cat "$out" >&2; }
    t1=$(cpu_ticks "$pid")
    w1=$(date +%s%N)
    wait "$bgpid" || { log "wrk failed against $s mix /compute:"; cat "$bg" >&2; }
    kill -0 "$pid" 2>/dev/null || log "warning: $s (pid $pid) died during the mix"
    cat "$out" "$bg" >>"$SCRATCH/wrk.all"
    local rps p50 p99 cpu err reqs crps cp50 cp99 ccpu cerr creqs
    read -r rps p50 p99 cpu err reqs < <(parse_wrk "$out" 0)
    read -r crps cp50 cp99 ccpu cerr creqs < <(parse_wrk "$bg" 0)
    local cores
    cores=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v ns=$((w1 - w0)) \
        'BEGIN { printf "%.2f", (ns > 0) ? t / hz / (ns / 1e9) : 0 }')
    echo "$rps $p50 $p99 $cores $((err + cerr)) $crps $cp99"
}

mix_section() { # compute_conns
    local -a servers list
    local cc=$1 s r m rps p50 p99 cores err crps cp99 errs
    mapfile -t servers < <(endpoint_servers mix)
    [ ${#servers[@]} -gt 0 ] || return 0
    for s in "${servers[@]}"; do warmup "$s" /; done
    for ((r = 1; r <= ROUNDS; r++)); do
        list=("${servers[@]}")
        if ((r % 2 == 0)); then mapfile -t list < <(printf '%s\n' "${servers[@]}" | tac); fi
        for s in "${list[@]}"; do
            log "round $r/$ROUNDS: $s mix (/compute -c$cc)"
            read -r rps p50 p99 cores err crps cp99 < <(run_mix "$s" "$cc")
            log "  /: $rps req/s, p50 $p50 ms, p99 $p99 ms; /compute $crps req/s, p99 $cp99 ms; $cores cores, $err errors"
            for m in rps p50 p99 cores err crps cp99; do
                R[$s|mix$cc|$m]="${R[$s|mix$cc|$m]:-} ${!m}"
            done
        done
    done
    say "## mix: / (wrk -c$MIX_CONNS) while /compute runs in the background (wrk -c$cc)"
    say ""
    say "| server | / req/s | / p50 ms | / p99 ms | /compute req/s | /compute p99 ms | server CPU cores | errors |"
    say "|---|---|---|---|---|---|---|---|"
    for s in "${servers[@]}"; do
        declare -A M=()
        for m in rps p50 p99 cores crps cp99; do
            # shellcheck disable=SC2086
            M[$m]=$(median ${R[$s|mix$cc|$m]})
        done
        errs=0
        for e in ${R[$s|mix$cc|err]}; do errs=$((errs + e)); done
        say "$(printf '| %s | %.0f | %.3f | %.3f | %.0f | %.3f | %.2f | %d |' "$s" "${M[rps]}" "${M[p50]}" \
            "${M[p99]}" "${M[crps]}" "${M[cp99]}" "${M[cores]}" "$errs")"
        unset M
    done
    say ""
}

warmup() {
    local s=$1 ep=$2 url="http://${ADDR[$1]}$2"
    [ "$WARMUP" = 0 ] && return 0
    local -a args=(-t1 -c"$CONNS" -d"$WARMUP")
    [ "$ep" = /echo ] && args+=(-s "$BENCH_DIR/post.lua")
    [ "$ep" = /sleep ] && args=(-t1 -c"$SLEEP_CONNS" -d2s --timeout 5s)
    wrk "${args[@]}" "$url" >/dev/null 2>&1 || true
}

median() { # numbers... -> median (mean of the middle two for an even count)
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ---------------------------------------------------------------- report header
luapool_rev() {
    local rev
    rev=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null) || { echo '?'; return; }
    if [ -n "$(cd "$ROOT" && git status --porcelain -- src crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        rev="$rev+dirty"
    fi
    echo "$rev"
}
say "# luapool HTTP benchmark"
say ""
say "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, luapool $(luapool_rev), $(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -n1 | awk '{print $1, $2}')"
say "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
say "workers=$WORKERS (pool-front: $FRONT_THREADS front thread(s)), wrk -t1 -c$CONNS -d$DURATION (/sleep: -c$SLEEP_CONNS -d$SLEEP_DURATION), rounds=$ROUNDS (median), warmup=$WARMUP"
say ""
say "## idle RSS (right after start)"
say ""
say "| server | RSS MiB | note |"
say "|---|---|---|"
for s in "${order[@]}"; do
    say "$(printf '| %s | %.1f | %s |' "$s" "$(awk -v k="${RSS[$s]}" 'BEGIN { print k / 1024 }')" "${RSS_NOTE[$s]}")"
done
say ""
if [ ${#CHECK_FAILS[@]} -gt 0 ]; then
    say "## response checks FAILED"
    say ""
    for f in "${CHECK_FAILS[@]}"; do say "- $f"; done
    say ""
fi

# ---------------------------------------------------------------- runs
declare -A R=() # "server|endpoint|metric" -> space-separated values over rounds
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a >= 0) printf "%.2f", a / b; else print "n/a" }'; }

for ep in $ENDPOINTS; do
    if [ "$ep" = mix ]; then
        for cc in $MIX_COMPUTE_CONNS; do mix_section "$cc"; done
        continue
    fi
    mapfile -t servers < <(endpoint_servers "$ep")
    [ ${#servers[@]} -gt 0 ] || continue
    for s in "${servers[@]}"; do warmup "$s" "$ep"; done
    for ((r = 1; r <= ROUNDS; r++)); do
        # alternate the order each round so drift hits every server alike
        list=("${servers[@]}")
        if ((r % 2 == 0)); then mapfile -t list < <(printf '%s\n' "${servers[@]}" | tac); fi
        for s in "${list[@]}"; do
            log "round $r/$ROUNDS: $s $ep"
            read -r rps p50 p99 cpu err reqs < <(run_wrk "$s" "$ep")
            log "  $rps req/s, p50 $p50 ms, p99 $p99 ms, $cpu us/req, $err errors, $reqs requests"
            for m in rps p50 p99 cpu err; do
                R[$s|$ep|$m]="${R[$s|$ep|$m]:-} ${!m}"
            done
        done
    done

    title="## $ep"
    case $ep in
        /) title="## / (GET, hello)" ;;
        /echo) title="## /echo (POST 1 KiB, echoed)" ;;
        /json) title="## /json (a 10-field object encoded as JSON: luapool's json.encode, OpenResty's cjson)" ;;
        /compute) title="## /compute (100,000-iteration Lua loop)" ;;
        /users/42) title="## /users/42 (luapool.router, ten routes built per request; OpenResty: a regex location)" ;;
        /assets/site.css) title="## /assets/site.css (a 4 KiB static file: luapool --static, nginx alias)" ;;
        /sleep) title="## /sleep (sleep 1 s; $SLEEP_CONNS connections: req/s = responses per second)" ;;
    esac
    say "$title"
    say ""
    say "| server | req/s | p50 ms | p99 ms | CPU µs/req | errors |"
    say "|---|---|---|---|---|---|"
    declare -A MED=()
    for s in "${servers[@]}"; do
        for m in rps p50 p99 cpu; do
            # shellcheck disable=SC2086
            MED[$s|$m]=$(median ${R[$s|$ep|$m]})
        done
        errs=0
        for e in ${R[$s|$ep|err]}; do errs=$((errs + e)); done
        say "$(printf '| %s | %.0f | %.3f | %.3f | %.2f | %d |' "$s" "${MED[$s|rps]}" "${MED[$s|p50]}" \
            "${MED[$s|p99]}" "${MED[$s|cpu]}" "$errs")"
    done
    for lp in luapool luapool-luajit; do
        [ -n "${MED[$lp|rps]:-}" ] || continue
        say ""
        for other in openresty reference reference-lua pool-front; do
            [ -n "${MED[$other|rps]:-}" ] || continue
            say "$lp/$other: req/s $(ratio "${MED[$lp|rps]}" "${MED[$other|rps]}")×, CPU/req $(ratio "${MED[$lp|cpu]}" "${MED[$other|cpu]}")×, p99 $(ratio "${MED[$lp|p99]}" "${MED[$other|p99]}")×"
        done
    done
    unset MED
    say ""
done

# ---------------------------------------------------------------- after the runs
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
say ""
for s in "${order[@]}"; do
    if ! kill -0 "${PID[$s]}" 2>/dev/null; then say "WARNING: $s is no longer running"; fi
done
for s in "${order[@]}"; do
    f=${LOGF[$s]}
    [ -s "$f" ] || continue
    # start-up banners are fine; show warnings and errors the server logged
    n=$(grep -ciE 'warn|error|panic|crit|alert|emerg|fail' "$f" || true)
    if [ "$n" -gt 0 ]; then
        say "$s logged $n warning/error line(s); the last ones:"
        say '```'
        while IFS= read -r line; do say "$line"; done < <(grep -iE 'warn|error|panic|crit|alert|emerg|fail' "$f" | tail -n 5 | cut -c1-300)
        say '```'
    fi
done
