#!/usr/bin/python3
"""Generate brine's benchmark inputs, deterministically (seeded), into OUTDIR.

    /usr/bin/python3 bench/make_inputs.py OUTDIR [--only NAME ...] [--force]

Files (all clean under brine's default rules; nothing here is malicious):

  ckpt_1mb.pt        torch.save'd state_dict: 16 float32 tensors of shape [64, 256]     (~1 MiB)
  ckpt_1gb.pt        the same 16 names/dtypes, shape [65536, 256]                       (~1 GiB)
                     -> same pickle structure, only the shape/numel integers differ
  model_1gb.pt       a realistic model: nn.TransformerEncoder-style state_dict
                     (20 layers, d_model 1024, ffn 4096, vocab 16384; 243 tensors, ~1 GiB),
                     taken from a real nn.Module's state_dict() (OrderedDict with _metadata)
  opcodes_p2.pkl     raw pickle, protocol 2: dict of lists of ints/floats/strings (~2M opcodes)
  opcodes_p4.pkl     the same object, protocol 4
  small_1kb.pkl      raw pickle, protocol 4, ~1 KB (start-up cost of a scan)
  ints_strs_p4.pkl   raw pickle, protocol 4: ~1M ints and 500k strings (~2M opcodes, ~10 MB)
  ckpt_1gb_1024.pt   torch.save'd state_dict: 1,024 float32 tensors [1024, 256] (1 MiB each, ~1 GiB)
  tree/              10,000 small files (a few KB each) in 100 folders: torch.save'd small
                     state_dicts (.pt zips) and raw pickles (protocols 2 and 4, .pkl)

Each input is written to a temporary name and renamed when complete; an input that already
exists is kept (pass --force to rebuild). A stamp file OUTDIR/.complete-<version> is written
when everything is in place, so bench/run.sh can skip generation.
"""
import argparse
import collections
import os
import pickle
import pickletools
import shutil
import sys
import time

import numpy as np
import torch

VERSION = "v1"
SEED = 20240601

N_TREE_FILES = 10_000
TREE_DIRS = 100


def log(msg):
    print(msg, flush=True)


def count_opcodes(data: bytes) -> int:
    """Number of opcodes in every pickle of a stream (pickletools.genops; nothing is unpickled)."""
    n = 0
    pos = 0
    import io
    f = io.BytesIO(data)
    while pos < len(data):
        f.seek(pos)
        for op, _arg, p in pickletools.genops(f):
            n += 1
            if op.name == "STOP":
                pos = f.tell()
                break
        else:
            break
    return n


def atomic_torch_save(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write(path, data: bytes):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- checkpoints

def flat_state_dict(rows: int, seed: int):
    """16 float32 tensors [rows, 256]; same names, dtypes and count whatever `rows` is."""
    gen = torch.Generator().manual_seed(seed)
    sd = collections.OrderedDict()
    for i in range(16):
        # torch.randn with an explicit generator is deterministic; ~1 GiB takes a few seconds.
        sd[f"blocks.{i}.weight"] = torch.randn(rows, 256, generator=gen, dtype=torch.float32)
    return sd


def make_ckpt(outdir, name, rows):
    path = os.path.join(outdir, name)
    t0 = time.time()
    atomic_torch_save(flat_state_dict(rows, SEED), path)
    log(f"{name}: {os.path.getsize(path):,} bytes, 16 tensors [{rows}, 256] float32 ({time.time() - t0:.1f}s)")


class TinyTransformer(torch.nn.Module):
    def __init__(self, vocab, d_model, nhead, ffn, layers):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, d_model)
        self.encoder = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(d_model, nhead, ffn, batch_first=True) for _ in range(layers))
        self.norm = torch.nn.LayerNorm(d_model)


def make_model(outdir, name="model_1gb.pt"):
    path = os.path.join(outdir, name)
    t0 = time.time()
    torch.manual_seed(SEED + 1)
    model = TinyTransformer(vocab=16384, d_model=1024, nhead=16, ffn=4096, layers=20)
    sd = model.state_dict()
    nparams = sum(t.numel() for t in sd.values())
    atomic_torch_save(sd, path)
    log(f"{name}: {os.path.getsize(path):,} bytes, {len(sd)} tensors, {nparams:,} float32 parameters "
        f"({time.time() - t0:.1f}s)")
    del model, sd


# --------------------------------------------------------------------------- big raw pickle

