#!/usr/bin/env python3
"""Inputs for the loader oracle (tests/loader_oracle.py): real checkpoints made now, and a seeded,
deterministic, structure-aware generator of variants of every format brine reads.

Every variant is named  <dimension>__<variant>__<benign|payload>__<index>.<ext>  so a failure names
its class. A payload is only ever os.system('echo brine-test') (or eval('1')), and the oracle's audit
hook refuses its global before it resolves anyway. Whether a variant loads, and which globals it
resolves, is decided by the real loaders, never by this file: the labels only say what was planted.

Dimensions (see DIMENSIONS at the bottom):
  npy        header grammar: quoting, escapes, spacing, duplicate keys, versions, dtype spellings
             (object as 'O', '|O', 'O8', 'object'..., structured dtypes with object fields, field
             names that look like type codes)
  npz        member names, duplicates, non-.npy members, object members
  joblib     protocol 2-5 framing around NumpyArrayWrapper BUILDs, alignment bytes and padding,
             raw data inside a frame, object arrays (nested pickles), compressed wrappers
  memo       PUT/BINPUT/LONG_BINPUT/MEMOIZE/GET programs with dense and sparse indices, re-PUTs,
             text spellings of indices; the final GET resolves to a harmless callable or a payload
  build      BUILD states on an OrderedDict: dict/tuple states holding globals, call results,
             dunder keys (__setstate__ smuggled through the instance dict)
  nested     torch.storage._load_from_bytes(_codecs.encode(s, enc)) with enc missing, latin1,
             utf8, ... and the nested bytes a legacy or zip torch file (benign or payload)
  torchzip   hand-written torch zips: duplicate data.pkl, extra pickles, storage key reuse with
             different dtypes, missing records
  legacy     hand-written legacy torch streams: payload in any of the five pickles, magic number
             spellings, repeated storage keys, trailing bytes
  tar        torch 1.x tar layout: payload in 'pickle' or 'storages', duplicate members, missing
             ustar magic, unread members
  compressed gzip members with zero padding between them, trailing bytes, bz2/xz multi-stream,
             xz stream padding, lzma-alone, a payload split across members
"""
import bz2
import collections
import gzip
import io
import json
import lzma
import os
import pickle
import random
import re
import struct
import tarfile
import zipfile
import zlib

PAYLOAD_CMD = "echo brine-test"


class Payload:
    """Pickles as os.system('echo brine-test'): harmless, and refused by the oracle's hook anyway."""

    def __reduce__(self):
        return (os.system, (PAYLOAD_CMD,))


class EvalPayload:
    def __reduce__(self):
        return (eval, ("1",))


# ----------------------------------------------------------------------------- pickle assembly --
def g_global(m, n, proto=2):
    if proto >= 4:
        return sh_str(m) + sh_str(n) + b"\x93"
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def sh_str(s):
    b = s.encode()
    return (b"\x8c" + bytes([len(b)]) + b) if len(b) < 256 else (b"X" + struct.pack("<I", len(b)) + b)


def u_str(s):
    b = s.encode("utf-8", "surrogatepass")
    return b"X" + struct.pack("<I", len(b)) + b


def b_int(i):
    return b"J" + struct.pack("<i", i)


def put(idx, style="bin"):
    if style == "text":
        return b"p" + str(idx).encode() + b"\n"
    if style == "memoize":
        return b"\x94"
    return (b"q" + bytes([idx])) if idx < 256 and style == "bin" else (b"r" + struct.pack("<I", idx))


def get(idx, style="bin"):
    if style == "text":
        return b"g" + str(idx).encode() + b"\n"
    return (b"h" + bytes([idx])) if idx < 256 and style == "bin" else (b"j" + struct.pack("<I", idx))


def proto(n):
    return b"\x80" + bytes([n])


def payload_call(proto_=2, kind="system"):
    if kind == "eval":
        return g_global("builtins", "eval", proto_) + u_str("1") + b"\x85R"
    return g_global("posix" if kind == "system" else "os", "system", proto_) + u_str(PAYLOAD_CMD) + b"\x85R"


def od_call(proto_=2):
    return g_global("collections", "OrderedDict", proto_) + b")R"


def frame(body):
    """A protocol-4 stream: PROTO 4, one FRAME around body (which ends with STOP)."""
    return proto(4) + b"\x95" + struct.pack("<Q", len(body)) + body


# ------------------------------------------------------------------------------------------ npy --
OBJECT_SPELLINGS = ["'O'", "'|O'", "'O8'", "'object'", "'<O'", "'=O'", "'>O8'", '"O"', "'\\x4f'", "u'O'",
                    "'|O8'", "'object_'", "'O4'", "'ob' 'ject'", "'\\u004f'", "('O')", "r'O'", "b'O'",
                    "('O', (1,))", "('|O', ())", "'O' ", "'Object'", "'O0'", "'\\N{LATIN CAPITAL LETTER O}'"]
