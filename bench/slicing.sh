#!/usr/bin/env bash
# Time-slicing benchmark: light `/` requests alone and while two connections run a
# ~150 ms Lua loop per request, on 1 worker, luapool beside OpenResty.
# Prints light req/s, p50, p99 alone and under the mix, and the heavy requests' own
# throughput under the mix against running them alone. See bench/README.md.
#
#   DURATION=6s       wrk duration of each measured run
#   LIGHT_CONNS=32    connections of the light load;  HEAVY_CONNS=2  of the heavy load
#   HEAVY_MS=150      what one heavy request should take alone; the loop length is
#                     calibrated per server to match
#   SERVERS="luapool openresty"   SKIP_BUILD=1   OUT=FILE   OPENRESTY_CONF=...
#   TIME_SLICE=0.002  luapool's --time-slice (0: off, to see the difference)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${DURATION:-6s}
LIGHT_CONNS=${LIGHT_CONNS:-32}
HEAVY_CONNS=${HEAVY_CONNS:-2}
HEAVY_MS=${HEAVY_MS:-150}
SERVERS=${SERVERS:-luapool openresty}
TIME_SLICE=${TIME_SLICE:-0.002}
OUT=${OUT:-}
OPENRESTY_CONF=${OPENRESTY_CONF:-$BENCH_DIR/../../shared/anchors/openresty/nginx.conf}
LUAPOOL_BIN=${LUAPOOL_BIN:-$ROOT/target/release/luapool}
LUAPOOL_ADDR=127.0.0.1:18091
OPENRESTY_ADDR=127.0.0.1:18080

SCRATCH=$(mktemp -d -t luapool-slicing.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$SCRATCH/nginx/nginx.pid" ] && kill "$(cat "$SCRATCH/nginx/nginx.pid")" 2>/dev/null || true
  rm -rf "$SCRATCH"
}
trap cleanup EXIT

for tool in wrk curl nginx; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run bench/install.sh" >&2; exit 1; }
done
[ -n "${SKIP_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q)

wait_up() { # url
  for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "server at $1 did not start" >&2; exit 1
}

start_luapool() {
  "$LUAPOOL_BIN" serve --listen "$LUAPOOL_ADDR" --workers 1 --time-slice "$TIME_SLICE" \
    --request-timeout 60 "$BENCH_DIR/slicing/app.lua" >"$SCRATCH/luapool.log" 2>&1 &
  PIDS+=($!)
  wait_up "http://$LUAPOOL_ADDR/"
}

start_openresty() {
  local p="$SCRATCH/nginx"
  mkdir -p "$p/conf" "$p/logs" "$p/tmp"
  # The comparison config, plus one location with the same loop as luapool's /heavy.
  sed -e "s|__WORKERS__|1|g" -e "s|__PREFIX__|$p|g" "$OPENRESTY_CONF" |
    awk '/location = \/counter/ && !done {
           print "        location = /heavy {";
           print "            content_by_lua_block {";
           print "                local n = tonumber(ngx.var.arg_n) or 10000000";
           print "                local s = 0";
           print "                for i = 1, n do s = s + i % 7 end";
           print "                ngx.print(s)";
           print "            }";
           print "        }";
           done = 1 }
         { print }' >"$p/conf/nginx.conf"
  nginx -p "$p" -c "$p/conf/nginx.conf"
  wait_up "http://$OPENRESTY_ADDR/"
}

addr_of() { case $1 in luapool) echo "$LUAPOOL_ADDR" ;; openresty) echo "$OPENRESTY_ADDR" ;; esac; }

# Loop length that makes one heavy request take about HEAVY_MS alone.
calibrate() { # addr
  local n=2000000 t
  for _ in 1 2 3; do
    t=$(curl -fs -o /dev/null -w '%{time_total}' "http://$1/heavy?n=$n")
    n=$(awk -v n="$n" -v t="$t" -v ms="$HEAVY_MS" 'BEGIN { printf "%d", n * (ms / 1000) / t }')
  done
  echo "$n"
}

ms() { # wrk latency like 1.23ms / 456.00us / 1.20s -> ms
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.1f", v * 1000 }
    else printf "%s", v }'
}

# Runs wrk; prints "req/s p50 p99".
measure() { # conns url
  local out
  out=$(wrk -t1 -c"$1" -d"$DURATION" --latency "$2")
  echo "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
       "$(ms "$(echo "$out" | awk '$1 == "50%" {print $2}')")" \
       "$(ms "$(echo "$out" | awk '$1 == "99%" {print $2}')")"
}

REPORT="$SCRATCH/report.md"
{
  echo "# luapool time-slicing benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, luapool $(git -C "$ROOT" rev-parse --short HEAD), 1 worker, time slice ${TIME_SLICE}s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "light: wrk -t1 -c$LIGHT_CONNS -d$DURATION /; heavy: wrk -t1 -c$HEAVY_CONNS -d$DURATION /heavy (~${HEAVY_MS} ms of Lua each)"
  echo
  echo "| server | heavy loop n | light alone req/s | p50 ms | p99 ms | light in mix req/s | p50 ms | p99 ms | heavy alone req/s | heavy in mix req/s | heavy mix/alone |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} >"$REPORT"

for server in $SERVERS; do
  "start_$server"
  addr=$(addr_of "$server")
  n=$(calibrate "$addr")
  heavy_url="http://$addr/heavy?n=$n"
  read -r l_rps l_p50 l_p99 < <(measure "$LIGHT_CONNS" "http://$addr/")
  read -r h_rps _ _ < <(measure "$HEAVY_CONNS" "$heavy_url")
  # The mix: the heavy load starts first and outlasts the light one.
  wrk -t1 -c"$HEAVY_CONNS" -d"$(( ${DURATION%s} + 2 ))s" "$heavy_url" >"$SCRATCH/heavy-mix.txt" &
  heavy_pid=$!
  sleep 1
  read -r m_rps m_p50 m_p99 < <(measure "$LIGHT_CONNS" "http://$addr/")
  wait "$heavy_pid"
  hm_rps=$(awk '/Requests\/sec/ {print $2}' "$SCRATCH/heavy-mix.txt")
  ratio=$(awk -v a="$hm_rps" -v b="$h_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  echo "| $server | $n | $l_rps | $l_p50 | $l_p99 | $m_rps | $m_p50 | $m_p99 | $h_rps | $hm_rps | $ratio |" >>"$REPORT"
  if [ "$server" = luapool ]; then kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; fi
  if [ "$server" = openresty ]; then kill "$(cat "$SCRATCH/nginx/nginx.pid")"; fi
done
{
  echo
  echo "Targets (issue 7): light p99 under the mix <= 10 ms, light req/s under the mix >= 5000,"
  echo "heavy requests' throughput under the mix >= 80 % of alone."
} >>"$REPORT"
cat "$REPORT"
[ -z "$OUT" ] || cp "$REPORT" "$OUT"
