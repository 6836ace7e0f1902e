#!/usr/bin/python3
"""Merges the hyperfine exports of interleaved rounds (bench/common.sh `hfr`) into one export.

    /usr/bin/python3 bench/merge_rounds.py ROUNDS-DIR OUT.json

Each file in ROUNDS-DIR is one hyperfine run of every command once, in the order given, so the
commands alternate A B A B ... across rounds and a slow minute on a shared host falls on all of
them alike (hyperfine alone runs every run of A before the first of B). OUT.json has hyperfine's
shape (results: command, median, mean, stddev, min, max, times), so bench/goals.py reads either.
With two commands it also prints the median of the per-round ratios, beside the ratio of medians.
"""
import json
import os
import statistics
import sys


def main():
    rounds_dir, out = sys.argv[1], sys.argv[2]
    names, times, user, system = [], {}, {}, {}
    files = sorted(f for f in os.listdir(rounds_dir) if f.endswith(".json"))
    for f in files:
        with open(os.path.join(rounds_dir, f)) as fh:
            for r in json.load(fh)["results"]:
                name = r["command"]
                if name not in times:
                    names.append(name)
                    times[name], user[name], system[name] = [], [], []
                times[name] += r["times"]
                user[name].append(r["user"])
                system[name].append(r["system"])
    results = []
    for name in names:
        t = times[name]
        results.append({"command": name, "median": statistics.median(t), "mean": statistics.mean(t),
                        "stddev": statistics.stdev(t) if len(t) > 1 else 0.0, "min": min(t), "max": max(t),
                        "user": statistics.mean(user[name]), "system": statistics.mean(system[name]), "times": t})
        print(f"{name}: median {statistics.median(t) * 1e3:,.1f} ms, mean {statistics.mean(t) * 1e3:,.1f} ms, "
              f"range {min(t) * 1e3:,.1f} .. {max(t) * 1e3:,.1f} ms ({len(t)} runs in {len(files)} rounds)")
    if len(names) == 2:
        a, b = times[names[0]], times[names[1]]
        if len(a) == len(b):
            per_round = [x / y for x, y in zip(a, b)]
            print(f"{names[0]} / {names[1]}: ratio of medians {statistics.median(a) / statistics.median(b):.2f}, "
                  f"median of per-round ratios {statistics.median(per_round):.2f}")
    with open(out, "w") as fh:
        json.dump({"tool": "hyperfine, interleaved rounds (bench/merge_rounds.py)", "rounds": len(files), "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