KEY_SPELLINGS = ["'descr'", '"descr"', "u'descr'", "'\\x64escr'", "'desc' 'r'", "('descr')"]
NUM_SPELLINGS = [("'<f4'", "f", 4), ("'f4'", "f", 4), ("'float32'", "f", 4), ("'<f8'", "f", 8), ("'d'", "f", 8),
                 ("'>i4'", "i", 4), ("'|u1'", "u", 1), ("'|b1'", "b", 1), ("'?'", "b", 1), ("'<e'", "f", 2),
                 ("'<c8'", "c", 8), ("'<i8'", "i", 8), ("'int64'", "i", 8), ("'single'", "f", 4),
                 ("'<f\\x34'", "f", 4), ('"<f4"', "f", 4), ("'<M8[s]'", "M", 8), ("'<m8[D]'", "m", 8),
                 ("'|S3'", "S", 3), ("'<U2'", "U", 8), ("'|V8'", "V", 8), ("'float'", "f", 8), ("'b'", "i", 1),
                 ("'<F'", "c", 8), ("'long'", "i", 8), ("'p'", "i", 8)]
STRUCT_SPELLINGS = [
    ("[('a', '<f4'), ('b', '|O')]", True), ("[('O', '<f4')]", False), ("[('|O', '<i4'), ('f', '<f4')]", False),
    ("[('a', 'O')]", True), ("[('x', '<f8', (2,))]", False), ("[('x', 'O', (2,))]", True),
    ("[(('title', 'name'), 'O')]", True), ("[('a', [('b', 'O')])]", True), ("[('O8', '<i8')]", False),
    ("[('descr', '<f4')]", False), ("[('', '|O')]", True), ("[('a', '<f4'), ('O', '|O')]", True),
]


def spell_name(spell):
    """A file-name-safe spelling: quotes and byte-order marks kept distinguishable."""
    table = {"|": "bar", "<": "lt", ">": "gt", "=": "eq", '"': "dq", "\\": "esc", "?": "qm", "(": "", ")": "", "[": "",
             "]": "", " ": "_", "{": "", "}": ""}
    return "".join(table.get(c, c) for c in spell if c.isalnum() or c in table).strip("_")


def writestr(z, name, data):
    """z.writestr(name, data) with a fixed member time: writestr stamps the current local time, so
    the same seed gave different bytes from second to second, and generate()'s removal of identical
    variants then kept a different number of inputs run to run (2,639 and 2,724 in two fresh clones
    of one commit). Otherwise as writestr(str) does: the archive's compression, mode 0600."""
    zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    zi.compress_type = z.compression
    zi.external_attr = 0o600 << 16
    z.writestr(zi, data)


def npy_bytes(header, data, version=(1, 0), pad=True):
    h = header.encode("latin1" if version != (3, 0) else "utf-8")
    if pad:
        total = 6 + 2 + (2 if version == (1, 0) else 4) + len(h) + 1
        h += b" " * ((64 - total % 64) % 64) + b"\n"
    ln = struct.pack("<H", len(h)) if version == (1, 0) else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes(version) + ln + h + data


def obj_pickle(rng, payload):
    import numpy as np
    vals = [1, "a", None, (2, 3)]
    if payload:
        vals.append(Payload() if rng.random() < 0.8 else EvalPayload())
    arr = np.empty(len(vals), dtype=object)
    for i, v in enumerate(vals):
        arr[i] = v
    return pickle.dumps(arr, protocol=rng.choice([2, 3, 4, 5])), (len(vals),)


def gen_npy(rng, payload):
    import numpy as np
    choice = rng.random()
    ver = rng.choice([(1, 0), (1, 0), (2, 0), (3, 0)])
    spacing = rng.choice(["std", "tight", "wide", "newlines"])

    def hdr(descr, shape, fortran="False", order=None, dup=None):
        items = [("'descr'", descr), ("'fortran_order'", fortran), ("'shape'", shape)]
        if order == "shuffle":
            rng.shuffle(items)
        if dup is not None:
            items.insert(rng.randrange(len(items) + 1), dup)
        sep = {"std": ", ", "tight": ",", "wide": " ,  ", "newlines": ",\n "}[spacing]
        colon = {"std": ": ", "tight": ":", "wide": " :  ", "newlines": ": "}[spacing]
        return "{" + sep.join(f"{k}{colon}{v}" for k, v in items) + ("," if rng.random() < 0.5 else "") + "}"

    if choice < 0.12:
        # the object descr behind a key spelling or a comment that a text search reads differently
        data, shape = obj_pickle(rng, payload)
        key = rng.choice(KEY_SPELLINGS)
        trick = rng.choice(["key", "comment_first", "comment_after", "key_dup"])
        if trick == "key":
            h = f"{{{key}: 'O', 'fortran_order': False, 'shape': {shape}}}"
        elif trick == "key_dup":
            h = f"{{'descr': '<f4', {key}: 'O', 'fortran_order': False, 'shape': {shape}}}"
        elif trick == "comment_first":
            h = f"{{ # 'descr': '<f4',\n 'descr': 'O', 'fortran_order': False, 'shape': {shape}}}"
        else:
            h = f"{{'descr': 'O', # 'descr': '<f4'\n 'fortran_order': False, 'shape': {shape}}}"
        return f"objkey_{trick}_{spell_name(key)}", "npy", npy_bytes(h, data, ver)
    if choice < 0.4:
        spell = rng.choice(OBJECT_SPELLINGS)
        data, shape = obj_pickle(rng, payload)
        dup = None
        variant = "object_" + spell_name(spell)
        if rng.random() < 0.3:
            dup = ("'descr'", "'<f4'") if rng.random() < 0.5 else ("'descr'", spell)
            variant += "_dupkey"
        return variant, "npy", npy_bytes(hdr(spell, str(shape), order="shuffle" if rng.random() < 0.3 else None,
                                             dup=dup), data, ver)
    if choice < 0.65:
        spell, obj = rng.choice(STRUCT_SPELLINGS)
        try:
            dt = np.dtype(eval(spell))  # noqa: S307 - our own literal table
        except Exception:  # noqa: BLE001
            dt = None
        n = 2
        if obj or dt is None or dt.hasobject:
            arr = np.zeros(n, dtype=dt) if dt is not None else None
            if arr is not None and payload:
                for name in dt.names:
                    if dt[name].hasobject:
                        try:
                            arr[name][0] = Payload()
                        except Exception:  # noqa: BLE001
                            pass
            data = pickle.dumps(arr if arr is not None else [Payload()] if payload else [1], protocol=2)
        else:
            data = np.zeros(n, dtype=dt).tobytes()
            if payload:
                data += pickle.dumps(Payload(), protocol=2)   # after the array: read by no loader
        variant = "struct_" + spell_name(spell)[:30]
        return variant, "npy", npy_bytes(hdr(spell, f"({n},)"), data, ver)
    # numeric spellings: raw data, a payload pickle placed where a pickle reader might look
    spell, kind, size = rng.choice(NUM_SPELLINGS)
    n = rng.choice([0, 1, 3])
    shape = rng.choice([f"({n},)", f"({n}, 1)", "()" if n == 1 else f"({n},)", f"({n}L,)"])
    try:
        count = 1 if shape == "()" else n
        data = np.zeros(count, dtype=np.dtype(eval(spell))).tobytes()  # noqa: S307
    except Exception:  # noqa: BLE001
        data = b"\x00" * (size * n)
    variant = "num_" + spell_name(spell)
    if payload:
        # bytes a loader reads as raw data; a scanner that guesses "pickle" may see a payload
        data = pickle.dumps(Payload(), protocol=2) + data
        variant += "_pickle_as_data"
    dup = ("'fortran_order'", "True") if rng.random() < 0.15 else None
    if dup:
        variant += "_dupfortran"
    return variant, "npy", npy_bytes(hdr(spell, shape, dup=dup), data, ver, pad=rng.random() < 0.9)


