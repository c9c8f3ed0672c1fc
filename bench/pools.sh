#!/usr/bin/env bash
# luapool's pools side by side with a hand-rolled pool of raw mlua states (bench/pools/):
# the same trivial job (`local x = ... return x + 1`, fresh globals per job) through
#   1. WorkerPool, 64 in flight from one current-thread driver (try_submit)
#   2. WorkerPool, 64 tasks on a 2-thread tokio runtime looping submit().await
#   3. WorkerPool, submit_blocking from a plain thread, 1 in flight
#   4. CheckoutPool get + exec + drop on 2 threads (baseline: a raw state per thread)
# against 2 threads each owning an mlua::Lua fed by one crossbeam MPMC queue, with a tokio
# oneshot per reply. Rounds alternate luapool / baseline / baseline / luapool; the report is
# the median jobs/s, process CPU µs per job (getrusage) and p50/p99 latency. See
# bench/README.md, "Pools".
#
#   ROUNDS=3           measured rounds per shape and side
#   JOBS=200000        jobs per round and side (shape 3: JOBS/4)
#   TIME_SLICE=on      off: build the WorkerPool's VMs without a time slice
#   BASELINE_ENV=param how the baseline sets a job's _ENV: param (the chunk compiled as
#                      `function(_ENV, ...) <job> end`) or set_environment (mlua's
#                      Function::set_environment per job)
#   SHAPES=1,2,3,4     which shapes to run
#   SKIP_BUILD=1       do not run cargo build
#   OUT=FILE           also write the report (stdout) to FILE
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
export ROUNDS=${ROUNDS:-3}
export JOBS=${JOBS:-200000}
export TIME_SLICE=${TIME_SLICE:-on}
export BASELINE_ENV=${BASELINE_ENV:-param}
OUT=${OUT:-}
BIN=$BENCH_DIR/pools/target/release/pools

cd "$ROOT"
if [ -z "${SKIP_BUILD:-}" ]; then
  echo "[pools.sh] cargo build --release --manifest-path bench/pools/Cargo.toml" >&2
  cargo build --release --quiet --manifest-path "$BENCH_DIR/pools/Cargo.toml"
fi

if [ -n "$OUT" ]; then
  "$BIN" | tee "$OUT"
else
  "$BIN"
fi
