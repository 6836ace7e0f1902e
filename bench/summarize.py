#!/usr/bin/python3
"""Turn one bench/run.sh run's exports into bench/results/summary.md (markdown on stdout).

    /usr/bin/python3 bench/summarize.py RESULTS_DIR [INPUTS_DIR]

Every ratio is computed from the same run's hyperfine JSON: median time of the numerator
command over the median of the denominator command (medians: other processes may be running
on a shared 2-core machine, and the median resists their spikes better than the mean).
"""
import glob
import json
import os
import re
import sys


def load(res):
    out = {}
    for path in sorted(glob.glob(os.path.join(res, "*.json"))):
        group = os.path.splitext(os.path.basename(path))[0]
        with open(path) as f:
            for r in json.load(f)["results"]:
                r["group"] = group
                out[r["command"]] = r
    return out


def fmt_t(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 0.01:
        return f"{s * 1e3:.0f} ms"
    return f"{s * 1e3:.1f} ms"


def fmt_ratio(x):
    if x >= 100:
        return f"{x:,.0f}x"
    if x >= 10:
        return f"{x:.0f}x"
    return f"{x:.2f}x"


def main(argv):
    res = argv[0]
    inputs = argv[1] if len(argv) > 1 else None
    r = load(res)
    lines = []
    p = lines.append

    def med(name):
        return r[name]["median"] if name in r else None

    p("# brine benchmark summary\n")
    machine = os.path.join(res, "machine.txt")
    if os.path.exists(machine):
        p("```")
        p(open(machine).read().rstrip())
        p("```\n")

    p("## Times (hyperfine, and bench/interleave.py for `interleaved:` rows; warm page cache unless marked cold)\n")
    p("| command | group | runs | median | mean ± σ | min |")
    p("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, x in r.items():
        p(f"| {name} | {x['group']} | {len(x['times'])} | {fmt_t(x['median'])} | "
          f"{fmt_t(x['mean'])} ± {fmt_t(x['stddev'] or 0)} | {fmt_t(x['min'])} |")
    p("")

    ratios = [
        ("brine, 1 GB vs 1 MB checkpoint (same pickle)", "brine scan 1GB", "brine scan 1MB"),
        ("brine, realistic 1 GB model (243 tensors) vs 1 MB checkpoint", "brine scan model-1GB", "brine scan 1MB"),
        ("interleaved rounds: brine 1 GB vs 1 MB", "interleaved: brine scan 1GB", "interleaved: brine scan 1MB"),
        ("interleaved rounds: brine model 1 GB vs 1 MB", "interleaved: brine scan model-1GB", "interleaved: brine scan 1MB"),
        ("interleaved rounds: brine scan 1 MB vs brine --version", "interleaved: brine scan 1MB", "interleaved: brine --version"),
        ("interleaved rounds: brine json --no-hash vs text, 1 GB", "interleaved: brine json --no-hash 1GB", "interleaved: brine scan 1GB"),
        ("interleaved rounds: genops / brine, 1 MB", "interleaved: genops 1MB", "interleaved: brine scan 1MB"),
        ("interleaved rounds: genops / brine, 1 GB", "interleaved: genops 1GB", "interleaved: brine scan 1GB"),
        ("interleaved rounds: genops / brine, model 1 GB", "interleaved: genops model-1GB", "interleaved: brine scan model-1GB"),
        ("interleaved rounds: genops 1 GB / its own 1 MB", "interleaved: genops 1GB", "interleaved: genops 1MB"),
        ("brine scan 1 MB vs brine --version (process start only)", "brine scan 1MB", "brine --version (process start only)"),
        ("brine --format json (sha256) vs text, 1 GB", "brine json 1GB (sha256)", "brine scan 1GB"),
        ("brine --format json (sha256) vs text, 1 MB", "brine json 1MB (sha256)", "brine scan 1MB"),
        ("brine json 1 GB vs sha256sum 1 GB", "brine json 1GB (sha256)", "sha256sum 1GB (coreutils)"),
        ("brine json --no-hash vs text, 1 GB", "brine json --no-hash 1GB", "brine scan 1GB"),
        ("torch.load(weights_only) / brine, 1 MB", "torch.load weights_only 1MB", "brine scan 1MB"),
        ("torch.load(weights_only) / brine, 1 GB", "torch.load weights_only 1GB", "brine scan 1GB"),
        ("torch.load(weights_only) / brine, model 1 GB", "torch.load weights_only model-1GB", "brine scan model-1GB"),
        ("torch.load(weights_only) / brine json (sha256), 1 GB", "torch.load weights_only 1GB", "brine json 1GB (sha256)"),
        ("torch.load(weights_only) 1 GB / its own 1 MB", "torch.load weights_only 1GB", "torch.load weights_only 1MB"),
        ("python3 -c 'import torch' / brine scan 1 GB", "python3 -c 'import torch'", "brine scan 1GB"),
        ("genops walk / brine, 1 MB", "genops 1MB", "brine scan 1MB"),
        ("genops walk / brine, 1 GB", "genops 1GB", "brine scan 1GB"),
        ("genops walk / brine, model 1 GB", "genops model-1GB", "brine scan model-1GB"),
        ("genops walk 1 GB / its own 1 MB", "genops 1GB", "genops 1MB"),
        ("genops 1 MB vs bare python3 start + imports", "genops 1MB", "python3 start + import zipfile, pickletools"),
        ("2M opcodes p2: genops / brine", "genops 2M-op p2", "brine scan 2M-op p2"),
        ("2M opcodes p4: genops / brine", "genops 2M-op p4", "brine scan 2M-op p4"),
        ("10k files: brine -j 1 / -j 2 (speed-up from 2 jobs)", "brine scan -j 1 tree", "brine scan -j 2 tree"),
        ("10k files: genops / brine -j 1", "genops tree", "brine scan -j 1 tree"),
        ("10k files: genops / brine -j 2", "genops tree", "brine scan -j 2 tree"),
        ("5.4 GB of checkpoints: brine -j 1 / -j 2", "brine scan -j 1 gbtree", "brine scan -j 2 gbtree"),
        ("5.4 GB of checkpoints: genops / brine -j 2", "genops gbtree", "brine scan -j 2 gbtree"),
        ("cold cache: brine 1 GB / brine 1 MB", "cold: brine scan 1GB", "cold: brine scan 1MB"),
        ("cold cache: torch.load(weights_only) / brine, 1 GB", "cold: torch.load weights_only 1GB", "cold: brine scan 1GB"),
        ("cold cache: genops / brine, 1 GB", "cold: genops 1GB", "cold: brine scan 1GB"),
        ("picklescan / brine, 1 MB", "picklescan 1MB", "brine scan 1MB"),
        ("picklescan / brine, 1 GB", "picklescan 1GB", "brine scan 1GB"),
        ("picklescan / brine, model 1 GB", "picklescan model-1GB", "brine scan model-1GB"),
        ("picklescan / brine, 2M opcodes p2", "picklescan 2M-op p2", "brine scan 2M-op p2"),
        ("picklescan / brine, 2M opcodes p4", "picklescan 2M-op p4", "brine scan 2M-op p4"),
        ("picklescan / brine -j 1, 10k files", "picklescan tree", "brine scan -j 1 tree"),
    ]
    p("## Ratios (median / median, same run)\n")
    p("| comparison | ratio | numerator | denominator |")
    p("| --- | ---: | ---: | ---: |")
    for label, a, b in ratios:
        if med(a) is None or med(b) is None:
            continue
        p(f"| {label} | {fmt_ratio(med(a) / med(b))} | {fmt_t(med(a))} | {fmt_t(med(b))} |")
    p("")

    # Throughputs
    counts = {}
    if inputs:
        for proto in (2, 4):
            f = os.path.join(inputs, f"opcodes_p{proto}.pkl.opcodes")
            if os.path.exists(f):
                counts[proto] = int(open(f).read())
    n_tree = 0
    if inputs and os.path.isdir(os.path.join(inputs, "tree")):
        n_tree = sum(len(fs) for _, _, fs in os.walk(os.path.join(inputs, "tree")))
    rows = []
    for proto, n in counts.items():
        for who in ("brine scan", "genops", "picklescan"):
            name = f"{who} 2M-op p{proto}"
            if med(name):
                rows.append((name, f"{n / med(name) / 1e6:.2f} M opcodes/s ({n:,} opcodes, incl. process start)"))
    for name in ("brine scan -j 1 tree", "brine scan -j 2 tree", "genops tree", "picklescan tree"):
        if n_tree and med(name):
            rows.append((name, f"{n_tree / med(name):,.0f} files/s ({n_tree:,} files)"))
    if rows:
        p("## Throughput (from the medians)\n")
        p("| command | throughput |")
        p("| --- | --- |")
        for a, b in rows:
            p(f"| {a} | {b} |")
        p("")

    # Peak RSS
    rss_dir = os.path.join(res, "rss")
    rss_rows = []
    for path in sorted(glob.glob(os.path.join(rss_dir, "*.txt"))):
        if path.endswith(".status.txt"):
            continue
        text = open(path).read()
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        maj = re.search(r"Major \(requiring I/O\) page faults: (\d+)", text)
        mnr = re.search(r"Minor \(reclaiming a frame\) page faults: (\d+)", text)
        el = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
        if m:
            rss_rows.append((os.path.basename(path)[:-4], int(m.group(1)), maj.group(1) if maj else "?",
                             mnr.group(1) if mnr else "?", el.group(1) if el else "?"))
    if rss_rows:
        p("## Peak RSS (/usr/bin/time -v, one run each, warm cache)\n")
        p("| command | max RSS | major faults | minor faults | wall |")
        p("| --- | ---: | ---: | ---: | ---: |")
        for name, kb, maj, mnr, el in rss_rows:
            p(f"| {name} | {kb / 1024:,.1f} MiB | {maj} | {mnr} | {el} |")
        p("")
        status = os.path.join(rss_dir, "brine-json-1GB.status.txt")
        if os.path.exists(status):
            p("RSS split of `brine scan --format json` on the 1 GB checkpoint (bench/peak_mem.py):\n")
            p("```")
            p(open(status).read().rstrip())
            p("```\n")

    load_txt = os.path.join(res, "load.txt")
    if os.path.exists(load_txt):
        p("## CPU load before each group\n")
        p("```")
        p(open(load_txt).read().rstrip())
        p("```")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