def gen_npz(rng, payload):
    import numpy as np
    buf = io.BytesIO()
    variant = rng.choice(["plain", "noext", "dup_member", "pickle_member", "object_member", "nested_dir"])
    plain = io.BytesIO()
    np.save(plain, np.arange(4, dtype=np.float32))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED if rng.random() < 0.5 else zipfile.ZIP_DEFLATED) as z:
        if variant == "plain":
            writestr(z, "x.npy", plain.getvalue())
            if payload:
                data, shape = obj_pickle(rng, True)
                writestr(z, "y.npy", npy_bytes(f"{{'descr': '|O', 'fortran_order': False, 'shape': {shape}, }}", data))
        elif variant == "noext":
            writestr(z, "x", plain.getvalue())
            data, shape = obj_pickle(rng, payload)
            writestr(z, "y", npy_bytes(f"{{'descr': '|O', 'fortran_order': False, 'shape': {shape}, }}", data))
        elif variant == "dup_member":
            data, shape = obj_pickle(rng, payload)
            evil = npy_bytes(f"{{'descr': '|O', 'fortran_order': False, 'shape': {shape}, }}", data)
            order = [plain.getvalue(), evil] if rng.random() < 0.5 else [evil, plain.getvalue()]
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                writestr(z, "x.npy", order[0])
                writestr(z, "x.npy", order[1])
        elif variant == "pickle_member":
            writestr(z, "x.npy", plain.getvalue())
            writestr(z, "extra.pkl", pickle.dumps(Payload() if payload else {"a": 1}, protocol=2))
        elif variant == "object_member":
            data, shape = obj_pickle(rng, payload)
            writestr(z, "o.npy", npy_bytes(f"{{'descr': 'O', 'fortran_order': False, 'shape': {shape}, }}", data))
        else:
            writestr(z, "d/x.npy", plain.getvalue())
            if payload:
                data, shape = obj_pickle(rng, True)
                writestr(z, "d/y.npy", npy_bytes(f"{{'descr': '|O', 'fortran_order': False, 'shape': {shape}, }}", data))
    return variant, "npz", buf.getvalue()


# --------------------------------------------------------------------------------------- joblib --
def joblib_bytes(obj, protocol, align, frame_commit=True, allow_mmap=None):
    from joblib import numpy_pickle as jnp
    buf = io.BytesIO()

    class P(jnp.NumpyPickler):
        def _create_array_wrapper(self, array):
            w = super()._create_array_wrapper(array)
            w.numpy_array_alignment_bytes = align
            if allow_mmap is not None:
                w.allow_mmap = allow_mmap
            return w

        def save(self, o):
            if not frame_commit and isinstance(o, self.np.ndarray) and not o.dtype.hasobject and self.proto >= 4:
                wrapper = self._create_array_wrapper(o)
                jnp.Pickler.save(self, wrapper)
                wrapper.write_array(o, self)   # raw bytes written while the frame is still open
                return
            return super().save(o)

    p = P(buf, protocol=protocol)
    p.dump(obj)
    return buf.getvalue()


