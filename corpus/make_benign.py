#!/usr/bin/python3
"""Generate brine's BENIGN corpus: real files written by the real libraries.

Run with Debian 12's interpreter (torch 1.13.1, numpy 1.24, scikit-learn 1.2.1):

    /usr/bin/python3 corpus/make_benign.py

Writes corpus/benign/<file> and corpus/benign/manifest.json.  Nothing here
ever *loads* a pickle: the globals listed in the manifest are found with
pickletools.genops (plus a small stack simulation to resolve STACK_GLOBAL
operands), and the expected verdicts are computed from those globals with a
Python model of brine's default allowlist and opt-in packs (see VERDICTS).

Determinism: torch/numpy/random are seeded, every name is fixed, the script
re-executes itself with PYTHONHASHSEED=0, and torch 1.13's zip writer stamps
every entry with 1980-01-01 00:00, so a second run rewrites identical bytes.
The one inherently non-deterministic format (legacy non-zip torch.save, whose
storage keys are C pointers) is marked as such in its manifest note.
"""
import os
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    # Fixed string hashing => fixed iteration order of any set of strings.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse
import collections
import io
import itertools
import json
import pickle
import pickletools
import random
import re
import warnings
import zipfile

import numpy as np
import torch
import torch.nn as nn

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))          # corpus/
OUT = os.path.join(HERE, "benign")
MANIFEST = os.path.join(OUT, "manifest.json")
MAX_SIZE = 64 * 1024

SAMPLES = []            # (relative name, note, kind)
FAILURES = []           # things the libraries refused to write


def seed(n=0):
    random.seed(n)
    np.random.seed(n)
    torch.manual_seed(n)


def path_of(name):
    return os.path.join(OUT, name)


def register(name, note, kind="pickle"):
    """kind: pickle (single raw pickle), zip (torch zip / TorchScript),
    legacy (legacy torch stream: 5 consecutive pickles + raw data)."""
    SAMPLES.append((name, note, kind))


def tsave(obj, name, note, **kw):
    # torch.save(obj, <path>) => archive prefix = basename without extension.
    torch.save(obj, path_of(name), **kw)
    register(name, note, "legacy" if kw.get("_use_new_zipfile_serialization") is False else "zip")


