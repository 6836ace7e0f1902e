#!/usr/bin/python3
"""The upload mix of the `brine serve` load benchmark, written to OUTDIR (deterministic).

    /usr/bin/python3 bench/serve/make_mix.py OUTDIR

Real checkpoints as a registry receives them: torch.save'd state dicts and whole training
checkpoints of several sizes, a scikit-learn model (joblib), numpy arrays, and a few payload
pickles (os.system('echo brine-test'), built as bytes: nothing is run). Prints one path per line.
"""
import os
import sys

import joblib
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression


def mlp(widths):
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.LayerNorm(b)]
    return torch.nn.Sequential(*layers)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(7)
    paths = []

    def save(name, write):
        path = os.path.join(out, name)
        if not os.path.exists(path):
            tmp = os.path.join(out, ".tmp-" + name)  # keeps the extension (numpy appends .npy otherwise)
            write(tmp)
            os.replace(tmp, path)
        paths.append(path)

    # state dicts: ~20 KB, ~270 KB, ~1 MB, ~4 MB
    for name, widths in [("mlp_20k.pt", [32, 64, 32]), ("mlp_270k.pt", [128, 256, 128]),
                         ("mlp_1m.pt", [256, 512, 256]), ("mlp_4m.pt", [512, 1024, 512])]:
        save(name, lambda p, w=widths: torch.save(mlp(w).state_dict(), p))
    # a training checkpoint: model, optimizer state, epoch, a config dict
    def ckpt(p):
        m = mlp([128, 256, 128])
        opt = torch.optim.Adam(m.parameters())
        m(torch.randn(4, 128)).sum().backward()
        opt.step()
        torch.save({"epoch": 3, "model": m.state_dict(), "optimizer": opt.state_dict(), "config": {"lr": 1e-3}}, p)
    save("training.ckpt", ckpt)
    save("legacy.pth", lambda p: torch.save(mlp([64, 128]).state_dict(), p, _use_new_zipfile_serialization=False))
    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 8))
    y = (x[:, 0] > 0).astype(int)
    save("logreg.joblib", lambda p: joblib.dump(LogisticRegression().fit(x, y), p))
    save("array.npy", lambda p: np.save(p, rng.normal(size=(256, 256)).astype(np.float32)))
    # payloads (each would run `echo brine-test` if loaded)
    # GLOBAL (protocol 2) and STACK_GLOBAL (protocol 4) spellings of posix.system('echo brine-test')
    payloads = {
        "payload_p2.pkl": b"\x80\x02cposix\nsystem\nX\x0f\x00\x00\x00echo brine-test\x85R.",
        "payload_p4.pkl": b"\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c\x0fecho brine-test\x85R.",
    }
    for name, body in payloads.items():
        save(name, lambda p, b=body: open(p, "wb").write(b))
    for p in paths:
        print(p)


if __name__ == "__main__":
    main()