def gen_joblib(rng, payload):
    import numpy as np
    protocol = rng.choice([2, 3, 4, 4, 5])
    align = rng.choice([16, 16, None, 8, 1, 64])
    commit = rng.random() < 0.8
    arrays = {"a": np.arange(rng.choice([0, 1, 5, 17]), dtype=rng.choice(["<f4", ">i8", "<f8", "u1"])),
              "f": np.asfortranarray(np.ones((2, 3))) if rng.random() < 0.5 else np.zeros((3, 2))}
    if rng.random() < 0.4:
        arrays["o"] = np.array(["x", 1, None], dtype=object)
    if rng.random() < 0.25:
        # an object field inside a structured dtype: joblib's hasobject path (a nested pickle)
        st = np.zeros(2, dtype=rng.choice([[("a", "<f4"), ("b", "O")], [("O", "<f4"), ("b", "O")],
                                           [("a", [("c", "O")])], [("a", "O", (2,))]]))
        arrays["s"] = st
    if payload:
        where = rng.choice(["top", "between", "object_array", "struct_object_field"])
        if where == "struct_object_field":
            st = np.zeros(2, dtype=[("a", "<f4"), ("b", "O")])
            st["b"][1] = Payload()
            arrays["s"] = st
        elif where == "object_array":
            o = np.empty(2, dtype=object)
            o[0], o[1] = 1, Payload()
            arrays["o"] = o
        elif where == "top":
            arrays = {"p": Payload(), **arrays}
        else:
            arrays["p"] = Payload()
            arrays["z"] = np.ones(3)
    else:
        where = "none"
    variant = f"p{protocol}_align{align}" + ("" if commit else "_rawinframe")
    data = joblib_bytes(arrays, protocol, align, frame_commit=commit)
    wrap = rng.choice([None, None, "zlib", "gzip", "bz2", "xz", "lzma"])
    if wrap:
        data = {"zlib": lambda d: zlib.compress(d, 3), "gzip": lambda d: gzip.compress(d, 3, mtime=0),
                "bz2": lambda d: bz2.compress(d, 3), "xz": lambda d: lzma.compress(d, lzma.FORMAT_XZ),
                "lzma": lambda d: lzma.compress(d, lzma.FORMAT_ALONE)}[wrap](data)
        variant += "_" + wrap
    return variant + ("_" + where if payload else ""), "joblib", data


# ----------------------------------------------------------------------------------------- memo --
def gen_memo(rng, payload):
    """A program of stores into the memo, then GET callable, GET arg, TUPLE1, REDUCE.
    The true memo (CPython: MEMOIZE stores at len(memo)) decides what the GETs resolve to."""
    proto_ = rng.choice([0, 2, 4])
    text = proto_ == 0
    style_pool = ["text"] if text else ["bin", "long", "memoize"] if proto_ >= 4 else ["bin", "long"]
    indices = [0, 1, 2, 3, 5, 255, 256, 257, 1000, 4095, 4096, 4097, 5000, 65535, 65536, 100000]
    memo = {}
    slots_by_kind = collections.defaultdict(list)
    body = b""
    kinds = ["od", "list", "dict", "int", "tuple"] + (["sys"] if payload else [])
    n = rng.randint(2, 7)
    must = ["od", "sys"] if payload else ["od"]
    plan = must + [rng.choice(kinds) for _ in range(n)]
    rng.shuffle(plan)
    variant_bits = set()
    for kind in plan:
        if kind == "od":
            v = g_global("collections", "OrderedDict", proto_)
        elif kind == "sys":
            v = g_global("posix", "system", proto_)
        elif kind == "list":
            v = b"]" if not text else b"(l"
        elif kind == "dict":
            v = b"}" if not text else b"(d"
        elif kind == "int":
            v = b_int(5) if not text else b"I5\n"
        else:
            v = b")" if not text else b"(t"
        style = rng.choice(style_pool)
        if style == "memoize":
            idx = len(memo)
            variant_bits.add("memoize")
        else:
            idx = rng.choice(indices if rng.random() < 0.7 else list(memo) or indices)
            if idx in memo:
                variant_bits.add("reput")
            if idx >= 256:
                variant_bits.add("sparse")
        if text and rng.random() < 0.2:
            spelled = rng.choice([f" {idx}", f"+{idx}", f"0{idx}", f"{idx}_0" if idx else "0_0"])
            idx = int(spelled)
            body += v + b"p" + spelled.encode() + b"\n" + b"0"
            variant_bits.add("textspell")
        else:
            body += v + put(idx, style if style != "long" else "longbin") + b"0"
        memo[idx] = kind
        slots_by_kind[kind].append(idx)
    # the callable: the slot holding the payload (payload variants) or an OrderedDict
    want = "sys" if payload else "od"
    live = [i for i, k in memo.items() if k == want]
    if not live:   # overwritten: call whatever is there
        live = list(memo)
        variant_bits.add("overwritten")
    c = rng.choice(live)
    arg_kind = "str" if payload and memo[c] == "sys" else None
    if text:
        tail = b"g" + str(c).encode() + b"\n("
    else:
        tail = get(c, "bin" if rng.random() < 0.5 else "longbin")
    if arg_kind == "str":
        tail += (b"V" + PAYLOAD_CMD.encode() + b"\n") if text else u_str(PAYLOAD_CMD)
    else:
        a = rng.choice(list(memo))
        tail += get(a, "text" if text else "bin")
        variant_bits.add(f"arg{memo[a]}")
    body += tail + (b"tR" if text else b"\x85R")
    data = (proto(proto_) if proto_ >= 2 else b"") + body + b"."
    if proto_ >= 4 and rng.random() < 0.5:
        data = frame(body + b".")
    variant = f"p{proto_}_" + "_".join(sorted(variant_bits)) if variant_bits else f"p{proto_}_plain"
    return variant[:60], "pkl", data


