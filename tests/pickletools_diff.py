#!/usr/bin/env python3
"""Differential test: `brine disasm --json` against CPython's `pickletools.genops`.

Usage: pickletools_diff.py BRINE CORPUS_DIR [SHARED_SAMPLES_DIR]

Every file under CORPUS_DIR (all its sample folders; and, if the directory exists, every pickle
or zip in SHARED_SAMPLES_DIR) is listed with `brine disasm --json`, which lists exactly the pickle
runs brine's scan executes, each with its member path ("" for the file itself, "a/data.pkl",
"[gzip]", "model.pt!archive/data.pkl", "torch.storage._load_from_bytes@73", ...).  The bytes of
every listed member are rebuilt here, independently of brine, from the file with Python's own
readers (zipfile, tarfile, gzip, bz2, lzma, zlib, lz4, joblib's read_zfile; a nested payload is
the bytes argument of the call at that offset).  A member path this test cannot rebuild is a FAIL
unless UNREBUILDABLE gives the reason (printed as a SKIPPED line).  Besides the opcodes, the
layout of each member is checked: the first run starts at 0 (an .npy member: where its header
ends), a run starts where the previous one stopped or after a note covering exactly the bytes in
between, bytes after the last STOP are a note, nothing follows a failed run, a legacy torch file
has its 5 pickles, every pickle member of a top-level zip is listed, and a file that starts with
PROTO is listed as member "".
Each stream is decoded with `pickletools.genops` and compared with brine's listing: the same
stream start offsets, and for every instruction the same offset, opcode and argument; where the
scan's run jumped over raw array data joblib reads itself (the entry's "jumps"), pickletools
resumes at the jump's end too.  Where pickletools raises, brine must stop at the same opcode with
an "error" of kind "decode", unless the VM stopped earlier: kind "execute" (the last listed opcode
decoded but could not be executed) or "limit"; either way the entry's "end" must be that offset.

Nothing is ever unpickled: only pickletools.genops, zipfile and plain byte reads are used.

brine follows CPython 3.11's C unpickler (_pickle.c) where it and pickletools disagree.  A
disagreement is accepted only when a small model of _pickle.c written below (`c_decode`) says
brine is right; such cases are printed as "JUSTIFIED" lines.  The known ones:
  - INT: _pickle.c uses strtol(base 0) then PyLong_FromString(base 0) and makes a bool of any
    2-character line worth 0 or 1; pickletools uses int(s) (base 10) and only "00"/"01".
  - LONG: PyLong_FromString(base 0) against pickletools' int(s).
  - FLOAT: PyOS_string_to_double (no whitespace, no underscores, overflow is an error) against
    pickletools' float(s).
  - STRING: _pickle.c refuses a lone quote character and accepts non-ASCII bytes; pickletools
    turns "'" into '' and refuses non-ASCII.
  - GET/PUT: _pickle.c refuses an index that does not fit in Py_ssize_t.
  - PERSID/GLOBAL/INST: _pickle.c does not escape-decode the lines, refuses empty GLOBAL/INST
    lines and accepts UTF-8 GLOBAL names; pickletools escape-decodes and wants ASCII.  brine's
    argument is therefore compared with the raw line bytes, and pickletools' value with the
    escape-decoded raw line.
  - FRAME: _pickle.c reads the whole frame up front, so a frame longer than the data is an error.
  - pickletools gives str for STRING/BINSTRING/SHORT_BINSTRING (ascii / latin-1); brine gives the
    decoded bytes.  They are normalised to bytes before comparison.

Output: one "FAIL <file>[member]: ..." line per mismatching stream (first difference only),
"JUSTIFIED ..." lines for accepted _pickle.c divergences, and finally "N passed, M failed"
(N, M count compared streams; a stray or missing note element counts as a failed item).
Exit status 1 if anything failed.
"""
import bz2
import codecs
import gzip
import io
import lzma
import json
import os
import pickletools
import re
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
import zlib

# torch.save's legacy (non-zip) format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
LEGACY_TORCH_MAGIC = bytes.fromhex("80028a0a6cfc9c46f9206aa85019" + "2e")
LEGACY_TORCH_PICKLES = 5  # magic, protocol version, sys info, the object, the storage keys

OFFSET_IN_ERROR = re.compile(r"at offset (\d+)")


# ----------------------------------------------------------------------------------------------
# Finding the files and splitting them into byte streams (as brine is specified to do)
# ----------------------------------------------------------------------------------------------

