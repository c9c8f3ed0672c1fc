#!/usr/bin/env bash
# What LuaJIT's compile-time option LUAJIT_ENABLE_CHECKHOOK costs. luapool builds its vendored
# LuaJIT with TARGET_CFLAGS=-DLUAJIT_ENABLE_CHECKHOOK (.cargo/config.toml), so that every
# compiled trace loads g->hookmask (a volatile load, an AND and a guard; lj_record.c,
# lj_record_setup) and exits to the interpreter once a hook is armed: that is how a count hook
# armed from a signal handler (luapool's CPU and wall-clock limits) stops a JIT-compiled
# `while true do end`. Without it such a hook never fires while the loop runs in a trace.
#
# The script builds the luajit-src crate's LuaJIT tree twice in a scratch dir (`make`, with
# and without TARGET_CFLAGS=-DLUAJIT_ENABLE_CHECKHOOK; no cargo), then
#   1. proves the option works, with the `luajit` CLI's own Ctrl-C handler (luajit.c
#      `laction`, which arms a count hook from the SIGINT handler): a JIT-compiled infinite
#      loop gets SIGINT after INT_AFTER s, and SIGKILL KILL_AFTER s later if still running;
#      plus a look at the loop's trace IR (-jdump=i) for the hook-mask load;
#   2. times the classic benchmarks (bench/classic/*.lua, at bench/classic.sh's LuaJIT
#      sizes) and a tight numeric loop (~21 instructions an iteration on x86-64,
#      lj_vm_modi's included, of which the check is two: `test byte [hookmask], 0xc; jnz`)
#      on both binaries, both commands in one hyperfine invocation, and reports the medians
#      and their ratio (checkhook / no-checkhook) with the geometric mean.
#
# Environment (all optional):
#   LUAJIT_SRC=DIR     the LuaJIT source tree (default: the newest
#                      ~/.cargo/registry/src/*/luajit-src-*/luajit2)
#   BENCHES="binary-trees fannkuch-redux mandelbrot n-body spectral-norm tight-loop"
#   RUNS=5             hyperfine --runs per command and round
#   WARMUP=1           hyperfine --warmup per command (first round only)
#   ROUNDS=1           hyperfine invocations per benchmark, command order reversed every other
#                      round; the median is over all rounds' runs
#   SIZES=""           size overrides "NAME=N", e.g. SIZES="n-body=1000000 tight-loop=1e8"
#   QUICK=1            tiny sizes: tests the script, not the speed
#   JOBS=2             make -j
#   WORK=DIR           build (and keep) the two trees in DIR instead of a deleted temp dir
#   SKIP_BUILD=1       reuse WORK's builds (WORK/no-checkhook, WORK/checkhook)
#   INT_AFTER=1 KILL_AFTER=2   the interrupt test's SIGINT and SIGKILL delays, in seconds
#   OUT=FILE           also write the report to FILE
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
cd "$ROOT"

BENCHES=${BENCHES:-binary-trees fannkuch-redux mandelbrot n-body spectral-norm tight-loop}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-1}
SIZES=${SIZES:-}
QUICK=${QUICK:-}
JOBS=${JOBS:-2}
INT_AFTER=${INT_AFTER:-1}
KILL_AFTER=${KILL_AFTER:-2}
OUT=${OUT:-}

# The LuaJIT sizes of bench/classic.sh (SIZE_JIT), and the tight loop's iteration count.
declare -A SIZE=([binary-trees]=15 [fannkuch-redux]=10 [mandelbrot]=3000 [n-body]=3000000
    [spectral-norm]=2500 [tight-loop]=3e8)
declare -A SIZE_QUICK=([binary-trees]=8 [fannkuch-redux]=7 [mandelbrot]=64 [n-body]=1000
    [spectral-norm]=50 [tight-loop]=1e6)