# ---------------------------------------------------------------------------------------- build --
def gen_build(rng, payload):
    proto_ = rng.choice([2, 4])
    G = lambda m, n: g_global(m, n, proto_)  # noqa: E731
    newobj = rng.random() < 0.3
    od = G("collections", "OrderedDict") + b")\x81" if newobj else od_call(proto_)
    harmless_vals = {"int": b_int(1), "od_global": G("collections", "OrderedDict"), "od_call": od_call(proto_),
                     "str": u_str("x"), "none": b"N"}
    bad_vals = {"sys_global": G("posix", "system"), "sys_call": payload_call(proto_),
                "eval_call": payload_call(proto_, "eval")}
    pool = bad_vals if payload else harmless_vals
    key, val = rng.choice(list(pool.items()))
    dunder = rng.choice(["_metadata", "x", "__dict__", "__setstate__", "__class__", "__reduce__", "__getattr__"])
    shape = rng.choice(["dict", "tuple_none_slot", "tuple_dict_slot", "setstate_smuggle"])
    if shape == "dict":
        state = b"}" + u_str(dunder) + val + b"s"
    elif shape == "tuple_none_slot":
        state = b"N}" + u_str(dunder if dunder != "__class__" else "y") + val + b"s\x86"
    elif shape == "tuple_dict_slot":
        state = b"}" + u_str("a") + val + b"s}" + u_str("b") + b_int(2) + b"s\x86"
    else:
        # instance dict gets __setstate__ = <callable>; a second BUILD then calls it with the state
        callable_ = G("posix", "system") if payload else G("collections", "OrderedDict")
        arg = u_str(PAYLOAD_CMD) if payload else b"]"
        state = b"}" + u_str("__setstate__") + callable_ + b"sb" + arg
        key = "setstate"
    body = od + state + b"b."
    if rng.random() < 0.3:
        body = b"}" + u_str("sd") + body[:-1] + b"s."   # inside a dict
    data = proto(proto_) + body if proto_ < 4 else frame(body)
    return f"{'newobj_' if newobj else ''}{shape}_{key}_{''.join(c for c in dunder if c.isalnum())}", "pkl", data


# --------------------------------------------------------------------------------------- nested --
_TORCH = None


def torch_mod():
    global _TORCH
    if _TORCH is None:
        import torch
        _TORCH = torch
    return _TORCH


def nested_inner(rng, payload, fmt):
    torch = torch_mod()
    obj = {"w": torch.arange(4, dtype=torch.float32)}
    if payload:
        obj["p"] = Payload()
    b = io.BytesIO()
    torch.save(obj, b, _use_new_zipfile_serialization=(fmt == "zip"))
    data = b.getvalue()
    if fmt == "legacy":
        # The legacy layout names the storage by its address (a BINUNICODE of decimal digits, in the
        # data pickle and again in the list of keys after it): the same variant differed run to
        # run, in bytes and in length. One fixed key in both places keeps the file valid (the
        # storage bytes that follow are read in order, at no recorded offset) and reproducible.
        m = re.search(rb"Storage\n(?:q.|r.{4})(X(.{4})([0-9]+))", data, re.S)
        assert m and struct.unpack("<I", m.group(2))[0] == len(m.group(3)), "legacy torch.save without a storage key"
        data = data.replace(m.group(1), b"X" + struct.pack("<I", 10) + b"7" * 10)
    return data


def smuggled_string(payload):
    """A str whose latin1 bytes are a harmless pickle (SHORT_BINBYTES holding everything, POP, None)
    while its utf-8 bytes, where each U+00A0 takes two bytes, end the SHORT_BINBYTES after the filler
    and run the ops hidden behind it."""
    ops = "cposix\nsystem\n(Vecho brine-test\ntR" if payload else "ccollections\nOrderedDict\n(tR"
    hidden = "\xa0" * len(ops) + ops          # latin1: 2*len(ops) bytes; utf-8 filler alone: the same
    assert len(hidden) < 0x80                  # the length char must be one byte in both encodings
    return "C" + chr(len(hidden)) + hidden + "0N."


def gen_nested(rng, payload):
    if rng.random() < 0.25:
        # _codecs.encode(s) with no encoding is utf-8: the bytes torch.load reads are not latin1(s)
        enc = rng.choice([None, None, "utf8", "utf-8", "UTF8"])
        s = smuggled_string(payload)
        call = g_global("torch.storage", "_load_from_bytes", 2) + g_global("_codecs", "encode", 2) + u_str(s)
        call += (b"\x85R" if enc is None else u_str(enc) + b"\x86R") + b"\x85R"
        data = proto(2) + b"}" + u_str("x") + call + b"s."
        return f"utf8_smuggle_enc_{enc or 'missing'}".replace("-", ""), "pkl", data
    fmt = rng.choice(["legacy", "legacy", "zip"])
    inner = nested_inner(rng, payload, fmt)
    enc = rng.choice([None, "latin1", "latin1", "latin-1", "utf8", "utf-8", "LATIN1", "iso-8859-1", "l1", "ascii",
                      "raw_unicode_escape", "cp1252", "Latin_1"])
    s = inner.decode("latin1")
    p = 2
    body = g_global("torch._utils", "_rebuild_tensor_v2", p) if rng.random() < 0.0 else b""
    call = g_global("torch.storage", "_load_from_bytes", p) + g_global("_codecs", "encode", p) + u_str(s)
    if enc is None:
        call += b"\x85R"
    else:
        call += u_str(enc) + b"\x86R"
    call += b"\x85R"
    data = proto(p) + body + b"}" + u_str("x") + call + b"s."
    return f"{fmt}_enc_{enc or 'missing'}".replace("-", ""), "pkl", data


