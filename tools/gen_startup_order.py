#!/usr/bin/python3
"""Writes src/startup_order.txt: the functions a typical `brine` run executes, for the linker.

    /usr/bin/python3 tools/gen_startup_order.py BUILD/src/brine src/startup_order.txt

Why: on a virtual machine a page fault costs 10-20 us, and `brine scan` of a small file is a few
milliseconds. The kernel maps a program's code 64 KiB around each fault; scattered over a 5 MB text
segment, the code one scan runs took ~50 such faults. lld's --symbol-ordering-file places the
listed functions first and together (src/meson.build), so the same run takes ~10.

The list is the union over a few representative commands (a small pickle, torch checkpoints in
zip, legacy and tar layouts, numpy, the output formats, a directory with -j), run under callgrind,
which names every function that executed. It is data, not code: a stale list costs page faults,
never correctness (names the linker does not find are ignored). Regenerate it after large changes
to the scan path; bench/README.md (finding 8) says how to check the effect.
"""
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each command is run from the repo root; the paths are corpus samples, and SMALL (a 1 KB pickle of
# plain data, written by main()) is the start-up path measured by bench/goals.sh.
COMMANDS = [
    ["scan", "SMALL"],
    ["scan", "corpus/benign/pickle_builtin_p0.pkl"],
    ["scan", "corpus/benign/torch_state_dict_mlp_p4.pt"],
    ["scan", "corpus/benign/torch_state_dict_mlp.pth"],
    ["scan", "corpus/benign/torch_state_dict_mlp_legacy.pt"],
    ["scan", "corpus/benign/torch_state_dict_cnn.pt"],
    ["scan", "-q", "corpus/benign"],
    ["scan", "-j", "2", "corpus/benign"],
    ["scan", "--format", "json", "corpus/benign/torch_state_dict_mlp.pth"],
    ["scan", "--format", "sarif", "corpus/benign/numpy_arrays_p4.pkl"],
    ["scan", "corpus/malicious"],
]

# Run before main or chosen by CPU features valgrind does not emulate (AVX-512): callgrind cannot
# name them, so their siblings of what it did name are added (e.g. __memmove_avx512_unaligned_erms
# beside __memmove_avx_unaligned_erms).
PRE_MAIN = ["_start", "__libc_start_main_impl", "__libc_start_call_main", "_dl_new_object", "_dl_setup_hash",
            "frame_dummy"]
VARIANT = re.compile(r"^(__[a-z]+)_(sse2|ssse3|sse4_\d|avx512|avx2|avx|evex512|evex)")
# memcpy is memmove in glibc (one body, several names): callgrind reports one of them.
SAME_BODY = {"__memcpy": "__memmove", "__mempcpy": "__memmove"}

NAME = re.compile(r"^c?fn=\(\d+\) (.+)$")


def functions(brine, args, workdir):
    out = os.path.join(workdir, "cg.out")
    subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", brine, *args],
                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    names = set()
    # One file per thread with -j: callgrind appends the thread number.
    for f in os.listdir(workdir):
        if not f.startswith("cg.out"):
            continue
        with open(os.path.join(workdir, f), errors="replace") as fh:
            for line in fh:
                m = NAME.match(line.rstrip("\n"))
                if m:
                    # callgrind marks recursion depth as name'N; the symbol is the name.
                    names.add(re.sub(r"'\d+$", "", m.group(1)))
        os.unlink(os.path.join(workdir, f))
    return names


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    brine, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    if shutil.which("valgrind") is None:
        print("gen_startup_order: needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    # The first command's functions come first (the start-up path of a small scan, packed as
    # tightly as possible), then what each later command adds.
    names, seen = [], set()
    defined = set(subprocess.run(["nm", "--defined-only", "-j", brine], capture_output=True, text=True, check=True).stdout.split())
    with tempfile.TemporaryDirectory() as tmp:
        small = os.path.join(tmp, "small.pkl")
        with open(small, "wb") as f:
            pickle.dump({"name": "small", "values": list(range(100)), "labels": [f"label-{i}" for i in range(40)],
                         "scale": 0.5, "flags": (True, False, None)}, f, protocol=4)
        for args in COMMANDS:
            args = [small if a == "SMALL" else a for a in args]
            # Keep linkable symbol names only: callgrind also names code by address or as '???'.
            new = sorted(n for n in functions(brine, args, tmp) - seen if re.fullmatch(r"[A-Za-z_.$][A-Za-z0-9_.$@]*", n))
            if not names:
                new = [n for n in PRE_MAIN if n in defined] + new
            bases = {SAME_BODY.get(m.group(1), m.group(1)) for m in map(VARIANT.match, new) if m}
            new += sorted(d for d in defined - seen - set(new)
                          if (m := VARIANT.match(d)) and SAME_BODY.get(m.group(1), m.group(1)) in bases
                          and m.group(2) in ("evex", "evex512", "avx512"))
            names += new
            seen.update(new)
    with open(out, "w") as f:
        f.write("# Functions placed first in brine's text segment (lld --symbol-ordering-file).\n")
        f.write("# Generated by tools/gen_startup_order.py; see there for why.\n")
        for n in names:
            f.write(n + "\n")
    print(f"{out}: {len(names)} functions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
