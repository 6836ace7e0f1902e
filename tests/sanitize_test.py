#!/usr/bin/env python3
"""End-to-end tests of `brine sanitize` (pickle-based checkpoint -> safetensors / ONNX).

Makes checkpoints in a temp dir with Debian's torch 1.13, numpy and joblib (torch zip and legacy
formats, pickle protocol 4, views with offsets/strides, tied weights, every torch 1.13 dtype,
Parameters, nested containers, an Adam state_dict, training checkpoints, bare tensors, 0-dim and
zero-size tensors, .npy/.npz, plain pickles and joblib files of arrays, a state_dict carrying an
os.system payload), converts each with `brine sanitize` to .safetensors and to .onnx, and checks
every written tensor bit-exact against what torch.load / np.load / pickle.load / joblib.load return
(the payload file itself is never loaded: its clean twin is).

* safetensors files are parsed and validated here, in pure Python, against the format's rules.
* ONNX files: onnx.checker.check_model, structure (initializers = graph outputs, no nodes,
  metadata_props, external data layout) and numpy_helper / raw bytes; then onnxruntime-node
  (tests/onnxruntime/check.js, installed by tests/onnxruntime/install.sh) runs every model and
  compares every output (bfloat16/float8/complex tensors, which its JS binding cannot return, are
  taken out of a copy of the model first; they are checked through onnx above).
* the torch-2.x layouts and torch 1.13 samples in tests/data/reference.
* the CLI policy: exit codes 0/1/2, --force, never overwriting the input, atomic writes (nothing
  but the outputs is ever left in an output directory), --verify, --select, --strip-prefix, --name,
  --no-dedupe, --external-data, --to, --salvage, --rules, JSON and text reports.
The suite first checks its own checkers (reference safetensors files, hand-built ONNX models, and
check.js on tests/data/reference/onnx_initializers_only.onnx, including that it catches a
wrong byte).

Usage: sanitize_test.py BRINE REPO_ROOT [SAMPLES_DIR]     Ends with the line "N passed, N failed".
SAMPLES_DIR defaults to REPO_ROOT/tests/data/reference. One line per case ("ok   NAME" or
"FAIL NAME: why"); a case that cannot run (missing node, samples, ...) fails, nothing is skipped.
BRINE_SANITIZE_KEEP=DIR keeps the checkpoints and outputs in DIR (must not exist yet).
"""
import argparse
import collections
import fnmatch
import hashlib
import json
import pickletools
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import time
import traceback

if len(sys.argv) < 3:
    print(__doc__)
    sys.exit(2)
BRINE = os.path.abspath(sys.argv[1])
ROOT = os.path.abspath(sys.argv[2])


def find_samples():
    """The reference samples are in the repository (tests/data/reference); a third argument
    overrides. Missing samples are a failure of the cases that need them, never a skip."""
    return os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else os.path.join(ROOT, "tests", "data", "reference"))


SAMPLES = find_samples()
ORT_DIR = os.path.join(ROOT, "tests", "onnxruntime")

try:
    import joblib
    import numpy as np
    import onnx
    import torch
    import torch.nn as nn
    from onnx import TensorProto, helper, numpy_helper
except Exception:  # a missing module is a failure of the whole suite, not a skip
    traceback.print_exc()
    print("FAIL imports: torch, numpy, joblib and onnx are needed (scripts/setup.sh test)")
    print("0 passed, 1 failed")
    sys.exit(1)

# --------------------------------------------------------------------------------------- dtypes --
# name: (safetensors dtype, ONNX data_type, onnxruntime-node type or None if its JS binding can't
# return it, element bytes)
DTYPES = {
    "float64": ("F64", 11, "float64", 8),
    "float32": ("F32", 1, "float32", 4),
    "float16": ("F16", 10, "float16", 2),
    "bfloat16": ("BF16", 16, None, 2),
    "int8": ("I8", 3, "int8", 1),
    "int16": ("I16", 5, "int16", 2),
    "int32": ("I32", 6, "int32", 4),
    "int64": ("I64", 7, "int64", 8),
    "uint8": ("U8", 2, "uint8", 1),
    "uint16": ("U16", 4, "uint16", 2),
    "uint32": ("U32", 12, "uint32", 4),
    "uint64": ("U64", 13, "uint64", 8),
    "bool": ("BOOL", 9, "bool", 1),
    "complex64": ("C64", 14, None, 8),
    "complex128": (None, 15, None, 16),
    "float8_e4m3fn": ("F8_E4M3", 17, None, 1),
    "float8_e5m2": ("F8_E5M2", 19, None, 1),
}
NP_DTYPES = {("f", 8): "float64", ("f", 4): "float32", ("f", 2): "float16", ("i", 1): "int8", ("i", 2): "int16",
             ("i", 4): "int32", ("i", 8): "int64", ("u", 1): "uint8", ("u", 2): "uint16", ("u", 4): "uint32",
             ("u", 8): "uint64", ("b", 1): "bool", ("c", 8): "complex64", ("c", 16): "complex128"}
# safetensors dtype -> bits (the crate's Dtype enum)
ST_BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
           "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
           "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64}
ST_MAX_HEADER = 100_000_000
# ONNX data_type -> element bytes (types brine can write)
ONNX_SIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 14: 8, 15: 16, 16: 2,
             17: 1, 18: 1, 19: 1, 20: 1}
ONNX_NUMPY_TYPES = {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15}   # numpy_helper.to_array handles these
ONNX_DATA_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")


def prod(dims):
    n = 1
    for d in dims:
        n *= int(d)
    return n


# ------------------------------------------------------------------------------ expectations --
class T:
    """An expected tensor: dtype name (keys of DTYPES), shape, logical little-endian C-order bytes."""
    __slots__ = ("dtype", "shape", "data")

    def __init__(self, dtype, shape, data):
        self.dtype, self.shape, self.data = dtype, tuple(int(x) for x in shape), bytes(data)


class Expected:
    """What a sanitized file must hold: tensors by name (walk order), groups of tied names, and the
    non-tensor leaves that must be in the metadata (with their Python values)."""

    def __init__(self):
        self.tensors = collections.OrderedDict()
        self.groups = []
        self.metadata = collections.OrderedDict()
        self.check_metadata = True

    def derive(self, keep=lambda n: True, rename=lambda n: n, check_metadata=False):
        """A subset / renaming. Metadata is not checked by default: what --select and --strip-prefix
        do to metadata keys is not specified."""
        e = Expected()
        for n, t in self.tensors.items():
            if keep(n):
                e.tensors[rename(n)] = t
        e.groups = [g for g in ([rename(n) for n in grp if keep(n)] for grp in self.groups) if len(g) > 1]
        e.check_metadata = self.check_metadata and check_metadata
        e.metadata = collections.OrderedDict(self.metadata) if e.check_metadata else collections.OrderedDict()
        return e


def torch_le_bytes(t):
    t = t.detach()
    if t.is_complex() and t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)   # raw bit patterns, never through float
    return t.numpy().tobytes()


def np_le_bytes(a):
    a = np.array(a, order="C", copy=True)       # keeps 0-d arrays 0-d (ascontiguousarray would not)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return a.tobytes()


def as_tensor(v):
    """(T, tie key) for a torch tensor / numpy array, else None."""
    if isinstance(v, torch.Tensor):
        dtype = str(v.dtype).replace("torch.", "")
        key = ("torch", v.storage()._storage._cdata, v.storage_offset(), tuple(v.shape), tuple(v.stride()), dtype)
        return T(dtype, v.shape, torch_le_bytes(v)), key
    if isinstance(v, np.ndarray):
        dtype = NP_DTYPES[(v.dtype.kind, v.dtype.itemsize)]
        return T(dtype, v.shape, np_le_bytes(v)), ("numpy", id(v))
    return None


def is_leaf(v):
    return v is None or isinstance(v, (bool, int, float, str, np.generic))


def expected_from(obj, check_metadata=True):
    """Walks a loaded object the way the spec names things: dotted paths through dicts, lists and
    tuples; a bare tensor is `tensor`; leaves go to metadata; ties by object or by identical view."""
    e = Expected()
    e.check_metadata = check_metadata
    ties = collections.OrderedDict()

    def visit(v, path):
        t = as_tensor(v)
        if t is not None:
            name = path or "tensor"
            assert name not in e.tensors, f"test data has two tensors named {name}"
            e.tensors[name] = t[0]
            ties.setdefault(t[1], []).append(name)
        elif isinstance(v, dict):
            for k, x in v.items():
                visit(x, f"{path}.{k}" if path else str(k))
        elif type(v) in (list, tuple):
            for i, x in enumerate(v):
                visit(x, f"{path}.{i}" if path else str(i))
        elif is_leaf(v) and path:
            e.metadata[path] = v.item() if isinstance(v, np.generic) else v

    visit(obj, "")
    e.groups = [g for g in ties.values() if len(g) > 1]
    return e


def same_json(got, want):
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and got == want
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(got) == float(want) if isinstance(want, float) or isinstance(got, float) else got == want
    return type(got) is type(want) and got == want


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


class CheckFailed(AssertionError):
    pass


def fail_if(problems):
    if problems:
        shown = problems[:12] + ([f"... {len(problems) - 12} more"] if len(problems) > 12 else [])
        raise CheckFailed("; ".join(shown))


