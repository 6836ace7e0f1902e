#!/usr/bin/python3
"""Regression samples for "clean must mean exact", numpy side (issue classes 1, 2, and the numpy
parts of 9 and 10): .npy/.npz headers read as numpy.load reads them (ast.literal_eval +
format.descr_to_dtype) and joblib array data read where joblib.load's read_array reads it.

Run with Debian's /usr/bin/python3 (numpy 1.24, joblib 1.2): corpus/regress_numpy/make.py
Every payload sample is checked against the real loader under an audit hook that raises on
pickle.find_class('os', ...), so nothing but the hook's refusal ever runs; every benign sample is
loaded for real and must load (allow_pickle=False for .npy: no pickle at all).
"""
import io
import json
import os
import struct
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import make_containers as mc  # noqa: E402  (the shared opcode writers)

SUB = "regress_numpy"
SAMPLES = []
PAYLOAD = mc.proto(2) + mc.os_system_call() + mc.STOP  # os.system('echo brine-test')


class Refused(Exception):
    pass


def _hook(event, args):
    if event == "pickle.find_class" and args[0] in ("os", "posix", "subprocess"):
        raise Refused(f"{args[0]}.{args[1]}")


sys.addaudithook(_hook)


def reaches_payload(load):
    try:
        load()
    except Refused:
        return True
    except Exception as e:  # noqa: BLE001
        print("   loader failed before the payload:", type(e).__name__, e)
        return False
    return False


