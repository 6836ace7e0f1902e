#!/usr/bin/env python3
"""Differential test: what brine's symbolic VM builds against what CPython's unpickler builds.

Usage: inspect_vs_cpython.py BRINE CORPUS_DIR

For every benign sample of the corpus (corpus/benign/manifest.json, and the "benign_" samples of
corpus/containers/manifest.json):

1. `brine inspect --json` lists every pickle brine executed (container member, start and end
   offset) with its full value tree and event list.
2. The test finds the pickles itself: it opens zips, tars, 7z archives and compressed streams,
   and knows where torch's legacy format, .npy files and joblib put pickles. Every pickle it finds
   must be among brine's, and every pickle brine reports must be in a member it can open.
3. Each of brine's pickles is loaded by CPython from the same start offset, with a restricted
   unpickler: find_class records the name and returns an inert placeholder class, calls and
   instantiations return placeholder objects that record their arguments, BUILD, item assignment
   and appends on them are recorded, persistent_load records its id. Nothing from the file is
   imported or executed. The C unpickler (_pickle) is used, except for streams holding joblib
   array wrappers: those are read, like joblib.load reads them, by the pure-Python unpickler with
   joblib's BUILD step (raw array bytes are skipped, object arrays are a nested pickle).
4. The two results are compared:
   - same end offset (CPython's file position after load() = brine's STOP + 1);
   - same structure and values: types, ints, float bit patterns, str, bytes, container items in
     order, dict entries in order (sets as multisets), the same globals, the same calls with the
     same arguments, the same BUILD states, item assignments and appended items;
   - the same sharing: where brine writes one value twice (an id and a ref), CPython has the
     same object in both places, and where brine has two values, CPython has two objects;
   - the same event sequence: imports, calls, BUILDs, item assignments, appends and persistent
     loads in execution order.

Prints one line per pickle ("ok"/"FAIL") and ends with "N passed, M failed". Exit 1 on failures.
"""
import io
import json
import lzma
import bz2
import gzip
import math
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

import _pickle

assert pickle.Unpickler is _pickle.Unpickler, "pickle.Unpickler must be the C unpickler"
sys.set_int_max_str_digits(0)

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class Mismatch(Exception):
    pass


# ------------------------------------------------------------------------------ placeholders --
class Recorder:
    """Events of one pickle run, in the order CPython performs them."""

    def __init__(self):
        self.events = []

    def call(self, kind, fn, args, kwargs):
        obj = Obj(self, kind, fn, args, kwargs)
        self.events.append(("call", obj))
        return obj


class Obj:
    """The result of a call or an instantiation. Records what later opcodes do to it."""

    def __init__(self, rec, kind, fn, args, kwargs):
        self._rec, self.kind, self.fn, self.args, self.kwargs = rec, kind, fn, args, kwargs
        self.builds, self.setitems, self.appended = [], [], []

    def __call__(self, *args, **kwargs):
        return self._rec.call("call", self, args, kwargs)

    def __setstate__(self, state):               # BUILD
        self.builds.append(state)
        self._rec.events.append(("build", self, state))

    def __setitem__(self, key, value):           # SETITEM(S) on an object
        self.setitems.append((key, value))
        self._rec.events.append(("setitem", self, key, value))

    def extend(self, items):                     # APPEND(S) on an object
        items = list(items)
        self.appended.extend(items)
        self._rec.events.append(("append", self, items))

    def append(self, item):
        self.extend([item])

    def add(self, item):                         # ADDITEMS on an object
        self.extend([item])


class Persistent:
    def __init__(self, pid):
        self.pid = pid


class GlobalMeta(type):
    """Placeholder classes: calling one (REDUCE, INST with arguments) records a call; NEWOBJ and
    INST without arguments go through __new__ and record an instantiation."""

    def __call__(cls, *args, **kwargs):
        return cls._rec.call("call", cls, args, kwargs)


def make_global(rec, module, name):
    def __new__(cls, *args, **kwargs):
        return rec.call("new", cls, args, kwargs)
    return GlobalMeta("Global", (), {"__new__": __new__, "_rec": rec, "g_module": module, "g_name": name})


