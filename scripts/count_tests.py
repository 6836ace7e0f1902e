#!/usr/bin/env python3
"""Sums test counts over every meson test in the testlog.json files given and prints "N passed, N failed".

Each suite prints its own count: doctest's "[doctest] test cases: T | P passed | F failed | S skipped",
or a plain "N passed, N failed" line. A test that printed neither counts as one test, passed or
failed by its exit status. Skipped tests and skipped suites count as failed (CI treats a skip as a failure).
"""
import json
import re
import sys

DOCTEST = re.compile(r"\[doctest\] test cases:\s*(\d+) \|\s*(\d+) passed \|\s*(\d+) failed \|\s*(\d+) skipped")
PLAIN = re.compile(r"^(?:\w+:\s*)?(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$", re.M)


def count(out, result):
    """(passed, failed) of one test's output and meson result."""
    p = fl = None
    m = DOCTEST.findall(out)
    if m:
        _, p, fl, s = map(int, m[-1])
        fl += s
    else:
        m = PLAIN.findall(out)
        if m:
            p, fl, s = m[-1]
            p, fl = int(p), int(fl) + int(s or 0)
    if p is None:
        return (1, 0) if result == "OK" else (0, 1)
    if result != "OK" and fl == 0:
        fl = 1  # crashed or timed out after printing counts
    return p, fl


def main():
    passed = failed = 0
    rows = []
    # Several builds (the plain one, the sanitizer one) each leave a testlog; with more than one,
    # rows are prefixed with the build directory.
    for path in sys.argv[1:]:
        label = path.split("/meson-logs/")[0].rsplit("/", 1)[-1] + ":" if len(sys.argv) > 2 else ""
        with open(path) as f:
            for line in f:
                t = json.loads(line)
                p, fl = count(t.get("stdout", "") or "", t["result"])
                rows.append((label + t["name"], t["result"], p, fl))
                passed += p
                failed += fl
    for name, result, p, fl in rows:
        print(f"  {name:<22} {result:<8} {p} passed, {fl} failed")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
