#!/usr/bin/python3
"""Turns bench/results/serve/ into summary.md: the load table and the ratio to the anchors."""
import json
import os
import sys

res = sys.argv[1]
rows = []
for c in (1, 8, 64):
    with open(os.path.join(res, f"wrk-{c}.json")) as f:
        w = json.loads(f.read().strip().splitlines()[-1])
    with open(os.path.join(res, f"rss-{c}.txt")) as f:
        rss_kb = int(f.read().strip())
    rows.append((c, w, rss_kb))
anchors = {}
with open(os.path.join(res, "anchors.txt")) as f:
    for line in f:
        label, n, secs = line.split()
        anchors[label] = int(n) / float(secs)

print("| connections | requests/s | p50 | p99 | non-2xx | socket errors | peak RSS |")
print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for c, w, rss in rows:
    print(f"| {c} | {w['requests_per_s']:,.0f} | {w['p50_ms']:.2f} ms | {w['p99_ms']:.2f} ms | {w['non_2xx']} | "
          f"{w['socket_errors']} | {rss / 1024:.0f} MiB |")
print()
print("| one process per file | files/s |")
print("| --- | ---: |")
for label, rate in anchors.items():
    print(f"| {label} | {rate:,.1f} |")
print()
best = max(w["requests_per_s"] for _, w, _ in rows)
one = rows[0][1]["requests_per_s"]
for label, rate in anchors.items():
    print(f"- brine serve / {label} per file: {one / rate:,.0f}x at 1 connection, {best / rate:,.0f}x at the best connection count")