def npy(header_text, version=1, pad=True):
    """A .npy header written with the given literal text (numpy pads to 64 bytes with spaces + '\\n')."""
    raw = header_text.encode("latin1" if version < 3 else "utf-8")
    lenfmt = "<H" if version == 1 else "<I"
    pre = 8 + struct.calcsize(lenfmt)
    if pad:
        raw += b" " * ((-(pre + len(raw) + 1)) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(lenfmt, len(raw)) + raw


def hdr(descr, shape="(1,)", fortran="False"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


def add(name, data, expect, technique, check):
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(data)
    if check is not None:
        ok = check(path)
        print(f"{'ok ' if ok else 'BAD'} {name}")
        assert ok, name
    SAMPLES.append({"path": f"{SUB}/{name}", "expect": expect, "technique": technique, "source": "regress_numpy/make.py"})


def np_payload(path):
    import numpy as np
    return reaches_payload(lambda: np.load(path, allow_pickle=True))


def npz_payload(path):
    import numpy as np
    def load():
        with np.load(path, allow_pickle=True) as z:
            for k in z.files:
                z[k]
    return reaches_payload(load)


def np_plain(path):
    """Loads without any pickle (allow_pickle=False) and is not an object array."""
    import numpy as np
    a = np.load(path, allow_pickle=False)
    return not a.dtype.hasobject


def jl_payload(path):
    import joblib
    return reaches_payload(lambda: joblib.load(path))


# ------------------------------------------------------------------ class 1: .npy headers
OBJ_SPELLINGS = [
    ("npy_descr_object_word.npy", "'object'", "descr 'object' (np.dtype's type name, not a type code)"),
    ("npy_descr_1O.npy", "'1O'", "descr '1O' (a deprecated repeat-count spelling of 'O')"),
    ("npy_descr_hex_escape.npy", "'\\x4f'", "descr '\\x4f': literal_eval decodes the escape to 'O'"),
    ("npy_descr_octal_escape.npy", "'\\117'", "descr '\\117': an octal escape for 'O'"),
    ("npy_descr_unicode_escape.npy", "'\\u004f'", "descr '\\u004f': a \\u escape for 'O'"),
    ("npy_descr_pipe_hex.npy", "'\\x7cO'", "descr '\\x7cO' ('|O' with the bar escaped)"),
    ("npy_descr_name_escape.npy", "'\\N{LATIN CAPITAL LETTER O}'", "descr with a \\N{...} escape (brine cannot resolve names: unresolved, read as a pickle)"),
    ("npy_descr_list_of_str.npy", "['aO']", "descr ['aO']: descr_to_dtype unpacks the 2-character string as (name 'a', format 'O')"),
    ("npy_descr_dict_keys.npy", "{'xO': 1}", "descr {'xO': 1}: descr_to_dtype iterates the dict's keys, 'xO' = field 'x' of 'O'"),
    ("npy_descr_comma_string.npy", "'i4,O'", "descr 'i4,O': np.dtype's comma form is structured with an object field (unresolved, read as a pickle)"),
    ("npy_descr_shape_prefix.npy", "'(2,)O'", "descr '(2,)O': a sub-array of objects in string form (unresolved, read as a pickle)"),
    ("npy_descr_nested_object.npy", "[('a', '<f8'), ('b', [('c', 'O')])]", "object field inside a nested structured dtype"),
    ("npy_descr_title_object.npy", "[(('title', 'b'), '|O')]", "object field whose name is a (title, name) pair"),
    ("npy_descr_subarray_object.npy", "('O', (2,))", "descr as a (base, shape) tuple: a sub-array of objects"),
]
for name, descr, what in OBJ_SPELLINGS:
    add(name, npy(hdr(descr)) + PAYLOAD, "malicious",
        f"{what}; numpy.load(allow_pickle=True) sees dtype.hasobject and pickle.loads the data after the header, "
        "which is the payload (verified: the loader reaches pickle.find_class('os', 'system'))", np_payload)

add("npy_duplicate_descr_last_object.npy",
    npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'descr': '|O'}") + PAYLOAD, "malicious",
    "the header repeats 'descr': literal_eval keeps the last value ('|O'), a text search finds the first ('<f8'); "
    "numpy.load(allow_pickle=True) unpickles the payload", np_payload)
add("npy_header_nospace_object.npy",
    npy("{\"descr\":\"|O\",\"fortran_order\":False,\"shape\":(1,)}") + PAYLOAD, "malicious",
    "double quotes and no spaces around ':' — an object array whose payload pickle numpy.load(allow_pickle=True) runs",
    np_payload)
add("npy_v3_object_escape.npy", npy(hdr("'\\u007cO'"), version=3) + PAYLOAD, "malicious",
    "format 3.0 (UTF-8 header) with descr '\\u007cO' ('|O'); numpy.load(allow_pickle=True) runs the payload", np_payload)

buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    # fixed timestamps: the output is the same on every run
    z.writestr(zipfile.ZipInfo("weights.npy", (1980, 1, 1, 0, 0, 0)), npy(hdr("'<f4'")) + b"\0" * 4)
    z.writestr(zipfile.ZipInfo("labels.npy", (1980, 1, 1, 0, 0, 0)), npy(hdr("'object'")) + PAYLOAD)
add("npz_member_object_word.npz", buf.getvalue(), "malicious",
    "npz whose member header spells the object dtype 'object'; np.load(...)['labels'] with allow_pickle=True "
    "runs the member's payload pickle", npz_payload)

# Benign look-alikes that must stay clean (numpy loads them without any pickle).
add("npy_field_named_O.npy", npy(hdr("[('O', '<f8')]")) + b"\0" * 8, "clean",
    "benign: a structured float64 array whose field is *named* 'O' (a name, not a type code)", np_plain)
add("npy_field_named_object_pair.npy", npy(hdr("[('object', '<i4'), ('|O', '<f4')]", "(2,)")) + b"\0" * 16, "clean",
    "benign: field names 'object' and '|O' that look like object type codes", np_plain)
add("npy_header_double_quotes_nospace.npy",
    npy('{"descr":"<f8","fortran_order":False,"shape":(2,)}') + b"\0" * 16, "clean",
    "benign: double quotes, no spaces, no trailing comma", np_plain)
add("npy_duplicate_descr_last_plain.npy",
    npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), 'descr': '<f8'}") + b"\0" * 8, "clean",
    "benign: 'descr' repeated, the last value (what literal_eval keeps) is '<f8'", np_plain)
add("npy_pad_field_object_subarray.npy",
    npy(hdr("[('', '|O', (2,)), ('b', '<f8')]")) + b"\0" * 24, "clean",
    "benign: a field named '' whose type is a void sub-array is padding that descr_to_dtype drops, even of objects: "
    "the dtype holds no objects and numpy reads 24 raw bytes", np_plain)
