#!/usr/bin/env python3
"""Output that cannot lie: no raw control character from the input reaches a person's terminal.

Usage: output_safety_test.py BRINE REPO_ROOT [--stride N]

Runs every corpus file and every fuzz-corpus file through every text output (`scan -v`, `scan -v
--color always`, `inspect`, `disasm`, and `sanitize` for the corpus files) and asserts that the
bytes written hold no control byte other than newline (C0, DEL), no C1 control or bidi
control/isolate, and are valid UTF-8. Under --color always, exactly brine's own SGR codes are
allowed. JSON outputs must parse. Ends with "N passed, N failed".
"""
import json
import os
import re
import subprocess
import sys
import tempfile

OWN_SGR = re.compile(rb"\x1b\[(?:32|33|35|1;31|0)m")
BAD_CODEPOINTS = set(range(0x80, 0xA0)) | {0x061C, 0x200E, 0x200F, 0x2028, 0x2029} | set(range(0x202A, 0x202F)) | set(range(0x2066, 0x206A))


def problems(out, allow_sgr=False):
    if allow_sgr:
        out = OWN_SGR.sub(b"", out)
    bad = [b for b in set(out) if (b < 0x20 and b != 0x0A) or b == 0x7F]
    if bad:
        i = min(out.index(bytes([b])) for b in bad)
        return f"raw control byte(s) {sorted(bad)} near {out[max(0, i - 60):i + 20]!r}"
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"not UTF-8: {e}"
    cps = {ord(c) for c in text} & BAD_CODEPOINTS
    if cps:
        return f"C1/bidi code points {sorted(hex(c) for c in cps)}"
    return None


def run(cmd, timeout=600):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def batches(items, n):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def main():
    brine, root = sys.argv[1], sys.argv[2]
    stride = int(sys.argv[sys.argv.index("--stride") + 1]) if "--stride" in sys.argv else 1
    corpus, fuzz = [], []
    for base, out in ((os.path.join(root, "corpus"), corpus), (os.path.join(root, "fuzz", "corpus"), fuzz)):
        for dirpath, _, names in os.walk(base):
            for n in sorted(names):
                p = os.path.join(dirpath, n)
                if os.path.isfile(p) and not n.endswith((".py", ".json")):
                    out.append(p)
    corpus.sort()
    fuzz = sorted(fuzz)[::stride]
    everything = corpus + fuzz
    passed = failed = 0

    def check(name, proc, allow_sgr=False, streams=("stdout", "stderr")):
        nonlocal passed, failed
        for s in streams:
            why = problems(getattr(proc, s), allow_sgr)
            if why:
                failed += 1
                print(f"FAIL {name} ({s}): {why}")
                return
        passed += 1

    for chunk in batches(everything, 400):
        check(f"scan -v [{chunk[0]}..]", run([brine, "scan", "-v", "--no-hash", *chunk]))
        check(f"scan -v --color always [{chunk[0]}..]", run([brine, "scan", "-v", "--color", "always", "--no-hash", *chunk]), allow_sgr=True)
        check(f"inspect [{chunk[0]}..]", run([brine, "inspect", *chunk]))
        proc = run([brine, "scan", "--format", "json", "--no-hash", *chunk])
        try:
            json.loads(proc.stdout)
            passed += 1
        except ValueError as e:
            failed += 1
            print(f"FAIL scan --format json [{chunk[0]}..]: {e}")
    for f in everything:
        check(f"disasm {f}", run([brine, "disasm", f]))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.safetensors")
        for f in corpus:
            check(f"sanitize {f}", run([brine, "sanitize", "--salvage", "--force", "-v", f, "-o", out]))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
