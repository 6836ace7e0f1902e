#!/usr/bin/python3
"""Time short commands in interleaved rounds (A B C A B C ...), to check a ratio against drift.

    /usr/bin/python3 bench/interleave.py --rounds N --json OUT.json NAME=COMMAND ...

hyperfine runs all of one command's runs before the next command's; on a shared machine a
slow minute can then land on one command only. Here every round runs each command once, in a
rotating order, so background load hits all of them alike. COMMAND is split with shlex and run
without a shell, output discarded; wall time via time.perf_counter (includes fork/exec/wait).
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = ap.parse_args()
    cmds = []
    for c in args.commands:
        name, _, command = c.partition("=")
        cmds.append((name, shlex.split(command)))
    times = {name: [] for name, _ in cmds}
    for r in range(args.warmup + args.rounds):
        k = r % len(cmds)
        for name, argv in cmds[k:] + cmds[:k]:
            t0 = time.perf_counter()
            rc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
            dt = time.perf_counter() - t0
            if rc != 0:
                print(f"{name}: exit {rc}", file=sys.stderr)
                return 1
            if r >= args.warmup:
                times[name].append(dt)
    results = []
    for name, argv in cmds:
        t = times[name]
        results.append({"command": name, "argv": argv, "median": statistics.median(t), "mean": statistics.mean(t),
                        "stddev": statistics.stdev(t) if len(t) > 1 else 0.0, "min": min(t), "max": max(t), "times": t})
        print(f"{name}: median {statistics.median(t) * 1e3:.1f} ms, mean {statistics.mean(t) * 1e3:.1f} ms, "
              f"min {min(t) * 1e3:.1f} ms ({len(t)} rounds)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tool": "bench/interleave.py", "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