def is_proto_start(head):
    """PROTO opcode with a known protocol: how brine sniffs a pickle member of a zip."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] <= 5


def corpus_files(corpus):
    """Every sample of every corpus folder (pickles, zips, tars, compressed files, numpy files;
    some intentionally broken)."""
    for sub in sorted(os.listdir(corpus)):
        top = os.path.join(corpus, sub)
        if not os.path.isdir(top):
            continue
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name == "manifest.json" or name.endswith((".py", ".pyc")):
                    continue
                path = os.path.join(root, name)
                yield path, os.path.relpath(path, corpus)


def shared_files(samples):
    """The shared samples also hold numpy, safetensors, ONNX, JSON and compressed joblib files;
    only zips and files starting with PROTO are pickle containers."""
    if not samples or not os.path.isdir(samples):
        return
    for root, dirs, files in os.walk(samples):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                head = f.read(4)
            if head == b"PK\x03\x04" or is_proto_start(head):
                yield path, os.path.relpath(path, os.path.dirname(os.path.abspath(samples)))


class Unrebuildable(Exception):
    """This test has no reader for a member path brine lists (a FAIL)."""


class Known(Unrebuildable):
    """A member this test cannot rebuild for a reason listed in UNREBUILDABLE (a SKIPPED line)."""


SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
# What this test cannot rebuild, with the reason.  Anything else it cannot rebuild is a FAIL.
UNREBUILDABLE = {"7z": "Python has no 7z reader (brine reads 7z members with libarchive)"}
try:
    import lz4.frame
except ImportError:
    lz4 = None
    UNREBUILDABLE["[lz4]"] = "the lz4 module is not installed"
try:
    import zstandard
except ImportError:
    zstandard = None
    UNREBUILDABLE["[zstd]"] = "Debian's python3 has no zstandard module"


def read_until_error(f):
    """What a streaming loader gets from a decompressing file object before it fails."""
    out = []
    try:
        while True:
            chunk = f.read(1 << 16)
            if not chunk:
                break
            out.append(chunk)
    except (EOFError, OSError, lzma.LZMAError, zlib.error):
        pass
    return b"".join(out)


def zip_gap(data, begin):
    """A [gap@N] member: from N to the next local header or central directory record."""
    ends = [i for i in (data.find(b"PK\x03\x04", begin + 1), data.find(b"PK\x01\x02", begin + 1)) if i > begin]
    return data[begin:min(ends)] if ends else data[begin:]


def after_archive(data):
    """An [after-archive] member: the bytes after the end-of-central-directory record."""
    eocd = data.rfind(b"PK\x05\x06")
    if eocd < 0 or eocd + 22 > len(data):
        raise Unrebuildable("no end-of-central-directory record")
    return data[eocd + 22 + int.from_bytes(data[eocd + 20:eocd + 22], "little"):]


def nested_bytes(data, offset):
    """A '<loader>@<offset>' member: the bytes the call at `offset` hands to its loader.  This
    test does not model the stack: every bytes literal before the call, and every text literal
    encoded as UTF-8 or latin-1 (codecs.encode(text, 'latin1'), as protocol 2 writes bytes), is a
    candidate, latest first; one must match brine's listing (a wrong candidate fails the
    comparison, it never passes it)."""
    found = []
    try:
        for op, arg, pos in pickletools.genops(io.BytesIO(data)):
            if pos >= offset:
                break
            if isinstance(arg, (bytes, bytearray)):
                found.append(bytes(arg))
            elif isinstance(arg, str) and op.name not in ("GLOBAL", "INST"):
                found.append(arg.encode("utf-8", "surrogatepass"))
                try:
                    found.append(arg.encode("latin-1"))
                except UnicodeEncodeError:
                    pass
    except Exception as e:
        raise Unrebuildable(f"pickletools cannot read up to offset {offset}: {e}")
    if not found:
        raise Unrebuildable(f"no bytes or text literal before offset {offset}")
    return list(reversed(found))[:64]


def child_bytes(parent, seg):
    """The possible bytes of member `seg` of `parent` as Python's readers see them (a list: two
    zip entries may share a name)."""
    if seg in UNREBUILDABLE:
        raise Known(UNREBUILDABLE[seg])
    if seg == "[gzip]":
        return [read_until_error(gzip.GzipFile(fileobj=io.BytesIO(parent)))]
    if seg == "[bzip2]":
        return [read_until_error(bz2.BZ2File(io.BytesIO(parent)))]
    if seg in ("[xz]", "[lzma]"):
        return [read_until_error(lzma.LZMAFile(io.BytesIO(parent)))]
    if seg == "[zlib]":
        return [zlib.decompressobj().decompress(parent)]
    if seg == "[lz4]":
        return [read_until_error(lz4.frame.LZ4FrameFile(io.BytesIO(parent)))]
    if seg == "[joblib-zf]":
        from joblib.numpy_pickle_compat import read_zfile  # reads a header and zlib, never unpickles
        return [read_zfile(io.BytesIO(parent))]
    if seg == "[zip-directory]":  # the same bytes, read as a zip by its central directory
        return [parent]
    if seg == "[after-archive]":
        return [after_archive(parent)]
    m = re.fullmatch(r"\[gap@(\d+)\]", seg)
    if m:
        return [zip_gap(parent, int(m.group(1)))]
    m = re.fullmatch(r"[A-Za-z_][\w.]*@(\d+)", seg)
    if m:
        return nested_bytes(parent, int(m.group(1)))
    if seg.startswith("["):
        raise Unrebuildable(f"no reader for {seg}")
    if parent.startswith(SEVEN_ZIP_MAGIC):
        raise Known(UNREBUILDABLE["7z"])
    if parent[:4] != b"PK\x03\x04":
        try:
            with tarfile.open(fileobj=io.BytesIO(parent)) as tf:
                out = []
                for m in tf.getmembers():  # a tar may hold two members of one name
                    f = tf.extractfile(m) if m.name == seg else None
                    if f is not None:
                        out.append(f.read())
                if out:
                    return out
        except (tarfile.TarError, KeyError):
            pass
    try:
        return zip_members(parent, seg)
    except zipfile.BadZipFile as e:
        raise Unrebuildable(f"{seg}: neither a tar nor a zip member ({e})")


def zip_members(data, name):
    """Every entry of the zip's central directory named `name` (a zip may hold two), each as the
    bytes torch's reader takes: the local data the directory points at, inflated if deflated, with
    no CRC, encryption-flag or local-name check (zipfile's read refuses those; torch does not)."""
    out = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.filename != name:
                continue
            try:
                out.append(zf.read(info))
                continue
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError):
                pass
            at = info.header_offset
            local = data[at:at + 30]
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                raise Unrebuildable(f"{name}: no local header at {at}")
            start = at + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
            raw = data[start:start + info.compress_size]
            if info.compress_type == zipfile.ZIP_STORED:
                out.append(raw)
            elif info.compress_type == zipfile.ZIP_DEFLATED:
                out.append(zlib.decompressobj(-15).decompress(raw))
            else:
                raise Unrebuildable(f"{name}: compression method {info.compress_type}")
    # A streaming reader (or a second central directory) may see an entry the directory zipfile
    # uses does not: every local header of that name is a candidate too.
    at = data.find(b"PK\x03\x04")
    while 0 <= at and at + 30 <= len(data):
        n, x = int.from_bytes(data[at + 26:at + 28], "little"), int.from_bytes(data[at + 28:at + 30], "little")
        flags, method = int.from_bytes(data[at + 6:at + 8], "little"), int.from_bytes(data[at + 8:at + 10], "little")
        size = int.from_bytes(data[at + 18:at + 22], "little")
        if data[at + 30:at + 30 + n] == name.encode() and method in (0, 8):
            begin = at + 30 + n + x
            if flags & 8:  # sizes in a data descriptor after the data: read to the stream's end
                descriptor = data.find(b"PK\x07\x08", begin)
                raw = data[begin:] if method == 8 else data[begin:descriptor] if descriptor >= 0 else b""
            else:
                raw = data[begin:begin + size]
            try:
                got = raw if method == 0 else zlib.decompressobj(-15).decompress(raw)
            except zlib.error:
                got = None
            if got is not None and got not in out:
                out.append(got)
        at = data.find(b"PK\x03\x04", at + 1)
    if not out:
        raise KeyError(f"no zip entry named {name!r}")
    return out


