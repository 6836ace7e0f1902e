#!/usr/bin/python3
"""How the cost of `brine scan` and `brine sanitize` grows (docs/scaling.md, "How cost grows").

    /usr/bin/python3 bench/scaling.py BRINE OUTDIR [--quick]

Three series, each input generated (seeded) into OUTDIR and kept for reruns:
  pickle size   raw protocol-4 pickles of ~10k, 100k, 1M and 10M opcodes (a list of ints and
                short strings, as in bench/make_inputs.py's ints_strs_p4.pkl)
  model size    torch.save'd state dicts of ~100 MB, 1 GB and 4 GB (float32 [N, 1024] tensors of
                64 MiB), scanned (verdict only, --no-hash) and sanitized to safetensors
  file count    100, 1,000 and 10,000 small files (copies of bench/make_inputs.py's tree/ layout:
                torch.save'd small state dicts and raw pickles) scanned with -j 1 and -j 2

Every figure is the median of several runs: wall time, CPU time (user + sys) and peak RSS, read
from os.wait4's rusage of each brine process (warm page cache). Prints a markdown table per
series. --quick skips the 4 GB model and the 10M-opcode pickle.
"""
import os
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import time


def run(cmd, runs):
    """Median wall seconds, median CPU seconds, max peak RSS (MiB) of `cmd` over `runs` runs.

    The peak RSS comes from /usr/bin/time: a child forked from this Python process (torch
    imported) would report the parent's RSS, which Linux keeps as the high-water mark across exec."""
    walls, cpus, rss = [], [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        r, w = os.pipe()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", f"/dev/fd/{w}", *cmd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, pass_fds=(w,))
        os.close(w)
        _, status, ru = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t0)
        cpus.append(ru.ru_utime + ru.ru_stime)  # /usr/bin/time's own few ms included
        with os.fdopen(r) as f:
            rss = max(rss, int(f.read().split()[-1]) / 1024)
        code = os.waitstatus_to_exitcode(status)
        if code not in (0, 1):
            raise SystemExit(f"{cmd}: exit {code}")
    return statistics.median(walls), statistics.median(cpus), rss


def count_opcodes(path):
    import pickletools
    with open(path, "rb") as f:
        return sum(1 for _ in pickletools.genops(f))


def pickle_inputs(out, sizes):
    made = []
    for target in sizes:
        path = os.path.join(out, f"opcodes_{target}.pkl")
        if not os.path.exists(path):
            rng = random.Random(target)
            # measured: ~1.34 opcodes per item (an int is one BININT; a string is SHORT_BINUNICODE +
            # MEMOIZE; APPENDS batches of 1,000)
            n = target * 3 // 4
            obj = [rng.randrange(-2**31, 2**31) if i % 3 else f"s{i}" for i in range(n)]
            with open(path + ".tmp", "wb") as f:
                pickle.dump(obj, f, protocol=4)
            os.replace(path + ".tmp", path)
        made.append(path)
    return made


def model_inputs(out, sizes_mb):
    import torch
    made = []
    for mb in sizes_mb:
        path = os.path.join(out, f"model_{mb}mb.pt")
        if not os.path.exists(path):
            g = torch.Generator().manual_seed(mb)
            rows = 64 * 1024 * 1024 // (4 * 1024)       # 64 MiB float32 tensors of [16384, 1024]
            count = max(1, mb * 1000 * 1000 // (64 * 1024 * 1024))
            sd = {f"layer{i}.weight": torch.rand(rows, 1024, generator=g) for i in range(count)}
            torch.save(sd, path + ".tmp")
            os.replace(path + ".tmp", path)
        made.append(path)
    return made


def tree_inputs(out, counts):
    import torch
    base = os.path.join(out, "tree_src")
    if not os.path.isdir(base):
        os.makedirs(base + ".tmp", exist_ok=True)
        rng = random.Random(5)
        for i in range(max(counts)):
            d = os.path.join(base + ".tmp", f"d{i % 100:02d}")
            os.makedirs(d, exist_ok=True)
            if i % 2:
                torch.save({"w": torch.full((8, 8), float(i)), "step": i}, os.path.join(d, f"f{i}.pt"))
            else:
                with open(os.path.join(d, f"f{i}.pkl"), "wb") as f:
                    pickle.dump({"id": i, "vals": [rng.random() for _ in range(50)]}, f, protocol=2 + (i % 4) // 2 * 2)
        os.replace(base + ".tmp", base)
    made = []
    all_files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(base) for f in fs)
    for n in counts:
        lst = os.path.join(out, f"tree_{n}.txt")
        with open(lst, "w") as f:
            f.write("\n".join(all_files[:n]) + "\n")
        made.append((n, lst))
    return made


def main():
    brine, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    quick = "--quick" in sys.argv
    os.makedirs(out, exist_ok=True)
    runs = 5

    print("### Pickle size: `brine scan FILE` of a raw protocol-4 pickle\n")
    print("| opcodes | file | wall | CPU | peak RSS | CPU per 1M opcodes |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in pickle_inputs(out, [10_000, 100_000, 1_000_000] + ([] if quick else [10_000_000])):
        ops = count_opcodes(path)
        wall, cpu, rss = run([brine, "scan", path], runs)
        print(f"| {ops:,} | {os.path.getsize(path) / 1e6:.2f} MB | {wall * 1000:.1f} ms | {cpu * 1000:.1f} ms | "
              f"{rss:.1f} MiB | {cpu * 1000 / ops * 1e6:.0f} ms |", flush=True)

    print("\n### Model size: torch.save'd state dicts (64 MiB float32 tensors)\n")
    print("| file | tensors | scan wall (--no-hash) | scan peak RSS | sanitize wall | sanitize peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in model_inputs(out, [100, 1000] + ([] if quick else [4000])):
        size = os.path.getsize(path)
        wall, _, rss = run([brine, "scan", "--format", "json", "--no-hash", path], runs)
        target = os.path.join(out, "out.safetensors")
        swalls, srss = [], 0
        for _ in range(3):
            if os.path.exists(target):
                os.unlink(target)
            w, _, r = run([brine, "sanitize", path, "-o", target], 1)
            swalls.append(w)
            srss = max(srss, r)
        os.unlink(target)
        tensors = max(1, size // (64 * 1024 * 1024))
        print(f"| {size / 1e9:.2f} GB | {tensors} | {wall * 1000:.1f} ms | {rss:.1f} MiB | "
              f"{statistics.median(swalls):.2f} s | {srss:.1f} MiB |", flush=True)

    print("\n### File count: small files (torch.save'd state dicts and raw pickles, ~1-2 KB each)\n")
    print("| files | -j 1 wall | -j 1 files/s | -j 2 wall | -j 2 files/s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for n, lst in tree_inputs(out, [100, 1000, 10_000]):
        w1, _, _ = run([brine, "scan", "-j", "1", "--files-from", lst], runs)
        w2, _, _ = run([brine, "scan", "-j", "2", "--files-from", lst], runs)
        print(f"| {n:,} | {w1 * 1000:.0f} ms | {n / w1:,.0f} | {w2 * 1000:.0f} ms | {n / w2:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
