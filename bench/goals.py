#!/usr/bin/python3
"""The goals table of bench/goals.sh, from its hyperfine JSON exports and /usr/bin/time -v logs.

    /usr/bin/python3 bench/goals.py RESULTS-DIR
"""
import json
import os
import re
import sys


def medians(res, group):
    path = os.path.join(res, f"{group}.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {r["command"]: r["median"] for r in json.load(f)["results"]}


def peak_rss_mib(res, name):
    path = os.path.join(res, "rss", f"{name}.txt")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
    return int(m.group(1)) / 1024 if m else None


def ms(s):
    return f"{s * 1000:,.1f} ms" if s < 10 else f"{s:,.2f} s"


def main():
    res = sys.argv[1]
    g = {name: medians(res, name) for name in ("startup", "pickle", "zip", "sanitize", "tree", "picklescan")}
    rows = []

    def row(what, value, goal, met, detail):
        rows.append((what, value, goal, "MET" if met else "NOT MET", detail))

    t = g["startup"].get("brine scan 1KB pickle")
    if t is not None:
        row("start-up: brine scan of a 1 KB pickle", ms(t), "<= 3 ms", t <= 0.003, "median wall time")
    scan = g["pickle"].get("brine scan 2M-op p4")
    dec = g["pickle"].get("decode-only 2M-op p4")
    ps = g["picklescan"].get("picklescan 2M-op p4")
    if scan is not None and ps is not None:
        row("2M-opcode p4 pickle: picklescan / brine", f"{ps / scan:,.0f}x", ">= 300x", ps / scan >= 300, f"{ms(ps)} / {ms(scan)}")
    elif scan is not None:
        rows.append(("2M-opcode p4 pickle: picklescan / brine", "-", ">= 300x", "SKIPPED", "picklescan: not given"))
    if scan is not None and dec is not None:
        row("2M-opcode p4 pickle: brine / decode-only", f"{scan / dec:.2f}x", "<= 3x", scan / dec <= 3, f"{ms(scan)} / {ms(dec)}")
    rss = peak_rss_mib(res, "scan-2M-op-p4")
    if rss is not None:
        rows.append(("2M-opcode p4 pickle: brine peak RSS", f"{rss:.1f} MiB", "-", "(info)", ""))
    z = g["zip"].get("brine scan 1GB zip (1024 tensors)")
    zp = g["zip"].get("brine scan its data.pkl alone")
    if z is not None and zp is not None:
        row("1 GB zip, 1,024 tensors: scan / its data.pkl alone", f"{z / zp:.2f}x", "<= 1.5x", z / zp <= 1.5, f"{ms(z)} / {ms(zp)}")
    rss = peak_rss_mib(res, "scan-1GB-zip")
    if rss is not None:
        rows.append(("1 GB zip scan: brine peak RSS", f"{rss:.1f} MiB", "-", "(info)", ""))
    s = g["sanitize"].get("brine sanitize 1GB zip -> safetensors")
    cp = g["sanitize"].get("cp + sync of the copy")
    if s is not None and cp is not None:
        row("sanitize 1 GB zip -> safetensors: throughput vs cp + sync", f"{cp / s:.2f}x", ">= 0.9x", cp / s >= 0.9, f"{ms(cp)} / {ms(s)}")
    rss = peak_rss_mib(res, "sanitize-1GB-zip")
    if rss is not None:
        row("sanitize 1 GB zip: peak RSS", f"{rss:.1f} MiB", "< 32 MiB", rss < 32, "/usr/bin/time -v")
    j1 = g["tree"].get("brine scan -j 1 tree")
    j2 = g["tree"].get("brine scan -j 2 tree")
    if j1 is not None and j2 is not None:
        row("10,000 small files: files/s -j 2 / -j 1", f"{j1 / j2:.2f}x", ">= 1.8x", j1 / j2 >= 1.8,
            f"{10000 / j1:,.0f} / {10000 / j2:,.0f} files/s at -j 1 / -j 2")
    print("| goal | measured | target | status | detail |")
    print("| --- | ---: | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    with open(os.path.join(res, "load.txt")) as f:
        print("\nCPU load before each group (bench/results-goals/load.txt):")
        for line in f:
            print("  " + line.rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
