#!/usr/bin/env python3
"""Byte-identity check for speed work: runs two brine binaries (before, after) over every file
under the given directories with `inspect --json` and `scan --format json --no-hash` and compares
sha256 digests of stdout and exit code (the scan's "seconds" fields are zeroed first: wall time
differs run to run). Usage: bench/compare_outputs.py OLD_BRINE NEW_BRINE corpus tests/data"""
import hashlib, json, os, re, subprocess, sys
base, new = sys.argv[1], sys.argv[2]
roots = sys.argv[3:]
files = sorted(os.path.join(d, f) for r in roots for d, _, fs in os.walk(r) for f in fs)
SECONDS = re.compile(rb'"seconds": ?[0-9.e+-]+')
def run(binary, args, path):
    p = subprocess.run([binary] + args + [path], capture_output=True, timeout=300)
    out = SECONDS.sub(b'"seconds":0', p.stdout)
    return hashlib.sha256(out + b"|rc=%d" % p.returncode).hexdigest()
n = bad = 0
for f in files:
    for args in (["inspect", "--json"], ["scan", "--format", "json", "--no-hash"]):
        n += 1
        if run(base, args, f) != run(new, args, f):
            bad += 1
            print("DIFF", args[0], f, flush=True)
print(f"compared {n} outputs of {len(files)} files: {bad} differ")