def member_bytes(data, member):
    """The possible bytes a member path names ("" is the file itself)."""
    cur = [data]
    for seg in member.split("!") if member else []:
        cur = [b for parent in cur for b in child_bytes(parent, seg)]
    return cur


def npy_data_offset(data):
    """Where an .npy file's array data (for object arrays: the pickle) starts."""
    if len(data) < 10:
        return None
    if data[6] == 1:
        return 10 + int.from_bytes(data[8:10], "little")
    return 12 + int.from_bytes(data[8:12], "little")


def zip_pickle_members(data):
    """The members of a zip a torch loader or pickle reader could unpickle: named .pkl /
    .debug_pkl, or starting with PROTO."""
    names = set()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            wanted = info.filename.endswith((".pkl", ".debug_pkl"))
            if not wanted and info.file_size > 0:
                with zf.open(info) as m:
                    wanted = is_proto_start(m.read(2))
            if wanted and info.file_size > 0:
                names.add(info.filename)
    return names


# ----------------------------------------------------------------------------------------------
# A small model of _pickle.c's argument decoding, used only to justify a divergence between
# brine and pickletools (brine is specified to follow _pickle.c).
# ----------------------------------------------------------------------------------------------

class CRejects(Exception):
    """_pickle.c raises while reading this opcode's argument."""