def check_tensors(exp, got, meta, fmt, dedupe=True):
    """got: {name: (format dtype, shape, bytes)}; meta: {key: str}. Returns {alias: kept}."""
    problems = []
    aliases = {}
    grouped = set()
    extra = [n for n in got if n not in exp.tensors]
    if extra:
        problems.append(f"unexpected tensors {extra[:10]}")
    for g in exp.groups:
        grouped.update(g)
        present = [n for n in g if n in got]
        if not dedupe:
            if len(present) != len(g):
                problems.append(f"--no-dedupe: tied names {g}, only {present} written")
            continue
        if len(present) != 1:
            problems.append(f"tied names {g}: {present} written, expected exactly one")
            continue
        kept = present[0]
        for alias in g:
            if alias == kept:
                continue
            aliases[alias] = kept
            v = meta.get(alias)
            if v not in (kept, json.dumps(kept)):
                problems.append(f"alias {alias}: metadata {v!r}, expected {kept!r}")
    missing = [n for n in exp.tensors if n not in grouped and n not in got]
    if missing:
        problems.append(f"missing tensors {missing[:10]}")
    for name, (dt, shape, data) in got.items():
        e = exp.tensors.get(name)
        if e is None:
            continue
        want_dt = DTYPES[e.dtype][0] if fmt == "safetensors" else DTYPES[e.dtype][1]
        if dt != want_dt:
            problems.append(f"{name}: dtype {dt!r}, expected {want_dt!r} ({e.dtype})")
        if tuple(shape) != e.shape:
            problems.append(f"{name}: shape {list(shape)}, expected {list(e.shape)}")
        if data != e.data:
            i = first_diff(data, e.data)
            problems.append(f"{name}: {len(data)} bytes, expected {len(e.data)}; first difference at byte {i} "
                            f"(got {data[i:i + 8].hex()}, expected {e.data[i:i + 8].hex()})")
    if fmt == "safetensors" and meta.get("format") != "pt":
        problems.append(f"__metadata__ format is {meta.get('format')!r}, expected 'pt'")
    if exp.check_metadata:
        subtrees = collections.OrderedDict()     # leaves missing because a whole subtree is one JSON value
        for k, v in exp.metadata.items():
            if k not in meta:
                holder = next((a for a in meta if k.startswith(a + ".")), None)
                if holder is not None:
                    subtrees.setdefault(holder, []).append(k)
                else:
                    problems.append(f"metadata {k!r} missing")
                continue
            try:
                got_v = json.loads(meta[k])
            except ValueError:
                problems.append(f"metadata {k!r} = {meta[k]!r} is not JSON text")
                continue
            if not same_json(got_v, v):
                problems.append(f"metadata {k!r} = {meta[k]!r}, expected JSON of {v!r}")
        for holder, leaves in subtrees.items():
            problems.append(f"metadata {leaves[:3]}{' ...' if len(leaves) > 3 else ''} missing: {len(leaves)} leaves are one "
                            f"JSON value under {holder!r} instead of one key per leaf")
    fail_if(problems)
    return aliases


# ------------------------------------------------------------------------------- safetensors --
def read_safetensors(path):
    """Parses and validates a safetensors file (the crate's reader rules, plus what a canonical
    writer guarantees: header padded with spaces to a multiple of 8, no duplicate keys).
    Returns ({name: (dtype, shape, bytes)}, metadata)."""
    with open(path, "rb") as f:
        buf = f.read()
    return parse_safetensors(buf)


