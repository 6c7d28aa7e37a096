#!/usr/bin/env python3
"""Medians of bench/ab_compare.sh runs, before vs after: tbproxy and load-generator CPU µs per call
and events/s.

    python3 bench/ab_summary.py DIR
"""
import collections
import glob
import json
import os
import statistics
import sys

results = sys.argv[1] if len(sys.argv) > 1 else "/tmp/tbproxy-ab"
rows = collections.defaultdict(dict)
for path in glob.glob(os.path.join(results, "*.jsonl")):
    name = os.path.basename(path)[:-6]
    side, rest = name.split("_", 1)
    runs = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
    ok = [r for r in runs if r.get("ok")]
    if not ok:
        rows[rest][side] = None; continue
    us = statistics.median(1e6 * r["proxy_cpu_seconds"] / r["calls"] for r in ok)
    lg = statistics.median(1e6 * r["loadgen_cpu_seconds"] / r["calls"] for r in ok)
    eps = statistics.median(r["events_per_s"] for r in ok)
    rows[rest][side] = (us, lg, eps, len(ok), len(runs))
print("| scenario | before µs/call | after µs/call | ratio | loadgen µs/call before → after | events/s before → after | ratio |")
print("|---|---:|---:|---:|---:|---:|---:|")
for rest in sorted(rows):
    b, a = rows[rest].get("before"), rows[rest].get("after")
    if not b or not a:
        print(f"| {rest} | {b} | {a} |"); continue
    print(f"| {rest} | {b[0]:.1f} | {a[0]:.1f} | {b[0]/a[0]:.2f}× | {b[1]:.1f} → {a[1]:.1f} | {b[2]:,.0f} → {a[2]:,.0f} | {a[2]/b[2]:.2f}× |")
