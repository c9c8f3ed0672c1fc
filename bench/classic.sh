#!/usr/bin/env bash
# Script-level benchmark: `luapool run FILE N` on each engine vs the bare interpreter,
# on five classic Benchmarks Game programs (bench/classic/*.lua). See bench/classic/README.md.
#
# For each benchmark and engine it first checks that luapool prints exactly what the
# interpreter prints, then times both in one hyperfine invocation and reports the medians
# and their ratio (luapool / interpreter; the target is at most 1.05):
#   lua54   lua5.4 FILE N     vs  target/engines/luapool-lua54 run FILE N
#   luajit  luajit FILE NJ    vs  target/engines/luapool-luajit run FILE NJ
#   lua55   no Debian interpreter: luapool-lua55's median alone, and its ratio to
#           luapool-lua54 (timed in the same hyperfine invocation as the lua54 pair)
#
# Environment (all optional):
#   ENGINES="lua54 luajit lua55"   which engines to build and measure
#   BENCHES="binary-trees fannkuch-redux mandelbrot n-body spectral-norm"
#   RUNS=5             hyperfine --runs per command and round
#   WARMUP=1           hyperfine --warmup per command (first round only)
#   ROUNDS=1           hyperfine invocations per benchmark and engine, command order reversed
#                      every other round; the median is over all rounds' runs
#                      (ROUNDS=5 RUNS=1 interleaves the commands run by run)
#   LUAPOOL_FLAGS=""   extra `luapool run` flags, e.g. "--cpu-limit 60 --memory-limit 1GiB"
#   SIZES=""           size overrides, "NAME=N" or "NAME=N:NJ" (NJ: the LuaJIT size), e.g.
#                      SIZES="n-body=100000 mandelbrot=500:2000"
#   QUICK=1            tiny sizes (the output checks' sizes): tests the script, not the speed
#   SKIP_BUILD=1       do not run cargo; reuse target/engines/luapool-ENGINE
#   OUT=FILE           also write the report (the tables) to FILE
#   LUA54=lua5.4  LUAJIT=luajit   the interpreters
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
cd "$ROOT"

ENGINES=${ENGINES:-lua54 luajit lua55}
BENCHES=${BENCHES:-binary-trees fannkuch-redux mandelbrot n-body spectral-norm}
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-1}
LUAPOOL_FLAGS=${LUAPOOL_FLAGS:-}
SIZES=${SIZES:-}
QUICK=${QUICK:-}
OUT=${OUT:-}
LUA54=${LUA54:-lua5.4}
LUAJIT=${LUAJIT:-luajit}
ENGINE_DIR=target/engines

# Default sizes: about 1-2 s each on lua5.4 on the 2-core dev machine (fannkuch-redux 10
# is ~2.8 s: 9 would be ~0.3 s), and 0.5-1.5 s on luajit (bigger N where N would be short).
declare -A SIZE_LUA=([binary-trees]=14 [fannkuch-redux]=10 [mandelbrot]=1000 [n-body]=500000 [spectral-norm]=600)
declare -A SIZE_JIT=([binary-trees]=15 [fannkuch-redux]=10 [mandelbrot]=3000 [n-body]=3000000 [spectral-norm]=2500)
declare -A SIZE_QUICK=([binary-trees]=8 [fannkuch-redux]=7 [mandelbrot]=64 [n-body]=1000 [spectral-norm]=50)

SCRATCH=$(mktemp -d -t luapool-classic.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM

log() { echo "[classic.sh] $*" >&2; }
die() { log "error: $*"; exit 1; }
# The report: stdout, and $OUT if set.
say() {
    printf '%s\n' "$*"
    if [ -n "$OUT" ]; then printf '%s\n' "$*" >>"$OUT"; fi
}
has_engine() { [[ " $ENGINES " == *" $1 "* ]]; }

for e in $ENGINES; do
    case $e in lua54 | luajit | lua55) ;; *) die "unknown engine '$e' (lua54, luajit, lua55)" ;; esac
done
for b in $BENCHES; do
    [ -n "${SIZE_LUA[$b]:-}" ] && [ -f "$BENCH_DIR/classic/$b.lua" ] || die "unknown benchmark '$b'"
done
if [ -n "$QUICK" ]; then
    for b in "${!SIZE_QUICK[@]}"; do SIZE_LUA[$b]=${SIZE_QUICK[$b]}; SIZE_JIT[$b]=${SIZE_QUICK[$b]}; done
