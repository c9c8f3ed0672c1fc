#!/usr/bin/env python3
"""Runs the official Lua test suite files one by one: reference vs luapool.

Usage: bench/lua-testes.py [options] TESTES_DIR

TESTES_DIR holds the `testes/*.lua` files of Lua 5.4 or 5.5 (the `lua-5.x.y-tests`
distribution; not shipped with luapool). Each file except the driver `all.lua` runs
alone, in "soft" mode as `all.lua` runs it with `_soft` and `_port` set (no heavy tests,
nothing non-portable), from TESTES_DIR, in these configurations:

  reference   the engine's own interpreter (`tests/reference.rs` in reference mode:
              mlua's state with every library open, running the file as `lua` would)
  trusted     `luapool run --trusted PRELUDE`, the prelude `_soft = true; _port = true;
              return dofile(FILE)`, as for the reference: the prelude's globals reach the
              file only if dofile binds to the script's globals
  trusted-1   `luapool run --trusted` on a copy of FILE whose first line (the second
              after a `#` line) starts with `_soft, _port = true, true;` (one chunk: line
              numbers and the chunk name stay those of FILE)
  sandboxed   `luapool run` on that same copy (the sandbox has no dofile)

A file passes when the run exits with status 0 within the timeout. Files the reference
fails are listed but left out of the totals. Prints one row per file (with the first
line of each failure's message) and the totals.

Options:
  --engine lua54|lua55   the engine to build (default: lua54 for a 5.4 suite, lua55
                         for 5.5, from `all.lua`'s version line)
  --release              build and run release binaries (default: debug, faster to build)
  --timeout SECONDS      per file and configuration (default 300)
  --only NAME[,NAME...]  run only these files (without `.lua`)
  --skip NAME[,NAME...]  skip these files (default: heavy, which all.lua never runs)
  --no-build             reuse target/testes/ENGINE/ from an earlier run
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ["reference", "trusted", "trusted-1", "sandboxed"]


def log(msg):
    print(f"[lua-testes] {msg}", file=sys.stderr, flush=True)


def detect_engine(testes: Path) -> str:
    text = (testes / "all.lua").read_text(errors="replace")
    m = re.search(r'Lua 5\.(\d)', text)
    if m and m.group(1) == "5":
        return "lua55"
    return "lua54"


def build(engine: str, release: bool, out: Path):
    """Builds `luapool` and the reference test binary for ENGINE; copies both to OUT."""
    features = ["--no-default-features", "--features", engine]
    profile = ["--release"] if release else []
    log(f"building luapool and the reference ({engine}, {'release' if release else 'debug'})")
    subprocess.run(["cargo", "build", "-q", "--bin", "luapool", *profile, *features],
                   cwd=ROOT, check=True)
    target = ROOT / "target" / ("release" if release else "debug")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target / "luapool", out / "luapool")
    proc = subprocess.run(
        ["cargo", "test", "-q", "--no-run", "--test", "reference", "--message-format=json",
         *profile, *features],
        cwd=ROOT, check=True, capture_output=True, text=True)
    exe = None
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "reference" \
                and msg.get("executable"):
            exe = msg["executable"]
    if not exe:
        sys.exit("lua-testes: cannot find the reference test binary in cargo's output")
    shutil.copy2(exe, out / "reference")


def first_error(stderr: str) -> str:
    for line in stderr.splitlines():
        line = line.strip()
        if line and not line.startswith("stack traceback"):
            return line[:150]
    return ""


def run(cmd, cwd: Path, timeout: float, env=None):
    """(passed, seconds, message) of one run."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return False, timeout, f"timeout after {timeout:.0f} s"
    secs = time.monotonic() - start
    if proc.returncode == 0:
        return True, secs, ""
    msg = first_error(proc.stderr.decode(errors="replace")) or f"exit status {proc.returncode}"
    return False, secs, msg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("testes", type=Path)
    ap.add_argument("--engine", choices=["lua54", "lua55"])
    ap.add_argument("--release", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--only", default="")
    ap.add_argument("--skip", default="heavy")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    testes = args.testes.resolve()
    if not (testes / "all.lua").exists():
        sys.exit(f"lua-testes: {testes} has no all.lua: not a Lua testes directory")
    engine = args.engine or detect_engine(testes)
    bins = ROOT / "target" / "testes" / engine
    if not args.no_build:
        build(engine, args.release, bins)
    luapool, reference = bins / "luapool", bins / "reference"

    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    files = sorted(p.name for p in testes.glob("*.lua") if p.name != "all.lua")
    files = [f for f in files if (not only or f[:-4] in only) and f[:-4] not in skip]

    # Scratch: a copy of the suite (the tests read and write files next to themselves),
    # where each file gets its one-chunk variant and its prelude.
    scratch = Path(tempfile.mkdtemp(prefix="luapool-testes."))
    work = scratch / "testes"
    shutil.copytree(testes, work)
    inline = scratch / "inline"
    shutil.copytree(testes, inline)
    env = dict(os.environ, RUST_LOG="warn")
    for var in ["LUA_INIT", "LUA_INIT_5_4", "LUA_INIT_5_5", "LUA_PATH", "LUA_PATH_5_4", "LUA_PATH_5_5"]:
        env.pop(var, None)

    results = {}
    try:
        for name in files:
            prelude = work / f"prelude-{name}"
            prelude.write_text(f"_soft = true; _port = true\nreturn dofile({json.dumps(name)})\n")
            src = (testes / name).read_bytes()
            # (after a first line starting with '#', which Lua skips)
            cut = src.index(b"\n") + 1 if src.startswith(b"#") and b"\n" in src else 0
            (inline / name).write_bytes(src[:cut] + b"_soft, _port = true, true; " + src[cut:])
            row = {}
            row["reference"] = run([str(reference)], work, args.timeout,
                                   dict(env, LUAPOOL_REFERENCE_LUA=prelude.name))
            row["trusted"] = run([str(luapool), "run", "--trusted", prelude.name], work, args.timeout, env)
            row["trusted-1"] = run([str(luapool), "run", "--trusted", name], inline, args.timeout, env)
            row["sandboxed"] = run([str(luapool), "run", name], inline, args.timeout, env)
            results[name] = row
            log(f"{name}: " + " ".join(f"{c}={'pass' if row[c][0] else 'FAIL'}" for c in CONFIGS))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    report(engine, results)


def report(engine, results):
    print(f"Lua test suite, soft mode, one file at a time ({engine}):\n")
    print(f"| file | {' | '.join(CONFIGS)} |")
    print("|---|" + "---|" * len(CONFIGS))
    totals = {c: 0 for c in CONFIGS}
    counted = 0
    notes = []
    for name, row in results.items():
        cells = []
        for c in CONFIGS:
            ok, secs, msg = row[c]
            cells.append(f"pass ({secs:.1f} s)" if ok else "FAIL")
            if not ok:
                notes.append(f"{name} {c}: {msg}")
        excluded = not row["reference"][0]
        if not excluded:
            counted += 1
            for c in CONFIGS:
                totals[c] += row[c][0]
        label = f"{name} (excluded)" if excluded else name
        print(f"| {label} | {' | '.join(cells)} |")
    print(f"| **total** (of {counted}) | {' | '.join(str(totals[c]) for c in CONFIGS)} |")
    if notes:
        print("\nFailures (first line of each message):\n")
        for n in notes:
            print(f"- {n}")


if __name__ == "__main__":
    main()
