#!/usr/bin/env bash
# Instructions per HTTP request of `luapool serve` (or any server command), counted with
# callgrind: the server runs under valgrind twice, answering N1 then N2 keep-alive
# requests on one connection, and the difference of the two totals divided by N2 - N1
# is the per-request count (start-up and shutdown cancel out). Immune to the machine's
# load, unlike req/s.
#
# Usage: bench/callgrind-http.sh [PATH...]        (default: /)
# Env:   N1 (500), N2 (2500), PORT (18091), APP (bench/app.lua), LUAPOOL_BIN
#        (target/release/luapool), METHOD (GET), BODY (a file posted as the body),
#        SERVER_CMD (a whole server command line instead of luapool serve; it must
#        listen on 127.0.0.1:$PORT), SERVE_ARGS (extra flags of luapool serve, e.g.
#        --compression), HEADERS (extra request headers, `Name: value` separated by
#        `;`, e.g. 'Accept-Encoding: gzip'), BUSIEST=1 (count only the busiest thread,
#        with --separate-threads=yes: the worker's own instructions, which do not grow
#        with the wall time other threads spend waiting on a loaded machine).
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-500}
N2=${N2:-2500}
PORT=${PORT:-18091}
APP=${APP:-bench/app.lua}
BIN=${LUAPOOL_BIN:-target/release/luapool}
METHOD=${METHOD:-GET}
BODY=${BODY:-}
SERVE_ARGS=${SERVE_ARGS:-}
HEADERS=${HEADERS:-}
BUSIEST=${BUSIEST:-}
VG_ARGS=()
[ -n "$BUSIEST" ] && VG_ARGS=(--separate-threads=yes)
PATHS=("$@")
[ ${#PATHS[@]} -eq 0 ] && PATHS=(/)
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
[ -n "${SERVER_CMD:-}" ] || [ -x "$BIN" ] || cargo build --release
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# Runs the server under callgrind, sends $2 requests to path $1, stops the server and
# prints the total instruction count.
count() {
  local path=$1 n=$2 cmd
  cmd=${SERVER_CMD:-"$BIN serve --listen 127.0.0.1:$PORT --workers 1 $SERVE_ARGS $APP"}
  # shellcheck disable=SC2086
  valgrind --tool=callgrind "${VG_ARGS[@]}" --callgrind-out-file="$OUT/cg.%p" $cmd >"$OUT/server.log" 2>&1 &
  local pid=$!
  python3 - "$PORT" "$path" "$n" "$METHOD" "$BODY" "$HEADERS" <<'PY'
import http.client, sys, time
port, path, n, method, body = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
headers = dict(h.split(":", 1) for h in sys.argv[6].split(";") if ":" in h)
headers = {k.strip(): v.strip() for k, v in headers.items()}
data = open(body, "rb").read() if body else None
deadline = time.time() + 120
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.request("GET", "/")
        c.getresponse().read()
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("server did not start")
        time.sleep(0.2)
for _ in range(n):
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    r.read()
    if r.status >= 500:
        sys.exit(f"{path}: status {r.status}")
PY
  kill -TERM "$pid"
  wait "$pid" || true
  local total=0 f n
  for f in "$OUT"/cg.*; do
    n=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
    [ -n "$n" ] || continue   # with --separate-threads, cg.PID itself has no counts
    if [ -n "$BUSIEST" ]; then
      [ "$n" -gt "$total" ] && total=$n
    else
      total=$((total + n))
    fi
  done
  rm -f "$OUT"/cg.*
  echo "$total"
}

printf '| path | instructions / request |\n|---|---|\n'
for p in "${PATHS[@]}"; do
  a=$(count "$p" "$N1")
  b=$(count "$p" "$N2")
  printf '| %s | %s |\n' "$p" $(( (b - a) / (N2 - N1) ))
done