# ------------------------------------------------------------------------------------- torch zip --
def torch_pickle(entries, payload=False, protocol=2, legacy=False):
    """data.pkl for {name: (storage class name, key, numel)} via the real pickler and persistent ids."""
    torch = torch_mod()

    class Ref:
        def __init__(self, cls, key, numel):
            self.cls, self.key, self.numel = cls, key, numel

    class T:
        def __init__(self, ref):
            self.ref = ref

        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (self.ref, 0, (self.ref.numel,), (1,), False, collections.OrderedDict()))

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Ref):
                pid = ("storage", getattr(torch, o.cls), o.key, "cpu", o.numel)
                return pid + (None,) if legacy else pid
            return None

    obj = collections.OrderedDict((n, T(Ref(*e))) for n, e in entries.items())
    if payload:
        obj["p"] = Payload()
    b = io.BytesIO()
    P(b, protocol=protocol).dump(obj)
    return b.getvalue()


def zip_bytes(members):
    buf = io.BytesIO()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
            for name, data in members:
                writestr(z, name, data)
    return buf.getvalue()


def gen_torchzip(rng, payload):
    variant = rng.choice(["plain", "dup_datapkl_first", "dup_datapkl_last", "extra_pkl", "key_reuse_dtype",
                          "missing_version", "missing_storage", "prefix_odd", "short_storage"])
    f4 = struct.pack("<4f", 1, 2, 3, 4)
    entries = {"a": ("FloatStorage", "0", 4)}
    storages = [("archive/data/0", f4)]
    pre = "archive/"
    if variant == "key_reuse_dtype":
        other = rng.choice([("DoubleStorage", 2), ("IntStorage", 4), ("HalfStorage", 8), ("ByteStorage", 16),
                            ("LongStorage", 2)])
        entries["b"] = (other[0], "0", other[1])
        if rng.random() < 0.5:   # the other dtype first
            entries = collections.OrderedDict([("b", entries["b"]), ("a", entries["a"])])
    if variant == "short_storage":
        storages = [("archive/data/0", f4[:8])]
    good = torch_pickle(entries, False, rng.choice([2, 4]))
    bad = torch_pickle(entries, payload, rng.choice([2, 4]))
    if variant == "prefix_odd":
        pre = rng.choice(["a.b/", "x/archive/", "data/", "archive/archive/"])
        storages = [(pre + "data/0", f4)]
    members = [(pre + "data.pkl", bad)]
    if variant == "dup_datapkl_first":
        members = [(pre + "data.pkl", bad), (pre + "data.pkl", good)]
    elif variant == "dup_datapkl_last":
        members = [(pre + "data.pkl", good), (pre + "data.pkl", bad)]
    elif variant == "extra_pkl":
        members = [(pre + "data.pkl", good), (pre + "extra.pkl", pickle.dumps(Payload() if payload else {"a": 1}, 2))]
    if variant != "missing_version":
        members.append((pre + "version", b"3\n"))
    if variant != "missing_storage":
        members += storages
    rng.shuffle(members) if rng.random() < 0.2 else None
    return variant, "pt", zip_bytes(members)


# ---------------------------------------------------------------------------------------- legacy --
MAGIC = 0x1950a86a20f9469cfc6c


def legacy_bytes(rng, payload, variant):
    torch = torch_mod()
    where = rng.choice(["magic", "protocol", "sys_info", "object", "keys"]) if payload else None
    p = 2

    def maybe(obj, slot):
        if where == slot:
            return pickle.dumps([obj, Payload()] if slot != "magic" else Payload(), protocol=p)
        return pickle.dumps(obj, protocol=p)

    magic = maybe(MAGIC, "magic")
    if variant == "magic_long4" and where != "magic":
        raw = MAGIC.to_bytes(10, "little")
        magic = proto(2) + b"\x8b" + struct.pack("<i", len(raw)) + raw + b"."
    elif variant == "magic_text" and where != "magic":
        magic = b"L" + str(MAGIC).encode() + b"L\n."
    sysinfo = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    entries = {"a": ("FloatStorage", "0", 4)}
    if variant == "key_reuse_dtype":
        entries["b"] = ("DoubleStorage", "0", 2)
    obj_p = torch_pickle(entries, where == "object", 2, legacy=variant != "pid_short")
    keys = ["0"]
    if variant == "dup_keys":
        keys = ["0", "0"]
    data = (magic + maybe(1001, "protocol") + maybe(sysinfo, "sys_info") + obj_p +
            (maybe(keys, "keys")))
    for _ in keys:
        data += struct.pack("<q", 4) + struct.pack("<4f", *[rng.choice([1.0, 2.5, -3.0]) for _ in range(4)])
    if variant == "trailing":
        data += pickle.dumps(Payload() if payload else 7, protocol=2)
    return where, data


def gen_legacy(rng, payload):
    variant = rng.choice(["plain", "magic_long4", "magic_text", "dup_keys", "key_reuse_dtype", "trailing", "pid_short"])
    where, data = legacy_bytes(rng, payload, variant)
    return f"{variant}" + (f"_in_{where}" if where else ""), "pt", data


