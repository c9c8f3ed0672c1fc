#!/usr/bin/env bash
# Redis benchmark: a rate-limiter handler (INCR + EXPIRE per request, one pipeline) on
# luapool serve vs OpenResty (nginx + lua module, a minimal RESP client over
# ngx.socket.tcp with setkeepalive) against the same redis-server, req/s and CPU per
# request side by side; and redis-benchmark on the same commands as the floor.
# Run bench/install.sh and bench/install-redis.sh first. See bench/README.md.
#
# Environment (all optional):
#   WORKERS=1        workers of luapool and nginx
#   DURATION=10s     wrk duration
#   CONNS=64         wrk connections
#   POOL=64          Redis connections per process (luapool: [redis] pool_size; nginx:
#                    the keepalive pool per worker)
#   REDIS_PORT=16379
#   SERVERS="luapool openresty"
#   SKIP_BUILD=1     do not run cargo build --release
#   LUAPOOL_BIN      default target/release/luapool
#   OUT=FILE         also write the report to FILE
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
WORKERS=${WORKERS:-1}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
POOL=${POOL:-64}
REDIS_PORT=${REDIS_PORT:-16379}
SERVERS=${SERVERS:-luapool openresty}
LUAPOOL_BIN=${LUAPOOL_BIN:-$ROOT/target/release/luapool}
OUT=${OUT:-}
LUAPOOL_ADDR=127.0.0.1:18091
OPENRESTY_ADDR=127.0.0.1:18090
CLK_TCK=$(getconf CLK_TCK)
SCRATCH=$(mktemp -d -t luapool-redis-bench.XXXXXX)
chmod 755 "$SCRATCH"

log() { echo "[redis.sh] $*" >&2; }
die() { log "error: $*"; exit 1; }
say() {
    printf '%s\n' "$*"
    if [ -n "$OUT" ]; then printf '%s\n' "$*" >>"$OUT"; fi
}