add("npy_fortran_tight_spacing.npy",
    npy("{'descr':'<i4','fortran_order':True,'shape':(2,2)}") + b"\0" * 16, "clean",
    "benign: fortran_order True written without spaces", np_plain)
add("npy_v2_long_suffix.npy", npy(hdr("'<f8'", "(2L,)"), version=2) + b"\0" * 16, "clean",
    "benign: format 2.0 header with a Python 2 long suffix '2L' that numpy's tokenize filter removes", np_plain)
import numpy as np  # noqa: E402
real = io.BytesIO()
np.save(real, np.zeros(2, dtype=[(("a title", "x"), "<f8"), ("y", [("z", "<i2", (3,))])]))
add("npy_real_structured_titles.npy", real.getvalue(), "clean",
    "benign: np.save of a nested structured dtype with a title and a sub-array field", np_plain)
real = io.BytesIO()
np.save(real, np.zeros(1, dtype=[("\u0444\u0438\u0447\u0430", "<f4")]))
add("npy_real_v3_utf8_name.npy", real.getvalue(), "clean",
    "benign: np.save writes format 3.0 (UTF-8 header) for a non-latin1 field name", np_plain)

# ------------------------------------------------------------------ class 2: joblib array data
W = mc


def dtype_call(typestr, version, order, elsize, flags):
    return (W.call(W.sg("numpy", "dtype"), W.u(typestr), W.NEWFALSE, W.NEWTRUE)
            + W.MARK + W.i(version) + W.u(order) + W.NONE + W.NONE + W.NONE + b"J" + struct.pack("<i", elsize)
            + b"J" + struct.pack("<i", elsize) + W.i(flags) + W.TUPLE + W.BUILD)


def wrapper(shape, dtype, align_value=None):
    items = [(W.u("subclass"), W.sg("numpy", "ndarray")), (W.u("shape"), W.tup(*[W.i(n) for n in shape])),
             (W.u("order"), W.u("C")), (W.u("dtype"), dtype), (W.u("allow_mmap"), W.NEWFALSE)]
    if align_value is not None:
        items.append((W.u("numpy_array_alignment_bytes"), align_value))
    return W.sg("joblib.numpy_pickle", "NumpyArrayWrapper") + W.EMPTY_TUPLE + W.NEWOBJ + W.dct(*items) + W.BUILD


HIDDEN = W.os_system_call()  # leaves os.system's result on the stack; the shared tail pops it


def swallow(n_before, hidden):
    """'B' + length: bytes brine's old reading parses as one BINBYTES covering `n_before` bytes and `hidden`."""
    return b"B" + struct.pack("<I", n_before + len(hidden))


# 'f8' with a state elsize of 1: numpy ignores elsize for non-flexible types (itemsize stays 8).
head = W.proto(2) + wrapper((2,), dtype_call("f8", 3, "<", 1, 0))
old_array = b"\0\0"                       # what an elsize-1 reading takes (2 x 1 byte)
filler = b"\0" * (16 - len(old_array) - 5)  # the rest of joblib's 16 bytes
data = head + old_array + swallow(len(filler), HIDDEN) + filler + HIDDEN + W.POP + W.STOP
add("joblib_elsize_ignored_for_f8.pkl", data, "malicious",
    "joblib NumpyArrayWrapper whose dtype state says elsize 1 for 'f8': dtype.__setstate__ takes elsize only for "
    "flexible types, so joblib reads 2 x 8 bytes of array data and then runs the os.system call after them; a reading "
    "with itemsize 1 takes those bytes as a BINBYTES string", jl_payload)

# numpy_array_alignment_bytes = True: joblib reads a padding byte for any value that is not None.
head = W.proto(2) + wrapper((1,), dtype_call("f8", 3, "<", -1, 0), align_value=W.NEWTRUE)
pad_len = 20
# joblib: [pad byte][20 pad bytes][8 data bytes][HIDDEN]; a reading without padding takes the
# first 8 bytes as the array and then parses a BINBYTES over the rest up to HIDDEN's end.
body = bytearray(bytes([pad_len]) + b"\xff" * pad_len + b"\0" * 8)
body[8:13] = swallow(len(body) - 13, HIDDEN)
data = head + bytes(body) + HIDDEN + W.POP + W.STOP
add("joblib_alignment_true.pkl", data, "malicious",
    "joblib NumpyArrayWrapper with numpy_array_alignment_bytes=True: read_array reads the padding byte whenever the "
    "attribute is not None, so joblib skips 20 padding bytes, reads 8 data bytes and runs the os.system call after "
    "them; an int-only alignment check reads the array 21 bytes early and parses the call as BINBYTES data", jl_payload)