def parse_safetensors(buf):
    if len(buf) < 8:
        raise CheckFailed("safetensors: file shorter than 8 bytes")
    n, = struct.unpack_from("<Q", buf, 0)
    if n > ST_MAX_HEADER:
        raise CheckFailed(f"safetensors: header length {n} > 100MB")
    if 8 + n > len(buf):
        raise CheckFailed(f"safetensors: header length {n} runs past the end ({len(buf)} bytes)")
    if n % 8:
        raise CheckFailed(f"safetensors: header length {n} is not a multiple of 8")
    try:
        text = buf[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckFailed(f"safetensors: header is not UTF-8: {e}")
    if not text.startswith("{"):
        raise CheckFailed("safetensors: header does not start with '{'")

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise CheckFailed(f"safetensors: duplicate keys {sorted(dup)}")
        return dict(pairs)

    try:
        hdr, end = json.JSONDecoder(object_pairs_hook=no_duplicates).raw_decode(text)
    except ValueError as e:
        raise CheckFailed(f"safetensors: header is not JSON: {e}")
    if text[end:].strip(" ") != "":
        raise CheckFailed(f"safetensors: header padding is not spaces: {text[end:]!r}")
    if not isinstance(hdr, dict):
        raise CheckFailed("safetensors: header is not a JSON object")
    meta = hdr.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise CheckFailed("safetensors: __metadata__ must map strings to strings")
    entries = []
    for name, info in hdr.items():
        if name == "__metadata__":
            continue
        if not name:
            raise CheckFailed("safetensors: empty tensor name")
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise CheckFailed(f"safetensors: {name}: entry needs dtype, shape and data_offsets: {info!r}")
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in ST_BITS:
            raise CheckFailed(f"safetensors: {name}: unknown dtype {dt!r}")
        ints = lambda xs: isinstance(xs, list) and all(type(x) is int and 0 <= x < 2 ** 53 for x in xs)
        if not ints(shape) or not ints(offs) or len(offs) != 2:
            raise CheckFailed(f"safetensors: {name}: shape/data_offsets must be lists of non-negative integers")
        entries.append((offs[0], offs[1], name, dt, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    start = 0
    data_start = 8 + n
    got = collections.OrderedDict()
    for b, e, name, dt, shape in entries:
        if b != start or e < b:
            raise CheckFailed(f"safetensors: {name}: data_offsets [{b}, {e}] do not continue at {start} (gap or overlap)")
        bits = prod(shape) * ST_BITS[dt]
        if bits % 8:
            raise CheckFailed(f"safetensors: {name}: misaligned slice")
        if e - b != bits // 8:
            raise CheckFailed(f"safetensors: {name}: {e - b} bytes for shape {shape} {dt} (expected {bits // 8})")
        start = e
        got[name] = (dt, tuple(shape), buf[data_start + b:data_start + e])
    if data_start + start != len(buf):
        raise CheckFailed(f"safetensors: data ends at {data_start + start}, file has {len(buf)} bytes")
    return got, meta


# ---------------------------------------------------------------------------------------- ONNX --
def onnx_tensor_bytes(t):
    """Logical little-endian bytes of a TensorProto whose data is inline (raw_data or typed field)."""
    if t.data_type in ONNX_NUMPY_TYPES:
        arr = numpy_helper.to_array(t)
        data = np.array(arr, order="C", copy=True).tobytes()    # the host is little-endian (checked)
        if t.raw_data and bytes(t.raw_data) != data:
            raise CheckFailed(f"{t.name}: raw_data ({len(t.raw_data)} bytes) does not round-trip through numpy_helper")
        return data
    if t.data_type in (16, 17, 18, 19, 20):        # bfloat16, float8: raw bit patterns
        if t.raw_data:
            return bytes(t.raw_data)
        fmt = "<H" if t.data_type == 16 else "<B"
        return b"".join(struct.pack(fmt, v) for v in t.int32_data)
    raise CheckFailed(f"{t.name}: unexpected data_type {t.data_type}")


def read_onnx(path, external=False):
    """Checks an ONNX file written by `brine sanitize` and returns
    ({name: (data_type, dims, bytes)}, metadata_props)."""
    problems = []
    raw = onnx.load(path, load_external_data=False)
    types = {t.data_type for t in raw.graph.initializer}
    if raw.ir_version > onnx.IR_VERSION:
        # Debian's onnx 1.12 checker stops at IR 8; FLOAT8 types (17-20) need IR 9. Check the rest of
        # the model with the IR clamped, and that the higher IR is really needed.
        if not any(t >= 17 for t in types):
            problems.append(f"ir_version {raw.ir_version} although no data type needs more than IR {onnx.IR_VERSION}")
        clamped = onnx.load(path)
        clamped.ir_version = onnx.IR_VERSION
        onnx.checker.check_model(clamped)
    else:
        onnx.checker.check_model(path)
    if any(17 <= t <= 20 for t in types) and raw.ir_version < 9:
        problems.append(f"FLOAT8 initializers need ir_version >= 9, model has {raw.ir_version}")
    g = raw.graph
    if len(g.node):
        problems.append(f"graph has {len(g.node)} nodes, expected none")
    names = [t.name for t in g.initializer]
    if len(set(names)) != len(names) or not all(names):
        problems.append(f"initializer names not unique / empty: {names}")
    outs = collections.OrderedDict((o.name, o) for o in g.output)
    if len(outs) != len(g.output):
        problems.append("duplicate graph outputs")
    if set(outs) != set(names):
        problems.append(f"graph outputs {sorted(set(outs) ^ set(names))[:10]} are not exactly the initializers")
    for t in g.initializer:
        o = outs.get(t.name)
        if o is None:
            continue
        tt = o.type.tensor_type
        if tt.elem_type != t.data_type:
            problems.append(f"output {t.name}: elem_type {tt.elem_type}, initializer data_type {t.data_type}")
        if not tt.HasField("shape") or not all(d.HasField("dim_value") for d in tt.shape.dim) \
                or [d.dim_value for d in tt.shape.dim] != list(t.dims):
            problems.append(f"output {t.name}: shape {tt.shape} does not match dims {list(t.dims)}")
    meta = {}
    for p in raw.metadata_props:
        if p.key in meta:
            problems.append(f"duplicate metadata_props key {p.key!r}")
        meta[p.key] = p.value
    side_path = path + ".data"
    side = None
    if external:
        if not os.path.isfile(side_path):
            problems.append(f"external data file {os.path.basename(side_path)} missing")
        else:
            with open(side_path, "rb") as f:
                side = f.read()
    ranges = []
    got = collections.OrderedDict()
    for t in g.initializer:
        numel = prod(t.dims)
        with_data = [f for f in ONNX_DATA_FIELDS if len(getattr(t, f))] + (["raw_data"] if t.raw_data else [])
        if t.data_type not in ONNX_SIZE:
            problems.append(f"{t.name}: data_type {t.data_type}")
            continue
        if numel == 0:
            if with_data:
                problems.append(f"{t.name}: zero-element tensor carries data ({with_data})")
            got[t.name] = (t.data_type, tuple(t.dims), b"")
            continue
        if external:
            if t.data_location != TensorProto.EXTERNAL or with_data:
                problems.append(f"{t.name}: --external-data, but data_location {t.data_location} with fields {with_data}")
                continue
            ext = {e.key: e.value for e in t.external_data}
            if ext.get("location") != os.path.basename(side_path):
                problems.append(f"{t.name}: external location {ext.get('location')!r}, expected {os.path.basename(side_path)!r}")
            off = int(ext.get("offset", "0"))
            nbytes = numel * ONNX_SIZE[t.data_type]
            if off % 4096:
                problems.append(f"{t.name}: external offset {off} is not 4096-aligned")
            if "length" in ext and int(ext["length"]) != nbytes:
                problems.append(f"{t.name}: external length {ext['length']}, expected {nbytes}")
            if side is None or off + nbytes > len(side):
                problems.append(f"{t.name}: external range [{off}, {off + nbytes}) outside the data file")
                continue
            ranges.append((off, off + nbytes, t.name))
            inline = TensorProto()
            inline.CopyFrom(t)
            del inline.external_data[:]
            inline.data_location = TensorProto.DEFAULT
            inline.raw_data = side[off:off + nbytes]
            t = inline
        else:
            if t.data_location == TensorProto.EXTERNAL:
                problems.append(f"{t.name}: external data without --external-data")
                continue
            if len(with_data) != 1:
                problems.append(f"{t.name}: data fields {with_data}, expected exactly one")
                continue
        try:
            got[t.name] = (t.data_type, tuple(t.dims), onnx_tensor_bytes(t))
        except Exception as e:  # noqa: BLE001 - reported as a check failure
            problems.append(f"{t.name}: cannot read data: {e}")
    ranges.sort()
    for (b1, e1, n1), (b2, e2, n2) in zip(ranges, ranges[1:]):
        if b2 < e1:
            problems.append(f"external ranges of {n1} and {n2} overlap")
    if not external and os.path.exists(side_path):
        problems.append(f"{os.path.basename(side_path)} written without --external-data")
    fail_if(problems)
    return got, meta


# ------------------------------------------------------------------------------ onnxruntime --
ORT_JOBS = []   # (case label, model path, expectations path, must the check fail?)


def queue_ort(label, model_path, names, exp, scratch, expect_failure=False):
    """Queues an onnxruntime-node check of every output of `names` whose type the JS binding can
    return. Tensors it cannot return are removed from a copy of the model first."""
    names = [n for n in names if n in exp.tensors]
    ok_names = [n for n in names if DTYPES[exp.tensors[n].dtype][2]]
    path = model_path
    if len(ok_names) != len(names):
        if not ok_names:
            return False
        m = onnx.load(model_path)
        keep = set(ok_names)
        kept_inits = [t for t in m.graph.initializer if t.name in keep]
        kept_outs = [o for o in m.graph.output if o.name in keep]
        del m.graph.initializer[:]
        m.graph.initializer.extend(kept_inits)
        del m.graph.output[:]
        m.graph.output.extend(kept_outs)
        path = os.path.join(scratch, f"ort_{slug(label)}.onnx")
        onnx.save(m, path)
    expected = {n: {"dims": list(exp.tensors[n].shape), "type": DTYPES[exp.tensors[n].dtype][2],
                    "hex": exp.tensors[n].data.hex()} for n in ok_names}
    exp_path = os.path.join(scratch, f"ort_{slug(label)}.json")
    with open(exp_path, "w") as f:
        json.dump(expected, f)
    ORT_JOBS.append((label, path, exp_path, expect_failure))
    return True


def run_ort_jobs():
    """Runs every queued model through check.js in one node process; {label: error or None}."""
    results = {}
    if not ORT_JOBS:
        return results
    node = shutil.which("node")
    check_js = os.path.join(ORT_DIR, "check.js")
    if not node:
        return {label: "node is not installed (Debian: apt-get install nodejs npm)" for label, *_ in ORT_JOBS}
    if not os.path.isdir(os.path.join(ORT_DIR, "node_modules", "onnxruntime-node")):
        return {label: f"onnxruntime-node is not installed (run {ORT_DIR}/install.sh)" for label, *_ in ORT_JOBS}
    for label, model, why, _ in ORT_JOBS:
        if model is None:
            results[label] = why
    jobs = [j for j in ORT_JOBS if j[1] is not None]
    if not jobs:
        return results
    cmd = [node, check_js]
    for _, model, exp, _ in jobs:
        cmd += [model, exp]
    try:
        p = subprocess.run(cmd, cwd=ORT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    except subprocess.TimeoutExpired:
        return dict(results, **{label: "check.js timed out" for label, *_ in jobs})
    out = p.stdout.decode("utf-8", "replace").splitlines()
    err = p.stderr.decode("utf-8", "replace").strip()
    for label, model, _, expect_failure in jobs:
        ok = any(line.startswith(f"ok {model} (") for line in out)
        bad = [line for line in out if line.startswith(f"FAIL {model}: ")]
        if not ok and not bad:
            results[label] = f"check.js gave no result (exit {p.returncode}): {err[-400:]}"
        elif expect_failure:
            results[label] = None if bad else "check.js accepted a wrong expectation"
        else:
            results[label] = None if ok else bad[0][len(f"FAIL {model}: "):]
    return results


# ------------------------------------------------------------------------------------ running --
def slug(label):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def brine(*args, cwd=None):
    p = subprocess.run([BRINE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, cwd=cwd)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Work:
    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.out = os.path.join(root, "out")
        self.scratch = os.path.join(root, "scratch")
        for d in (self.src, self.out, self.scratch):
            os.makedirs(d, exist_ok=True)

    def outdir(self, label):
        d = os.path.join(self.out, slug(label))
        assert not os.path.exists(d), f"two cases named {label}"
        os.makedirs(d)
        return d


class Source:
    def __init__(self, path, loader, check_metadata=True):
        self.path, self.loader, self.check_metadata = path, loader, check_metadata
        self._expected = None

    @property
    def expected(self):
        if self._expected is None:
            self._expected = expected_from(self.loader(), self.check_metadata)
        return self._expected


def listing(d):
    return sorted(os.listdir(d))


def check_report(doc, src, out, fmt, got, aliases, exp, verified, verdict="clean"):
    problems = []
    keys = ("input", "output", "format", "verdict", "written", "tensors", "aliases", "metadata", "dropped", "findings",
            "verified")
    missing = [k for k in keys if k not in doc]
    if missing:
        raise CheckFailed(f"JSON report lacks {missing}")
    if os.path.realpath(doc["input"]) != os.path.realpath(src):
        problems.append(f"report input {doc['input']!r}")
    if os.path.realpath(doc["output"]) != os.path.realpath(out):
        problems.append(f"report output {doc['output']!r}")
    if doc["format"] != fmt:
        problems.append(f"report format {doc['format']!r}, expected {fmt!r}")
    if doc["verdict"] != verdict:
        problems.append(f"report verdict {doc['verdict']!r}, expected {verdict!r}")
    if doc["written"] is not True:
        problems.append(f"report written {doc['written']!r}")
    if verified and doc["verified"] is not True:
        problems.append(f"--verify given but report verified is {doc['verified']!r}")
    if not isinstance(doc["verified"], bool):
        problems.append("report verified is not a bool")
    entries = doc["tensors"] if isinstance(doc["tensors"], list) else []
    names = [t.get("name") for t in entries]
    if sorted(names) != sorted(got):
        problems.append(f"report tensors {sorted(names)[:8]} != written {sorted(got)[:8]}")
    for t in entries:
        lacking = [k for k in ("name", "dtype", "shape", "source", "offset", "bytes") if k not in t]
        if lacking:
            problems.append(f"report tensor {t.get('name')!r} lacks {lacking}")
            continue
        g = got.get(t["name"])
        if g is None:
            continue
        if list(t["shape"]) != list(g[1]):
            problems.append(f"report tensor {t['name']}: shape {t['shape']}, file {list(g[1])}")
        if t["bytes"] != len(g[2]):
            problems.append(f"report tensor {t['name']}: bytes {t['bytes']}, file {len(g[2])}")
        if not isinstance(t["dtype"], str) or not t["dtype"]:
            problems.append(f"report tensor {t['name']}: dtype {t['dtype']!r}")
    if doc["aliases"] != aliases:
        problems.append(f"report aliases {doc['aliases']!r}, file says {aliases!r}")
    if not isinstance(doc["metadata"], dict):
        problems.append("report metadata is not an object")
    elif exp.check_metadata:
        lacking = [k for k in exp.metadata if k not in doc["metadata"]]
        if lacking:
            problems.append(f"report metadata lacks {lacking[:8]}")
    if not isinstance(doc["dropped"], list) or not isinstance(doc["findings"], list):
        problems.append("report dropped/findings are not lists")
    fail_if(problems)


def read_output(fmt, path, external=False):
    return read_safetensors(path) if fmt == "safetensors" else read_onnx(path, external)


def sanitize_case(work, label, src, fmt, exp=None, args=(), verify=False, text=False, external=False, dedupe=True,
                  verdict="clean", out_name=None, ort=True):
    """Runs `brine sanitize` once and checks everything about the result. Returns (got, meta, report)."""
    exp = exp if exp is not None else src.expected
    d = work.outdir(label)
    out = os.path.join(d, out_name or f"model.{fmt}")
    before = sha256(src.path)
    cmd = ["sanitize", src.path, "-o", out, *args]
    if not text:
        cmd += ["--format", "json"]
    if verify:
        cmd.append("--verify")
    if external:
        cmd.append("--external-data")
    if not dedupe:
        cmd.append("--no-dedupe")
    want_ort = fmt == "onnx" and ort
    try:
        rc, so, se = brine(*cmd)
        if rc != 0:
            raise CheckFailed(f"exit {rc}: {se.strip()[-600:] or so.strip()[-600:]}")
        if sha256(src.path) != before:
            raise CheckFailed("the input file changed")
        want_files = sorted([os.path.basename(out)] + ([os.path.basename(out) + ".data"] if external else []))
        if listing(d) != want_files:
            raise CheckFailed(f"output directory holds {listing(d)}, expected {want_files} (temp files left?)")
        got, meta = read_output(fmt, out, external)
        if want_ort:
            queue_ort(label, out, list(got), exp, work.scratch)
            want_ort = False
    finally:
        if want_ort:    # keeps the number of cases fixed: the onnxruntime case fails too
            ORT_JOBS.append((label, None, "no model to run: the conversion case failed", False))
    aliases = check_tensors(exp, got, meta, fmt, dedupe=dedupe)
    doc = None
    if text:
        if not so.strip():
            raise CheckFailed("no text summary on stdout")
    else:
        try:
            doc = json.loads(so)
        except ValueError:
            raise CheckFailed(f"--format json: stdout is not JSON: {so[:200]!r}")
        check_report(doc, src.path, out, fmt, got, aliases, exp, verify, verdict)
    return got, meta, doc


# --------------------------------------------------------------------------------- checkpoints --
class Payload:
    """Pickles as os.system('echo pwned') (posix.system on Linux). Never unpickled by this test."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def next_pickle_end(data, pos):
    """Offset just past the STOP of the pickle that starts at `pos`."""
    for op, _, at in pickletools.genops(data[pos:]):
        if op.name == "STOP":
            return pos + at + 1
    raise ValueError("no STOP")


def make_checkpoints(work):
    """All checkpoints, made in this one process. {file name: Source}."""
    d = work.src
    S = {}
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    legacy = {"_use_new_zipfile_serialization": False}

    def tsave(name, obj, load_from=None, check_metadata=True, **kw):
        path = os.path.join(d, name)
        torch.save(obj, path, **kw)
        ref = os.path.join(d, load_from) if load_from else path
        S[name] = Source(path, lambda: torch.load(ref), check_metadata)

    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3), nn.BatchNorm1d(3))
    model.train()
    model(torch.randn(8, 6))                      # running stats and num_batches_tracked move
    sd = model.state_dict()                       # OrderedDict with _metadata, a 0-dim int64
    tsave("state_dict.pt", sd)
    tsave("state_dict_legacy.pt", sd, **legacy)
    tsave("state_dict_p4.pt", sd, pickle_protocol=4)

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    flat = base.view(-1)
    big = torch.randn(1000)
    views = collections.OrderedDict([
        ("base", base), ("slice", flat[5:17].view(3, 4)), ("transposed", base.t()), ("every_other", flat[1::2]),
        ("column", base[:, 2]), ("narrow_step", base[1:, ::3]), ("expanded", torch.randn(1, 3).expand(4, 3)),
        ("permuted", torch.arange(24.0).view(2, 3, 4).permute(2, 0, 1)), ("head_of_big", big[:2]),
        ("tail_of_big", big[997:])])
    tsave("views.pt", views)
    tsave("views_legacy.pt", views, **legacy)

    emb = nn.Parameter(torch.randn(5, 3))
    store = torch.arange(12, dtype=torch.int32) * 1000003
    tied = collections.OrderedDict([
        ("embed.weight", emb), ("decoder.bias", torch.randn(2)), ("lm_head.weight", emb),   # same Parameter
        ("v1", store.view(3, 4)), ("v2", store.view(3, 4)),      # distinct tensors, same view of one storage
        ("first", store[:6]), ("overlap", store[3:9]), ("whole", store)])   # overlapping, different views
    tsave("tied.pt", tied)
    tsave("tied_legacy.pt", tied, **legacy)

    # Storage identity: torch caches one storage per key, so the first persistent load of a key
    # decides its dtype and size; a later reference naming another storage class gets the same
    # storage (rewritten from a real save: tensor "b" is made to name key "0" with IntStorage).
    reuse = collections.OrderedDict([("a", torch.arange(4, dtype=torch.float32) + 0.5),
                                     ("b", torch.arange(4, dtype=torch.int32) * 7)])
    tmp = os.path.join(d, "reuse_src.pt")
    torch.save(reuse, tmp)
    with zipfile.ZipFile(tmp) as z:
        members = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(os.path.join(d, "key_reuse.pt"), "w", zipfile.ZIP_STORED) as z:
        for info, body in members:
            if info.filename.endswith("data.pkl"):
                i = body.index(b"IntStorage")
                j = body.index(b"X\x01\x00\x00\x001", i)
                body = body[:j] + b"X\x01\x00\x00\x000" + body[j + 6:]
            z.writestr(info, body)
    S["key_reuse.pt"] = Source(os.path.join(d, "key_reuse.pt"), lambda: torch.load(os.path.join(d, "key_reuse.pt")))
    # Legacy: the storage-key list names a key twice; torch reads that storage twice and keeps the
    # later bytes (the storage of "b" then follows).
    tmp = os.path.join(d, "reuse_legacy_src.pt")
    torch.save(collections.OrderedDict([("a", torch.arange(4, dtype=torch.float32) + 0.5),
                                        ("b", torch.arange(4, dtype=torch.float32) * 7)]), tmp, **legacy)
    raw = open(tmp, "rb").read()
    pos = 0
    for _ in range(4):
        pos = next_pickle_end(raw, pos)
    keys_end = next_pickle_end(raw, pos)
    keys = pickle.loads(raw[pos:keys_end])
    storages = raw[keys_end:]
    one = 8 + 4 * 4
    first, second = storages[:one], storages[one:2 * one]
    keys2 = [keys[0], keys[0], keys[1]]
    with open(os.path.join(d, "key_twice_legacy.pt"), "wb") as f:
        f.write(raw[:pos] + pickle.dumps(keys2, protocol=2) + first + second + second)
    S["key_twice_legacy.pt"] = Source(os.path.join(d, "key_twice_legacy.pt"),
                                      lambda: torch.load(os.path.join(d, "key_twice_legacy.pt")))

    nan32 = float("nan")
    i64 = torch.arange(10, dtype=torch.int64) * 1000000007
    dt = collections.OrderedDict()
    dt["dt.float64"] = torch.tensor([0.0, -0.0, 1e300, float("inf"), float("nan"), 2.5e-310, -1.0 / 3], dtype=torch.float64)
    dt["dt.float32"] = torch.tensor([1.5, -2.25, float("-inf"), nan32, 1e-40, 3.4e38, 0.1])
    dt["dt.float16"] = torch.tensor([1.0, -0.0, 65504.0, 6e-8, float("inf"), 0.333], dtype=torch.float16)
    bf = torch.tensor([[1.0, -2.0, 3.5], [1e30, -1e-30, 0.1]], dtype=torch.bfloat16)
    dt["dt.bfloat16"] = bf
    dt["dt.bfloat16_t"] = bf.t()
    dt["dt.int8"] = torch.tensor([-128, 127, 0, -1], dtype=torch.int8)
    dt["dt.int16"] = torch.tensor([-32768, 32767, 1, -2], dtype=torch.int16)
    dt["dt.int32"] = torch.tensor([-2 ** 31, 2 ** 31 - 1, 7, -7], dtype=torch.int32)
    dt["dt.int64"] = torch.tensor([-2 ** 63, 2 ** 63 - 1, 1 << 40, -5], dtype=torch.int64)
    dt["dt.int64_step"] = i64[1::3]
    dt["dt.uint8"] = torch.tensor([0, 255, 128, 1], dtype=torch.uint8)
    dt["dt.bool"] = torch.tensor([True, False, True])
    dt["dt.complex64"] = torch.tensor([1 + 2j, -3.5 - 0.25j, float("inf") + 0j], dtype=torch.complex64)
    dt["dt.complex64_t"] = torch.randn(2, 3, dtype=torch.complex64).t()
    dt["c128.spectrum"] = torch.tensor([1 + 1j, 2 - 3j], dtype=torch.complex128)
    tsave("dtypes.pt", dt)
    tsave("dtypes_legacy.pt", dt, **legacy)

    nested = {
        "model": {"enc": [torch.randn(2, 2), (torch.ones(3, dtype=torch.int64), {"deep": torch.eye(2, dtype=torch.float64)})],
                  "param": nn.Parameter(torch.randn(2, 2))},
        "layers": [torch.randn(3), torch.randn(1, 2)],
        "pairs": ((torch.zeros(2), 1), (torch.full((2,), 3.0), 2)),
        "cfg": {"name": "tiny", "depth": 3, "flag": True, "off": False, "none": None, "ratio": 0.25, "big": 2 ** 40,
                "neg": -17, "unicode": "naïve ✓"}}
    tsave("nested.pt", nested)

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(8, 6)).pow(2).mean().backward()
    opt.step()
    tsave("optimizer.pt", opt.state_dict())

    ckpt = {"epoch": 7, "global_step": 1234, "loss": 0.125, "arch": "mlp-v2",
            "hparams": {"lr": 0.001, "batch_size": 32, "layers": [64, 32], "dropout": 0.5, "nesterov": False,
                        "schedule": None},
            "state_dict": model.state_dict(), "optimizer": opt.state_dict()}
    tsave("training.ckpt", ckpt)
    tsave("training_legacy.ckpt", ckpt, **legacy)
    ns = dict(ckpt)
    ns["args"] = argparse.Namespace(lr=0.001, arch="mlp")       # needs --rules training-checkpoint
    tsave("training_namespace.ckpt", ns, check_metadata=False)

    tsave("bare_tensor.pt", torch.randn(3, 4))
    tsave("bare_param.pt", nn.Parameter(torch.randn(5)))
    tsave("bare_scalar.pt", torch.tensor(2.5, dtype=torch.float64))
    tsave("bare_view_legacy.pt", torch.arange(20.0).view(4, 5).t(), **legacy)
    tsave("edge_shapes.pt", collections.OrderedDict([
        ("scalar", torch.tensor(3.5)), ("int_scalar", torch.tensor(7)), ("bool_scalar", torch.tensor(True)),
        ("empty", torch.zeros(0, 3)), ("empty_i64", torch.zeros(4, 0, dtype=torch.int64)),
        ("empty_bf16", torch.zeros(0, dtype=torch.bfloat16)), ("one", torch.ones(1, 1, 1))]))
    tsave("external.pt", collections.OrderedDict([
        ("a", torch.randn(1000)), ("b", torch.arange(3, dtype=torch.uint8)), ("c", torch.randn(60, 40, dtype=torch.float64)),
        ("empty", torch.zeros(0)), ("d", torch.arange(7) * -3), ("flag", torch.tensor([True, False])),
        ("h", torch.randn(3, dtype=torch.float16))]))

    w, b = torch.randn(3, 4), torch.randn(3)
    for suffix, kw in (("", {}), ("_legacy", legacy)):
        # the payload file is never loaded: its expectations come from the clean twin
        torch.save({"fc.weight": w, "fc.bias": b}, os.path.join(d, f"payload_twin{suffix}.pt"), **kw)
        path = os.path.join(d, f"payload{suffix}.pt")
        torch.save(collections.OrderedDict([("fc.weight", w), ("hook", Payload()), ("fc.bias", b)]), path,
                   pickle_protocol=2, **kw)
        twin = os.path.join(d, f"payload_twin{suffix}.pt")
        S[f"payload{suffix}.pt"] = Source(path, lambda t=twin: torch.load(t))

    # numpy
    def npsave(name, arr):
        path = os.path.join(d, name)
        np.save(path, arr)
        S[name] = Source(path, lambda: np.load(path))

    npsave("c_order.npy", rng.standard_normal((3, 4)).astype(np.float32))
    npsave("fortran.npy", np.asfortranarray(np.arange(15, dtype=np.float64).reshape(3, 5)))
    npsave("big_endian.npy", (np.arange(10) - 5).astype(">i4"))
    npsave("big_endian_fortran.npy", np.asfortranarray((np.arange(6).reshape(2, 3) * 1.5 - 2).astype(">f8")))
    npsave("scalar.npy", np.array(2.5, dtype=np.float32))
    for name, save in (("arrays.npz", np.savez), ("arrays_compressed.npz", np.savez_compressed)):
        path = os.path.join(d, name)
        save(path, weights=rng.standard_normal((4, 3)).astype(np.float32), bias=np.arange(4, dtype=np.float64),
             be_i2=np.arange(-2, 3, dtype=">i2"), flags=np.array([True, False, True]))
        S[name] = Source(path, lambda p=path: dict(np.load(p)))

    shared = rng.standard_normal(4).astype(np.float32)
    arrays = {
        "f32": rng.standard_normal((2, 3)).astype(np.float32),
        "f64_fortran": np.asfortranarray(rng.standard_normal((3, 2))),
        "be_i4": np.arange(-3, 3, dtype=">i4").reshape(2, 3),
        "be_f8": np.array([1.5, -2.0, np.inf], dtype=">f8"),
        "be_c8": np.array([1 + 2j, -3j], dtype=">c8"),
        "be_u2": np.array([1, 65535, 258], dtype=">u2"),
        "c8": np.array([0.5 - 1j], dtype=np.complex64),
        "u16": np.array([1, 65535], dtype=np.uint16),
        "u32": np.array([1, 2 ** 32 - 1], dtype=np.uint32),
        "u64": np.array([2 ** 64 - 1, 1], dtype=np.uint64),
        "i8": np.array([-128, 5], dtype=np.int8),
        "i16": np.array([[-300, 300]], dtype=np.int16),
        "bool": np.array([[True], [False]]),
        "f16": np.array([0.5, -65504, 1e-7], dtype=np.float16),
        "zero_d": np.array(7),
        "empty": np.zeros((0, 2)),
        "strided": np.arange(20.0)[::3],
        "layers": [np.ones((2, 2), dtype=np.float32), (np.zeros(1, dtype=np.int64), np.full(2, 9, dtype=np.uint8))],
        "scalar_f64": np.float64(2.5), "scalar_i64": np.int64(-3), "scalar_f32": np.float32(1.5), "scalar_bool": np.bool_(True),
        "name": "arrays", "count": 3, "ratio": 0.75, "none": None,
        "same_a": shared, "same_b": shared,     # one object twice: pickle memo => tied (joblib writes it twice)
    }
    for proto in (2, 5):
        path = os.path.join(d, f"arrays_p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump(arrays, f, protocol=proto)
        S[f"arrays_p{proto}.pkl"] = Source(path, lambda p=path: pickle.load(open(p, "rb")))
    for name, kw in (("arrays.joblib", {}), ("arrays_z3.joblib", {"compress": 3})):
        path = os.path.join(d, name)
        joblib.dump(arrays, path, **kw)
        S[name] = Source(path, lambda p=path: joblib.load(p))

    # torch tensors pickled without torch.save: each storage is a whole legacy torch file nested in
    # the pickle (torch.storage._load_from_bytes(b'...')); also a storage saved on its own.
    torch_sd = {"w": torch.arange(6.0).reshape(2, 3), "half": torch.tensor([0.5, -2.0], dtype=torch.float16),
                "view": torch.arange(12).reshape(3, 4)[:, 1:3], "bf": torch.tensor([1.5, -3.0], dtype=torch.bfloat16),
                "step": 4}
    for proto in (2, 4):
        path = os.path.join(d, f"pickled_torch_p{proto}.pkl")
        with open(path, "wb") as f:
            pickle.dump(torch_sd, f, protocol=proto)
        S[f"pickled_torch_p{proto}.pkl"] = Source(path, lambda p=path: pickle.load(open(p, "rb")))
    path = os.path.join(d, "torch_in.joblib")
    joblib.dump({"t": torch.linspace(0, 1, 5), "a": np.arange(3)}, path)
    S["torch_in.joblib"] = Source(path, lambda p=path: joblib.load(p))
    # joblib arrays whose dtypes have no tensor type (strings, datetimes) beside ones that have:
    # the convertible ones are written, the others dropped with a reason (not a failed run)
    path = os.path.join(d, "mixed_dtypes.joblib")
    joblib.dump({"f": np.arange(4, dtype=np.float32), "s": np.array(["a", "bcd"]),
                 "dt": np.array(["2020-01-01"], dtype="datetime64[D]"), "i": np.arange(3, dtype=np.int16)}, path)
    S["mixed_dtypes.joblib"] = Source(path, lambda p=path: {k: v for k, v in joblib.load(p).items() if v.dtype.kind in "fiub"},
                                      check_metadata=False)
    path = os.path.join(d, "bare_storage.pt")
    torch.save(torch.arange(4.0).storage(), path)
    S["bare_storage.pt"] = Source(path, lambda: {"tensor": torch.arange(4.0)})

    # torch 1.13 samples (tests/data/reference) that hold plain tensors
    for name in ("t113_state_dict.pt", "t113_state_dict_legacy.pt", "t113_state_dict_proto4.pt", "t113_views.pt",
                 "t113_views_legacy.pt", "t113_tied.pt", "t113_dtypes.pt", "t113_edge_shapes.pt", "t113_parameter.pt",
                 "t113_bare_tensor.pt", "t113_misc_values.pt"):
        path = os.path.join(SAMPLES, name)
        S[name] = Source(path, lambda p=path: torch.load(p), check_metadata=(name != "t113_misc_values.pt"))
    return S


# ----------------------------------------------------------------------------------- the cases --
def conversion_cases(work, S):
    """(label, callable) for every source x output format."""
    not_c128 = ["--select", "dt.*"]
    t113_not_c128 = []
    for n in ("float16", "bfloat16", "float32", "float64", "uint8", "int8", "int16", "int32", "int64", "bool",
              "complex64", "conj_view", "neg_view"):
        t113_not_c128 += ["--select", n]
    plan = [
        # source, {format: extra args}, options
        ("state_dict.pt", {}, {}),
        ("state_dict_legacy.pt", {}, {"verify": True}),
        ("state_dict_p4.pt", {}, {}),
        ("views.pt", {}, {"verify": True}),
        ("views_legacy.pt", {}, {}),
        ("tied.pt", {}, {}),
        ("tied_legacy.pt", {}, {"verify": True}),
        ("key_reuse.pt", {}, {}),
        ("key_twice_legacy.pt", {}, {}),
        ("dtypes.pt", {"safetensors": not_c128}, {"verify": True}),
        ("dtypes_legacy.pt", {"safetensors": not_c128}, {}),
        ("nested.pt", {}, {}),
        ("optimizer.pt", {}, {"text": True}),
        ("training.ckpt", {}, {"verify": True}),
        ("training_legacy.ckpt", {}, {}),
        ("training_namespace.ckpt", {"*": ["--rules", "training-checkpoint"]}, {}),
        ("bare_tensor.pt", {}, {}),
        ("bare_param.pt", {}, {"verify": True}),
        ("bare_scalar.pt", {}, {}),
        ("bare_view_legacy.pt", {}, {}),
        ("edge_shapes.pt", {}, {"verify": True}),
        ("c_order.npy", {}, {}),
        ("fortran.npy", {}, {"verify": True}),
        ("big_endian.npy", {}, {}),
        ("big_endian_fortran.npy", {}, {"verify": True}),
        ("scalar.npy", {}, {}),
        ("arrays.npz", {}, {}),
        ("arrays_compressed.npz", {}, {"verify": True}),
        ("arrays_p2.pkl", {}, {}),
        ("arrays_p5.pkl", {}, {"verify": True, "text": True}),
        ("arrays.joblib", {}, {"verify": True}),
        ("arrays_z3.joblib", {}, {}),
        ("pickled_torch_p2.pkl", {}, {"verify": True}),
        ("pickled_torch_p4.pkl", {}, {}),
        ("torch_in.joblib", {}, {"verify": True}),
        ("bare_storage.pt", {}, {}),
        ("t113_state_dict.pt", {}, {}),
        ("t113_state_dict_legacy.pt", {}, {}),
        ("t113_state_dict_proto4.pt", {}, {}),
        ("t113_views.pt", {}, {"verify": True}),
        ("t113_views_legacy.pt", {}, {}),
        ("t113_tied.pt", {}, {}),
        ("t113_dtypes.pt", {"safetensors": t113_not_c128}, {}),
        ("t113_edge_shapes.pt", {}, {}),
        ("t113_parameter.pt", {}, {}),
        ("t113_bare_tensor.pt", {}, {}),
        ("t113_misc_values.pt", {}, {}),
    ]
    cases = []
    for name, args, opts in plan:
        for fmt in ("safetensors", "onnx"):
            a = list(args.get("*", [])) + list(args.get(fmt, []))
            shown = " ".join(a) if len(a) <= 4 else f"--select x{a.count('--select')} (all but complex128)"
            label = f"{name} -> {fmt}" + (" " + shown if a else "")

            def run(name=name, fmt=fmt, a=a, opts=opts, label=label):
                src = S[name]
                exp = src.expected
                if "--select" in a:
                    globs = [a[i + 1] for i, x in enumerate(a) if x == "--select"]
                    exp = exp.derive(keep=lambda n: any(fnmatch.fnmatchcase(n, g) for g in globs))
                if not exp.tensors:
                    raise CheckFailed("test bug: no tensors expected")
                sanitize_case(work, label, src, fmt, exp, args=a, **opts)
            cases.append((label, run))
    return cases


def feature_cases(work, S):
    cases = []

    def case(fn):
        cases.append((fn.__name__, fn))
        return fn

    @case
    def no_dedupe_writes_every_tied_name():
        for fmt in ("safetensors", "onnx"):
            _, _, doc = sanitize_case(work, f"tied.pt -> {fmt} --no-dedupe", S["tied.pt"], fmt, dedupe=False)
            if doc["aliases"]:
                raise CheckFailed(f"--no-dedupe: report aliases {doc['aliases']}")

    @case
    def select_globs_repeatable():
        src = S["training.ckpt"]
        globs = ["state_dict.*", "optimizer.state.?.exp_avg"]
        exp = src.expected.derive(keep=lambda n: any(fnmatch.fnmatchcase(n, g) for g in globs))
        assert len(exp.tensors) >= 8 and any(n.startswith("optimizer.") for n in exp.tensors)
        sanitize_case(work, "training.ckpt -> safetensors --select x2", src, "safetensors", exp,
                      args=["--select", globs[0], "--select", globs[1]])
        globs2 = ["dt.int[18]*", "dt.?int8"]           # character class and '?': int8, int16, uint8
        exp2 = S["dtypes.pt"].expected.derive(keep=lambda n: any(fnmatch.fnmatchcase(n, g) for g in globs2))
        assert sorted(exp2.tensors) == ["dt.int16", "dt.int8", "dt.uint8"], sorted(exp2.tensors)
        sanitize_case(work, "dtypes.pt -> onnx --select classes", S["dtypes.pt"], "onnx", exp2,
                      args=["--select", globs2[0], "--select", globs2[1]])

    @case
    def strip_prefix():
        src = S["training.ckpt"]
        p = "state_dict."
        exp = src.expected.derive(rename=lambda n: n[len(p):] if n.startswith(p) else n)
        assert "0.weight" in exp.tensors and "optimizer.state.0.exp_avg" in exp.tensors
        sanitize_case(work, "training.ckpt -> onnx --strip-prefix", src, "onnx", exp, args=["--strip-prefix", p])
        # with --select: '*.weight' matches before and after stripping, whichever comes first
        exp2 = src.expected.derive(keep=lambda n: fnmatch.fnmatchcase(n, "*.weight"),
                                   rename=lambda n: n[len(p):] if n.startswith(p) else n)
        sanitize_case(work, "training.ckpt -> safetensors --strip-prefix --select", src, "safetensors", exp2,
                      args=["--strip-prefix", p, "--select", "*.weight"])

    @case
    def name_of_a_bare_tensor():
        for srcname, fmt, new in (("bare_tensor.pt", "safetensors", "weights"), ("c_order.npy", "onnx", "embedding.table"),
                                  ("bare_param.pt", "onnx", "p")):
            exp = S[srcname].expected.derive(rename=lambda n, new=new: new if n == "tensor" else n)
            assert list(exp.tensors) == [new]
            sanitize_case(work, f"{srcname} -> {fmt} --name {new}", S[srcname], fmt, exp, args=["--name", new])

    @case
    def to_overrides_the_extension():
        for fmt in ("safetensors", "onnx"):
            sanitize_case(work, f"state_dict.pt -> weights.bin --to {fmt}", S["state_dict.pt"], fmt,
                          args=["--to", fmt], out_name="weights.bin")

    @case
    def external_data():
        sanitize_case(work, "external.pt -> onnx --external-data", S["external.pt"], "onnx", external=True, verify=True)
        sanitize_case(work, "arrays.joblib -> onnx --external-data", S["arrays.joblib"], "onnx", external=True)
        sanitize_case(work, "dtypes.pt -> onnx --external-data", S["dtypes.pt"], "onnx", external=True, verify=True)

    @case
    def output_exists_needs_force():
        src = S["state_dict.pt"]
        for fmt in ("safetensors", "onnx"):
            d = work.outdir(f"exists-{fmt}")
            out = os.path.join(d, f"model.{fmt}")
            with open(out, "wb") as f:
                f.write(b"precious")
            rc, _, se = brine("sanitize", src.path, "-o", out)
            assert rc == 2, f"{fmt}: existing output without --force: exit {rc}"
            assert open(out, "rb").read() == b"precious", f"{fmt}: existing output was changed"
            assert listing(d) == [f"model.{fmt}"], f"{fmt}: left {listing(d)}"
            rc, so, se = brine("sanitize", src.path, "-o", out, "--force", "--format", "json")
            assert rc == 0, f"{fmt}: --force: exit {rc}: {se.strip()[-300:]}"
            assert listing(d) == [f"model.{fmt}"], f"{fmt}: left {listing(d)}"
            got, meta = read_output(fmt, out)
            check_tensors(src.expected, got, meta, fmt)

    @case
    def never_overwrites_the_input():
        d = work.outdir("input-protection")
        inp = os.path.join(d, "model.safetensors")          # a torch zip that happens to be named .safetensors
        shutil.copy(S["state_dict.pt"].path, inp)
        inp_pt = os.path.join(d, "model.pt")
        shutil.copy(S["state_dict.pt"].path, inp_pt)
        want = {p: sha256(p) for p in (inp, inp_pt)}
        attempts = [
            ((inp, "-o", inp, "--force"), None),
            ((inp, "-o", os.path.join(d, ".", "model.safetensors"), "--force"), None),
            ((inp, "-o", os.path.join(d, "..", os.path.basename(d), "model.safetensors"), "--force"), None),
            ((inp, "-o", "model.safetensors", "--force"), d),                  # relative, from the input's directory
            ((inp_pt, "-o", inp_pt, "--to", "onnx", "--force"), None),
            ((inp_pt, "-o", inp_pt, "--to", "safetensors"), None),
        ]
        for args, cwd in attempts:
            rc, _, se = brine("sanitize", *args, cwd=cwd)
            assert rc == 2, f"sanitize {' '.join(args)}: exit {rc}, expected 2"
            for p, h in want.items():
                assert sha256(p) == h, f"sanitize {' '.join(args)} changed {os.path.basename(p)}"
            assert listing(d) == ["model.pt", "model.safetensors"], f"left {listing(d)}"

    @case
    def complex128_to_safetensors_is_an_error_naming_the_tensor():
        src = S["dtypes.pt"]
        for extra in ([], ["--format", "json"], ["--salvage"]):
            d = work.outdir("c128-" + "-".join(x.strip("-") for x in extra))
            rc, so, se = brine("sanitize", src.path, "-o", os.path.join(d, "x.safetensors"), *extra)
            assert rc == 2, f"{extra}: exit {rc}, expected 2"
            assert "c128.spectrum" in se, f"{extra}: stderr does not name the tensor: {se.strip()[-300:]!r}"
            assert listing(d) == [], f"{extra}: left {listing(d)}"
        # the t113 sample too
        d = work.outdir("c128-t113")
        rc, _, se = brine("sanitize", S["t113_dtypes.pt"].path, "-o", os.path.join(d, "x.safetensors"))
        assert rc == 2 and "complex128" in se, f"t113_dtypes: exit {rc}, stderr {se.strip()[-300:]!r}"
        assert listing(d) == []

    @case
    def usage_and_input_errors_exit_2_and_write_nothing():
        d = work.outdir("errors")
        src = S["state_dict.pt"].path
        attempts = [
            ("sanitize", src),                                                   # no -o
            ("sanitize", "-o", os.path.join(d, "a.safetensors")),               # no input
            ("sanitize", src, "-o", os.path.join(d, "a.bin")),                  # no format
            ("sanitize", src, "-o", os.path.join(d, "a.bin"), "--to", "xml"),   # bad --to
            ("sanitize", src, "-o", os.path.join(d, "a.safetensors"), "--format", "yaml"),
            ("sanitize", src, "-o", os.path.join(d, "a.safetensors"), "--no-such-flag"),
            ("sanitize", os.path.join(d, "missing.pt"), "-o", os.path.join(d, "a.safetensors")),
            ("sanitize", src, "-o", os.path.join(d, "no", "such", "dir", "a.safetensors")),
            ("sanitize", src, "-o", os.path.join(d, "a.safetensors"), "--rules", "no-such-pack"),
        ]
        for args in attempts:
            rc, _, _ = brine(*args)
            assert rc == 2, f"{' '.join(args[1:])}: exit {rc}, expected 2"
            assert listing(d) == [], f"{' '.join(args[1:])}: left {listing(d)}"

    @case
    def malformed_input_is_an_error_exit_2():
        # `brine scan` gives these the verdict `error` and exit 2; the spec's exit 2 covers unreadable
        # input, its exit 1 is for files that were read but are not clean (unapproved / malicious).
        d = work.outdir("malformed")
        broken = os.path.join(work.scratch, "broken.pt")
        with open(broken, "wb") as f:
            f.write(b"\x80\x02]q\x00(K\x01")               # truncated pickle
        garbage = os.path.join(work.scratch, "noise.pt")
        with open(garbage, "wb") as f:
            f.write(b"PK\x03\x04 this is not a zip at all" * 3)
        for inp, fmt in ((broken, "safetensors"), (garbage, "onnx"), (broken, "onnx")):
            rc, _, _ = brine("sanitize", inp, "-o", os.path.join(d, f"a.{fmt}"))
            assert listing(d) == [], f"{os.path.basename(inp)} -> {fmt}: left {listing(d)}"
            assert rc == 2, f"{os.path.basename(inp)} -> {fmt}: exit {rc}, expected 2"

    @case
    def unapproved_without_rules_writes_nothing():
        src = S["training_namespace.ckpt"]
        for fmt, extra in (("safetensors", ["--format", "json"]), ("onnx", [])):
            d = work.outdir(f"unapproved-{fmt}")
            rc, so, se = brine("sanitize", src.path, "-o", os.path.join(d, f"m.{fmt}"), *extra)
            assert rc == 1, f"{fmt}: exit {rc}, expected 1: {se.strip()[-300:]}"
            assert listing(d) == [], f"{fmt}: left {listing(d)}"
            if extra:
                doc = json.loads(so)
                assert doc["written"] is False and doc["verdict"] == "unapproved" and doc["findings"], \
                    f"report: written {doc.get('written')}, verdict {doc.get('verdict')}"

    def payload_findings_ok(doc):
        text = json.dumps(doc.get("findings", []))
        return "os.system" in text or "posix.system" in text

    @case
    def payload_is_refused_without_salvage():
        for srcname in ("payload.pt", "payload_legacy.pt"):
            for fmt in ("safetensors", "onnx"):
                d = work.outdir(f"refused-{srcname}-{fmt}")
                before = sha256(S[srcname].path)
                rc, so, se = brine("sanitize", S[srcname].path, "-o", os.path.join(d, f"m.{fmt}"), "--format", "json")
                assert rc == 1, f"{srcname} -> {fmt}: exit {rc}, expected 1: {se.strip()[-300:]}"
                assert listing(d) == [], f"{srcname} -> {fmt}: left {listing(d)}"
                assert sha256(S[srcname].path) == before
                doc = json.loads(so)
                assert doc["written"] is False and doc["verdict"] == "malicious", \
                    f"report: written {doc.get('written')}, verdict {doc.get('verdict')}"
                assert payload_findings_ok(doc), "findings do not name os.system / posix.system"

    @case
    def salvage_writes_the_weights_and_names_the_payload():
        for srcname in ("payload.pt", "payload_legacy.pt"):
            for fmt in ("safetensors", "onnx"):
                _, _, doc = sanitize_case(work, f"{srcname} -> {fmt} --salvage", S[srcname], fmt, args=["--salvage"],
                                          verdict="malicious", verify=(fmt == "onnx"))
                assert payload_findings_ok(doc), f"findings do not name os.system: {json.dumps(doc['findings'])[:300]}"
                hook = [x for x in doc["dropped"] if isinstance(x, dict) and x.get("name") == "hook"]
                assert hook, f"dropped does not list 'hook': {doc['dropped']}"
                assert all(isinstance(x.get("reason"), str) and x["reason"] and "offset" in x for x in hook), hook
        # text report names the dropped entry and the payload
        _, _, _ = sanitize_case(work, "payload.pt -> onnx --salvage (text)", S["payload.pt"], "onnx", args=["--salvage"],
                                text=True, verdict="malicious")
        d = work.outdir("payload.pt -> safetensors --salvage (text)")
        rc, so, se = brine("sanitize", S["payload.pt"].path, "-o", os.path.join(d, "m.safetensors"), "--salvage")
        assert rc == 0, f"exit {rc}: {se.strip()[-300:]}"
        assert "hook" in so and ("os.system" in so or "posix.system" in so), f"text report: {so[:600]!r}"

    @case
    def joblib_arrays_without_a_tensor_type_are_dropped():
        for fmt in ("safetensors", "onnx"):
            got, _, doc = sanitize_case(work, f"mixed_dtypes.joblib -> {fmt}", S["mixed_dtypes.joblib"], fmt)
            assert sorted(got) == ["f", "i"], sorted(got)
            dropped = {x.get("name"): x.get("reason", "") for x in doc["dropped"] if isinstance(x, dict)}
            assert sorted(dropped) == ["dt", "s"], doc["dropped"]
            assert "<U3" in dropped["s"] and "<M8" in dropped["dt"], dropped

    @case
    def rules_pack_approves_a_training_checkpoint():
        # (the conversion cases of training_namespace.ckpt run with --rules training-checkpoint; here: a rule file)
        src = S["training_namespace.ckpt"]
        rules = os.path.join(work.scratch, "ns.json")
        with open(rules, "w") as f:
            json.dump({"schema": "brine-rules/1", "allow": [{"global": "argparse.Namespace", "use": ["instantiate", "build"]}]}, f)
        rc, so, se = brine("scan", "--rules", rules, src.path)
        if rc != 0:
            raise CheckFailed(f"test assumption: `brine scan --rules ns.json` gives exit {rc}: {so.strip()[-300:]}")
        sanitize_case(work, "training_namespace.ckpt -> safetensors --rules FILE", src, "safetensors", args=["--rules", rules])

    return cases


def synth_cases(work):
    """torch-2.x layouts (synthetic, tests/data/reference): v3 float8/uint16, bf16, conj bit,
    a transposed and an offset view of one storage, sparse COO, big-endian storages."""
    cases = []
    for which in ("little", "big"):
        for fmt in ("safetensors", "onnx"):
            label = f"synth_t2_{which}.pt -> {fmt}"

            def run(which=which, fmt=fmt, label=label):
                path = os.path.join(SAMPLES, f"synth_t2_{which}.pt")
                with open(os.path.join(SAMPLES, "synth_t2_expected.json")) as f:
                    spec = json.load(f)
                rc, so, _ = brine("scan", "--format", "json", "--no-hash", path)
                verdict = json.loads(so)["files"][0]["verdict"]
                args = [] if verdict == "clean" else ["--salvage"]
                exp = Expected()
                for name, s in spec.items():
                    if name != "coo(dense)":
                        exp.tensors[name] = T(s["dtype"], s["shape"], bytes.fromhex(s["le_hex"]))
                dense = spec["coo(dense)"]
                d = work.outdir(label)
                out = os.path.join(d, f"model.{fmt}")
                want_ort = fmt == "onnx"
                try:
                    rc, so, se = brine("sanitize", path, "-o", out, "--format", "json", "--verify", *args)
                    assert rc == 0, f"exit {rc} ({verdict}): {se.strip()[-400:]}"
                    assert listing(d) == [f"model.{fmt}"], f"left {listing(d)}"
                    got, meta = read_output(fmt, out)
                    doc = json.loads(so)
                    if want_ort:
                        ort_exp = Expected()
                        ort_exp.tensors.update(exp.tensors)
                        ort_exp.tensors["coo"] = T(dense["dtype"], dense["shape"], bytes.fromhex(dense["le_hex"]))
                        queue_ort(label, out, [n for n in got if n in ort_exp.tensors], ort_exp, work.scratch)
                        want_ort = False
                finally:
                    if want_ort:
                        ORT_JOBS.append((label, None, "no model to run: the conversion case failed", False))
                # the sparse COO tensor: written dense as `coo`, or as components `coo.*`, or dropped
                coo = {n: v for n, v in got.items() if n == "coo" or n.startswith("coo.")}
                for n in coo:
                    del got[n]
                if "coo" in coo:
                    exp.tensors["coo"] = T(dense["dtype"], dense["shape"], bytes.fromhex(dense["le_hex"]))
                    got["coo"] = coo["coo"]
                elif coo:
                    values = [v for n, v in coo.items() if "values" in n]
                    f32 = DTYPES["float32"][0] if fmt == "safetensors" else DTYPES["float32"][1]
                    assert values and values[0][0] == f32 and values[0][2] == struct.pack("<2f", 5, 6), \
                        f"sparse components {sorted(coo)}: values not found or wrong"
                else:
                    dropped = [x.get("name", "") for x in doc.get("dropped", []) if isinstance(x, dict)]
                    assert any(n == "coo" or n.startswith("coo.") for n in dropped), \
                        f"sparse 'coo' neither written nor listed in dropped ({dropped})"
                aliases = check_tensors(exp, got, meta, fmt)
                assert aliases == {}, aliases
                assert doc.get("verified") is True and doc.get("written") is True, "report: not written/verified"
            cases.append((label, run))
    return cases


# ------------------------------------------------------------------------------- self-checks --
def st_file(header, data=b"", pad=True, n=None, raw_header=None):
    hb = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    if pad:
        hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb) if n is None else n) + hb + data


def build_model(path, tensors, metadata=(), ir_version=8, opset=13, external=False, force_data=False):
    """A model laid out the way sanitize must write it: {name: (data_type, dims, raw bytes)}."""
    inits, outs = [], []
    side = bytearray()
    for name, (dtype, dims, raw) in tensors.items():
        t = TensorProto()
        t.name, t.data_type = name, dtype
        t.dims.extend(dims)
        if prod(dims) or force_data:
            if external:
                side += b"\0" * (-len(side) % 4096)
                t.data_location = TensorProto.EXTERNAL
                for k, v in (("location", os.path.basename(path) + ".data"), ("offset", str(len(side))), ("length", str(len(raw)))):
                    e = t.external_data.add()
                    e.key, e.value = k, v
                side += raw
            else:
                t.raw_data = raw
        inits.append(t)
        outs.append(helper.make_tensor_value_info(name, dtype, list(dims)))
    graph = helper.make_graph([], "sanitized", [], outs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="selfcheck")
    m.ir_version = ir_version
    for k, v in metadata:
        p = m.metadata_props.add()
        p.key, p.value = k, v
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    if external:
        with open(path + ".data", "wb") as f:
            f.write(side)


def selfcheck_cases(work):
    cases = []

    def case(fn):
        cases.append((fn.__name__, fn))
        return fn

    @case
    def selfcheck_host_is_little_endian():
        assert sys.byteorder == "little", "expectations assume a little-endian host"

    @case
    def selfcheck_safetensors_reader_on_reference_files():
        pairs = (("ref_state_dict.safetensors", "t113_state_dict.pt", None),
                 ("ref_views.safetensors", "t113_views.pt", None),
                 ("ref_dtypes.safetensors", "t113_dtypes.pt", lambda n: n != "complex128"))
        for ref, src, keep in pairs:
            got, meta = read_safetensors(os.path.join(SAMPLES, ref))
            exp = expected_from(torch.load(os.path.join(SAMPLES, src)))
            if keep:
                exp = exp.derive(keep=keep)
            check_tensors(exp, got, meta, "safetensors")
        # a tied sample: exactly-one-written and the alias rule are detected
        exp = expected_from(torch.load(os.path.join(SAMPLES, "t113_tied.pt")))
        assert exp.groups == [["embed.weight", "lm_head.weight"]], exp.groups
        ok = {n: (DTYPES[t.dtype][0], t.shape, t.data) for n, t in exp.tensors.items() if n != "lm_head.weight"}
        check_tensors(exp, ok, {"format": "pt", "lm_head.weight": "embed.weight"}, "safetensors")
        for bad_meta in ({"format": "pt"}, {"format": "pt", "lm_head.weight": "a"}):
            try:
                check_tensors(exp, ok, bad_meta, "safetensors")
            except CheckFailed:
                continue
            raise AssertionError(f"alias check accepted metadata {bad_meta}")
        for what, change in (("a flipped bit", lambda v: (v[0], v[1], v[2][:-1] + bytes([v[2][-1] ^ 1]))),
                             ("a wrong dtype", lambda v: ("F16", v[1], v[2])),
                             ("a wrong shape", lambda v: (v[0], v[1] + (1,), v[2])),
                             ("a missing byte", lambda v: (v[0], v[1], v[2][:-1]))):
            try:
                check_tensors(exp, dict(ok, a=change(ok["a"])), {"format": "pt", "lm_head.weight": "embed.weight"}, "safetensors")
            except CheckFailed:
                continue
            raise AssertionError(f"check_tensors accepted {what}")
        try:
            check_tensors(exp, dict(ok, extra=ok["a"]), {"format": "pt", "lm_head.weight": "embed.weight"}, "safetensors")
        except CheckFailed:
            pass
        else:
            raise AssertionError("check_tensors accepted an extra tensor")
        both = dict(ok, **{"lm_head.weight": ok["embed.weight"]})
        check_tensors(exp, both, {"format": "pt"}, "safetensors", dedupe=False)
        try:
            check_tensors(exp, both, {"format": "pt"}, "safetensors")
        except CheckFailed:
            pass
        else:
            raise AssertionError("dedupe check accepted both tied names")

    @case
    def selfcheck_safetensors_reader_rejects_bad_files():
        meta = {"format": "pt"}
        good_h = {"__metadata__": meta, "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                  "b": {"dtype": "I8", "shape": [3], "data_offsets": [8, 11]}}
        data = struct.pack("<2f", 1, 2) + b"\x01\x02\x03"
        got, m = parse_safetensors(st_file(good_h, data))
        assert m == meta and got["a"] == ("F32", (2,), data[:8]) and got["b"] == ("I8", (3,), data[8:])
        got, _ = parse_safetensors(st_file({"__metadata__": meta, "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
                                            "s": {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}}, b"\0" * 8))
        assert got["e"][2] == b"" and got["s"][1] == ()

        def h(**changes):
            x = json.loads(json.dumps(good_h))
            for k, v in changes.items():
                x[k] = v
            return x
        text = json.dumps(good_h, separators=(",", ":")).encode()
        bad = {
            "trailing byte": st_file(good_h, data + b"\0"),
            "short data": st_file(good_h, data[:-1]),
            "gap": st_file(h(b={"dtype": "I8", "shape": [3], "data_offsets": [9, 12]}), data + b"\0"),
            "overlap": st_file(h(b={"dtype": "I8", "shape": [3], "data_offsets": [6, 9]}), data[:9]),
            "not from 0": st_file(h(a={"dtype": "F32", "shape": [2], "data_offsets": [3, 11]},
                                    b={"dtype": "I8", "shape": [3], "data_offsets": [11, 14]}), b"\0\0\0" + data),
            "size mismatch": st_file(h(a={"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}), data),
            "unknown dtype": st_file(h(a={"dtype": "C128", "shape": [1], "data_offsets": [0, 8]}), data),
            "metadata not strings": st_file(h(__metadata__={"format": "pt", "epoch": 7}), data),
            "negative dim": st_file(h(a={"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}), data),
            "unpadded": st_file(None, data, pad=False, raw_header=text + b" " * ((-len(text) % 8) or 8) + b" "),
            "zero padding": st_file(None, data, pad=False, raw_header=text + b"\0" * (-len(text) % 8)),
            "duplicate key": st_file(None, data, raw_header=text[:-1] + b',"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
            "header too large": st_file(good_h, data, n=100_000_008),
            "header past EOF": st_file(good_h, data, n=4096),
            "not an object": st_file([1, 2]),
        }
        assert (len(text) + (-len(text) % 8) + 1) % 8, "test bug: 'unpadded' is a multiple of 8"
        for what, buf in bad.items():
            try:
                parse_safetensors(buf)
            except CheckFailed:
                continue
            raise AssertionError(f"the safetensors reader accepted a file with: {what}")
        got, m = parse_safetensors(st_file(h(__metadata__={"x": "1"}), data))
        try:
            check_tensors(Expected(), {}, m, "safetensors")
        except CheckFailed:
            pass
        else:
            raise AssertionError("missing format=pt was accepted")

    @case
    def selfcheck_onnx_reader_on_handmade_models():
        exp = Expected()
        for name, dtype, shape, data in (
                ("w", "float32", (2, 3), struct.pack("<6f", 0, 1, 2, 3, 4, 5)),
                ("s", "float64", (), struct.pack("<d", 1.5)),
                ("e", "float32", (0, 3), b""),
                ("i", "int64", (2,), struct.pack("<2q", -1, 2 ** 62)),
                ("h", "float16", (2,), np.array([1, -2], dtype=np.float16).tobytes()),
                ("flag", "bool", (3,), b"\x01\x00\x01"),
                ("u", "uint16", (2,), struct.pack("<2H", 1, 65535)),
                ("b", "bfloat16", (2,), bytes.fromhex("803f0040")),
                ("c", "complex64", (1,), struct.pack("<2f", 1, -2))):
            exp.tensors[name] = T(dtype, shape, data)
        exp.metadata["epoch"] = 7
        exp.metadata["opt.lr"] = 0.001
        tensors = {n: (DTYPES[t.dtype][1], t.shape, t.data) for n, t in exp.tensors.items()}
        md = [("epoch", "7"), ("opt.lr", "0.001")]
        for external in (False, True):
            d = work.outdir(f"selfcheck-onnx-{external}")
            path = os.path.join(d, "m.onnx")
            build_model(path, tensors, md, external=external)
            got, meta = read_onnx(path, external=external)
            check_tensors(exp, got, meta, "onnx")
            queue_ort(f"selfcheck handmade model{' (external data)' if external else ''}", path, list(got), exp, work.scratch)
        # float8 needs IR 9: checked with the IR clamped for Debian's onnx 1.12 checker
        d = work.outdir("selfcheck-onnx-fp8")
        path = os.path.join(d, "m.onnx")
        f8 = Expected()
        f8.tensors["f8"] = T("float8_e4m3fn", (2, 2), bytes.fromhex("3840b800"))
        f8.tensors["w"] = exp.tensors["w"]
        build_model(path, {n: (DTYPES[t.dtype][1], t.shape, t.data) for n, t in f8.tensors.items()}, ir_version=9, opset=19)
        got, meta = read_onnx(path)
        check_tensors(f8, got, meta, "onnx")
        queue_ort("selfcheck float8 model (float8 stripped)", path, list(got), f8, work.scratch)
        # and it notices what it must notice
        bad = {
            "IR 9 without a type that needs it": (dict(w=tensors["w"]), dict(ir_version=9)),
            "float8 under IR 8": (dict(f8=(17, (2, 2), bytes.fromhex("3840b800"))), {}),
            "zero-element tensor with data": (dict(e=(1, (0, 3), b"\0\0\0\0")), dict(force_data=True)),
        }
        for what, (tens, kw) in bad.items():
            path = os.path.join(d, "bad.onnx")
            build_model(path, tens, **kw)
            try:
                read_onnx(path)
            except Exception:  # noqa: BLE001 - checker errors count as rejection too
                continue
            raise AssertionError(f"the ONNX reader accepted a model with: {what}")
        m = onnx.load(os.path.join(work.out, slug("selfcheck-onnx-False"), "m.onnx"))
        m.graph.node.append(helper.make_node("Identity", ["w"], ["w2"]))
        m.graph.output.append(helper.make_tensor_value_info("w2", 1, [2, 3]))
        path = os.path.join(d, "node.onnx")
        onnx.save(m, path)
        try:
            read_onnx(path)
        except CheckFailed:
            pass
        else:
            raise AssertionError("the ONNX reader accepted a model with a node")

    @case
    def selfcheck_onnx_sample_and_onnxruntime_expectations():
        path = os.path.join(SAMPLES, "onnx_initializers_only.onnx")
        m = onnx.load(path)
        onnx.checker.check_model(path)
        vals = {t.name: onnx_tensor_bytes(t) for t in m.graph.initializer}
        want = {"w": struct.pack("<6f", 0, 1, 2, 3, 4, 5), "b": bytes.fromhex("803f0040"), "scalar": struct.pack("<d", 1.5),
                "empty": b""}
        assert vals == want, vals
        ok = {"w": {"dims": [2, 3], "type": "float32", "hex": want["w"].hex()},
              "scalar": {"dims": [], "type": "float64", "hex": want["scalar"].hex()},
              "empty": {"dims": [0, 3], "type": "float32", "hex": ""},
              "b_as_f32": {"dims": [2], "type": "float32", "hex": struct.pack("<2f", 1, 2).hex()}}
        for label, expectations, must_fail in (
                ("selfcheck sample onnx_initializers_only.onnx", ok, False),
                ("selfcheck check.js catches a wrong byte", dict(ok, w=dict(ok["w"], hex=want["w"][:-1].hex() + "41")), True),
                ("selfcheck check.js catches a missing output", {k: v for k, v in ok.items() if k != "empty"}, True),
                ("selfcheck check.js catches wrong dims", dict(ok, w=dict(ok["w"], dims=[3, 2])), True)):
            exp_path = os.path.join(work.scratch, slug(label) + ".json")
            with open(exp_path, "w") as f:
                json.dump(expectations, f)
            ORT_JOBS.append((label, path, exp_path, must_fail))

    @case
    def onnxruntime_node_installed():
        for tool in ("node", "npm"):
            assert shutil.which(tool), f"{tool} is not installed (Debian: apt-get install nodejs npm)"
        p = subprocess.run(["bash", os.path.join(ORT_DIR, "install.sh")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=900)
        assert p.returncode == 0, f"install.sh failed: {p.stdout.decode('utf-8', 'replace')[-600:]}"
        p = subprocess.run(["node", "-p", "require('onnxruntime-node/package.json').version"], cwd=ORT_DIR,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        with open(os.path.join(ORT_DIR, "package.json")) as f:
            pinned = json.load(f)["dependencies"]["onnxruntime-node"]
        assert p.stdout.decode().strip() == pinned, f"onnxruntime-node {p.stdout.decode().strip()!r}, pinned {pinned!r}"

    return cases


# ------------------------------------------------------------------------------------- main --
def main():
    started = time.time()
    keep = os.environ.get("BRINE_SANITIZE_KEEP")
    if keep:
        os.makedirs(keep)
        root = os.path.abspath(keep)
    else:
        root = tempfile.mkdtemp(prefix="brine-sanitize-")
    work = Work(root)
    passed = failed = 0

    def run(name, fn):
        nonlocal passed, failed
        try:
            fn()
            passed += 1
            print(f"ok   {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported as the case's failure
            failed += 1
            msg = " ".join(str(e).split()) or type(e).__name__
            print(f"FAIL {name}: {type(e).__name__}: {msg[:1500]}", flush=True)
            if not isinstance(e, CheckFailed):
                traceback.print_exc()

    try:
        for name, fn in selfcheck_cases(work):
            run(name, fn)
        S = {}

        def make():
            S.update(make_checkpoints(work))
        run("make_checkpoints", make)
        for name, fn in conversion_cases(work, S) + feature_cases(work, S) + synth_cases(work):
            run(name, fn)
        ort = run_ort_jobs()
        for label, *_ in ORT_JOBS:
            def check(label=label):
                if ort.get(label):
                    raise CheckFailed(ort[label])
            run(f"onnxruntime: {label}", check)
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"({time.time() - started:.1f}s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