_WS = rb"[ \t\n\r\x0b\x0c]*"  # C isspace() in the C locale (Py_ISSPACE is the same set)
_DIGITS = {2: rb"[01]", 8: rb"[0-7]", 10: rb"[0-9]", 16: rb"[0-9a-fA-F]"}
MAX_STR_DIGITS = 4300  # sys.int_info.default_max_str_digits; applies to base 10 only


def decimal(v):
    """str(v) without the int-to-str digit limit (LONG1/LONG4 values may exceed it)."""
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return str(v)
    finally:
        sys.set_int_max_str_digits(old)


def cut_at_nul(b):
    """C string functions see the line only up to its first NUL."""
    return b.split(b"\0", 1)[0]


def py_long_from_string(s, base):
    """PyLong_FromString(s, NULL, base) for base 0 or 10 on a NUL-free byte string."""
    m = re.fullmatch(_WS + rb"([+-]?)(.*?)" + _WS, s, re.S)
    sign, body = m.group(1), m.group(2)
    old_octal = False
    if base == 0:
        prefix = re.match(rb"0([xXoObB])_?", body)
        if prefix:
            base = {b"x": 16, b"o": 8, b"b": 2}[prefix.group(1).lower()]
            body = body[prefix.end():]
        else:
            base, old_octal = 10, body.startswith(b"0")  # "010" is refused, "00" is 0
    d = _DIGITS[base]
    if not re.fullmatch(d + rb"(?:_?" + d + rb")*", body):
        raise CRejects(f"invalid literal for int() with base {base}")
    digits = body.replace(b"_", b"")
    if base == 10 and len(digits) > MAX_STR_DIGITS:
        raise CRejects("exceeds the limit for integer string conversion")
    value = int(digits, base)
    if old_octal and value:
        raise CRejects("leading zeros in a non-zero base-0 integer")
    return -value if sign == b"-" else value


def c_int(line):
    """load_int: strtol(s, &end, 0); if it overflows or stops before the newline / NUL,
    PyLong_FromString(s, NULL, 0).  A 3-byte line (with its newline) worth 0 or 1 is a bool.
    There is no `end == s` check: a line starting with NUL is 0 (strtol converts nothing and
    *end is the NUL)."""
    if not line:
        raise CRejects("bad readline (len < 2)")
    s = cut_at_nul(line)
    if not s:
        return {"bool": False} if len(line) == 2 else {"int": "0"}
    m = re.match(_WS + rb"([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", s)
    if m and m.end() == len(s):
        text = m.group(2)
        base = 16 if text[:2] in (b"0x", b"0X") else 8 if text.startswith(b"0") else 10
        digits = (text[2:] if base == 16 else text).lstrip(b"0") or b"0"
        # more than 22 significant digits overflow a C long in every base (and would trip
        # Python's own int-to-str digit limit); strtol then sets ERANGE
        v = int(digits, base) if len(digits) <= 22 else 2 ** 64
        if m.group(1) == b"-":
            v = -v
        if -(2 ** 63) <= v < 2 ** 63:  # else strtol sets ERANGE and PyLong_FromString runs
            if len(line) == 2 and v in (0, 1):
                return {"bool": bool(v)}
            return {"int": decimal(v)}
    return {"int": decimal(py_long_from_string(s, 0))}


def c_long(line):
    """load_long: an 'L' before the newline is cut, then PyLong_FromString(s, NULL, 0)."""
    if not line:
        raise CRejects("bad readline (len < 2)")
    if line.endswith(b"L"):
        line = line[:-1]
    return {"int": decimal(py_long_from_string(cut_at_nul(line), 0))}