fi
for kv in $SIZES; do
    b=${kv%%=*} v=${kv#*=}
    [ -n "${SIZE_LUA[$b]:-}" ] && [ "$b" != "$kv" ] || die "bad SIZES entry '$kv' (NAME=N or NAME=N:NJ)"
    SIZE_LUA[$b]=${v%%:*}
    if [[ $v == *:* ]]; then SIZE_JIT[$b]=${v#*:}; else SIZE_JIT[$b]=${v%%:*}; fi
done
# shellcheck disable=SC2206
FLAGS=($LUAPOOL_FLAGS)

# ---------------------------------------------------------------- tools
# Debian packages for what is missing (lua5.4 is the reference for lua55 too).
missing=()
if has_engine lua54 || has_engine lua55; then command -v "$LUA54" >/dev/null || missing+=(lua5.4); fi
if has_engine luajit; then command -v "$LUAJIT" >/dev/null || missing+=(luajit2); fi
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if has_engine lua54 || has_engine lua55; then command -v "$LUA54" >/dev/null || die "$LUA54 not found"; fi
if has_engine luajit; then command -v "$LUAJIT" >/dev/null || die "$LUAJIT not found"; fi

# ---------------------------------------------------------------- build
# One target dir for all engines, so each build's target/release/luapool is copied away.
if [ -z "${SKIP_BUILD:-}" ]; then
    mkdir -p "$ENGINE_DIR"
    for e in $ENGINES; do
        log "building luapool for $e (cargo build --release --no-default-features --features $e)"
        cargo build --release --quiet --no-default-features --features "$e" || die "luapool build for $e failed"
        cp target/release/luapool "$ENGINE_DIR/luapool-$e"
    done
fi
for e in $ENGINES; do
    [ -x "$ENGINE_DIR/luapool-$e" ] || die "no $ENGINE_DIR/luapool-$e (run without SKIP_BUILD=1)"
done

# ---------------------------------------------------------------- helpers
# median and relative standard deviation per command name over hyperfine JSON files
STATS=$BENCH_DIR/hyperfine-stats.py

# run_out FILE_FOR_STDOUT CMD... : run a command, its stdout to the file; die on failure
run_out() {
    local out=$1
    shift
    if ! "$@" >"$out" 2>"$SCRATCH/stderr"; then
        log "'$*' failed; its stderr:"
        tail -n 20 "$SCRATCH/stderr" >&2
        die "benchmark run failed"
    fi
}
# same_output REF_FILE GOT_FILE WHAT : die loudly when they differ
same_output() {
    if ! cmp -s "$1" "$2"; then
        log "OUTPUT MISMATCH: $3"
        diff "$1" "$2" | head -n 20 >&2 || true
        die "outputs differ"
    fi
}
luapool_cmd() { # engine file n -> argv of a luapool run
    printf '%s\n' "$ENGINE_DIR/luapool-$1" run "${FLAGS[@]}" "$2" "$3"
}
quote() { printf '%q ' "$@"; }

declare -A MED=() NOISE=() # "bench|command name" -> median s, relative stddev %

# time_group BENCH NAME:ARGV-FILE... : time the commands (argv files, one word a line) in
# one hyperfine invocation per round, order reversed every other round; fill MED and NOISE
time_group() {
    local bench=$1 r w json name med noise n s
    shift
    local -a specs=("$@") list jsons=() hf cmds argv
    for ((r = 1; r <= ROUNDS; r++)); do
        list=("${specs[@]}")
        if ((r % 2 == 0)); then mapfile -t list < <(printf '%s\n' "${specs[@]}" | tac); fi
        hf=(hyperfine -N --style none --runs "$RUNS")
        w=0
        if ((r == 1)); then w=$WARMUP; fi
        hf+=(--warmup "$w")
        cmds=()
        for s in "${list[@]}"; do
            hf+=(-n "${s%%:*}")
            mapfile -t argv <"${s#*:}"
            cmds+=("$(quote "${argv[@]}")")
        done
        json=$SCRATCH/$bench.$r.$RANDOM.json
        "${hf[@]}" --export-json "$json" "${cmds[@]}" >&2 || die "hyperfine failed for $bench"
        jsons+=("$json")
    done
    while read -r name med noise n; do
        MED[$bench|$name]=$med
        NOISE[$bench|$name]=$noise
    done < <(python3 "$STATS" "${jsons[@]}")
}

fmt3() { awk -v x="$1" 'BEGIN { printf "%.3f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a / b; else print "n/a" }'; }
maxf() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (a > b) ? a : b }'; }
geomean() { # numbers... -> geometric mean ("n/a" if none)
    printf '%s\n' "$@" | awk '$1 > 0 { s += log($1); n++ } END { if (n) printf "%.6f", exp(s / n); else print "n/a" }'
}

luapool_rev() {
    local rev
    rev=$(git rev-parse --short HEAD 2>/dev/null) || { echo '?'; return; }
    if [ -n "$(git status --porcelain -- src crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        rev="$rev+dirty"
    fi
    echo "$rev"
}

# ---------------------------------------------------------------- runs
START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CONTEXT=()   # benchmarks with a luajit run at the Lua 5.x size, for the speedup line
for b in $BENCHES; do
    f=bench/classic/$b.lua n=${SIZE_LUA[$b]} nj=${SIZE_JIT[$b]}
    # --- the Lua 5.x group: lua5.4, luapool-lua54, luapool-lua55 (and luajit at N, context)
    if has_engine lua54 || has_engine lua55; then
        log "$b $n: checking outputs"
        run_out "$SCRATCH/ref.out" "$LUA54" "$f" "$n"
        specs=()
        if has_engine lua54; then
            printf '%s\n' "$LUA54" "$f" "$n" >"$SCRATCH/$b.lua5.4.argv"
            specs+=("lua5.4:$SCRATCH/$b.lua5.4.argv")
        fi
        for e in lua54 lua55; do
            has_engine "$e" || continue
            luapool_cmd "$e" "$f" "$n" >"$SCRATCH/$b.$e.argv"
            mapfile -t argv <"$SCRATCH/$b.$e.argv"
            run_out "$SCRATCH/got.out" "${argv[@]}"
            same_output "$SCRATCH/ref.out" "$SCRATCH/got.out" "$b $n: luapool-$e vs $LUA54"
            specs+=("luapool-$e:$SCRATCH/$b.$e.argv")
        done
        if has_engine luajit && has_engine lua54; then
            # the engines must agree with each other too
            run_out "$SCRATCH/got.out" "$LUAJIT" "$f" "$n"
            same_output "$SCRATCH/ref.out" "$SCRATCH/got.out" "$b $n: $LUAJIT vs $LUA54"
            if [ "$n" != "$nj" ]; then
                printf '%s\n' "$LUAJIT" "$f" "$n" >"$SCRATCH/$b.luajit-n.argv"
                specs+=("luajit@N:$SCRATCH/$b.luajit-n.argv")
            fi
            CONTEXT+=("$b")
        fi
        log "$b $n: timing ${specs[*]%%:*}"
        time_group "$b" "${specs[@]}"
    fi
    # --- the LuaJIT group
    if has_engine luajit; then
        log "$b $nj: checking outputs (luajit)"
        run_out "$SCRATCH/ref.out" "$LUAJIT" "$f" "$nj"
        luapool_cmd luajit "$f" "$nj" >"$SCRATCH/$b.luajit.argv"
        mapfile -t argv <"$SCRATCH/$b.luajit.argv"
        run_out "$SCRATCH/got.out" "${argv[@]}"
        same_output "$SCRATCH/ref.out" "$SCRATCH/got.out" "$b $nj: luapool-luajit vs $LUAJIT"
        printf '%s\n' "$LUAJIT" "$f" "$nj" >"$SCRATCH/$b.luajit-i.argv"
        log "$b $nj: timing luajit luapool-luajit"
        time_group "$b" "luajit:$SCRATCH/$b.luajit-i.argv" "luapool-luajit:$SCRATCH/$b.luajit.argv"
        if [ "${SIZE_LUA[$b]}" = "$nj" ]; then MED[$b|luajit@N]=${MED[$b|luajit]}; fi
    fi
done

# ---------------------------------------------------------------- report
version_of() { "$1" -v 2>&1 | head -n1 | awk '{ print $1, $2 }'; }
versions=()
if has_engine lua54 || has_engine lua55; then versions+=("$(version_of "$LUA54")"); fi
if has_engine luajit; then versions+=("$(version_of "$LUAJIT") ($(dpkg-query -W -f='${Version}' luajit2 2>/dev/null || echo '?'))"); fi
say "# luapool classic benchmarks: luapool run vs the bare interpreter"
say ""
info="$START, $(nproc) cores, luapool $(luapool_rev)"
for v in "${versions[@]}"; do info="$info, $v"; done
say "$info, $(hyperfine --version)"
say "load average at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
say "hyperfine -N --warmup $WARMUP --runs $RUNS, rounds=$ROUNDS (median over all runs); LUAPOOL_FLAGS='${LUAPOOL_FLAGS}'${QUICK:+; QUICK sizes: the times mean nothing}"
say ""

declare -A RATIOS=() INTERP=() LUAPOOL=()
if has_engine lua54 || has_engine luajit; then
    say "| benchmark | engine | N | interpreter s | luapool s | luapool/interpreter | σ/median % |"
    say "|---|---|---|---|---|---|---|"
    for e in lua54 luajit; do
        has_engine "$e" || continue
        if [ "$e" = lua54 ]; then interp=lua5.4; else interp=luajit; fi
        for b in $BENCHES; do
            if [ "$e" = lua54 ]; then n=${SIZE_LUA[$b]}; else n=${SIZE_JIT[$b]}; fi
            i=${MED[$b|$interp]} l=${MED[$b|luapool-$e]}
            rt=$(ratio "$l" "$i")
            RATIOS[$e]="${RATIOS[$e]:-} $rt"
            INTERP[$e]="${INTERP[$e]:-} $i"
            LUAPOOL[$e]="${LUAPOOL[$e]:-} $l"
            say "| $b | $e | $n | $(fmt3 "$i") | $(fmt3 "$l") | $rt | $(maxf "${NOISE[$b|$interp]}" "${NOISE[$b|luapool-$e]}") |"
        done
        # shellcheck disable=SC2086
        say "| **geomean** | $e | | $(fmt3 "$(geomean ${INTERP[$e]})") | $(fmt3 "$(geomean ${LUAPOOL[$e]})") | **$(ratio "$(geomean ${LUAPOOL[$e]})" "$(geomean ${INTERP[$e]})")** | |"
    done
    say ""
    for e in lua54 luajit; do
        has_engine "$e" || continue
        # shellcheck disable=SC2086
        g=$(geomean ${RATIOS[$e]})
        verdict=$(awk -v g="$g" 'BEGIN { if (g <= 1.05) print "within"; else print "OVER" }')
        say "luapool-$e overhead over the interpreter (geomean): $(awk -v g="$g" 'BEGIN { printf "%+.1f %%", (g - 1) * 100 }'), $verdict the 5 % target"
    done
    say ""
fi

if has_engine lua55; then
    say "## lua55 (no Debian interpreter: luapool-lua55 alone, and vs luapool-lua54; informative)"
    say ""
    say "| benchmark | N | luapool-lua54 s | luapool-lua55 s | lua55/lua54 | σ/median % |"
    say "|---|---|---|---|---|---|"
    l54s=() l55s=()
    for b in $BENCHES; do
        a=${MED[$b|luapool-lua54]:-0} c=${MED[$b|luapool-lua55]}
        l55s+=("$c")
        if has_engine lua54; then
            l54s+=("$a")
            say "| $b | ${SIZE_LUA[$b]} | $(fmt3 "$a") | $(fmt3 "$c") | $(ratio "$c" "$a") | $(maxf "${NOISE[$b|luapool-lua55]}" "${NOISE[$b|luapool-lua54]}") |"
        else
            say "| $b | ${SIZE_LUA[$b]} | n/a | $(fmt3 "$c") | n/a | $(maxf "${NOISE[$b|luapool-lua55]}" 0) |"
        fi
    done
    if has_engine lua54; then
        say "| **geomean** | | $(fmt3 "$(geomean "${l54s[@]}")") | $(fmt3 "$(geomean "${l55s[@]}")") | **$(ratio "$(geomean "${l55s[@]}")" "$(geomean "${l54s[@]}")")** | |"
    else
        say "| **geomean** | | n/a | $(fmt3 "$(geomean "${l55s[@]}")") | n/a | |"
    fi
    say ""
fi

if [ ${#CONTEXT[@]} -gt 0 ]; then
    a=() c=()
    for b in "${CONTEXT[@]}"; do a+=("${MED[$b|lua5.4]}"); c+=("${MED[$b|luajit@N]}"); done
    say "context: luajit is $(ratio "$(geomean "${a[@]}")" "$(geomean "${c[@]}")")× as fast as lua5.4 (geomean of the interpreters' medians at the Lua 5.x sizes, ${#CONTEXT[@]} benchmarks)"
fi
