#!/usr/bin/python3
"""Differential: .npy headers read by brine and by Debian's numpy 1.24 (format.read_magic +
_read_array_header, what numpy.load runs). For each header spelling, followed by a payload pickle:
  numpy's dtype has objects  -> brine must not say clean (it must find the pickle);
  numpy reads plain data     -> brine says clean, or names the header unresolved (unapproved);
  numpy raises               -> anything but a crash.
Usage: npy_header_vs_numpy.py BRINE"""
import io
import itertools
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings

import numpy as np
from numpy.lib import format as F

warnings.simplefilter("ignore")
PAYLOAD = b"cos\nsystem\n(S'echo brine-test'\ntR."


def npy(header, version=1):
    h = header.encode("latin1" if version < 3 else "utf-8", "surrogatepass")
    fmt = "<H" if version == 1 else "<I"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, len(h)) + h


def spellings():
    types = ["O", "|O", "<O8", "O4", "object", "object_", "1O", "f8", "<f8", "float64", "|V8", "<U2", "i4,O", "(2,)O",
             "S0", "M8[ns]", "?", "b1", "O16", "o", "Object"]
    quoted = []
    for t in types:
        quoted += [repr(t), '"%s"' % t, "'''%s'''" % t, "u%r" % t, "r%r" % t,
                   "'" + "".join("\\x%02x" % ord(c) for c in t) + "'",
                   "'" + "".join("\\%03o" % ord(c) for c in t) + "'",
                   "'" + "".join("\\u%04x" % ord(c) for c in t) + "'",
                   " ".join(repr(c) for c in t)]  # adjacent literals
    descrs = list(quoted)
    for a, b in itertools.product(["'a'", "'O'", "('t', 'n')", "''", "'|O'"], ["'<f8'", "'|O'", "'O'", "'|V8'"]):
        descrs += [f"[({a}, {b})]", f"[({a}, {b}, (2,))]", f"[({a}, {b}, 0)]", f"[('x', '<i4'), ({a}, {b})]",
                   f"[('y', [({a}, {b})])]", f"({b}, (2,))", f"({b}, 1)", f"({b}, ())"]
    descrs += ["['aO']", "['ab']", "{'xO': 1}", "{'O'}", "('O',)", "[('a', '<f8'), ('a', 'O')]", "b'O'", "('S', 5)",
               "[('a', 'O', True)]", "[('a', 'O', 2.0)]", "(('O', (2,)), (3,))", "[['a', 'O']]", "[('aO',)]"]
    return descrs


def headers():
    out = []
    for d in spellings():
        out.append(("{'descr': %s, 'fortran_order': False, 'shape': (1,), }" % d, 1))
    base = [("{'descr': %s, 'fortran_order': %s, 'shape': %s}", 1)]
    for d, fo, sh in itertools.product(["'|O'", "'<f8'"], ["False", "0", "True"], ["(1,)", "[1]", "(True,)", "(1L,)", "(-1,)", "(0x1,)"]):
        for v in (1, 2, 3):
            out.append((base[0][0] % (d, fo, sh), v))
    out += [
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'descr': '|O'}", 1),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'descr': '<f8'}", 1),
        ("{\"descr\":\"|O\",\"fortran_order\":False,\"shape\":(1,)}", 1),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (1,)} # c\n", 1),
        ("{'descr':\n'|O', 'fortran_order': False, 'shape': (1,)}", 1),
        ("\n{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", 1),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}\\\n", 1),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'x': 1}", 1),
        ("{'descr': '|O', 'fortran_order': False}", 1),
        ("{'descr': '|\\N{LATIN CAPITAL LETTER O}', 'fortran_order': False, 'shape': ()}", 1),
        ("{'descr': '|O', 'fortran_order': False, 'shape': ()}\r\n", 1),
        ("\t {'descr': '|O', 'fortran_order': False, 'shape': ()}", 1),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (1_0,)}", 1),
        ("{'descr': '|\u00d8', 'fortran_order': False, 'shape': ()}", 3),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}\x00", 1),
    ]
    return out


def numpy_reading(data):
    try:
        f = io.BytesIO(data)
        v = F.read_magic(f)
        F._check_version(v)
        _, _, dt = F._read_array_header(f, v, max_header_size=2 ** 64)
        return "object" if dt.hasobject else "plain"
    except Exception as e:  # noqa: BLE001
        return "error " + type(e).__name__


def main():
    brine = sys.argv[1]
    cases = headers()
    bad = []
    with tempfile.TemporaryDirectory() as d:
        paths, expect = [], []
        for k, (h, v) in enumerate(cases):
            data = npy(h, v) + PAYLOAD
            p = os.path.join(d, f"h{k}.npy")
            with open(p, "wb") as f:
                f.write(data)
            paths.append(p)
            expect.append(numpy_reading(data))
        out = subprocess.run([brine, "scan", "--format", "json", "--no-hash", *paths], capture_output=True, text=True)
        files = {f["path"]: f for f in json.loads(out.stdout)["files"]}
        counts = {}
        for (h, v), p, np_says in zip(cases, paths, expect):
            rep = files[p]
            verdict = rep["verdict"]
            unresolved = any(x["rule"] == "unresolved:npy-header" for x in rep["findings"])
            kind = np_says.split()[0]
            counts[(kind, verdict)] = counts.get((kind, verdict), 0) + 1
            if kind == "object" and verdict == "clean":
                bad.append(f"BYPASS: numpy unpickles, brine clean: v{v} {h!r}")
            if kind == "plain" and verdict != "clean" and unresolved and "-v" in sys.argv:
                print(f"unresolved (numpy plain): v{v} {h!r}")
            if kind == "plain" and verdict != "clean" and not unresolved:
                bad.append(f"false alarm without an 'unresolved' finding: numpy plain, brine {verdict}: v{v} {h!r}")
    for k in sorted(counts):
        print(f"numpy {k[0]:6} brine {k[1]:10} {counts[k]}")
    for b in bad:
        print(b)
    print(f"{len(cases) - len(bad)} passed, {len(bad)} failed")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