def big_object(n_keys=500, per_list=3000, seed=SEED + 2):
    """dict of n_keys lists, each a mix of ints, floats and (distinct) strings."""
    rng = np.random.default_rng(seed)
    obj = {}
    for k in range(n_keys):
        ints = rng.integers(-2**40, 2**40, size=per_list).tolist()
        floats = rng.standard_normal(per_list).tolist()
        kinds = rng.integers(0, 3, size=per_list).tolist()
        items = []
        for j in range(per_list):
            kind = kinds[j]
            if kind == 0:
                # small and large ints: BININT1 / BININT2 / BININT / LONG1
                v = ints[j]
                items.append(v >> (8 * (j % 5)))
            elif kind == 1:
                items.append(floats[j])
            else:
                items.append(f"tok{k}_{j}_{ints[j] & 0xffff:x}")
        obj[f"column_{k:04d}"] = items
    return obj


def make_opcodes(outdir):
    obj = big_object()
    for proto in (2, 4):
        name = f"opcodes_p{proto}.pkl"
        path = os.path.join(outdir, name)
        data = pickle.dumps(obj, protocol=proto)
        n = count_opcodes(data)
        atomic_write(path, data)
        log(f"{name}: {len(data):,} bytes, protocol {proto}, {n:,} opcodes (pickletools.genops)")
        with open(path + ".opcodes", "w") as f:
            f.write(f"{n}\n")


def make_ints_strs(outdir, name="ints_strs_p4.pkl"):
    """Protocol 4, ~2M opcodes: 500 columns of 2,000 ints (BININT1/BININT2/BININT) and 1,000
    distinct short strings (SHORT_BINUNICODE + MEMOIZE each)."""
    rng = np.random.default_rng(SEED + 4)
    obj = {}
    for k in range(500):
        kind = rng.random(2000)
        ints = np.where(kind < 0.4, rng.integers(0, 256, 2000),
                        np.where(kind < 0.7, rng.integers(256, 65536, 2000), rng.integers(-2**31, 2**31, 2000)))
        obj[f"c{k:03d}"] = {"ids": ints.tolist(), "names": [f"nm{k:03d}_{j:04d}" for j in range(1000)]}
    data = pickle.dumps(obj, protocol=4)
    n = count_opcodes(data)
    path = os.path.join(outdir, name)
    atomic_write(path, data)
    with open(path + ".opcodes", "w") as f:
        f.write(f"{n}\n")
    log(f"{name}: {len(data):,} bytes, protocol 4, {n:,} opcodes (pickletools.genops)")


def make_small(outdir, name="small_1kb.pkl"):
    obj = {"name": "small", "ids": list(range(150)), "labels": [f"label{i}" for i in range(60)], "scale": 0.5}
    data = pickle.dumps(obj, protocol=4)
    atomic_write(os.path.join(outdir, name), data)
    log(f"{name}: {len(data):,} bytes, protocol 4")


def make_many_tensors(outdir, name="ckpt_1gb_1024.pt"):
    """~1 GiB zip with 1,024 members of 1 MiB: the local-header walk crosses the whole file."""
    path = os.path.join(outdir, name)
    t0 = time.time()
    gen = torch.Generator().manual_seed(SEED + 5)
    sd = collections.OrderedDict((f"layer{i:04d}.weight", torch.randn(1024, 256, generator=gen)) for i in range(1024))
    atomic_torch_save(sd, path)
    log(f"{name}: {os.path.getsize(path):,} bytes, 1,024 tensors [1024, 256] float32 ({time.time() - t0:.1f}s)")


# --------------------------------------------------------------------------- tree of small files

def small_state_dict(rng, i):
    """A few-KB state_dict: a small MLP/conv block, with mixed dtypes."""
    sd = collections.OrderedDict()
    n_layers = 2 + int(rng.integers(0, 4))
    width = int(rng.choice([4, 8, 12, 16]))
    for l in range(n_layers):
        sd[f"layers.{l}.weight"] = torch.from_numpy(rng.standard_normal((width, width)).astype(np.float32))
        sd[f"layers.{l}.bias"] = torch.from_numpy(rng.standard_normal(width).astype(np.float32))
    if i % 3 == 0:
        sd["bn.running_mean"] = torch.zeros(width)
        sd["bn.running_var"] = torch.ones(width)
        sd["bn.num_batches_tracked"] = torch.tensor(int(rng.integers(0, 10_000)), dtype=torch.int64)
    if i % 5 == 0:
        sd["head.weight"] = torch.from_numpy(rng.standard_normal((width, 3)).astype(np.float16))
    return sd