def is_global(x, module, name):
    return isinstance(x, GlobalMeta) and x.g_module == module and x.g_name == name


class RestrictedMixin:
    def find_class(self, module, name):
        self.rec.events.append(("global", module, name))
        return make_global(self.rec, module, name)

    def persistent_load(self, pid):
        p = Persistent(pid)
        self.rec.events.append(("persistent", p))
        return p


class RestrictedC(RestrictedMixin, pickle.Unpickler):
    def __init__(self, f, rec):
        super().__init__(f, encoding="latin1")
        self.rec = rec


class RestrictedJoblib(RestrictedMixin, pickle._Unpickler):
    """pickle._Unpickler with joblib's BUILD step (joblib.numpy_pickle.NumpyUnpickler.load_build
    and NumpyArrayWrapper.read_array), on placeholders."""
    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f, rec, nested):
        super().__init__(f, encoding="latin1")
        self.rec, self.f, self.nested = rec, f, nested

    def load_build(self):
        pickle._Unpickler.load_build(self)
        top = self.stack[-1]
        if isinstance(top, Obj) and is_global(top.fn, "joblib.numpy_pickle", "NumpyArrayWrapper") and top.builds:
            self.read_array(top.builds[-1])
    dispatch[pickle.BUILD[0]] = load_build

    def read_array(self, state):
        import numpy as np
        dtype_obj, shape = state["dtype"], state["shape"]
        # numpy.dtype(name, align, copy) then BUILD (version, byteorder, subdescr, names, fields,
        # elsize, alignment, flags): only the item size and "holds objects" matter here.
        base = np.dtype(dtype_obj.args[0])
        dstate = dtype_obj.builds[-1] if dtype_obj.builds else None
        itemsize = dstate[5] if dstate and len(dstate) > 5 and dstate[5] > 0 else base.itemsize
        hasobject = base.hasobject or bool(dstate and len(dstate) > 7 and dstate[7] & 1)
        count = 1
        for n in shape:
            count *= n
        if hasobject:
            start = self.f.tell()
            self.nested.append(load_one(self.f.getvalue(), start, allow_joblib=False))
            self.f.seek(self.nested[-1]["end"])
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.f.read(1)
            if pad and pad[0]:
                self.f.read(pad[0])
        self.f.read(count * itemsize)


def load_one(data, start, allow_joblib=True):
    """Loads one pickle at `start`. Returns {"start", "end", "root", "error", "events", "nested",
    "rec"}."""
    rec = Recorder()
    f = io.BytesIO(data)
    f.seek(start)
    nested = []
    try:
        root, error = RestrictedC(f, rec).load(), None
    except Exception as e:          # noqa: BLE001 - the error is compared, not hidden
        root, error = None, e
    wrappers = any(e[0] == "global" and e[1:] == ("joblib.numpy_pickle", "NumpyArrayWrapper") for e in rec.events)
    if wrappers and allow_joblib:
        rec = Recorder()
        f.seek(start)
        try:
            root, error = RestrictedJoblib(f, rec, nested).load(), None
        except Exception as e:      # noqa: BLE001
            root, error = None, e
    return {"start": start, "end": f.tell(), "root": root, "error": error, "events": rec.events, "nested": nested, "rec": rec}


