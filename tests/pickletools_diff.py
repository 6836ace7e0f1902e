#!/usr/bin/env python3
"""Differential test: `brine disasm --json` against CPython's `pickletools.genops`.

Usage: pickletools_diff.py BRINE CORPUS_DIR [SHARED_SAMPLES_DIR]

Every pickle under CORPUS_DIR/benign and CORPUS_DIR/malicious (and, if the directory exists,
every pickle or zip in SHARED_SAMPLES_DIR) is split into pickle streams here, independently of
brine:
  - a zip (torch checkpoint): every member brine lists (name ends in .pkl / .debug_pkl, or the
    member starts with a PROTO opcode), one byte stream per member;
  - a legacy torch file (starts with the magic-number pickle): the first 5 pickles;
  - anything else: consecutive pickles from offset 0 until the data ends or a stream fails.
Each stream is decoded with `pickletools.genops` and compared with brine's listing: the same
stream start offsets, and for every instruction the same offset, opcode and argument.  Where
pickletools raises, brine must stop at the same opcode with an "error".

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
import codecs
import io
import json
import os
import pickletools
import re
import struct
import subprocess
import sys
import warnings
import zipfile

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
    """Every file of corpus/benign and corpus/malicious: all of them are pickles or zips,
    some intentionally broken."""
    for sub in ("benign", "malicious"):
        top = os.path.join(corpus, sub)
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


def byte_streams(data):
    """[(member name, bytes, max pickles)] for one file."""
    if data[:4] == b"PK\x03\x04":
        out = []
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                wanted = info.filename.endswith((".pkl", ".debug_pkl"))
                if not wanted and info.file_size > 0:
                    with zf.open(info) as m:
                        wanted = is_proto_start(m.read(2))
                if wanted:
                    out.append((info.filename, zf.read(info), None))
        return out
    if data.startswith(LEGACY_TORCH_MAGIC):
        return [("", data, LEGACY_TORCH_PICKLES)]
    return [("", data, None)]


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


def compare_stream(data, start, entry):
    """Walk pickletools.genops and brine's listing of the stream at `start` side by side.
    Returns (first difference or None, [justified divergences], end offset after STOP or None)."""
    ins = entry.get("instructions", [])
    err = entry.get("error")
    justified = []
    f = io.BytesIO(data)
    f.seek(start)
    gen = pickletools.genops(f)
    i = 0
    while True:
        at = f.tell()
        try:
            op, arg, pos = next(gen)
        except Exception as e:  # pickletools cannot decode the opcode at `at`
            why = f"{type(e).__name__}: {e}"
            if i == len(ins):  # brine stopped here too
                if err is None:
                    return f"pickletools fails at offset {at} ({why}), brine reports no error", justified, None
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
            return None, justified, f.tell()


def first_opcode_decodes(data, pos):
    """brine starts another stream after a STOP only if an opcode decodes there; otherwise the
    rest is a 'trailing bytes' note.  Where _pickle.c and pickletools disagree on that opcode,
    _pickle.c's reading (the model) decides, as it does in compare_stream."""
    try:
        if c_decode(data, pos) is not None:
            return True
    except CRejects:
        return False
    try:
        next(pickletools.genops(io.BytesIO(data[pos:])))
        return True
    except Exception:
        return False


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.justified = []

    def fail(self, where, what):
        self.failed += 1
        print(f"FAIL {where}: {what}")


def check_member(tally, where, data, max_pickles, entries):
    """Compare the streams of one byte stream (a raw file or one zip member)."""
    entries = list(entries)
    k = 0
    pos = count = 0
    stopped_ok = True
    limit = max_pickles or float("inf")
    while pos < len(data) and count < limit:
        if count > 0 and not first_opcode_decodes(data, pos):
            if k < len(entries) and "note" in entries[k] and entries[k]["start"] == pos:
                k += 1
            else:
                tally.fail(where, f"expected a note about trailing bytes at offset {pos}, brine has "
                                  f"{short(entries[k]) if k < len(entries) else 'nothing'}")
            return
        count += 1
        if k >= len(entries) or "instructions" not in entries[k] or entries[k]["start"] != pos:
            got = short({x: entries[k].get(x) for x in ("start", "note", "error")}) if k < len(entries) else "nothing"
            tally.fail(where, f"expected a pickle stream at offset {pos}, brine has {got}")
            return
        problem, justified, end = compare_stream(data, pos, entries[k])
        k += 1
        label = f"{where} @{pos}"
        tally.justified += [f"{label}: {j}" for j in justified]
        if problem:
            tally.fail(where, f"stream at offset {pos}: {problem}")
        else:
            tally.passed += 1
        if end is None:  # the stream failed: brine lists nothing more for it but maybe a note
            stopped_ok = False
            break
        pos = end
    rest = entries[k:]
    if stopped_ok and max_pickles and count == max_pickles and pos < len(data):
        # legacy torch file: the raw storage bytes after the 5th pickle are a note
        if rest and "note" in rest[0] and rest[0]["start"] == pos:
            rest = rest[1:]
        else:
            tally.fail(where, f"expected a note about raw storage data at offset {pos}")
            return
    if not stopped_ok:
        rest = [e for e in rest if "note" not in e]
    if rest:
        tally.fail(where, f"brine lists {len(rest)} unexpected element(s), first "
                          f"{short({x: rest[0].get(x) for x in ('start', 'note', 'error')})}")


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
    try:
        streams = byte_streams(data)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        tally.fail(display, f"zipfile cannot read the archive ({e}); brine listed "
                            f"{len(listing)} element(s)")
        return
    # brine's elements grouped by member, in order of first appearance
    by_member, order = {}, []
    for e in listing:
        if e["member"] not in by_member:
            by_member[e["member"]] = []
            order.append(e["member"])
        by_member[e["member"]].append(e)
    nonempty = [m for m, d, _ in streams if d]
    if order != nonempty:
        tally.fail(display, f"pickle members differ: brine {order}, zipfile {nonempty}")
        return
    for member, member_data, max_pickles in streams:
        if member not in by_member and not member_data:
            continue
        where = f"{display}[{member}]" if member else display
        check_member(tally, where, member_data, max_pickles, by_member.get(member, []))


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
    print(f"{tally.passed} passed, {tally.failed} failed")
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