REDIS_PID=""
LUAPOOL_PID=""
NGINX_PID=""
cleanup() {
    set +e
    [ -n "$LUAPOOL_PID" ] && kill "$LUAPOOL_PID" 2>/dev/null
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null
    [ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v wrk >/dev/null || die "wrk not found: run bench/install.sh"
command -v redis-server >/dev/null || die "redis-server not found: run bench/install-redis.sh"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found: run bench/install-redis.sh"
has_server() { [[ " $SERVERS " == *" $1 "* ]]; }
if has_server openresty; then
    [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] ||
        die "libnginx-mod-http-lua not installed: run bench/install.sh"
fi
if [ -z "${SKIP_BUILD:-}" ] && has_server luapool; then
    log "building luapool (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet) || die "luapool build failed"
fi

# utime+stime of a process tree, in ticks.
tree_pids() {
    echo "$1"
    local c
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree_pids "$c"; done
}
cpu_ticks() {
    local total=0 p rest
    for p in $(tree_pids "$1"); do
        rest=$(cat /proc/"$p"/stat 2>/dev/null) || continue
        rest=${rest##*) }
        # fields 14 and 15 of stat are the 12th and 13th after the ") "
        set -- $rest
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

wait_http() {
    local url=$1 deadline=$((SECONDS + 30))
    until curl -fs -o /dev/null "$url"; do
        [ $SECONDS -lt $deadline ] || die "$url never answered"
        sleep 0.1
    done
}

# ---------------------------------------------------------------- redis
log "starting redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --logfile "$SCRATCH/redis.log" &
REDIS_PID=$!
deadline=$((SECONDS + 30))
until [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; do
    [ $SECONDS -lt $deadline ] || die "redis-server never answered"
    sleep 0.1
done

# ---------------------------------------------------------------- servers
if has_server luapool; then
    log "starting luapool serve ($WORKERS workers)"
    sed -e "s|pool_size = .*|pool_size = $POOL|" "$BENCH_DIR/redis/luapool.toml" >"$SCRATCH/luapool.toml"
    RUST_LOG=warn "$LUAPOOL_BIN" serve --listen "$LUAPOOL_ADDR" --workers "$WORKERS" \
        --config "$SCRATCH/luapool.toml" --redis "redis://127.0.0.1:$REDIS_PORT/0" \
        "$BENCH_DIR/redis/app.lua" >"$SCRATCH/luapool.log" 2>&1 &
    LUAPOOL_PID=$!
    wait_http "http://$LUAPOOL_ADDR/limit"
fi
if has_server openresty; then
    log "starting OpenResty ($WORKERS workers)"
    mkdir -p "$SCRATCH/nginx/conf" "$SCRATCH/nginx/logs" "$SCRATCH/nginx/tmp"
    sed -e "s|__WORKERS__|$WORKERS|g" -e "s|__PREFIX__|$SCRATCH/nginx|g" \
        -e "s|__REDIS_PORT__|$REDIS_PORT|g" -e "s|__POOL__|$POOL|g" \
        "$BENCH_DIR/redis/nginx.conf" >"$SCRATCH/nginx/conf/nginx.conf"
    nginx -p "$SCRATCH/nginx" -c "$SCRATCH/nginx/conf/nginx.conf" -e "$SCRATCH/nginx/logs/error.log" ||
        die "nginx did not start"
    deadline=$((SECONDS + 30))
    until [ -s "$SCRATCH/nginx/nginx.pid" ]; do
        [ $SECONDS -lt $deadline ] || die "nginx wrote no pid"
        sleep 0.1
    done
    NGINX_PID=$(cat "$SCRATCH/nginx/nginx.pid")
    wait_http "http://$OPENRESTY_ADDR/limit"
fi

# ---------------------------------------------------------------- measure
# run server pid url -> one table row
run() {
    local name=$1 pid=$2 url=$3 out=$SCRATCH/wrk-$1-${3##*/}.txt
    # warm-up (fills the connection pools)
    wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 || true
    local t0 r0 t1 r1
    t0=$(cpu_ticks "$pid"); r0=$(cpu_ticks "$REDIS_PID")
    wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H "x-client: c1" "$url" >"$out" 2>&1 ||
        log "wrk failed against $name $url"
    t1=$(cpu_ticks "$pid"); r1=$(cpu_ticks "$REDIS_PID")
    awk -v name="$name" -v ticks=$((t1 - t0)) -v rticks=$((r1 - r0)) -v hz="$CLK_TCK" '
        /Requests\/sec:/ { rps = $2 }
        / 50%/ { p50 = $2 }
        / 99%/ { p99 = $2 }
        /requests in/ { reqs = $1 }
        /Non-2xx/ { err += $NF }
        /Socket errors/ { err += 1 }
        END {
            cpu = (reqs > 0) ? ticks / hz / reqs * 1e6 : -1
            rcpu = (reqs > 0) ? rticks / hz / reqs * 1e6 : -1
            printf "| %-9s | %9.0f | %8s | %8s | %12.1f | %14.1f | %6d |\n", name, rps, p50, p99, cpu, rcpu, err
        }' "$out"
}

say ""
say "Rate limiter (INCR + EXPIRE in one pipeline per request): wrk -t1 -c$CONNS -d$DURATION, $WORKERS worker(s), Redis pool $POOL, $(nproc) cores"
say ""
say "| server    |     req/s |      p50 |      p99 | server CPU µs/req | redis CPU µs/req | errors |"
say "|-----------|-----------|----------|----------|-------------------|------------------|--------|"
if has_server luapool; then say "$(run luapool "$LUAPOOL_PID" "http://$LUAPOOL_ADDR/limit")"; fi
if has_server openresty; then say "$(run openresty "$NGINX_PID" "http://$OPENRESTY_ADDR/limit")"; fi
say ""
say "Baseline: the same reply without Redis (/plain), to tell the Redis call's own cost"
say ""
say "| server    |     req/s |      p50 |      p99 | server CPU µs/req | redis CPU µs/req | errors |"
say "|-----------|-----------|----------|----------|-------------------|------------------|--------|"
if has_server luapool; then say "$(run luapool "$LUAPOOL_PID" "http://$LUAPOOL_ADDR/plain")"; fi
if has_server openresty; then say "$(run openresty "$NGINX_PID" "http://$OPENRESTY_ADDR/plain")"; fi

# The floor: redis-benchmark on the same commands (no HTTP, no Lua).
secs=${DURATION%s}
n=$((secs * 20000))
say ""
say "Floor: redis-benchmark -c$CONNS -n$n on the same commands (requests/s of Redis alone)"
say ""
for pipeline in 1 2; do
    for cmd in "INCR rl:c1" "EXPIRE rl:c1 60"; do
        # shellcheck disable=SC2086
        line=$(redis-benchmark -p "$REDIS_PORT" -c "$CONNS" -n "$n" -P "$pipeline" -q $cmd 2>/dev/null | tr '\r' '\n' | grep -a "requests per second" | tail -1)
        say "- P=$pipeline $cmd: ${line:-failed}"
    done
done