def c_float(line):
    """load_float: PyOS_string_to_double(s, &end, PyExc_OverflowError); *end must be '\\n' or
    NUL.  No leading whitespace, no underscores, no hex floats; overflow is an error."""
    s = cut_at_nul(line)
    if re.fullmatch(rb"[+-]?(?:inf|infinity|nan)", s, re.I):
        return {"float_bits": struct.pack(">d", float(s)).hex()}
    m = re.match(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", s)
    if not m or m.end() != len(s):
        raise CRejects("could not convert string to float")
    value = float(s)
    if value in (float("inf"), float("-inf")):
        raise CRejects("OverflowError: value too large")
    return {"float_bits": struct.pack(">d", value).hex()}


def c_string(line):
    """load_string: the line must be quoted at both ends by the same quote (len >= 2), then
    PyBytes_DecodeEscape of the inside (bytes, not necessarily ASCII)."""
    if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
        raise CRejects("the STRING opcode argument must be quoted")
    try:
        return {"bytes": codecs.escape_decode(line[1:-1])[0].hex()}
    except ValueError as e:
        raise CRejects(str(e))


def c_memo_index(line):
    """load_get / load_put: PyLong_FromString(s, NULL, 10) then PyLong_AsSsize_t."""
    if not line:
        raise CRejects("bad readline (len < 2)")
    v = py_long_from_string(cut_at_nul(line), 10)
    if not -(2 ** 63) <= v < 2 ** 63:
        raise CRejects("OverflowError: Python int too large to convert to C ssize_t")
    return {"int": decimal(v)}


def read_line(data, pos):
    nl = data.find(b"\n", pos)
    if nl < 0:
        raise CRejects("no newline before the end of the data")
    return data[pos:nl], nl + 1


def c_decode(data, pos):
    """(brine-style JSON argument, end offset) of the opcode at `pos` as _pickle.c reads it.
    Raises CRejects if _pickle.c raises; returns None for opcodes this model does not cover
    (no divergence is known for them, so none is accepted)."""
    if pos >= len(data) or chr(data[pos]) not in pickletools.code2op:
        return None
    name = pickletools.code2op[chr(data[pos])].name
    p = pos + 1
    if name in ("INT", "LONG", "FLOAT", "STRING", "GET", "PUT", "PERSID"):
        line, end = read_line(data, p)
        if name == "PERSID":  # ASCII, not escape-decoded
            if not line.isascii():
                raise CRejects("persistent IDs in protocol 0 must be ASCII strings")
            return {"str": line.hex()}, end
        model = {"INT": c_int, "LONG": c_long, "FLOAT": c_float, "STRING": c_string,
                 "GET": c_memo_index, "PUT": c_memo_index}[name]
        return model(line), end
    if name in ("GLOBAL", "INST"):  # two lines, each non-empty; GLOBAL UTF-8, INST ASCII
        module, p = read_line(data, p)
        qualname, end = read_line(data, p)
        for part in (module, qualname):
            if not part:
                raise CRejects("bad readline (len < 2)")
            try:
                part.decode("utf-8" if name == "GLOBAL" else "ascii")
            except UnicodeDecodeError as e:
                raise CRejects(str(e))
        return {"pair": [module.hex(), qualname.hex()]}, end
    if name == "FRAME":  # _Unpickler_Read of the whole frame must succeed
        if len(data) - p < 8:
            raise CRejects("pickle data was truncated")
        n = int.from_bytes(data[p:p + 8], "little")
        if n > 2 ** 63 - 1:
            raise CRejects("FRAME length exceeds system's maximum")
        if n > len(data) - (p + 8):
            raise CRejects("pickle data was truncated (FRAME longer than the data)")
        return {"int": str(n)}, p + 8
    return None


# ----------------------------------------------------------------------------------------------
# Normalising pickletools' arguments to brine's JSON form
# ----------------------------------------------------------------------------------------------

def escape_decoded_ascii(raw):
    """What pickletools' read_stringnl_noescape makes of a raw line."""
    return codecs.escape_decode(raw)[0].decode("ascii")


def expected_arg(op, arg, data, pos):
    """brine's JSON argument for an instruction pickletools decoded as (op, arg) at pos.
    Raises ValueError if pickletools' value is inconsistent with the raw bytes."""
    name = op.name
    if name == "PERSID":
        raw, _ = read_line(data, pos + 1)
        if arg != escape_decoded_ascii(raw):
            raise ValueError(f"pickletools PERSID {arg!r} is not the escape-decoded line {raw!r}")
        return {"str": raw.hex()}
    if name in ("GLOBAL", "INST"):
        module, p = read_line(data, pos + 1)
        qualname, _ = read_line(data, p)
        if arg != f"{escape_decoded_ascii(module)} {escape_decoded_ascii(qualname)}":
            raise ValueError(f"pickletools {name} {arg!r} does not match {module!r} {qualname!r}")
        return {"pair": [module.hex(), qualname.hex()]}
    if arg is None:
        return None
    if name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
        return {"bytes": arg.encode("latin-1").hex()}  # ascii (STRING) or latin-1 str
    if isinstance(arg, bool):
        # pickletools turns "00"/"01" into bools for every decimalnl_short opcode; only INT's
        # value is a bool (GET/PUT "01" is memo index 1).
        return {"bool": arg} if name == "INT" else {"int": str(int(arg))}
    if isinstance(arg, int):
        return {"int": decimal(arg)}
    if isinstance(arg, float):
        return {"float_bits": struct.pack(">d", arg).hex()}
    if isinstance(arg, (bytes, bytearray)):
        return {"bytes": bytes(arg).hex()}
    if isinstance(arg, str):
        return {"str": arg.encode("utf-8", "surrogatepass").hex()}
    raise TypeError(f"unexpected pickletools argument {arg!r}")


def short(value, limit=120):
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


# ----------------------------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------------------------

def error_offset_problem(err, at):
    """brine's error must be about the opcode at `at` when it names an offset."""
    m = OFFSET_IN_ERROR.search(err or "")
    if m and int(m.group(1)) != at:
        return f"brine's error names offset {m.group(1)}, the failing opcode is at {at}: {err}"
    return None


def vm_stop_problem(entry, ins, pos):
    """brine's run stopped before pickletools did, for a reason other than decoding: the VM
    refused the last listed opcode ("execute", `end` is its offset) or stopped before reading the
    one at `pos` ("limit", `end` is `pos`).  Returns a problem, or None if consistent."""
    kind, err, end = entry.get("error_kind"), entry.get("error"), entry.get("end")
    if kind == "execute":
        if not ins or end != ins[-1]["offset"]:
            return f"an execute error must end at the last listed opcode, brine's end is {end}: {err}"
        m = OFFSET_IN_ERROR.search(err or "")
        if m and not end <= int(m.group(1)) <= pos:  # at the opcode, or just past it (a BUILD hook)
            return f"brine's error names offset {m.group(1)}, the refused opcode spans {end}..{pos}: {err}"
        return None
    if kind == "limit":
        return None if end == pos else f"a limit stop must end at {pos}, brine's end is {end}: {err}"
    return f"brine stops at offset {pos} with error kind {kind!r}: {err}"


def compare_stream(data, start, entry):
    """Walk pickletools.genops and brine's listing of the stream at `start` side by side.
    Returns (first difference or None, [justified divergences], end offset after STOP or None)."""
    ins = entry.get("instructions", [])
    err = entry.get("error")
    kind = entry.get("error_kind")
    jumps = [(j["from"], j["to"]) for j in entry.get("jumps", [])]
    justified = []
    f = io.BytesIO(data)
    f.seek(start)
    gen = pickletools.genops(f)
    i = 0
    while True:
        at = f.tell()
        if jumps and at == jumps[0][0]:
            # joblib's loader read [from, to) itself; pickle decoding resumes at `to`
            f.seek(jumps.pop(0)[1])
            gen = pickletools.genops(f)
            continue
        try:
            op, arg, pos = next(gen)
        except Exception as e:  # pickletools cannot decode the opcode at `at`
            why = f"{type(e).__name__}: {e}"
            if i == len(ins):  # brine stopped here too (or, for a VM stop, just before)
                if err is None:
                    return f"pickletools fails at offset {at} ({why}), brine reports no error", justified, None
                if kind != "decode":
                    return vm_stop_problem(entry, ins, at), justified, None
                if entry.get("end") != at:
                    return f"brine's decode error ends at {entry.get('end')}, not at {at}", justified, None
                return error_offset_problem(err, at), justified, None
            b = ins[i]
            code = pickletools.code2op.get(chr(data[at])) if at < len(data) else None
            if b["offset"] != at or code is None or b["op"] != code.name:
                return (f"pickletools fails at offset {at} ({why}), brine's next instruction is "
                        f"{b['op']} at {b['offset']}"), justified, None
            # brine decoded what pickletools refuses: only fine if _pickle.c reads it as brine did.
            try:
                model = c_decode(data, at)
            except CRejects as r:
                model, rejected = None, str(r)
            else:
                rejected = None
            if model is None or model[0] != b["arg"]:
                c_says = f"_pickle.c rejects it too ({rejected})" if rejected else (
                    f"_pickle.c reads {short(model[0])}" if model else "no _pickle.c divergence is known")
                return (f"offset {at}: pickletools fails ({why}) but brine decodes {b['op']} "
                        f"{short(b['arg'])}; {c_says}"), justified, None
            justified.append(f"offset {at}: {b['op']} {short(b['arg'], 60)} accepted as _pickle.c "
                             f"does; pickletools: {why[:80]}")
            i += 1
            f.seek(model[1])
            gen = pickletools.genops(f)  # resume pickletools after the instruction
            continue

        if i == len(ins):  # brine stopped before an instruction pickletools decodes
            if err is None:
                return f"brine's listing ends before {op.name} at offset {pos}", justified, None
            if kind != "decode":
                problem = vm_stop_problem(entry, ins, pos)
                if problem is None:
                    justified.append(f"offset {pos}: the VM stopped before {op.name} ({kind}: {err[:80]})")
                return problem, justified, None
            if entry.get("end") != pos:
                return f"brine's decode error ends at {entry.get('end')}, not at {pos}", justified, None
            try:
                c_decode(data, pos)
                rejected = None
            except CRejects as r:
                rejected = str(r)
            if rejected is None:
                return (f"brine fails at offset {pos} ({err}) where pickletools decodes "
                        f"{op.name} {short(repr(arg))}"), justified, None
            problem = error_offset_problem(err, pos)
            if problem:
                return problem, justified, None
            justified.append(f"offset {pos}: {op.name} refused as _pickle.c does ({rejected}); "
                             f"pickletools reads {short(repr(arg), 60)}")
            return None, justified, None

        b = ins[i]
        if b["offset"] != pos or b["op"] != op.name:
            return (f"instruction {i}: brine {b['op']} at {b['offset']}, pickletools {op.name} "
                    f"at {pos}"), justified, None
        try:
            want = expected_arg(op, arg, data, pos)
        except ValueError as e:
            return f"offset {pos}: {e}", justified, None
        try:
            model, rejected = c_decode(data, pos), None
        except CRejects as r:
            model, rejected = None, str(r)
        if b["arg"] != want:
            if model is None or model != (b["arg"], f.tell()):
                return (f"{op.name} at offset {pos}: brine {short(b['arg'])}, pickletools "
                        f"{short(want)}"), justified, None
            justified.append(f"offset {pos}: {op.name} is {short(b['arg'], 60)} as in _pickle.c; "
                             f"pickletools: {short(want, 60)}")
        elif rejected or (model is not None and model != (b["arg"], f.tell())):
            # brine agrees with pickletools where _pickle.c differs: brine is specified to
            # follow _pickle.c, so this is a brine bug too.
            c_says = f"rejects it ({rejected})" if rejected else f"reads {short(model[0])}"
            return (f"{op.name} at offset {pos}: brine and pickletools read {short(want)}, "
                    f"but _pickle.c {c_says}"), justified, None
        i += 1
        if op.name == "STOP":
            if i != len(ins):
                return f"brine lists {len(ins) - i} instructions after STOP", justified, None
            if err is not None:
                return f"brine reports an error after STOP: {err}", justified, None
            if jumps:
                return f"brine's jumps {jumps} were not reached before STOP", justified, None
            if entry.get("end") != f.tell():
                return f"brine's end is {entry.get('end')}, STOP ends at {f.tell()}", justified, None
            return None, justified, f.tell()


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.justified = []
        self.skipped = []
        self.lines = []

    def fail(self, where, what):
        self.failed += 1
        self.lines.append(f"FAIL {where}: {what}")
        if self.print_now:
            print(self.lines[-1])

    print_now = True


def check_member(tally, where, data, entries):
    """Compare every run brine lists for one member with pickletools on the member's bytes, and
    check the layout of runs and notes."""
    legacy = data.startswith(LEGACY_TORCH_MAGIC)
    first_start = npy_data_offset(data) if data.startswith(b"\x93NUMPY") else 0
    streams = [e for e in entries if "instructions" in e]
    regions = [(j["from"], j["to"]) for e in streams for j in e.get("jumps", [])]
    # A run that starts inside another run's jump is a pickle joblib loads from the middle of the
    # array data (an object array): it is compared, but is not one of the member's sequence.
    embedded = [e for e in streams if any(f <= e["start"] < t for f, t in regions)]
    for e in embedded:
        problem, justified, _ = compare_stream(data, e["start"], e)
        tally.justified += [f"{where} @{e['start']}: {j}" for j in justified]
        if problem:
            tally.fail(where, f"embedded stream at offset {e['start']}: {problem}")
        else:
            tally.passed += 1
    layout = sorted((e for e in entries if not any(e is x for x in embedded)), key=lambda e: e["start"])
    top = [e for e in layout if "instructions" in e]
    if top and top[0]["start"] != first_start:
        tally.fail(where, f"the first pickle starts at {top[0]['start']}, expected {first_start}")
        return
    prev_end, prev_stopped, failed, runs = None, False, False, 0
    for k, e in enumerate(layout):
        if "note" in e:
            until = layout[k + 1]["start"] if k + 1 < len(layout) else len(data)
            if not prev_stopped or e["start"] != prev_end or e["end"] != until or e["start"] >= e["end"]:
                tally.fail(where, f"note {short(e)} does not cover exactly the bytes from the last STOP "
                                  f"({prev_end if prev_stopped else 'none'}) to {until}")
                return
            prev_stopped = False
            continue
        if failed:
            tally.fail(where, f"brine lists a pickle at {e['start']} after a failed one")
            return
        if prev_stopped and e["start"] != prev_end:
            tally.fail(where, f"a pickle starts at {e['start']}, the previous one stopped at {prev_end}, no note between")
            return
        runs += 1
        problem, justified, end = compare_stream(data, e["start"], e)
        tally.justified += [f"{where} @{e['start']}: {j}" for j in justified]
        if problem:
            tally.fail(where, f"stream at offset {e['start']}: {problem}")
        else:
            tally.passed += 1
        prev_end, prev_stopped, failed = end, end is not None, end is None
    if prev_stopped and prev_end < len(data):
        tally.fail(where, f"{len(data) - prev_end} bytes after the last STOP at {prev_end} have no note")
    if legacy and not failed and runs < LEGACY_TORCH_PICKLES:
        tally.fail(where, f"a legacy torch file has {LEGACY_TORCH_PICKLES} pickles, brine lists {runs}")


def check_candidates(tally, where, candidates, entries):
    """check_member on the first candidate bytes that pass (two zip entries may share a name; a
    nested payload is a guess): if none does, the first candidate's failures are reported."""
    first = None
    for data in candidates:
        trial = Tally()
        trial.print_now = False
        check_member(trial, where, data, entries)
        if trial.failed == 0:
            tally.passed += trial.passed
            tally.justified += trial.justified
            return
        first = first or trial
    tally.failed += first.failed
    tally.justified += first.justified
    for line in first.lines:
        print(line)


def check_file(tally, brine, path, display):
    with open(path, "rb") as f:
        data = f.read()
    try:
        proc = subprocess.run([brine, "disasm", "--json", path], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)
    except subprocess.TimeoutExpired:
        tally.fail(display, "brine disasm timed out")
        return
    if proc.returncode not in (0, 2):
        tally.fail(display, f"brine disasm exited {proc.returncode}: {proc.stderr.decode(errors='replace')[:300]}")
        return
    try:
        listing = json.loads(proc.stdout)
    except ValueError:
        tally.fail(display, f"brine disasm did not print JSON: {proc.stdout[:200]!r}")
        return
    # brine's elements grouped by (member, instance), in order of first appearance
    by_member, order = {}, []
    for e in listing:
        key = (e["member"], e.get("instance", 0))
        if key not in by_member:
            by_member[key] = []
            order.append(key)
        by_member[key].append(e)
    members = {m for m, _ in order}
    if is_proto_start(data[:2]) and "" not in members:
        tally.fail(display, f"the file starts with PROTO but brine lists no pickle of it: {sorted(members)}")
    if data[:4] == b"PK\x03\x04" and proc.returncode == 0:
        # brine read everything without error: every pickle member zipfile sees must be listed
        try:
            missing = zip_pickle_members(data) - members
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError) as e:
            missing = set()
            tally.skipped.append(f"{display}: zipfile cannot list the archive ({e}); members are not cross-checked")
        if missing:
            tally.fail(display, f"pickle members zipfile lists that brine does not: {sorted(missing)}")
    for member, instance in order:
        where = f"{display}[{member}]" if member else display
        if instance:
            where += f"#{instance}"
        try:
            candidates = member_bytes(data, member)
        except Known as e:
            tally.skipped.append(f"{where}: {e}")
            continue
        except Unrebuildable as e:
            tally.fail(where, f"this test cannot rebuild the member's bytes: {e}")
            continue
        except Exception as e:  # a Python reader refused the member brine read
            tally.fail(where, f"Python's readers cannot rebuild the member ({type(e).__name__}: {e})")
            continue
        check_candidates(tally, where, candidates, by_member[(member, instance)])


def main():
    # PyBytes_DecodeEscape (STRING, escape_decode) warns about invalid escapes such as \q.
    warnings.simplefilter("ignore", DeprecationWarning)
    # INT/LONG text beyond 4300 decimal digits is refused by CPython's default limit.
    sys.set_int_max_str_digits(sys.int_info.default_max_str_digits)
    if len(sys.argv) not in (3, 4):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    brine, corpus = sys.argv[1], sys.argv[2]
    samples = sys.argv[3] if len(sys.argv) == 4 else None
    tally = Tally()
    files = list(corpus_files(corpus)) + list(shared_files(samples))
    if not files:
        print(f"no files found under {corpus}", file=sys.stderr)
        return 2
    for path, display in files:
        check_file(tally, brine, path, display)
    for line in tally.justified:
        print(f"JUSTIFIED {line}")
    for line in tally.skipped:
        print(f"SKIPPED {line}")
    print(f"{tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
