#!/usr/bin/env python3
"""Real checkpoints made now, by the real libraries, are never `malicious`.

The committed corpus is fixed bytes; this test regenerates a wider, varied set in a temp dir
with Debian's torch 1.13, numpy, scikit-learn and joblib (different architectures, dtypes,
protocols, both torch formats, full models, optimizers) and checks:
  - no file is malicious or an error, with any rules;
  - every plain state_dict / tensor / numpy file is clean with the default rules;
  - full models are clean with --rules torch-full-model, sklearn with --rules sklearn,
    training checkpoints with --rules training-checkpoint.

Usage: fresh_checkpoints_test.py BRINE     Ends with "N passed, N failed".
"""
import argparse
import collections
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn

BRINE = sys.argv[1]
torch.manual_seed(0)
np.random.seed(0)


def models():
    yield "mlp", nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    yield "cnn", nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
    yield "lstm", nn.LSTM(10, 20, num_layers=2, bidirectional=True)
    yield "gru", nn.GRU(6, 12)
    yield "transformer", nn.TransformerEncoder(nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32), num_layers=2)
    yield "embedding", nn.Sequential(nn.Embedding(50, 8), nn.LayerNorm(8), nn.Dropout(0.1))
    yield "conv1d", nn.Sequential(nn.Conv1d(2, 4, 3), nn.GroupNorm(2, 4), nn.ConvTranspose1d(4, 2, 3))
    yield "attention", nn.MultiheadAttention(16, 4)


def make(outdir):
    """Returns {path: expected verdict with default rules, 'packs': {...}}."""
    cases = []

    def add(name, obj, default, packs=None, **kw):
        path = os.path.join(outdir, name)
        torch.save(obj, path, **kw)
        cases.append((path, default, packs or {}))

    for name, m in models():
        sd = m.state_dict()
        add(f"{name}_state_dict.pt", sd, "clean")
        add(f"{name}_state_dict_legacy.pt", sd, "clean", _use_new_zipfile_serialization=False)
        add(f"{name}_state_dict_p4.pt", sd, "clean", pickle_protocol=4)
        add(f"{name}_full_model.pt", m, "unapproved", {"torch-full-model": "clean"})
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        params = [p for p in m.parameters() if p.requires_grad]
        loss = sum((p.float() ** 2).sum() for p in params)
        loss.backward()
        opt.step()
        add(f"{name}_optimizer.pt", opt.state_dict(), "clean")
        ckpt = {"epoch": 5, "model_state_dict": sd, "optimizer_state_dict": opt.state_dict(), "loss": float(loss),
                "args": argparse.Namespace(lr=1e-3, arch=name), "history": collections.OrderedDict(a=[1, 2])}
        add(f"{name}_training.ckpt", ckpt, "unapproved", {"training-checkpoint": "clean"})

    dtypes = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
              torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128]
    add("all_dtypes.pt", {str(d): torch.ones(3, 2, dtype=d) for d in dtypes}, "clean")
    big = torch.arange(100.0)
    add("views.pt", {"full": big, "slice": big[10:20], "t": big.view(10, 10).t(), "step": big[::3],
                     "expand": torch.ones(1, 3).expand(4, 3)}, "clean")
    add("bare_tensor.pt", torch.randn(4, 4), "clean")
    add("parameter.pt", nn.Parameter(torch.randn(3)), "clean")
    add("nested.pt", {"a": [torch.zeros(1), (torch.ones(2), {"b": torch.eye(2)})], "n": None, "s": "x"}, "clean")
    add("empty_and_scalar.pt", {"e": torch.zeros(0, 3), "s": torch.tensor(3.5)}, "clean")

    # numpy / pickle protocols
    arrays = {"f": np.random.rand(3, 4).astype(np.float32), "i": np.arange(6, dtype=">i4"), "b": np.array([True, False]),
              "fortran": np.asfortranarray(np.ones((2, 3))), "scalar": np.float64(2.5), "zero_d": np.array(7)}
    for proto in (2, 3, 4, 5):
        path = os.path.join(outdir, f"numpy_p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump(arrays, f, protocol=proto)
        cases.append((path, "clean", {}))
    for proto in range(0, 6):
        path = os.path.join(outdir, f"builtins_p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump({"l": [1, 2.5, "s", b"b", None, True], "t": (1, (2, 3)), "set": {1, 2}, "fs": frozenset([3]),
                         "big": 2 ** 100, "neg": -(2 ** 70), "c": 1 + 2j, "ba": bytearray(b"xy")}, f, protocol=proto)
        cases.append((path, "clean", {}))

    # tensors pickled with plain pickle: storages are torch.storage._load_from_bytes(<a torch.save file>)
    for proto in (2, 4):
        path = os.path.join(outdir, f"plain_pickle_tensors_p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump({"w": torch.randn(3, 3), "b": torch.zeros(3, dtype=torch.int64)}, f, protocol=proto)
        cases.append((path, "clean", {}))

    # np.save: a plain array has no pickle; an object array is a pickle after the .npy header
    path = os.path.join(outdir, "plain.npy")
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    cases.append((path, "clean", {}))
    path = os.path.join(outdir, "objects.npy")
    np.save(path, np.array(["a", 1, None, (2, 3)], dtype=object), allow_pickle=True)
    cases.append((path, "clean", {}))
    path = os.path.join(outdir, "arrays.npz")
    np.savez(path, x=np.ones(3), y=np.array([{"k": 1}], dtype=object))
    cases.append((path, "clean", {}))

    # scikit-learn
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeRegressor
    import joblib
    X, y = make_classification(n_samples=40, n_features=5, random_state=0)
    for name, est in [("pipeline", make_pipeline(StandardScaler(), LogisticRegression())),
                      ("forest", RandomForestClassifier(n_estimators=3, random_state=0)),
                      ("gboost", GradientBoostingClassifier(n_estimators=3, random_state=0)),
                      ("tree_reg", DecisionTreeRegressor(max_depth=3))]:
        est.fit(X, y)
        path = os.path.join(outdir, f"sklearn_{name}.pkl")
        with open(path, "wb") as f:
            pickle.dump(est, f)
        cases.append((path, "unapproved", {"sklearn": "clean"}))

    # joblib: raw array bytes interleaved with the pickle, object arrays as nested pickles, every compressor
    arrays_obj = {"a": np.arange(10.0), "big_endian": np.arange(4, dtype=">i8"), "f": np.asfortranarray(np.ones((3, 2))),
                  "obj": np.array(["x", 1, None], dtype=object), "scalar": np.float32(1.5), "empty": np.zeros((0, 3))}
    compressors = [None, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)]
    try:
        import lz4  # noqa: F401  (joblib's lz4 compressor needs the lz4 module)
        compressors.append(("lz4", 3))
    except ImportError:
        pass
    for comp in compressors:
        path = os.path.join(outdir, f"arrays_{comp[0] if comp else 'plain'}.joblib")
        joblib.dump(arrays_obj, path, compress=comp if comp else 0)
        cases.append((path, "clean", {}))
    path = os.path.join(outdir, "sklearn_pipeline.joblib")
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    joblib.dump(pipe, path)
    cases.append((path, "unapproved", {"sklearn": "clean"}))

    # TorchScript is code that torch.jit.load runs: never approved (but never malicious either)
    path = os.path.join(outdir, "scripted.pt")
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Linear(4, 2), nn.ReLU())), path)
    cases.append((path, "unapproved", {}))
    return cases