def pdump(obj, name, note, protocol):
    with open(path_of(name), "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)
    register(name, note, "pickle")


# ================================================================ torch ===

class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        return self.fc(x.flatten(1))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class TinyLM(nn.Module):
    """Embedding and output projection share one Parameter (tied weights)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.lm_head = nn.Linear(4, 10, bias=False)
        self.lm_head.weight = self.embed.weight


def make_cnn():
    seed(0)
    m = SmallCNN()
    m.train()
    with torch.no_grad():                      # non-trivial BN running stats
        m(torch.randn(2, 1, 4, 4))
    return m


def make_mlp():
    seed(1)
    return MLP()


def torch_samples():
    cnn_sd = make_cnn().state_dict()
    mlp_sd = make_mlp().state_dict()

    tsave(cnn_sd, "torch_state_dict_cnn.pt",
          "state_dict of Conv2d+BatchNorm2d+Linear (OrderedDict with _metadata, "
          "int64 0-dim num_batches_tracked), torch.save default protocol 2, zip format")
    tsave(mlp_sd, "torch_state_dict_mlp.pth",
          "state_dict of a 2-layer MLP, torch.save default protocol 2, zip format")

    # pickle_protocol variants.  torch 1.13 accepts 0..5 at save time, but a
    # protocol-0 file writes the persistent id as the str() of the tuple (PERSID)
    # and torch.load then fails (AssertionError) -> not included, reported.
    for proto in (0, 1, 3, 4, 5):
        name = f"torch_state_dict_mlp_p{proto}.pt"
        buf = io.BytesIO()
        try:
            torch.save(mlp_sd, buf, pickle_protocol=proto)
            buf.seek(0)
            torch.load(buf)             # self-made, trusted: checks the file round-trips
        except Exception as e:          # noqa: BLE001
            FAILURES.append(f"torch.save(state_dict, pickle_protocol={proto}): "
                            f"saves, but torch.load raises {type(e).__name__}: {e}")
            continue
        tsave(mlp_sd, name, f"MLP state_dict saved with torch.save(pickle_protocol={proto})"
              + ("; FRAME/SHORT_BINUNICODE/MEMOIZE/STACK_GLOBAL opcodes" if proto >= 4 else ""),
              pickle_protocol=proto)

    tsave(mlp_sd, "torch_state_dict_mlp_legacy.pt",
          "MLP state_dict in the legacy non-zip stream (_use_new_zipfile_serialization=False): "
          "magic/protocol/sys_info/object/key-list pickles, then raw storages. "
          "NON-DETERMINISTIC: storage keys are C pointers, bytes change every run",
          _use_new_zipfile_serialization=False)

    seed(2)
    tsave(torch.arange(6, dtype=torch.float32).reshape(2, 3), "torch_tensor_bare.pt",
          "a bare float32 tensor (2x3) as the top-level object")
    seed(3)
    tsave(nn.Parameter(torch.randn(3, 2)), "torch_parameter.pt",
          "a bare nn.Parameter (_rebuild_parameter, requires_grad=True)")

    # Tied weights: same object twice (memo BINGET) + distinct tensors on one storage.
    seed(4)
    emb = nn.Parameter(torch.randn(4, 2))
    shared = torch.arange(8, dtype=torch.float32)
    tied = collections.OrderedDict()
    tied["embed.weight"] = emb
    tied["lm_head.weight"] = emb
    tied["buf"] = shared
    tied["buf_as_2x4"] = shared.view(2, 4)
    tsave(tied, "torch_tied_weights.pt",
          "same Parameter object under two names (2nd is a memo GET) + two tensor objects "
          "sharing one storage (same storage key twice)")
    seed(5)
    tsave(TinyLM().state_dict(), "torch_state_dict_tied_lm.bin",
          "state_dict of a module whose Embedding and Linear share one Parameter: two "
          "detached tensors with the same storage key (pytorch_model.bin style name)")

    base = torch.arange(24, dtype=torch.float32)
    grid = base.view(4, 6)
    tsave({
        "base": base,
        "slice_offset": base[5:11].view(2, 3),     # storage_offset 5
        "transpose": grid.t(),                     # stride (1, 6)
        "step": base[1::3],                        # offset 1, stride (3,)
        "column": grid[:, 2],                      # offset 2, stride (6,)
        "expand": base[3:4].expand(3, 4),          # stride (0, 0)
        "narrow_2d": grid[1:3, 2:5],               # offset 8, stride (6, 1)
    }, "torch_views.pt",
        "seven views of one 24-float storage: slice offset, transpose, step, column, "
        "expand (stride 0), 2-D narrow")

    dts = collections.OrderedDict()
    for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64,
               torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool):
        dts[str(dt).replace("torch.", "")] = (torch.arange(5) % 3).to(dt)
    dts["complex64"] = torch.tensor([1 + 2j, -3.5 + 0.25j], dtype=torch.complex64)
    dts["complex128"] = torch.tensor([1 - 1j, 2 + 0j, -0.5j], dtype=torch.complex128)
    try:
        buf = io.BytesIO()
        torch.save(torch.zeros(2, dtype=torch.complex32), buf)
        dts["complex32"] = torch.zeros(2, dtype=torch.complex32)
    except Exception as e:              # noqa: BLE001
        FAILURES.append(f"torch.save(complex32 tensor): {type(e).__name__}: {e}")
    tsave(dts, "torch_dtypes_all.bin",
          "one tensor per dtype torch 1.13 can save: f16 bf16 f32 f64 u8 i8 i16 i32 i64 bool "
          "c64 c128 (complex32 is refused by torch.save); 12 storages => keys 0..11 "
          "written in lexicographic order (data/10 before data/2)")

    qx = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    tsave({
        "quint8": torch.quantize_per_tensor(qx, 0.5, 2, torch.quint8),
        "qint8": torch.quantize_per_tensor(qx, 0.25, 0, torch.qint8),
        "qint32": torch.quantize_per_tensor(qx, 0.1, 1, torch.qint32),
        "quint4x2": torch.quantize_per_tensor(qx.flatten()[:4], 0.5, 0, torch.quint4x2),
        "per_channel": torch.quantize_per_channel(
            qx, torch.tensor([0.1, 0.2], dtype=torch.float64),
            torch.tensor([0, 1]), 0, torch.qint8),
    }, "torch_quantized.pt",
        "quantized tensors (_rebuild_qtensor, Q*Storage, per_tensor_affine / per_channel_affine)")

    coo = torch.sparse_coo_tensor(torch.tensor([[0, 1, 2], [2, 0, 1]]),
                                  torch.tensor([1.0, 2.0, 3.0]), (3, 3))
    tsave({"sparse_coo": coo, "sparse_csr": coo.to_sparse_csr(),
           "meta": torch.empty(2, 3, device="meta")},
          "torch_sparse_meta.pt",
          "sparse COO (_rebuild_sparse_tensor + _get_layout), sparse CSR "
          "(_rebuild_sparse_csr_tensor), meta tensor (_rebuild_meta_tensor_no_storage)")

    tsave({
        "scalar_f32": torch.tensor(3.5),
        "scalar_i64": torch.tensor(7),
        "scalar_bool": torch.tensor(True),
        "empty_0x3": torch.zeros(0, 3),
        "empty_1d": torch.empty(0, dtype=torch.int64),
        "empty_2x0x4": torch.zeros(2, 0, 4, dtype=torch.float16),
        "one_elem": torch.ones(1, 1, 1),
    }, "torch_edge_shapes.pt",
        "0-dim tensors (size (), stride ()) and zero-size tensors (empty data records)")

    seed(6)
    tsave({
        "layers": [torch.randn(2, 2), {"w": torch.randn(3), "b": (torch.zeros(1), torch.ones(2))}],
        "pair": (torch.arange(3), [torch.tensor([True, False])]),
        "deep": {"a": {"b": {"c": [[torch.full((2,), 4.0)]]}}},
        "meta": {"name": "nested", "shape": [2, 3], "ok": True, "none": None},
    }, "torch_nested_containers.pt",
        "tensors nested in dicts, lists and tuples (plain dict/list/tuple opcodes)")

    tsave({
        "device": torch.device("cpu"),
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "layout": torch.sparse_coo,
        "qscheme": torch.per_channel_affine,
        "slice": slice(1, 9, 2),
        "complex": 1.5 - 2j,
        "set": {1, 2, 3},
        "frozenset": frozenset({4, 5}),
        "bytes": b"\x00\x01\xfe\xff",
        "big_int": 2 ** 70,
        "neg_int": -123456789,
        "float": 0.125,
        "str": "résumé",
        "tensor": torch.ones(2),
    }, "torch_misc_values.pt",
        "non-tensor values via torch.save: torch.device, torch.Size, dtype, layout, qscheme, "
        "slice, complex, set, frozenset, bytes (_codecs.encode), big int")

    # ---- full models (stock layers only, no __main__ classes) ----
    seed(7)
    conv_model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.25),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    conv_model.eval()
    tsave(conv_model, "torch_full_model_sequential.pt",
          "torch.save(model) of nn.Sequential(Conv2d, BatchNorm2d, ReLU, Dropout, Flatten, "
          "Linear): pickled torch.nn.modules.* classes, Parameters, __builtin__.set")
    seed(8)
    mlp_model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.1), nn.Linear(8, 2))
    tsave(mlp_model, "torch_full_model_mlp.pth",
          "torch.save(model) of nn.Sequential(Linear, ReLU, Dropout, Linear)")

    # ---- training checkpoint ----
    seed(9)
    model = MLP()
    x, y = torch.randn(4, 8), torch.randn(4, 4)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(adam, step_size=2, gamma=0.5)
    for opt in (adam, sgd):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    sched.step()
    ckpt = {
        "epoch": 3,
        "model": model.state_dict(),
        "optimizer": adam.state_dict(),
        "sgd": sgd.state_dict(),
        "scheduler": sched.state_dict(),
        "args": argparse.Namespace(lr=0.001, name="mlp-run"),
        "best_acc": np.float64(0.93),
        "rng": None,
        "extra": {"note": "x", "ints": [1, 2, 3]},
    }
    tsave(ckpt, "torch_training_checkpoint.ckpt",
          "training checkpoint: epoch, model state_dict, Adam state_dict after one step "
          "(0-dim 'step' tensors), SGD(momentum=0.9) state_dict after one step, StepLR "
          "state_dict, argparse.Namespace args, numpy.float64 best_acc, None, plain extras")

    # ---- TorchScript ----
    seed(10)
    scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)))
    torch.jit.save(scripted, path_of("torchscript_mlp.pt"))
    register("torchscript_mlp.pt",
             "torch.jit.save(torch.jit.script(nn.Sequential(Linear, ReLU, Linear))): "
             "__torch__.* classes in data.pkl, code/ (deflated), constants.pkl, *.debug_pkl "
             "(not scanned for the globals list: name does not end in .pkl)", "zip")
    seed(11)
    scripted_cnn = torch.jit.script(
        nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).eval())
    torch.jit.save(scripted_cnn, path_of("torchscript_conv_bn.pt"))
    register("torchscript_conv_bn.pt",
             "torch.jit.save(torch.jit.script(nn.Sequential(Conv2d, BatchNorm2d, ReLU)))", "zip")


# ========================================================== raw pickles ===

def builtin_structure():
    shared = {"shared": [1, 2, 3], "tag": "common"}
    selfref = ["head", 42]
    selfref.append(selfref)
    return {
        "ints": [0, 1, -1, 127, 255, 256, -256, 65535, 65536, -2 ** 31, 2 ** 31 - 1,
                 2 ** 63 - 1, -2 ** 63, 2 ** 64, 2 ** 64 + 1, -(2 ** 64) - 7, 3 ** 100, -(2 ** 200)],
        "floats": [0.0, -0.0, 1.5, -2.25, 1e-310, 1e300, float("inf"), float("-inf"), float("nan")],
        "strs": ["", "ascii", "naïve café", "Ελληνικά", "日本語テキスト", "emoji 😀🚀",
                 "tab\tnewline\ncr\r", "back\\slash", "quote ' \" ", "nul\x00byte", "\u20ac\u00a0"],
        "bytes": b"\x00\x01\x7f\x80\xff binary",
        "bytearray": bytearray(b"\x10\x20mutable"),
        "set": {3, 1, 2},
        "frozenset": frozenset({-1, 10, 100}),
        "consts": [None, True, False],
        "tuples": ((), (1,), (1, "two"), (1, 2, 3), (1, 2, 3, 4, 5)),
        "nested": {"a": {"b": {"c": [1, (2, [3, {"d": None}])]}}},
        "int_keys": {1: "one", -1: "minus one", 2 ** 40: "big"},
        "tuple_key": {(1, 2): "pair"},
        "complex": 1 + 2j,
        "slice": slice(None, 10, 2),
        "shared_a": shared,
        "shared_b": shared,
        "selfref": selfref,
        "empty": [[], {}, ()],
    }


def raw_pickle_samples():
    obj = builtin_structure()
    for proto in range(6):
        pdump(obj, f"pickle_builtin_p{proto}.pkl",
              f"pickle.dump(protocol={proto}) of a plain Python structure: nested dict/list/"
              "tuple, ints incl. negative and > 2**64, floats incl. inf/nan/-0.0, non-ASCII str, "
              "bytes, bytearray, set, frozenset, complex, slice, None/True/False, a shared "
              "sub-object referenced twice, a self-referencing list", proto)


# ================================================================ numpy ===

def numpy_samples():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    arrays = {
        "f32_c": a,
        "f64_f_order": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(3, 2)),
        "big_endian_i4": np.arange(4, dtype=">i4"),
        "big_endian_f8": np.array([1.5, -2.0], dtype=">f8"),
        "bool": np.array([True, False, True]),
        "float16": np.array([0.5, 1.0, -2.0], dtype=np.float16),
        "uint8": np.arange(5, dtype=np.uint8),
        "complex64": np.array([1 + 1j], dtype=np.complex64),
        "structured": np.array([(1.0, 2, b"ab"), (3.5, -4, b"cd")],
                               dtype=[("x", "<f4"), ("y", "<i2"), ("tag", "S2")]),
        "datetime64": np.array(["2024-01-01", "2024-06-30"], dtype="M8[D]"),
        "zero_d": np.array(7, dtype=np.int16),
        "non_contiguous": np.arange(12, dtype=np.int64).reshape(3, 4)[:, ::2],
        "scalar_f64": np.float64(2.5),
        "scalar_i32": np.int32(-3),
        "scalar_bool": np.bool_(True),
        "dtype": np.dtype("float16"),
    }
    for proto in (2, 3, 4, 5):
        pdump(arrays, f"numpy_arrays_p{proto}.pkl",
              f"pickle.dump(protocol={proto}) of a dict of ndarrays: C and F order, big-endian "
              ">i4/>f8, bool, float16, uint8, complex64, structured, datetime64, 0-d, "
              "non-contiguous view, numpy scalars (float64, int32, bool_), a dtype"
              + ("; protocol 5 in-band (no buffer_callback): contiguous arrays via "
                 "numpy.core.numeric._frombuffer + BYTEARRAY8" if proto == 5 else ""),
              proto)

    # Zero-size arrays have b"" as their data; at protocol <= 2 Python pickles an
    # empty bytes object as __builtin__.bytes() (not _codecs.encode), a global the
    # default allowlist does not contain.  Kept apart so numpy_arrays_p2 stays clean.
    empties = {"empty_f32_0x3": np.zeros((0, 3), dtype=np.float32),
               "empty_i64": np.array([], dtype=np.int64)}
    for proto in (2, 5):
        pdump(empties, f"numpy_empty_arrays_p{proto}.pkl",
              f"pickle.dump(protocol={proto}) of zero-size ndarrays"
              + (": their empty data bytes pickle as GLOBAL '__builtin__ bytes' + EMPTY_TUPLE "
                 "REDUCE (protocol <= 2 spelling of b''), which the default rules do not approve"
                 if proto == 2 else ": empty in-band buffer via _frombuffer"), proto)

    obj_arr = np.array(["alpha", 1, "βeta", -2, 2 ** 70, None], dtype=object)
    for proto in (2, 4):
        pdump({"objects": obj_arr, "matrix": np.array([["a", 1], ["b", 2]], dtype=object)},
              f"numpy_object_array_p{proto}.pkl",
              f"pickle.dump(protocol={proto}) of dtype=object ndarrays holding str, int, "
              "big int and None (_reconstruct + pickled element list)", proto)


# ========================================================== scikit-learn ===

def sklearn_samples():
    from sklearn.cluster import KMeans
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    rs = np.random.RandomState(0)
    X = np.round(rs.rand(24, 3) * 10, 2)
    y = (X[:, 0] + X[:, 1] > X[:, 2] + 5).astype(np.int64)
    proto = pickle.DEFAULT_PROTOCOL   # 4 on Python 3.11

    pipe = Pipeline([("scaler", StandardScaler()),
                     ("clf", LogisticRegression(max_iter=200))]).fit(X, y)
    pdump(pipe, "sklearn_pipeline_logreg.pkl",
          f"pickle.dump(protocol={proto}) of Pipeline(StandardScaler, LogisticRegression) "
          "fit on 24x3 data", proto)
    pdump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y),
          "sklearn_decision_tree.pkl",
          f"pickle.dump(protocol={proto}) of DecisionTreeClassifier(max_depth=3) "
          "(sklearn.tree._tree.Tree with structured node array)", proto)
    pdump(RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y),
          "sklearn_random_forest.pkl",
          f"pickle.dump(protocol={proto}) of RandomForestClassifier(n_estimators=3, max_depth=3)",
          proto)
    pdump(KMeans(n_clusters=2, n_init=3, random_state=0).fit(X),
          "sklearn_kmeans.pkl",
          f"pickle.dump(protocol={proto}) of KMeans(n_clusters=2, n_init=3, random_state=0)",
          proto)
    pdump(KMeans(n_clusters=2, n_init=2, random_state=np.random.RandomState(0)).fit(X),
          "sklearn_kmeans_randomstate.pkl",
          f"pickle.dump(protocol={proto}) of KMeans whose random_state is a "
          "numpy.random.RandomState (numpy.random._pickle ctors)", proto)


# ===================================================== globals (no loading) ===

STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
              "SHORT_BINUNICODE", "BINUNICODE8"}
PUT_OPS = {"PUT", "BINPUT", "LONG_BINPUT"}
GET_OPS = {"GET", "BINGET", "LONG_BINGET"}
_MARK = object()
_ANY = object()


def pickle_globals(data, start=0):
    """Globals referenced by the pickle starting at `start` (GLOBAL / INST
    operands, STACK_GLOBAL resolved by simulating the stack and memo from the
    opcode table's stack effects).  Returns (set, end offset).  Nothing is
    imported or executed."""
    f = io.BytesIO(data)
    f.seek(start)
    stack, memo, found = [], {}, set()
    for op, arg, _pos in pickletools.genops(f):
        name = op.name
        if name in ("GLOBAL", "INST"):
            mod, qual = arg.split(" ", 1)
            found.add(f"{mod}.{qual}")
        elif name in ("EXT1", "EXT2", "EXT4"):
            found.add(f"<copyreg extension {arg}>")
        if name == "STACK_GLOBAL":
            qual, mod = stack.pop(), stack.pop()
            if isinstance(mod, str) and isinstance(qual, str):
                found.add(f"{mod}.{qual}")
            else:
                found.add("<unresolved STACK_GLOBAL>")
            stack.append(_ANY)
            continue
        if name in STRING_OPS:
            stack.append(arg)
            continue
        if name in PUT_OPS:
            memo[arg] = stack[-1]
            continue
        if name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
            continue
        if name in GET_OPS:
            stack.append(memo[arg])
            continue
        if name == "DUP":
            stack.append(stack[-1])
            continue
        before, after = op.stack_before, op.stack_after
        if pickletools.stackslice in before:
            while stack.pop() is not _MARK:
                pass
            for _ in range(before.index(pickletools.markobject)):
                stack.pop()
        else:
            for _ in before:
                stack.pop()
        for item in after:
            stack.append(_MARK if item is pickletools.markobject else _ANY)
    return found, f.tell()


def file_globals(path, kind):
    with open(path, "rb") as fh:
        data = fh.read()
    found = set()
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                if member.endswith(".pkl"):
                    found |= pickle_globals(z.read(member))[0]
    elif kind == "legacy":
        pos = 0
        for _ in range(5):   # magic, protocol version, sys_info, object, storage keys
            g, pos = pickle_globals(data, pos)
            found |= g
    else:
        g, end = pickle_globals(data)
        assert end == len(data), f"{path}: trailing bytes after STOP"
        found |= g
    return sorted(found)


def debug_pkl_globals(path):
    """Globals in TorchScript *.debug_pkl members (reported, not in manifest)."""
    found = set()
    with zipfile.ZipFile(path) as z:
        for member in z.namelist():
            if member.endswith(".debug_pkl"):
                found |= pickle_globals(z.read(member))[0]
    return sorted(found)


# ================================================= verdict model (rules) ===

TORCH_DTYPES = {
    "float16", "half", "bfloat16", "float32", "float", "float64", "double", "uint8", "int8",
    "int16", "short", "int32", "int", "int64", "long", "bool", "complex32", "chalf",
    "complex64", "cfloat", "complex128", "cdouble", "qint8", "quint8", "qint32", "quint4x2",
    "quint2x4", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
    "uint16", "uint32", "uint64", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2"}
QSCHEMES = {"per_tensor_affine", "per_channel_affine", "per_tensor_symmetric",
            "per_channel_symmetric", "per_channel_affine_float_qparams"}
REBUILD = {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
           "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
           "_rebuild_sparse_csr_tensor", "_rebuild_meta_tensor_no_storage",
           "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor"}
DEFAULT_EXACT = (
    {"collections.OrderedDict", "torch._tensor._rebuild_from_type_v2",
     "torch.storage.UntypedStorage", "torch.storage.TypedStorage",
     "torch.Size", "torch.device", "torch.serialization._get_layout", "_codecs.encode",
     "numpy.dtype", "numpy.ndarray"}
    | {f"torch._utils.{n}" for n in REBUILD}
    | {f"torch.{n}" for n in TORCH_DTYPES | QSCHEMES}
    | {f"{np_}.{m}" for np_ in ("numpy.core", "numpy._core")
       for m in ("multiarray._reconstruct", "multiarray.scalar", "numeric._frombuffer")}
    | {f"{b}.{n}" for b in ("builtins", "__builtin__")
       for n in ("set", "frozenset", "slice", "complex", "bytearray", "bytes")})
NUMPY_SCALAR_TYPES = {
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "longdouble", "complex64", "complex128", "clongdouble",
    "intc", "uintc", "int_", "uint", "longlong", "ulonglong", "half", "single", "double",
    "csingle", "cdouble", "str_", "bytes_", "void", "datetime64", "timedelta64", "object_"}


def _approved(g, packs):
    if g in DEFAULT_EXACT or re.fullmatch(r"torch\.[A-Za-z0-9]*Storage", g):
        return True
    np_scalar = g.startswith("numpy.") and (g[6:] in NUMPY_SCALAR_TYPES or g.startswith("numpy.dtypes."))
    if "torch-full-model" in packs and (g.startswith("torch.nn.modules.") or g in {
            "torch.nn.parameter.Parameter", "builtins.object", "__builtin__.set"}):
        return True
    if "sklearn" in packs and (g.startswith(("sklearn.", "scipy.sparse.", "numpy.random._pickle."))
                               or np_scalar):
        return True
    if "training-checkpoint" in packs and (np_scalar or g.startswith("datetime.") or g in {
            "argparse.Namespace", "collections.defaultdict", "pathlib.PosixPath"}):
        return True
    return False


def verdict(globs, packs=()):
    if any(g.startswith("__torch__") or g.startswith("torch.jit._pickle.") for g in globs):
        return "unapproved"          # TorchScript is never approved, by any pack
    # copyreg._reconstructor(cls, base, state) is approved only for approved classes:
    # cls and base are globals of the same file, so it passes iff everything else does
    # (builtins.object, its usual `base`, is approved only by torch-full-model).
    others = [g for g in globs if g not in ("copyreg._reconstructor", "copy_reg._reconstructor")]
    ok = all(_approved(g, packs) for g in others)
    return "clean" if ok else "unapproved"


PACKS = ("torch-full-model", "sklearn", "training-checkpoint")


def with_packs(globs):
    if verdict(globs) == "clean":
        return {}
    for n in range(1, len(PACKS) + 1):
        for combo in itertools.combinations(PACKS, n):
            if verdict(globs, combo) == "clean":
                return {",".join(combo): "clean"}
    return {",".join(PACKS): verdict(globs, PACKS)}


# ================================================================= main ===

def main():
    os.makedirs(OUT, exist_ok=True)
    previous = set()
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as fh:
            previous = {s["path"] for s in json.load(fh).get("samples", [])}

    torch.set_num_threads(1)
    torch_samples()
    raw_pickle_samples()
    numpy_samples()
    sklearn_samples()

    entries, report = [], []
    for name, note, kind in sorted(SAMPLES):
        p = path_of(name)
        size = os.path.getsize(p)
        if size >= MAX_SIZE:
            raise SystemExit(f"{name} is {size} bytes (limit {MAX_SIZE})")
        globs = file_globals(p, kind)
        entries.append({
            "path": f"benign/{name}",
            "expect": verdict(globs),
            "with_packs": with_packs(globs),
            "source": "make_benign.py",
            "note": note,
            "globals": globs,
        })
        report.append((name, size, kind, globs))

    # Remove files this script wrote on an earlier run but no longer produces.
    for stale in previous - {e["path"] for e in entries}:
        sp = os.path.join(HERE, stale)
        if os.path.isfile(sp):
            os.remove(sp)

    manifest = {
        "generator": "corpus/make_benign.py",
        "environment": {"python": sys.version.split()[0], "torch": torch.__version__,
                        "numpy": np.__version__,
                        "sklearn": __import__("sklearn").__version__},
        "nondeterministic": sorted(e["path"] for e in entries if "NON-DETERMINISTIC" in e["note"]),
        "samples": entries,
    }
    with open(MANIFEST, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1, ensure_ascii=True)
        fh.write("\n")

    if "-v" in sys.argv or "--verbose" in sys.argv:
        for name, size, kind, globs in report:
            print(f"{size:6d}  {name}  [{kind}]")
            for g in globs:
                print(f"          {g}")
        for name, _, kind, _ in report:
            if name.startswith("torchscript"):
                print(f"debug_pkl globals in {name}: {debug_pkl_globals(path_of(name))}")
    for fail in FAILURES:
        print("REFUSED:", fail)
    print(f"wrote {len(entries)} samples + manifest.json to {OUT}")


if __name__ == "__main__":
    main()