def small_raw_object(rng, i):
    n = 40 + int(rng.integers(0, 120))
    return {
        "id": i,
        "name": f"sample-{i:05d}",
        "ints": rng.integers(-1000, 100_000, size=n).tolist(),
        "floats": rng.standard_normal(n // 2).tolist(),
        "labels": [f"label{int(x)}" for x in rng.integers(0, 50, size=n // 4)],
        "meta": {"split": ["train", "val", "test"][i % 3], "ok": bool(i % 2), "score": float(rng.random())},
        "pair": (i, i + 1),
    }


def make_tree(outdir, n_files=N_TREE_FILES):
    final = os.path.join(outdir, "tree")
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    t0 = time.time()
    counts = collections.Counter()
    total = 0
    for i in range(n_files):
        rng = np.random.default_rng([SEED + 3, i])
        d = os.path.join(tmp, f"{i % TREE_DIRS:02d}")
        os.makedirs(d, exist_ok=True)
        kind = i % 4  # half torch zips, a quarter protocol 2, a quarter protocol 4
        if kind in (0, 1):
            path = os.path.join(d, f"ckpt_{i:05d}.pt")
            torch.save(small_state_dict(rng, i), path)
            counts["torch-zip"] += 1
        else:
            proto = 2 if kind == 2 else 4
            path = os.path.join(d, f"data_{i:05d}.pkl")
            with open(path, "wb") as f:
                f.write(pickle.dumps(small_raw_object(rng, i), protocol=proto))
            counts[f"pickle-p{proto}"] += 1
        total += os.path.getsize(path)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    log(f"tree/: {n_files:,} files in {TREE_DIRS} folders, {total:,} bytes (mean {total / n_files:,.0f} B/file), "
        f"{dict(counts)} ({time.time() - t0:.1f}s)")


# --------------------------------------------------------------------------- tree of GB checkpoints
def make_gbtree(outdir):
    """gbtree/: several GB of checkpoints in the formats brine walks differently: the 1 GB zip and
    the 1 GB model (hard links, no extra disk), a 1 GB legacy-format stream (storages skipped by
    their declared sizes), and a 2 GB zip."""
    final = os.path.join(outdir, "gbtree")
    tmp = final + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    t0 = time.time()
    for name in ("ckpt_1gb.pt", "model_1gb.pt"):
        src = os.path.join(outdir, name)
        if not os.path.exists(src):
            INPUTS[name](outdir)
        os.link(src, os.path.join(tmp, name))
    legacy = os.path.join(tmp, "legacy_1gb.pt")
    torch.save(flat_state_dict(65536, SEED + 2), legacy, _use_new_zipfile_serialization=False)
    atomic_torch_save(flat_state_dict(131072, SEED + 3), os.path.join(tmp, "ckpt_2gb.pt"))
    os.rename(tmp, final)
    total = sum(os.path.getsize(os.path.join(final, n)) for n in os.listdir(final))
    log(f"gbtree/: {len(os.listdir(final))} checkpoints, {total:,} bytes ({time.time() - t0:.1f}s)")


# --------------------------------------------------------------------------- main

INPUTS = {
    "ckpt_1mb.pt": lambda out: make_ckpt(out, "ckpt_1mb.pt", 64),
    "ckpt_1gb.pt": lambda out: make_ckpt(out, "ckpt_1gb.pt", 65536),
    "ckpt_100mb.pt": lambda out: make_ckpt(out, "ckpt_100mb.pt", 6400),
    "model_1gb.pt": lambda out: make_model(out),
    "opcodes_p2.pkl": lambda out: make_opcodes(out),  # writes both protocols
    "small_1kb.pkl": lambda out: make_small(out),
    "ints_strs_p4.pkl": lambda out: make_ints_strs(out),
    "ckpt_1gb_1024.pt": lambda out: make_many_tensors(out),
    "tree": lambda out: make_tree(out),
    "gbtree": lambda out: make_gbtree(out),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--only", nargs="*", choices=sorted(INPUTS), help="generate only these inputs")
    ap.add_argument("--force", action="store_true", help="rebuild inputs that already exist")
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    out = os.path.abspath(args.outdir)
    os.makedirs(out, exist_ok=True)
    stamp = os.path.join(out, f".complete-{VERSION}")
    names = args.only or list(INPUTS)
    for name in names:
        path = os.path.join(out, name)
        exists = os.path.exists(path) and (name != "opcodes_p2.pkl" or os.path.exists(os.path.join(out, "opcodes_p4.pkl")))
        if exists and not args.force:
            log(f"{name}: exists, kept")
            if name == "opcodes_p2.pkl":
                for p in (2, 4):
                    with open(os.path.join(out, f"opcodes_p{p}.pkl.opcodes")) as f:
                        log(f"opcodes_p{p}.pkl: {int(f.read()):,} opcodes (pickletools.genops)")
            continue
        if os.path.exists(stamp):
            os.remove(stamp)
        INPUTS[name](out)
    if all(os.path.exists(os.path.join(out, n)) for n in INPUTS):
        with open(stamp, "w") as f:
            f.write(f"torch {torch.__version__} numpy {np.__version__} python {sys.version.split()[0]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
