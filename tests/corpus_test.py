#!/usr/bin/env python3
"""Corpus test: `brine scan` gives every corpus sample the verdict its manifest expects.

Usage: corpus_test.py BRINE CORPUS_DIR

For every corpus/*/manifest.json entry:
  - the verdict with the default rules equals "expect";
  - for each "with_packs" key (comma-separated pack names) the verdict with those packs equals the value;
  - every global in "must_report" is named by a finding (a deny hit), for malicious samples.
Ends with the line "N passed, N failed".
"""
import collections
import json
import os
import subprocess
import sys


def load_manifests(corpus):
    samples = []
    for sub in sorted(os.listdir(corpus)):
        path = os.path.join(corpus, sub, "manifest.json")
        if os.path.isfile(path):
            with open(path) as f:
                for s in json.load(f)["samples"]:
                    s["_file"] = os.path.join(corpus, s["path"])
                    samples.append(s)
    return samples


def scan(brine, files, packs):
    cmd = [brine, "scan", "--format", "json", "--no-hash", "-j", "2"]
    for p in packs:
        cmd += ["--rules", p]
    cmd += files
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if proc.returncode not in (0, 1, 2):
        raise RuntimeError(f"brine exited {proc.returncode}: {proc.stderr.decode()[:2000]}")
    report = json.loads(proc.stdout)
    return {f["path"]: f for f in report["files"]}


def main():
    brine, corpus = sys.argv[1], sys.argv[2]
    samples = load_manifests(corpus)
    jobs = collections.defaultdict(list)  # packs tuple -> [(sample, expected)]
    for s in samples:
        jobs[()].append((s, s["expect"]))
        for packs, verdict in s.get("with_packs", {}).items():
            jobs[tuple(p for p in packs.split(",") if p)].append((s, verdict))
    passed = failed = 0
    for packs, items in sorted(jobs.items()):
        results = scan(brine, [s["_file"] for s, _ in items], packs)
        for s, expected in items:
            name = f"{s['path']} [{','.join(packs) or 'default'}]"
            got = results.get(s["_file"])
            problems = []
            if got is None:
                problems.append("not in the report")
            else:
                if got["verdict"] != expected:
                    problems.append(f"verdict {got['verdict']}, expected {expected}")
                if not packs and s.get("must_report"):
                    named = {f["global"] for f in got["findings"] if f.get("global")}
                    missing = [g for g in s["must_report"] if g not in named]
                    if missing:
                        problems.append(f"findings do not name {missing} (named: {sorted(named)})")
            if problems:
                failed += 1
                print(f"FAIL {name}: {'; '.join(problems)}")
                if got is not None:
                    for f in got["findings"][:4]:
                        print(f"     {f['rule']} {f.get('global')} {f['message'][:150]}")
            else:
                passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
