#!/usr/bin/env bash
# Hostile-client robustness run (issue 12): luapool serve and OpenResty (nginx + lua
# module) side by side under slow headers, slow bodies, bodies that never come,
# cancellations while queued and mid-body, HTTP/2 stream resets and idle floods, with the
# time a normal request takes during and after each. See bench/README.md.
# Run bench/install.sh first. Bounded: about 2 x 7 x (DURATION + 3) seconds.
#
# Environment (all optional):
#   DURATION=5          seconds of each attack
#   SCENARIOS="idle slow-headers slow-body body-then-nothing cancel-queued cancel-mid-body h2-reset"
#   LUAPOOL_ARGS="--workers 1 --concurrency 64 --max-queued 256"   extra `luapool serve` flags
#   WORKERS=1           nginx worker processes
#   SKIP_BUILD=1        do not run cargo build --release
#   OUT=FILE            also write the report to FILE
#   LUAPOOL_BEFORE_BIN  another luapool binary (say, built from main before issue 12) to
#                       run alongside as "luapool-before" on 127.0.0.1:18082
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
WORKERS=${WORKERS:-1}
LUAPOOL_ARGS=${LUAPOOL_ARGS:---workers 1 --concurrency 64 --max-queued 256}
OPENRESTY_CONF=${OPENRESTY_CONF:-$BENCH_DIR/../../shared/anchors/openresty/nginx.conf}
LUAPOOL_BIN=${LUAPOOL_BIN:-$ROOT/target/release/luapool}
LUAPOOL_ADDR=127.0.0.1:18081
LUAPOOL_ADMIN=127.0.0.1:19091
OPENRESTY_ADDR=127.0.0.1:18080
BEFORE_ADDR=127.0.0.1:18082
BEFORE_ADMIN=127.0.0.1:19092
BEFORE_PID=""
export DURATION=${DURATION:-5}
export SCENARIOS=${SCENARIOS:-idle slow-headers slow-body body-then-nothing cancel-queued cancel-mid-body h2-reset}

log() { echo "[hostile.sh] $*" >&2; }
die() { log "error: $*"; exit 1; }

SCRATCH=$(mktemp -d -t luapool-hostile.XXXXXX)
chmod 755 "$SCRATCH"
LUAPOOL_PID=""
NGINX_PREFIX=$SCRATCH/openresty
cleanup() {
    set +e
    [ -n "$LUAPOOL_PID" ] && kill "$LUAPOOL_PID" 2>/dev/null
    [ -n "$BEFORE_PID" ] && kill "$BEFORE_PID" 2>/dev/null
    [ -f "$NGINX_PREFIX/nginx.pid" ] && kill "$(cat "$NGINX_PREFIX/nginx.pid")" 2>/dev/null
    sleep 0.5
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v nginx >/dev/null || die "nginx not found: run bench/install.sh"
command -v python3 >/dev/null || die "python3 not found"
ulimit -n "$(ulimit -Hn)"
if [ -z "${SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build failed"
fi

wait_ready() { # url
    local deadline=$((SECONDS + 30))
    until curl -fs -o /dev/null "$1"; do
        [ $SECONDS -lt $deadline ] || die "$1 never answered"
        sleep 0.1
    done
}

# shellcheck disable=SC2086
"$LUAPOOL_BIN" serve --listen "$LUAPOOL_ADDR" --admin "$LUAPOOL_ADMIN" $LUAPOOL_ARGS \
    "$ROOT/bench/app.lua" >"$SCRATCH/luapool.out" 2>"$SCRATCH/luapool.log" &
LUAPOOL_PID=$!
wait_ready "http://$LUAPOOL_ADDR/"

TARGETS=("luapool=$LUAPOOL_ADDR,$LUAPOOL_ADMIN")
if [ -n "${LUAPOOL_BEFORE_BIN:-}" ]; then
    # shellcheck disable=SC2086
    "$LUAPOOL_BEFORE_BIN" serve --listen "$BEFORE_ADDR" --admin "$BEFORE_ADMIN" $LUAPOOL_ARGS \
        "$ROOT/bench/app.lua" >"$SCRATCH/before.out" 2>"$SCRATCH/before.log" &
    BEFORE_PID=$!
    wait_ready "http://$BEFORE_ADDR/"
    TARGETS+=("luapool-before=$BEFORE_ADDR,$BEFORE_ADMIN")
fi
TARGETS+=("openresty=$OPENRESTY_ADDR")

mkdir -p "$NGINX_PREFIX"/{conf,logs,tmp}
sed -e "s|__WORKERS__|$WORKERS|g" -e "s|__PREFIX__|$NGINX_PREFIX|g" \
    "$OPENRESTY_CONF" >"$NGINX_PREFIX/conf/nginx.conf"
nginx -p "$NGINX_PREFIX" -c "$NGINX_PREFIX/conf/nginx.conf" -e "$NGINX_PREFIX/logs/error.log" ||
    die "nginx failed to start"
wait_ready "http://$OPENRESTY_ADDR/"

log "luapool: $LUAPOOL_BIN serve $LUAPOOL_ARGS; openresty: $WORKERS worker(s)"
python3 "$BENCH_DIR/hostile.py" "${TARGETS[@]}" | tee ${OUT:+"$OUT"}
log "luapool wrote $(wc -c <"$SCRATCH/luapool.log") bytes of log"