SCRATCH=$(mktemp -d -t luapool-checkhook.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM

log() { echo "[checkhook.sh] $*" >&2; }
die() { log "error: $*"; exit 1; }
say() {
    printf '%s\n' "$*"
    if [ -n "$OUT" ]; then printf '%s\n' "$*" >>"$OUT"; fi
}

for b in $BENCHES; do
    [ -n "${SIZE[$b]:-}" ] || die "unknown benchmark '$b'"
done
if [ -n "$QUICK" ]; then
    for b in "${!SIZE_QUICK[@]}"; do SIZE[$b]=${SIZE_QUICK[$b]}; done
fi
for kv in $SIZES; do
    b=${kv%%=*}
    [ -n "${SIZE[$b]:-}" ] && [ "$b" != "$kv" ] || die "bad SIZES entry '$kv' (NAME=N)"
    SIZE[$b]=${kv#*=}
done
for t in hyperfine python3 make cc timeout; do
    command -v "$t" >/dev/null || die "$t not found"
done

# ---------------------------------------------------------------- source
if [ -z "${LUAJIT_SRC:-}" ]; then
    LUAJIT_SRC=$(printf '%s\n' "$HOME"/.cargo/registry/src/*/luajit-src-*/luajit2 |
        awk -F/ '{ print $(NF - 1) "\t" $0 }' | sort -V | tail -n1 | cut -f2)
fi
[ -f "$LUAJIT_SRC/src/lj_record.c" ] ||
    die "no LuaJIT source at '$LUAJIT_SRC' (set LUAJIT_SRC, or build luapool with --features luajit once)"
grep -q LUAJIT_ENABLE_CHECKHOOK "$LUAJIT_SRC/src/lj_record.c" ||
    die "$LUAJIT_SRC/src/lj_record.c knows no LUAJIT_ENABLE_CHECKHOOK"

# ---------------------------------------------------------------- build
# As the luajit-src crate builds it: a copy of the tree, its luajit_relver.txt as .relver
# (the version string's release number), BUILDMODE=static, XCFLAGS=-fPIC; TARGET_CFLAGS (an
# environment variable, read by LuaJIT's Makefile) is the only difference.
WORK=${WORK:-$SCRATCH/build}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
declare -A BIN=([no-checkhook]=$WORK/no-checkhook/src/luajit [checkhook]=$WORK/checkhook/src/luajit)
VARIANTS=(no-checkhook checkhook)
build() { # variant
    local v=$1 dir=$WORK/$1
    local -a envs=(-u TARGET_CFLAGS)
    if [ "$v" = checkhook ]; then envs=(TARGET_CFLAGS=-DLUAJIT_ENABLE_CHECKHOOK); fi
    rm -rf "$dir"
    cp -R "$LUAJIT_SRC" "$dir"
    if [ -f "$LUAJIT_SRC/../luajit_relver.txt" ]; then
        cp "$LUAJIT_SRC/../luajit_relver.txt" "$dir/.relver"
        chmod u+w "$dir/.relver"
    fi
    log "building $v in $dir (${envs[*]} make -j$JOBS BUILDMODE=static XCFLAGS=-fPIC)"
    if ! env "${envs[@]}" make -C "$dir" -j"$JOBS" BUILDMODE=static XCFLAGS=-fPIC \
        >"$dir.build.log" 2>&1; then
        tail -n 30 "$dir.build.log" >&2
        die "the $v build failed (log: $dir.build.log)"
    fi
}
if [ -z "${SKIP_BUILD:-}" ]; then
    for v in "${VARIANTS[@]}"; do build "$v"; done
fi
for v in "${VARIANTS[@]}"; do
    [ -x "${BIN[$v]}" ] || die "no ${BIN[$v]} (run without SKIP_BUILD=1)"
done
VERSION=$("${BIN[checkhook]}" -v | head -n1)
[ "$VERSION" = "$("${BIN[no-checkhook]}" -v | head -n1)" ] || die "the two builds' versions differ"

START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
luapool_rev() {
    local rev
    rev=$(git rev-parse --short HEAD 2>/dev/null) || { echo '?'; return; }
    if [ -n "$(git status --porcelain -- src crates Cargo.toml Cargo.lock .cargo 2>/dev/null)" ]; then
        rev="$rev+dirty"
    fi
    echo "$rev"
}
say "# LUAJIT_ENABLE_CHECKHOOK: what it does and what it costs"
say ""
say "$START, $(nproc) cores, luapool $(luapool_rev), $VERSION, $(cc --version | head -n1), $(hyperfine --version)"
say "source: $LUAJIT_SRC"
say "builds: make -j$JOBS BUILDMODE=static XCFLAGS=-fPIC, with and without TARGET_CFLAGS=-DLUAJIT_ENABLE_CHECKHOOK"
say "load average at start: $LOAD_START"
say ""

# ---------------------------------------------------------------- 1. the proof
LOOP='local x = 0 while true do x = x + 1 end'
say "## interrupt test: SIGINT after ${INT_AFTER} s to \`luajit -e '$LOOP'\`, SIGKILL ${KILL_AFTER} s later"
say ""
say "(\`timeout --foreground --preserve-status -s INT -k $KILL_AFTER $INT_AFTER luajit ...\`: the luajit CLI's SIGINT handler arms a count hook; exit 137 = still running, SIGKILLed)"
say ""
say "| build | exit code | elapsed s | outcome | stderr, first line |"
say "|---|---|---|---|---|"
declare -A STOPPED=()
interrupt_test() { # label luajit-argv...
    local label=$1 rc=0 t0 t1 el first outcome
    shift
    t0=$(date +%s%N)
    # --foreground: signal luajit only. Otherwise timeout sends SIGINT to luajit and then to
    # its whole process group, and a second SIGINT after laction (which resets SIGINT to
    # SIG_DFL, "double Ctrl-C") kills luajit before the hook fires (exit 130, no message).
    timeout --foreground --preserve-status -s INT -k "$KILL_AFTER" "$INT_AFTER" "$@" -e "$LOOP" \
        >/dev/null 2>"$SCRATCH/int.err" </dev/null || rc=$?
    t1=$(date +%s%N)
    el=$(awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f", ns / 1e9 }')
    first=$(head -n1 "$SCRATCH/int.err" | sed "s|$WORK/||g")
    if grep -q 'interrupted!' "$SCRATCH/int.err"; then
        outcome="stopped by SIGINT"
        STOPPED[$label]=1
    elif [ "$rc" = 137 ]; then
        outcome="kept running, SIGKILLed"
        STOPPED[$label]=0
    elif [ "$rc" = 130 ]; then
        outcome="died of a second SIGINT (no hook involved)"
        STOPPED[$label]=?
    else
        outcome="?"
        STOPPED[$label]=?
    fi
    say "| $label | $rc | $el | $outcome | \`${first:-(empty)}\` |"
}
interrupt_test no-checkhook "${BIN[no-checkhook]}"
interrupt_test checkhook "${BIN[checkhook]}"
interrupt_test "no-checkhook -joff (control: interpreter only)" "${BIN[no-checkhook]}" -joff
say ""
if [ "${STOPPED[checkhook]}" = 1 ] && [ "${STOPPED[no-checkhook]}" = 0 ]; then
    say "as expected: only the CHECKHOOK build stops a JIT-compiled loop on an asynchronously armed hook"
else
    say "UNEXPECTED: the interrupt test did not come out as CHECKHOOK on / off should"
fi

# The loop's trace IR: the CHECKHOOK build loads g->hookmask (XLOAD ... volatile), ANDs it with
# LUA_MASKLINE|LUA_MASKCOUNT (+12) and guards that it is 0. jit.dump is in the build's src/jit.
for v in "${VARIANTS[@]}"; do
    LUA_PATH="$WORK/$v/src/?.lua;;" "${BIN[$v]}" -jdump=i \
        -e 'local x = 0 for i = 1, 1000 do x = x + i end' >"$SCRATCH/$v.dump" 2>&1 ||
        log "warning: -jdump=i failed for $v"
done
say ""
say "trace IR of \`for i = 1, 1000 do x = x + i end\` (luajit -jdump=i): XLOAD / BAND lines"
say '```'
for v in "${VARIANTS[@]}"; do
    n=$(grep -cE ' XLOAD | BAND ' "$SCRATCH/$v.dump" || true)
    say "$v: $n line(s)"
    while IFS= read -r line; do say "  $line"; done < <(grep -E ' XLOAD | BAND ' "$SCRATCH/$v.dump" || true)
done
say '```'
say ""

# ---------------------------------------------------------------- 2. timing
cat >"$SCRATCH/tight-loop.lua" <<'EOF'
-- a tight numeric loop: ~21 x86-64 instructions per iteration, of which the hook check is two
local n = tonumber(arg and arg[1]) or 3e8
local x = 0
for i = 1, n do x = x + i % 7 end
print(x)
EOF
bench_file() { # bench -> its Lua file
    if [ "$1" = tight-loop ]; then echo "$SCRATCH/tight-loop.lua"; else echo "$BENCH_DIR/classic/$1.lua"; fi
}

STATS=$BENCH_DIR/hyperfine-stats.py

quote() { printf '%q ' "$@"; }
declare -A MED=() NOISE=() COUNT=()
# time_bench BENCH: both binaries in one hyperfine invocation per round, order reversed
# every other round; fills MED, NOISE and COUNT
time_bench() {
    local b=$1 f n r w json name med noise cnt
    local -a jsons=() hf list
    f=$(bench_file "$b") n=${SIZE[$b]}
    for ((r = 1; r <= ROUNDS; r++)); do
        list=("${VARIANTS[@]}")
        if ((r % 2 == 0)); then list=("${VARIANTS[1]}" "${VARIANTS[0]}"); fi
        w=0
        if ((r == 1)); then w=$WARMUP; fi
        hf=(hyperfine -N --style none --warmup "$w" --runs "$RUNS")
        for v in "${list[@]}"; do hf+=(-n "$v"); done
        for v in "${list[@]}"; do hf+=("$(quote "${BIN[$v]}" "$f" "$n")"); done
        json=$SCRATCH/$b.$r.json
        "${hf[@]}" --export-json "$json" >&2 || die "hyperfine failed for $b"
        jsons+=("$json")
    done
    while read -r name med noise cnt; do
        MED[$b|$name]=$med NOISE[$b|$name]=$noise COUNT[$b]=$cnt
    done < <(python3 "$STATS" "${jsons[@]}")
}

for b in $BENCHES; do
    f=$(bench_file "$b") n=${SIZE[$b]}
    log "$b $n: checking that both builds print the same"
    for v in "${VARIANTS[@]}"; do
        "${BIN[$v]}" "$f" "$n" >"$SCRATCH/$b.$v.out" 2>"$SCRATCH/stderr" ||
            { tail -n 20 "$SCRATCH/stderr" >&2; die "$v failed on $b"; }
    done
    cmp -s "$SCRATCH/$b.no-checkhook.out" "$SCRATCH/$b.checkhook.out" ||
        { diff "$SCRATCH/$b.no-checkhook.out" "$SCRATCH/$b.checkhook.out" | head -n 20 >&2; die "$b: outputs differ"; }
    log "$b $n: timing"
    time_bench "$b"
done

fmt3() { awk -v x="$1" 'BEGIN { printf "%.3f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else print "n/a" }'; }
maxf() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a > b) ? a : b }'; }
geomean() { # numbers... -> geometric mean ("n/a" if none)
    printf '%s\n' "$@" | awk '$1 > 0 { s += log($1); n++ } END { if (n) printf "%.3f", exp(s / n); else print "n/a" }'
}
pct() { awk -v g="$1" 'BEGIN { if (g == "n/a") print "n/a"; else printf "%+.1f %%", (g - 1) * 100 }'; }

say "## timing: checkhook / no-checkhook"
say ""
say "hyperfine -N --warmup $WARMUP --runs $RUNS, rounds=$ROUNDS (median over all runs), both builds in one invocation${QUICK:+; QUICK sizes: the times mean nothing}"
say ""
say "| benchmark | N | no-checkhook median s | checkhook median s | checkhook/no-checkhook | σ/median % | runs |"
say "|---|---|---|---|---|---|---|"
classic=() all=()
for b in $BENCHES; do
    a=${MED[$b|no-checkhook]} c=${MED[$b|checkhook]}
    rt=$(ratio "$c" "$a")
    all+=("$rt")
    if [ "$b" != tight-loop ]; then classic+=("$rt"); fi
    say "| $b | ${SIZE[$b]} | $(fmt3 "$a") | $(fmt3 "$c") | $rt | $(maxf "${NOISE[$b|no-checkhook]}" "${NOISE[$b|checkhook]}") | ${COUNT[$b]} |"
done
if [ ${#classic[@]} -gt 0 ]; then
    g=$(geomean "${classic[@]}")
    say "| **geomean, classic (${#classic[@]})** | | | | **$g** | | |"
fi
if [ ${#all[@]} -gt ${#classic[@]} ] && [ ${#all[@]} -gt 1 ]; then
    ga=$(geomean "${all[@]}")
    say "| **geomean, all (${#all[@]})** | | | | **$ga** | | |"
fi
say ""
if [ ${#classic[@]} -gt 0 ]; then say "checkhook cost on the classic benchmarks (geomean): $(pct "$g")"; fi
if [[ " $BENCHES " == *" tight-loop "* ]]; then
    say "checkhook cost on the tight loop: $(pct "$(ratio "${MED[tight-loop|checkhook]}" "${MED[tight-loop|no-checkhook]}")")"
fi
say "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
