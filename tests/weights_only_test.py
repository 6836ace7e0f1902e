#!/usr/bin/env python3
"""`brine scan --emit-safe-globals` against torch's own weights_only loader.

Files are made with Debian's torch 1.13 (state dicts, legacy and zip layouts, tensors of many
dtypes, a whole nn.Module, optimizer state, a numpy array, dtype/device/Counter values, a
protocol-4 save). For each, brine's model of torch 1.13 (--safe-globals-torch 1.13) must agree
with torch 1.13's torch.load(f, weights_only=True):
  - an empty list and no refusal: the file loads;
  - a non-empty list and no refusal: the load fails naming one of the listed globals;
  - a refusal ("never"): the load fails.
The torch 2.x model (the default) is checked on what 2.x documents: state dicts load as they
are, a numpy array needs _reconstruct/ndarray/dtype, a whole module needs its classes, protocol 4
never loads; the printed Python is valid Python. Nothing loaded here runs code: every file is
made from benign objects, and weights_only refuses any global outside its allowlist before use.

Every torch file of corpus/benign is checked the same way.

Usage: weights_only_test.py BRINE REPO_ROOT       Ends with the line "N passed, N failed".
"""
import collections
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback

import numpy as np
import torch

BRINE = sys.argv[1]
BENIGN = os.path.join(sys.argv[2], "corpus", "benign")
TMP = tempfile.mkdtemp(prefix="brine-wo-")
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def brine_model(path, torch_version="2"):
    p = subprocess.run([BRINE, "scan", "--emit-safe-globals", "--safe-globals-torch", torch_version, "-f", "json", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    doc = json.loads(p.stdout)
    assert (p.returncode == 0) == doc["loadable"] or any(g["brine_rules"] == "denied" for g in doc["safe_globals"]), doc
    return doc


def save(name, obj, **kwargs):
    path = os.path.join(TMP, name)
    torch.save(obj, path, **kwargs)
    return path


def load_1_13(path):
    """torch 1.13's verdict: None if it loads, else the error text."""
    try:
        torch.load(path, weights_only=True)
        return None
    except Exception as e:  # UnpicklingError (wrapping the unpickler's RuntimeError) or others
        return str(e)


def agree_with_1_13(path):
    doc = brine_model(path, "1.13")
    names = [g["global"] for g in doc["safe_globals"]]
    err = load_1_13(path)
    if doc["never"]:
        assert err is not None, f"brine says never, torch 1.13 loads it: {doc['never']}"
    elif names:
        assert err is not None, f"brine lists {names}, torch 1.13 loads it"
        assert any(n in err for n in names), f"torch 1.13's error names none of {names}: {err}"
    else:
        assert err is None, f"brine says it loads as it is; torch 1.13: {err}"
    return doc


def linear():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


@test
def state_dict_zip_loads():
    doc = agree_with_1_13(save("sd.pt", linear().state_dict()))
    assert doc["loadable"] and doc["safe_globals"] == [] and doc["never"] == []
    d2 = brine_model(os.path.join(TMP, "sd.pt"))
    assert d2["loadable"] and d2["safe_globals"] == [], d2


@test
def state_dict_legacy_loads():
    doc = agree_with_1_13(save("sd_legacy.pt", linear().state_dict(), _use_new_zipfile_serialization=False))
    assert doc["container"] == "torch-legacy" and doc["loadable"], doc


@test
def tensors_of_many_dtypes():
    tensors = {str(dt): torch.zeros(3, dtype=dt) for dt in (torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                                            torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8,
                                                            torch.bool, torch.complex64, torch.complex128)}
    tensors["param"] = torch.nn.Parameter(torch.ones(2))
    tensors["view"] = torch.arange(10)[2:5]
    for legacy in (False, True):
        doc = agree_with_1_13(save(f"dtypes{int(legacy)}.pt", tensors, _use_new_zipfile_serialization=not legacy))
        assert doc["loadable"], doc


@test
def dtype_device_counter_values_are_listed():
    # Globals outside 1.13's fixed list, no other problem: 1.13 refuses naming the first one.
    for name, obj, expect in (("dtype.pt", {"dtype": torch.bfloat16}, "torch.bfloat16"),
                              ("device.pt", {"device": torch.device("cpu")}, "torch.device"),
                              ("counter.pt", collections.Counter(a=1), "collections.Counter")):
        doc = agree_with_1_13(save(name, obj))
        assert [g["global"] for g in doc["safe_globals"]] == [expect] and not doc["never"], doc
        assert not doc["loadable"]
        d2 = brine_model(os.path.join(TMP, name))  # all three are in 2.x's default allowlist
        assert d2["loadable"] and d2["safe_globals"] == [], d2


@test
def optimizer_state_float_is_refused_by_1_13():
    model = linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    doc = agree_with_1_13(save("optim.pt", opt.state_dict()))
    assert any("BINFLOAT" in n["message"] for n in doc["never"]), doc
    d2 = brine_model(os.path.join(TMP, "optim.pt"))
    assert d2["loadable"] and d2["safe_globals"] == [], d2


@test
def whole_module():
    net = torch.nn.Sequential(linear(), torch.nn.ReLU())
    path = save("module.pt", net)
    doc = agree_with_1_13(path)
    assert not doc["loadable"] and doc["never"], doc
    d2 = brine_model(path)
    names = [g["global"] for g in d2["safe_globals"]]
    assert {"torch.nn.modules.container.Sequential", "torch.nn.modules.linear.Linear",
            "torch.nn.modules.activation.ReLU"} <= set(names), d2
    assert d2["loadable"], d2
    assert "torch.serialization.add_safe_globals([" in d2["python"]
    assert "import torch.nn.modules.linear\n" in d2["python"]
    compile(d2["python"], "safe_globals.py", "exec")


@test
def numpy_array_inside():
    path = save("numpy.pt", {"arr": np.arange(4, dtype=np.int64), "w": torch.ones(2)})
    doc = agree_with_1_13(path)
    assert not doc["loadable"], doc
    d2 = brine_model(path)
    names = [g["global"] for g in d2["safe_globals"]]
    assert names == ["numpy.core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype"], d2
    assert d2["loadable"] and not d2["never"], d2
    p = subprocess.run([BRINE, "scan", "--emit-safe-globals", path], stdout=subprocess.PIPE, timeout=120)
    text = p.stdout.decode()
    assert p.returncode == 0, text
    assert "import numpy\nimport numpy.core.multiarray\nimport torch\n" in text, text
    assert "torch.serialization.add_safe_globals([numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype])" in text
    compile(text, "safe_globals.py", "exec")


@test
def protocol_4_never_loads():
    path = save("proto4.pt", linear().state_dict(), pickle_protocol=4)
    doc = agree_with_1_13(path)
    assert doc["never"], doc
    d2 = brine_model(path)
    assert not d2["loadable"] and any("FRAME" in n["message"] or "BINUNICODE" in n["message"] for n in d2["never"]), d2


@test
def not_a_torch_file():
    path = os.path.join(TMP, "plain.pkl")
    import pickle
    with open(path, "wb") as f:
        pickle.dump({"a": 1}, f, protocol=2)
    doc = agree_with_1_13(path)
    assert not doc["loadable"] and "not a torch.save file" in doc["never"][0]["message"], doc


@test
def benign_corpus_torch_files_agree():
    checked = 0
    for name in sorted(os.listdir(BENIGN)):
        if name.endswith((".pt", ".pth", ".bin", ".ckpt")):
            agree_with_1_13(os.path.join(BENIGN, name))
            checked += 1
    assert checked >= 5, checked


def main():
    passed = failed = 0
    for t in TESTS:
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__}")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