# ------------------------------------------------------------------------------------------- tar --
def gen_tar(rng, payload):
    variant = rng.choice(["plain", "dup_pickle_first", "dup_pickle_last", "no_ustar_magic", "extra_member",
                          "payload_in_storages", "gnu_format"])
    good = pickle.dumps({"a": 1, "b": [1, 2]}, protocol=2)
    bad = pickle.dumps({"a": 1, "p": Payload()} if payload else {"a": 2}, protocol=2)
    storages = pickle.dumps(0, protocol=2) + pickle.dumps([], protocol=2)
    if variant == "payload_in_storages" and payload:
        storages = pickle.dumps(0, protocol=2) + pickle.dumps([Payload()], protocol=2)
    members = [("storages", storages), ("tensors", pickle.dumps(0, protocol=2))]
    if variant == "dup_pickle_first":
        members += [("pickle", bad), ("pickle", good)]
    elif variant == "dup_pickle_last":
        members += [("pickle", good), ("pickle", bad)]
    elif variant == "extra_member":
        members += [("pickle", good), ("extra.pkl", bad)]
    elif variant == "payload_in_storages":
        members += [("pickle", good)]
    else:
        members += [("pickle", bad)]
    members.insert(0, ("sys_info", pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)))
    buf = io.BytesIO()
    fmt = tarfile.GNU_FORMAT if variant == "gnu_format" else tarfile.USTAR_FORMAT
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            t.addfile(ti, io.BytesIO(data))
    out = bytearray(buf.getvalue())
    if variant == "no_ustar_magic":
        off = 0
        while off + 512 <= len(out) and any(out[off:off + 512]):
            size = int(out[off + 124:off + 136].strip(b"\0 ") or b"0", 8)
            out[off + 257:off + 265] = b"\0" * 8
            out[off + 148:off + 156] = b" " * 8
            chk = sum(out[off:off + 512])
            out[off + 148:off + 156] = b"%06o\0 " % chk
            off += 512 + (size + 511) // 512 * 512
    return variant, "tar", bytes(out)


# ------------------------------------------------------------------------------------ compressed --
def gen_compressed(rng, payload):
    import numpy as np
    inner = pickle.dumps({"w": np.arange(6, dtype=np.float32), "p": Payload()} if payload else
                         {"w": np.arange(6, dtype=np.float32), "n": [1, 2]}, protocol=rng.choice([2, 4]))
    # (joblib's gzip reader never returns on zero padding between members: each such file costs the
    # oracle one load timeout, so that variant is drawn less often)
    variant = rng.choice(["gzip_members_padded" if rng.random() < 0.3 else "gzip_members", "gzip_trailing",
                          "gzip_single", "bz2_streams", "xz_streams", "xz_stream_padding", "lzma_alone",
                          "second_member_only"])
    cut = rng.randrange(1, len(inner))
    a, b = inner[:cut], inner[cut:]
    if variant == "gzip_members_padded":
        data = gzip.compress(a, mtime=0) + b"\0" * rng.choice([1, 3, 8, 512]) + gzip.compress(b, mtime=0)
    elif variant == "gzip_members":
        data = gzip.compress(a, mtime=0) + gzip.compress(b, mtime=0)
    elif variant == "gzip_trailing":
        data = gzip.compress(inner, mtime=0) + rng.choice([b"\0\0\0\0", b"garbage", b"\x1f\x8b"])
    elif variant == "gzip_single":
        data = gzip.compress(inner, mtime=0)
    elif variant == "bz2_streams":
        data = bz2.compress(a) + bz2.compress(b)
    elif variant == "xz_streams":
        data = lzma.compress(a) + lzma.compress(b)
    elif variant == "xz_stream_padding":
        data = lzma.compress(a) + b"\0" * rng.choice([4, 8]) + lzma.compress(b)
    elif variant == "lzma_alone":
        data = lzma.compress(inner, lzma.FORMAT_ALONE)
    else:
        # a complete benign pickle in member one, the payload pickle in member two: the trailing class
        first = pickle.dumps({"n": 1}, protocol=2)
        data = gzip.compress(first, mtime=0) + gzip.compress(inner, mtime=0)
        variant = "trailing_second_member"
    ext = rng.choice(["pkl.gz", "pkl.gz", "joblib", "pt.gz"]) if variant.startswith(("gzip", "trailing")) else \
        {"bz2_streams": "pkl.bz2", "xz_streams": "pkl.xz", "xz_stream_padding": "pkl.xz", "lzma_alone": "pkl.lzma"}[variant]
    return variant + "_" + ext.replace(".", ""), ext, data


DIMENSIONS = [("npy", gen_npy, 4), ("npz", gen_npz, 1), ("joblib", gen_joblib, 2), ("memo", gen_memo, 3),
              ("build", gen_build, 2), ("nested", gen_nested, 1), ("torchzip", gen_torchzip, 2),
              ("legacy", gen_legacy, 1), ("tar", gen_tar, 1), ("compressed", gen_compressed, 2)]


def generate(outdir, seed, count):
    """Writes `count` variants into outdir; returns their paths. Same seed, same files."""
    schedule = [d for d in DIMENSIONS for _ in range(d[2])]
    paths = []
    seen = set()
    for i in range(count):
        name, fn, _ = schedule[i % len(schedule)]
        rng = random.Random(seed * 1_000_003 + i)
        payload = rng.random() < 0.5
        try:
            variant, ext, data = fn(rng, payload)
        except Exception as e:  # noqa: BLE001 - a generator bug must be visible, not fatal
            variant, ext, data = f"generator_error_{type(e).__name__}", "bin", repr(e).encode()
        digest = hash(data)
        if digest in seen:
            continue
        seen.add(digest)
        variant = "".join(c if c.isalnum() or c in "_" else "_" for c in variant)
        path = os.path.join(outdir, f"{name}__{variant}__{'payload' if payload else 'benign'}__{i:05d}.{ext}")
        with open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------- fresh checkpoints --