# ('O8' whose version-3 state clears the object flag is modelled too — numpy's hasobject is then
# False — but no sample: joblib then copies raw bytes as object pointers and the loader crashes.)

# The wrapper's BUILD inside a FRAME with opcodes after it in the same frame: pickle._Unpickler
# has read the whole frame, so read_array reads the array at the frame's end; the rest of the frame
# (here the os.system call) runs after the array.
pre = wrapper((1,), dtype_call("f8", 3, "<", -1, 0))
first = W.proto(4) + W.EMPTY_LIST + W.MARK + pre + b"." * 8  # an earlier array whose bytes are STOPs for pickle.load
tail_in_frame = HIDDEN + W.POP
n = 8 * ((len(tail_in_frame) + 7) // 8)
tail_in_frame += b"N0" * ((n - len(tail_in_frame)) // 2)
assert len(tail_in_frame) == n
framed = pre.replace(W.tup(W.i(1)), W.tup(W.i(n // 8)), 1) + tail_in_frame
data = first + W.frame(framed) + b"N0" * (n // 2) + W.APPENDS + W.STOP
add("joblib_build_inside_frame.pkl", data, "error",
    "protocol 4: the second wrapper's BUILD is followed by more opcodes in the same FRAME; joblib reads the array at "
    "the frame's end (the file position of pickle._Unpickler) and then runs the rest of the frame, an os.system call, "
    "that an opcode-position reading skips as array data. brine does not follow this reading: error", jl_payload)

# NumpyArrayWrapper *called* (REDUCE) with (subclass, shape, order, dtype): pickle runs __init__,
# which sets numpy_array_alignment_bytes = 16, so joblib reads a padding byte although the BUILD
# state does not mention alignment.
called = (W.call(W.glob("joblib.numpy_pickle", "NumpyArrayWrapper"), W.glob("numpy", "ndarray"), W.tup(W.i(1)),
                 W.u("C"), dtype_call("f8", 3, "<", -1, 0))
          + W.dct((W.u("allow_mmap"), W.NEWFALSE)) + W.BUILD)
body = bytearray(bytes([pad_len]) + b"\xff" * pad_len + b"\0" * 8)
body[8:13] = swallow(len(body) - 13, HIDDEN)
data = W.proto(2) + called + bytes(body) + HIDDEN + W.POP + W.STOP
add("joblib_wrapper_called_default_alignment.pkl", data, "malicious",
    "NumpyArrayWrapper(ndarray, (1,), 'C', dtype) called by REDUCE: __init__ sets numpy_array_alignment_bytes=16, so "
    "joblib reads a padding byte (20), skips 20 bytes and 8 data bytes, then runs the os.system call", jl_payload)

# Benign: a real joblib.dump (protocol 4, frames committed before each array) stays clean.
import joblib  # noqa: E402
with tempfile.TemporaryDirectory() as t:
    p = os.path.join(t, "m.joblib")
    joblib.dump({"w": np.arange(6, dtype="<f4").reshape(2, 3), "s": np.zeros(3, dtype="S4"),
                 "rec": np.zeros(2, dtype=[("a", "<f8"), ("b", "<i2")])}, p)
    real_joblib = open(p, "rb").read()
add("joblib_real_dump_mixed.joblib", real_joblib, "clean",
    "benign: joblib.dump of float32, bytes-string and structured arrays (flexible dtypes take elsize from the state)",
    lambda path: isinstance(joblib.load(path), dict))

with open(os.path.join(HERE, "manifest.json"), "w") as f:
    json.dump({"samples": SAMPLES}, f, indent=1)
    f.write("\n")
print(len(SAMPLES), "samples")
