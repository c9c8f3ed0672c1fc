"""Median and relative standard deviation per command over hyperfine JSON exports.

Usage: python3 bench/hyperfine-stats.py RUN.json...
Prints one line per command: NAME MEDIAN_SECONDS SIGMA_PERCENT RUNS (runs of the same
command in several files are pooled). Used by bench/classic.sh and bench/checkhook.sh.
"""
import json
import statistics
import sys

times = {}
for path in sys.argv[1:]:
    with open(path) as f:
        for r in json.load(f)["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
for name, ts in times.items():
    med = statistics.median(ts)
    sd = statistics.stdev(ts) if len(ts) > 1 else 0.0
    print(name, "%.6f" % med, "%.2f" % (100 * sd / med if med > 0 else 0.0), len(ts))
