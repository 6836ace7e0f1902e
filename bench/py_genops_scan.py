#!/usr/bin/python3
"""Baseline for brine's benchmarks: the minimum a Python pickle scanner does.

    /usr/bin/python3 bench/py_genops_scan.py PATH...   (files or directories, walked recursively)

For every file: if it is a zip (a PyTorch checkpoint), every member whose name ends in .pkl is
read (only those members: tensor storages are not read) and walked; otherwise the whole file is
walked as a raw pickle stream, pickle after pickle until the end or a parse error. The walk is
pickletools.genops, collecting the imported names the way picklescan/modelscan do: GLOBAL/INST
arguments, and for STACK_GLOBAL the two string operands found by looking back past memo puts
(resolving memo gets). Nothing is unpickled, nothing is judged: it prints each file's globals.
"""
import io
import os
import pickletools
import sys
import zipfile

STRING_OPS = frozenset({"SHORT_BINUNICODE", "UNICODE", "BINUNICODE", "BINUNICODE8"})
PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})


def walk_stream(data: bytes, found: set) -> int:
    """Walks every pickle in `data`; adds (module, name) pairs to `found`; returns the opcode count."""
    f = io.BytesIO(data)
    memo = {}
    n_ops = 0
    end = len(data)
    while f.tell() < end:
        start = f.tell()
        prev_arg = None
        recent = []  # values of the last two non-memo-put opcodes, newest last
        try:
            for op, arg, _pos in pickletools.genops(f):
                n_ops += 1
                name = op.name
                if name == "MEMOIZE":
                    memo[len(memo)] = prev_arg
                    continue
                if name in PUT_OPS:
                    memo[arg] = prev_arg
                    continue
                if name in ("GLOBAL", "INST"):
                    found.add(tuple(arg.split(" ", 1)))
                elif name == "STACK_GLOBAL":
                    if len(recent) == 2:
                        found.add((str(recent[0]), str(recent[1])))
                    else:
                        found.add(("unknown", "unknown"))
                if name in GET_OPS:
                    value = memo.get(arg, "unknown")
                elif name in STRING_OPS:
                    value = arg
                else:
                    value = "unknown"
                recent.append(value)
                if len(recent) > 2:
                    del recent[0]
                prev_arg = value if name in GET_OPS else arg
        except Exception as e:  # not a pickle (any more): stop, like picklescan
            if f.tell() == start or start == 0:
                found.add(("<parse-error>", str(e)[:80]))
            break
    return n_ops


def scan_file(path: str) -> str:
    found = set()
    n_ops = 0
    with open(path, "rb") as fh:
        if zipfile.is_zipfile(fh):
            fh.seek(0)
            with zipfile.ZipFile(fh) as zf:
                for info in zf.infolist():
                    if info.filename.endswith(".pkl"):
                        n_ops += walk_stream(zf.read(info), found)
        else:
            fh.seek(0)
            n_ops += walk_stream(fh.read(), found)
    names = ", ".join(sorted(f"{m}.{n}" for m, n in found)) or "-"
    return f"{path}: {n_ops} opcodes; globals: {names}"


def main(argv):
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    out = []
    for p in argv:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    out.append(scan_file(os.path.join(root, name)))
        else:
            out.append(scan_file(p))
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