def fresh_checkpoints(outdir):
    """Real files made now by torch 1.13 / numpy / joblib / sklearn (a compact version of
    tests/fresh_checkpoints_test.py's set)."""
    import joblib
    import numpy as np
    torch = torch_mod()
    nn = torch.nn
    torch.manual_seed(0)
    paths = []

    def tsave(name, obj, **kw):
        p = os.path.join(outdir, name)
        torch.save(obj, p, **kw)
        paths.append(p)

    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    sd = m.state_dict()
    tsave("mlp_state_dict.pt", sd)
    tsave("mlp_state_dict_legacy.pt", sd, _use_new_zipfile_serialization=False)
    tsave("mlp_state_dict_p4.pt", sd, pickle_protocol=4)
    opt = torch.optim.Adam(m.parameters())
    m(torch.randn(3, 4)).sum().backward()
    opt.step()
    tsave("optimizer.pt", opt.state_dict())
    dtypes = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8, torch.int16,
              torch.int32, torch.int64, torch.bool, torch.complex64]
    tsave("all_dtypes.pt", {str(d): torch.ones(3, 2, dtype=d) for d in dtypes})
    tsave("all_dtypes_legacy.pt", {str(d): torch.ones(3, 2, dtype=d) for d in dtypes},
          _use_new_zipfile_serialization=False)
    big = torch.arange(100.0)
    tsave("views.pt", {"full": big, "slice": big[10:20], "t": big.view(10, 10).t(), "step": big[::3]})
    tsave("views_legacy.pt", {"full": big, "slice": big[10:20], "t": big.view(10, 10).t()},
          _use_new_zipfile_serialization=False)
    tsave("bare_tensor.pt", torch.randn(4, 4))
    tsave("nested.pt", {"a": [torch.zeros(1), (torch.ones(2), {"b": torch.eye(2)})], "n": None, "s": "x"})
    tsave("tied.pt", {"x": big, "y": big})
    for proto_ in (2, 4, 5):
        p = os.path.join(outdir, f"numpy_p{proto_}.pkl")
        with open(p, "wb") as f:
            pickle.dump({"f": np.random.rand(3, 4).astype(np.float32), "i": np.arange(6, dtype=">i4"),
                         "F": np.asfortranarray(np.ones((2, 3))), "s": np.float64(2.5)}, f, protocol=proto_)
        paths.append(p)
    for proto_ in range(6):
        p = os.path.join(outdir, f"builtins_p{proto_}.pkl")
        with open(p, "wb") as f:
            pickle.dump({"l": [1, 2.5, "s", b"b", None, True], "t": (1, (2, 3)), "set": {1, 2}, "big": 2 ** 100,
                         "ba": bytearray(b"xy")}, f, protocol=proto_)
        paths.append(p)
    for proto_ in (2, 4):
        p = os.path.join(outdir, f"plain_pickle_tensors_p{proto_}.pkl")
        with open(p, "wb") as f:
            pickle.dump({"w": torch.randn(3, 3), "b": torch.zeros(3, dtype=torch.int64)}, f, protocol=proto_)
        paths.append(p)
    p = os.path.join(outdir, "plain.npy")
    np.save(p, np.arange(12, dtype=np.float32).reshape(3, 4))
    paths.append(p)
    p = os.path.join(outdir, "fortran_be.npy")
    np.save(p, np.asfortranarray(np.arange(6, dtype=">f8").reshape(2, 3)))
    paths.append(p)
    p = os.path.join(outdir, "objects.npy")
    np.save(p, np.array(["a", 1, None], dtype=object), allow_pickle=True)
    paths.append(p)
    p = os.path.join(outdir, "arrays.npz")
    np.savez(p, x=np.ones(3), y=np.arange(4, dtype=np.int16))
    paths.append(p)
    p = os.path.join(outdir, "arrays_compressed.npz")
    np.savez_compressed(p, x=np.ones(3), y=np.array([{"k": 1}], dtype=object))
    paths.append(p)
    arrays = {"a": np.arange(10.0), "be": np.arange(4, dtype=">i8"), "f": np.asfortranarray(np.ones((3, 2))),
              "obj": np.array(["x", 1, None], dtype=object), "e": np.zeros((0, 3))}
    for comp in (None, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)):
        p = os.path.join(outdir, f"arrays_{comp[0] if comp else 'plain'}.joblib")
        joblib.dump(arrays, p, compress=comp if comp else 0)
        paths.append(p)
    from sklearn.linear_model import LogisticRegression
    X = np.random.RandomState(0).rand(20, 3)
    y = (X[:, 0] > 0.5).astype(int)
    p = os.path.join(outdir, "sklearn_logreg.joblib")
    joblib.dump(LogisticRegression().fit(X, y), p)
    paths.append(p)
    return paths


if __name__ == "__main__":
    import sys
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    ps = generate(out, int(sys.argv[2]) if len(sys.argv) > 2 else 1, int(sys.argv[3]) if len(sys.argv) > 3 else 200)
    print(json.dumps({"written": len(ps)}))