def scan(paths, packs):
    cmd = [BRINE, "scan", "--format", "json", "--no-hash"]
    for p in packs:
        cmd += ["--rules", p]
    out = subprocess.run(cmd + paths, stdout=subprocess.PIPE, timeout=600).stdout
    return {f["path"]: f for f in json.loads(out)["files"]}


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as d:
        cases = make(d)
        paths = [p for p, _, _ in cases]
        default = scan(paths, [])
        every_pack = scan(paths, ["torch-full-model", "sklearn", "training-checkpoint"])
        for path, expected, packs in cases:
            name = os.path.basename(path)
            problems = []
            for label, result in (("default", default[path]), ("all packs", every_pack[path])):
                if result["verdict"] in ("malicious", "error"):
                    problems.append(f"{label}: {result['verdict']}: " +
                                    "; ".join(f"{x['rule']} {x.get('global')} {x['message'][:100]}" for x in result["findings"][:3]))
            if default[path]["verdict"] != expected:
                problems.append(f"default verdict {default[path]['verdict']}, expected {expected}: " +
                                "; ".join(f"{x['rule']} {x.get('global')}" for x in default[path]["findings"][:3]))
            for pack, verdict in packs.items():
                got = scan([path], [pack])[path]["verdict"]
                if got != verdict:
                    problems.append(f"with {pack}: {got}, expected {verdict}")
            if problems:
                failed += 1
                print(f"FAIL {name}: " + " | ".join(problems))
            else:
                passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