# -------------------------------------------------------------------------- finding pickles --
def magic_kind(b):
    if b[:4] == b"PK\x03\x04" or b[:4] == b"PK\x05\x06":
        return "zip"
    if b[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if b[:2] == b"\x1f\x8b":
        return "gzip"
    if b[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if b[:3] == b"BZh":
        return "bzip2"
    if b[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if b[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if b[:3] == b"\x5d\x00\x00":
        return "lzma"
    if len(b) >= 2 and b[0] == 0x78 and (b[0] * 256 + b[1]) % 31 == 0:
        return "zlib"
    if b[:6] == b"\x93NUMPY":
        return "npy"
    if len(b) >= 512 and b[257:262] == b"ustar":
        return "tar"
    return "pickle"


def decompress(kind, b):
    if kind == "gzip":
        return gzip.decompress(b)
    if kind == "zstd":
        return subprocess.run(["zstd", "-dc"], input=b, stdout=subprocess.PIPE, check=True).stdout
    if kind == "bzip2":
        return bz2.decompress(b)
    if kind in ("xz", "lzma"):
        return lzma.decompress(b)
    if kind == "lz4":
        import lz4.frame
        return lz4.frame.decompress(b)
    if kind == "zlib":
        return zlib.decompress(b)
    raise AssertionError(kind)


def read_zip_entry(z, info):
    try:
        return z.read(info.filename)
    except zipfile.BadZipFile:
        # torch writes some archives with CRC checks off (a zero CRC): read it as torch's
        # miniz reader does, without the check. _expected_crc is zipfile's own switch for that.
        with z.open(info) as f:
            f._expected_crc = None
            return f.read()


def sevenzip_members(b):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "a.7z")
        with open(path, "wb") as f:
            f.write(b)
        subprocess.run(["7z", "x", "-y", f"-o{d}/x", path], stdout=subprocess.DEVNULL, check=True)
        out = {}
        for root, _, files in os.walk(os.path.join(d, "x")):
            for name in files:
                p = os.path.join(root, name)
                out[os.path.relpath(p, os.path.join(d, "x"))] = open(p, "rb").read()
        return out


def npy_pickle_start(b):
    import numpy as np
    f = io.BytesIO(b)
    version = np.lib.format.read_magic(f)
    _, _, dtype = np.lib.format._read_array_header(f, version)
    return f.tell() if dtype.hasobject else None


def walk(blob, member, members, expected, opaque):
    """Records every member's bytes (members[path] = bytes), the pickles the test knows must be
    there (expected: set of (member, start)), and members whose pickle layout it does not model
    (opaque)."""
    members[member] = blob
    child = (lambda name: name if not member else member + "!" + name)
    kind = magic_kind(blob)
    if kind == "zip":
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                data = read_zip_entry(z, info)
                name = info.filename
                if name.endswith((".pkl", ".debug_pkl")):
                    members[child(name)] = data
                    expected.add((child(name), 0))
                elif name.endswith(".npy") or magic_kind(data) in ("zip", "tar", "7z", "npy"):
                    walk(data, child(name), members, expected, opaque)
        return
    if kind == "7z":
        for name, data in sevenzip_members(blob).items():
            walk(data, child(name), members, expected, opaque)
        return
    if kind == "tar":
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}
        if {"sys_info", "pickle", "storages", "tensors"} <= set(files):
            # torch 0.1.x: sys_info and pickle are one pickle each; storages and tensors mix
            # pickles with raw data, which this test does not model (brine's runs there are
            # still each checked against CPython).
            for name in ("sys_info", "pickle"):
                members[child(name)] = files[name]
                expected.add((child(name), 0))
            for name in ("storages", "tensors"):
                members[child(name)] = files[name]
                opaque.add(child(name))
            return
        for name, data in files.items():
            walk(data, child(name), members, expected, opaque)
        return
    if kind in ("gzip", "zstd", "bzip2", "xz", "lz4", "lzma", "zlib"):
        walk(decompress(kind, blob), child(f"[{kind}]"), members, expected, opaque)
        return
    if kind == "npy":
        start = npy_pickle_start(blob)
        if start is not None:
            expected.add((member, start))
        return
    # A pickle stream: torch's legacy format is five pickles then raw storages; anything else
    # is one pickle (joblib's nested object-array pickles are added by the loader).
    first = load_one(blob, 0)
    expected.add((member, 0))
    if first["error"] is None and first["root"] == LEGACY_MAGIC:
        pos = first["end"]
        for _ in range(4):
            expected.add((member, pos))
            pos = load_one(blob, pos)["end"]
    for n in first["nested"]:
        expected.add((member, n["start"]))


# ------------------------------------------------------------------------------- comparison --
def brine_ids(node, table):
    """id -> node for every value brine wrote with an id."""
    stack = [node]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if "id" in x and "t" in x:
                table[x["id"]] = x
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return table


def brine_int(n):
    if "v" in n:
        return int(n["v"])
    return int.from_bytes(bytes.fromhex(n["le_hex"]), "little", signed=True)


def brine_str(n):
    if "v" in n:
        return n["v"]
    return bytes.fromhex(n["wtf8_hex"]).decode("utf-8", "surrogatepass")


def float_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


VALUE_KINDS = ("tuple", "frozenset", "str", "bytes", "str8")   # identity not significant


class Compare:
    def __init__(self, table):
        self.table = table
        self.b2p, self.p2b, self.done, self.keep = {}, {}, set(), []

    def fail(self, path, why):
        raise Mismatch(f"{path}: {why}")

    def resolve(self, b):
        if "ref" in b:
            if b["ref"] not in self.table:
                raise Mismatch(f"brine ref {b['ref']} has no definition")
            return self.table[b["ref"]]
        return b

    def value(self, b, p, path, identity=True):
        bid = b.get("ref", b.get("id"))
        n = self.resolve(b)
        t = n["t"]
        if bid is not None:
            if identity and t not in VALUE_KINDS:
                if bid in self.b2p:
                    if self.b2p[bid] is not p:
                        self.fail(path, f"brine has the {t} #{bid} seen before here; CPython has a different object")
                    return
                if id(p) in self.p2b:
                    self.fail(path, f"CPython has the same object as brine's #{self.p2b[id(p)]} here; brine has #{bid}")
                self.b2p[bid] = p
                self.p2b[id(p)] = bid
                self.keep.append(p)
            else:
                key = (bid, id(p))
                if key in self.done:
                    return
                self.done.add(key)
                self.keep.append(p)
        elif identity and isinstance(p, (list, dict, set, bytearray, Obj, Persistent)) and id(p) in self.p2b:
            self.fail(path, f"CPython shares this {type(p).__name__} with brine's #{self.p2b[id(p)]}; brine has a new value")
        getattr(self, "t_" + t, self.t_unknown)(n, p, path)

    def t_unknown(self, n, p, path):
        self.fail(path, f"brine value type {n['t']!r} has no CPython counterpart here ({type(p).__name__})")

    def expect_type(self, p, typ, path, n):
        if type(p) is not typ:
            self.fail(path, f"brine {n['t']}, CPython {type(p).__name__}: {repr(p)[:80]}")

    def t_none(self, n, p, path):
        if p is not None:
            self.fail(path, f"brine None, CPython {repr(p)[:80]}")

    def t_bool(self, n, p, path):
        self.expect_type(p, bool, path, n)
        if p != n["v"]:
            self.fail(path, f"brine {n['v']}, CPython {p}")

    def t_int(self, n, p, path):
        self.expect_type(p, int, path, n)
        if p != brine_int(n):
            self.fail(path, f"brine {brine_int(n)}, CPython {p}")

    def t_float(self, n, p, path):
        self.expect_type(p, float, path, n)
        if float_bits(p) != int(n["bits"], 16):
            self.fail(path, f"brine float bits {n['bits']}, CPython {float_bits(p):016x} ({p!r})")

    def t_str(self, n, p, path):
        self.expect_type(p, str, path, n)
        if p != brine_str(n):
            self.fail(path, f"brine {brine_str(n)[:60]!r}, CPython {p[:60]!r}")

    def t_str8(self, n, p, path):    # STRING/BINSTRING, decoded with encoding="latin1"
        self.expect_type(p, str, path, n)
        if p != bytes.fromhex(n["hex"]).decode("latin1"):
            self.fail(path, f"brine STRING {n['hex'][:60]}, CPython {p[:60]!r}")

    def t_bytes(self, n, p, path):
        self.expect_type(p, bytes, path, n)
        if p.hex() != n["hex"]:
            self.fail(path, f"brine bytes {n['hex'][:60]}, CPython {p.hex()[:60]}")

    def t_bytearray(self, n, p, path):
        self.expect_type(p, bytearray, path, n)
        if p.hex() != n["hex"]:
            self.fail(path, "bytearray contents differ")

    def seq(self, n, p, path, typ):
        self.expect_type(p, typ, path, n)
        if len(p) != len(n["items"]):
            self.fail(path, f"brine {len(n['items'])} items, CPython {len(p)}")
        for i, (b, x) in enumerate(zip(n["items"], p)):
            self.value(b, x, f"{path}[{i}]")

    def t_tuple(self, n, p, path):
        self.seq(n, p, path, tuple)

    def t_list(self, n, p, path):
        self.seq(n, p, path, list)

    def scalar_key(self, b, p):
        """(brine key, CPython key) for a set item, if it is a plain scalar."""
        n = self.resolve(b)
        t = n["t"]
        if t == "none":
            return ("none",), (("none",) if p is None else None)
        if t in ("int", "bool"):
            return ("num", brine_int(n) if t == "int" else int(n["v"])), ("num", p) if type(p) in (int, bool) else None
        if t == "float":
            return ("float", int(n["bits"], 16)), ("float", float_bits(p)) if type(p) is float else None
        if t == "str":
            return ("str", brine_str(n)), ("str", p) if type(p) is str else None
        if t == "bytes":
            return ("bytes", n["hex"]), ("bytes", p.hex()) if type(p) is bytes else None
        return None, None

    def unordered(self, n, p, path, typ):
        self.expect_type(p, typ, path, n)
        if len(p) != len(n["items"]):
            self.fail(path, f"brine {len(n['items'])} items, CPython {len(p)}")
        bkeys = [self.scalar_key(b, None)[0] for b in n["items"]]
        if any(k is None for k in bkeys):
            self.fail(path, "sets of non-scalar items are not compared by this test")
        pkeys = []
        for x in p:
            pk = self.scalar_key({"t": "none"}, x)[1] if x is None else None
            for b in n["items"]:
                _, pk2 = self.scalar_key(b, x)
                if pk2 is not None:
                    pk = pk2
                    break
            pkeys.append(pk)
        if sorted(map(repr, bkeys)) != sorted(map(repr, pkeys)):
            self.fail(path, f"set items differ: brine {sorted(map(repr, bkeys))[:5]}, CPython {sorted(map(repr, pkeys))[:5]}")

    def t_set(self, n, p, path):
        self.unordered(n, p, path, set)

    def t_frozenset(self, n, p, path):
        self.unordered(n, p, path, frozenset)

    def t_dict(self, n, p, path):
        self.expect_type(p, dict, path, n)
        if len(p) != len(n["items"]):
            self.fail(path, f"brine {len(n['items'])} entries, CPython {len(p)}")
        for i, ((bk, bv), (k, v)) in enumerate(zip(n["items"], p.items())):
            self.value(bk, k, f"{path}.key{i}")
            self.value(bv, v, f"{path}[{k!r:.40}]")

    def t_global(self, n, p, path):
        if not isinstance(p, GlobalMeta):
            self.fail(path, f"brine global, CPython {type(p).__name__}")
        if n.get("resolved") is False or (p.g_module, p.g_name) != (n["module"], n["name"]):
            self.fail(path, f"brine global {n.get('module')}.{n.get('name')}, CPython {p.g_module}.{p.g_name}")

    def t_persistent(self, n, p, path):
        if not isinstance(p, Persistent):
            self.fail(path, f"brine persistent_load result, CPython {type(p).__name__}")
        self.value(n["pid"], p.pid, path + ".pid")

    def t_object(self, n, p, path):
        if not isinstance(p, Obj):
            self.fail(path, f"brine object from {n['op']} @{n['offset']}, CPython {type(p).__name__}: {repr(p)[:80]}")
        kind = n["kind"]
        args = self.resolve(n["args"])
        if kind in ("inst", "obj"):
            callee = self.resolve(n["callable"])
            kind = "new" if args["t"] == "tuple" and not args["items"] and callee["t"] == "global" else "call"
        want = {"reduce": "call", "newobj": "new", "newobj_ex": "new"}.get(kind, kind)
        if p.kind != want:
            self.fail(path, f"brine {n['kind']} ({want}), CPython {p.kind}")
        self.value(n["callable"], p.fn, path + ".callable")
        self.value(n["args"], p.args, path + ".args", identity=False)   # CPython packs *args afresh
        bkw = self.resolve(n["kwargs"]) if "kwargs" in n else None
        if bkw is not None and bkw["t"] == "dict" and bkw["items"]:
            self.value(n["kwargs"], p.kwargs, path + ".kwargs", identity=False)
        elif p.kwargs:
            self.fail(path, f"CPython passed keyword arguments {list(p.kwargs)}; brine none")
        builds = n.get("builds", [])
        if len(builds) != len(p.builds):
            self.fail(path, f"brine {len(builds)} BUILDs, CPython {len(p.builds)}")
        for i, (b, s) in enumerate(zip(builds, p.builds)):
            self.value(b, s, f"{path}.build{i}")
        setitems = n.get("setitems", [])
        if len(setitems) != len(p.setitems):
            self.fail(path, f"brine {len(setitems)} item assignments, CPython {len(p.setitems)}")
        for i, ((bk, bv), (k, v)) in enumerate(zip(setitems, p.setitems)):
            self.value(bk, k, f"{path}.setitem{i}.key")
            self.value(bv, v, f"{path}.setitem{i}.value")
        appended = n.get("appended", [])
        if len(appended) != len(p.appended):
            self.fail(path, f"brine {len(appended)} appended items, CPython {len(p.appended)}")
        for i, (b, x) in enumerate(zip(appended, p.appended)):
            self.value(b, x, f"{path}.appended{i}")


def merged(events, subject_key, items_of):
    """Consecutive appends to the same object are one: CPython calls add() per ADDITEMS item."""
    out = []
    for e in events:
        if out and e[0] == "append" and out[-1][0] == "append" and subject_key(out[-1][1]) == subject_key(e[1]):
            out[-1] = ("append", out[-1][1], out[-1][2] + items_of(e))
        else:
            out.append(e if e[0] != "append" else ("append", e[1], items_of(e)))
    return out


def compare_events(cmp, brine_events, py_events):
    b_norm = []
    for e in brine_events:
        k = e["event"]
        if k == "global":
            s = cmp.resolve(e["subject"])
            b_norm.append(("global", s.get("module"), s.get("name"), e))
        elif k == "call":
            b_norm.append(("call", e["subject"], e))
        elif k == "build":
            b_norm.append(("build", e["subject"], e["state"], e))
        elif k == "setitem":
            b_norm.append(("setitem", e["subject"], e["key"], e["value"], e))
        elif k == "append":
            b_norm.append(("append", e["subject"], cmp.resolve(e["items"])["items"]))
        elif k == "persistent_load":
            b_norm.append(("persistent", e["subject"], e))
        else:
            b_norm.append((k, e))
    b_norm = merged(b_norm, lambda s: s.get("ref", s.get("id")), lambda e: list(e[2]))
    p_norm = merged(py_events, id, lambda e: list(e[2]))
    for i, (b, p) in enumerate(zip(b_norm, p_norm)):
        where = f"event {i}"
        if b[0] != p[0]:
            raise Mismatch(f"{where}: brine {b[0]}, CPython {p[0]} {p[1:3] if p[0] == 'global' else ''}")
        if b[0] == "global":
            if (b[1], b[2]) != (p[1], p[2]):
                raise Mismatch(f"{where}: brine imports {b[1]}.{b[2]}, CPython {p[1]}.{p[2]}")
        elif b[0] in ("call", "persistent"):
            cmp.value(b[1], p[1], where)
        elif b[0] == "build":
            cmp.value(b[1], p[1], where)
            cmp.value(b[2], p[2], where + ".state")
        elif b[0] == "setitem":
            cmp.value(b[1], p[1], where)
            cmp.value(b[2], p[2], where + ".key")
            cmp.value(b[3], p[3], where + ".value")
        elif b[0] == "append":
            cmp.value(b[1], p[1], where)
            if len(b[2]) != len(p[2]):
                raise Mismatch(f"{where}: brine appends {len(b[2])} items, CPython {len(p[2])}")
            for j, (bi, pi) in enumerate(zip(b[2], p[2])):
                cmp.value(bi, pi, f"{where}.item{j}")
    if len(b_norm) != len(p_norm):
        extra = b_norm[len(p_norm):] or p_norm[len(b_norm):]
        raise Mismatch(f"brine {len(b_norm)} events, CPython {len(p_norm)}; first extra: {str(extra[0])[:160]}")


def check_run(run, data, py_runs):
    """Compares one of brine's pickle runs with CPython's load from the same offset."""
    start = run["start"]
    py = py_runs.get(start)
    if py is None:
        py = load_one(data, start)
        py_runs[start] = py
        for n in py["nested"]:
            py_runs.setdefault(n["start"], n)
    if run["stopped"]:
        if py["error"] is not None:
            raise Mismatch(f"brine reached STOP at {run['end']}; CPython raised {py['error']!r:.200}")
        if py["end"] != run["end"]:
            raise Mismatch(f"brine ends at {run['end']}, CPython at {py['end']}")
    elif py["error"] is None:
        raise Mismatch(f"brine stopped early ({(run.get('error') or {}).get('message')}); CPython loaded the pickle")
    cmp = Compare(brine_ids(run, {}))
    if run["stopped"]:
        if run["root"] is None:
            raise Mismatch("brine reached STOP without a result")
        cmp.value(run["root"], py["root"], "result")
    compare_events(cmp, run["events"], py["events"])


# ----------------------------------------------------------- the comparator catches faults --
def find_nodes(node, pred):
    """Every dict in brine's JSON tree satisfying pred, depth-first."""
    out, stack = [], [node]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            if pred(x):
                out.append(x)
            stack.extend(reversed(list(x.values())))
        elif isinstance(x, list):
            stack.extend(reversed(x))
    return out


def planted_faults():
    """(label, file under corpus/, mutate(run) -> bool): each mutation of brine's JSON must make
    the comparison fail. They check the checker: a comparison that ignores ints, names, events,
    offsets or sharing would pass them."""
    def set_int(run):
        n = find_nodes(run["root"], lambda x: x.get("t") == "int" and "v" in x)
        n[-1]["v"] = str(int(n[-1]["v"]) + 1)
        return True

    def flip_float(run):
        n = find_nodes(run["root"], lambda x: x.get("t") == "float")
        n[0]["bits"] = f"{int(n[0]['bits'], 16) ^ 1:016x}"
        return True

    def rename_global(run):
        e = [e for e in run["events"] if e["event"] == "global"]
        e[0]["subject"]["module"] += "x"
        return True

    def drop_event(run):
        run["events"].pop()
        return True

    def move_end(run):
        run["end"] += 1
        return True

    def swap_entries(run):
        d = find_nodes(run["root"], lambda x: x.get("t") == "dict" and len(x["items"]) >= 2)
        d[0]["items"][0], d[0]["items"][1] = d[0]["items"][1], d[0]["items"][0]
        return True

    def call_kind(run):
        o = find_nodes(run["root"], lambda x: x.get("t") == "object" and x["kind"] == "reduce")
        o[0]["kind"] = "newobj"
        return True

    def unshare(run):
        # a second mention of a shared list/dict/object becomes a distinct copy
        refs = find_nodes(run, lambda x: "ref" in x)
        table = brine_ids(run, {})
        for r in refs:
            target = table[r["ref"]]
            if target["t"] in ("list", "dict", "object"):
                r.pop("ref")
                r.update(json.loads(json.dumps(target)))
                r["id"] = 10 ** 9
                return True
        return False

    def drop_build(run):
        o = find_nodes(run["root"], lambda x: x.get("t") == "object" and x.get("builds"))
        o[0]["builds"].pop()
        return True

    def bytes_content(run):
        n = find_nodes(run["root"], lambda x: x.get("t") == "bytes" and x["hex"])
        n[0]["hex"] = ("00" if n[0]["hex"][:2] != "00" else "01") + n[0]["hex"][2:]
        return True

    def str_text(run):
        n = find_nodes(run["root"], lambda x: x.get("t") == "str" and x.get("v"))
        n[0]["v"] = n[0]["v"][:-1] + ("a" if n[0]["v"][-1] != "a" else "b")
        return True

    return [
        ("an int value", "benign/pickle_builtin_p2.pkl", set_int),
        ("a float's last bit", "benign/pickle_builtin_p4.pkl", flip_float),
        ("an imported module's name", "benign/torch_state_dict_mlp_p3.pt", rename_global),
        ("a missing event", "benign/sklearn_kmeans.pkl", drop_event),
        ("the end offset", "benign/pickle_builtin_p0.pkl", move_end),
        ("dict order", "benign/pickle_builtin_p3.pkl", swap_entries),
        ("REDUCE read as NEWOBJ", "benign/torch_state_dict_cnn.pt", call_kind),
        ("a shared value written as a copy", "benign/pickle_builtin_p5.pkl", unshare),
        ("a missing BUILD", "benign/sklearn_decision_tree.pkl", drop_build),
        ("bytes content", "benign/pickle_builtin_p3.pkl", bytes_content),
        ("str content", "benign/pickle_builtin_p1.pkl", str_text),
    ]


def comparator_checks(brine, corpus):
    passed = failed = 0
    for label, rel, mutate in planted_faults():
        path = os.path.join(corpus, rel)
        doc = json.loads(subprocess.run([brine, "inspect", "--json", path], stdout=subprocess.PIPE).stdout)
        members, expected, opaque = {}, set(), set()
        data = open(path, "rb").read()
        walk(data, "", members, expected, opaque)
        run = max(doc["files"][0]["pickles"], key=lambda r: len(r["events"]) + r["end"] - r["start"])
        try:
            check_run(json.loads(json.dumps(run)), members[run["member"]], {})
        except Mismatch as e:
            print(f"FAIL planted fault baseline {rel}: the unmodified run already differs: {e}")
            failed += 1
            continue
        try:
            if not mutate(run):
                raise IndexError("nothing to mutate")
        except (IndexError, KeyError) as e:
            print(f"FAIL planted fault '{label}': {rel} has nothing to change ({e!r})")
            failed += 1
            continue
        try:
            check_run(run, members[run["member"]], {})
        except Mismatch as e:
            passed += 1
            print(f"ok   planted fault '{label}' in {rel} is caught: {str(e)[:100]}")
            continue
        print(f"FAIL planted fault '{label}' in {rel}: the comparison did not notice")
        failed += 1
    return passed, failed


def samples(corpus):
    out = []
    for sub, keep in (("benign", lambda p: True), ("containers", lambda p: os.path.basename(p).startswith("benign_"))):
        with open(os.path.join(corpus, sub, "manifest.json")) as f:
            for s in json.load(f)["samples"]:
                if keep(s["path"]):
                    out.append(os.path.join(corpus, s["path"]))
    return sorted(out)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    brine, corpus = sys.argv[1], sys.argv[2]
    files = samples(corpus)
    if len(files) < 60:
        print(f"FAIL corpus: only {len(files)} benign samples found under {corpus}")
        print("0 passed, 1 failed")
        return 1
    passed = failed = 0
    for path in files:
        label = os.path.relpath(path, corpus)
        proc = subprocess.run([brine, "inspect", "--json", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            doc = json.loads(proc.stdout)
            runs = doc["files"][0]["pickles"]
        except (ValueError, KeyError, IndexError) as e:
            print(f"FAIL {label}: brine inspect --json gave no document (exit {proc.returncode}): {e}; {proc.stderr[-300:]!r}")
            failed += 1
            continue
        data = open(path, "rb").read()
        members, expected, opaque = {}, set(), set()
        try:
            walk(data, "", members, expected, opaque)
        except Exception as e:      # noqa: BLE001
            print(f"FAIL {label}: the test could not open the file: {e!r}")
            failed += 1
            continue
        reported = {(r["member"], r["start"]) for r in runs}
        missing = sorted(expected - reported)
        if missing:
            print(f"FAIL {label}: pickles brine did not execute: {missing[:5]}")
            failed += 1
        dup = len(reported) != len(runs)
        if dup:
            print(f"FAIL {label}: brine executed the same pickle twice")
            failed += 1
        py_cache = {}
        for run in runs:
            name = f"{label}: {run['member'] or '(file)'}@{run['start']}"
            if run["member"] not in members:
                print(f"FAIL {name}: brine reports a member the test cannot find")
                failed += 1
                continue
            try:
                check_run(run, members[run["member"]], py_cache.setdefault(run["member"], {}))
            except Mismatch as e:
                print(f"FAIL {name}: {e}")
                failed += 1
                continue
            passed += 1
            print(f"ok   {name} ({len(run['events'])} events)")
    p, f = comparator_checks(brine, corpus)
    passed, failed = passed + p, failed + f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
