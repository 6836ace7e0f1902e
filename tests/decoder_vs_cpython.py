#!/usr/bin/env python3
"""Differential test: brine's opcode-argument decoding against CPython 3.11's C unpickler.

Usage: decoder_vs_cpython.py BRINE

A few hundred tiny hand-made pickles exercise the edge cases of how _pickle.c decodes opcode
arguments: text INT/LONG/FLOAT/STRING/UNICODE lines, GET/PUT memo indices, counted strings,
LONG1/LONG4, BINFLOAT, BINUNICODE with invalid or surrogate UTF-8.  They hold data opcodes only
(no GLOBAL, INST, REDUCE, BUILD, PERSID...), so calling the real loader on them is safe.

For each case the real loader (`pickle.loads`, which is the C `_pickle` module; `pickle._loads`
would be the pure-Python one and is deliberately not used) gives a value or an exception, and
`brine disasm --json` gives brine's decoding.  The rule:
  - CPython raised while decoding the argument -> brine reports an "error" at that opcode;
  - otherwise brine decodes the whole pickle without error and its argument equals CPython's
    value (int as a decimal string, bool, IEEE-754 bit pattern with any NaN matching any NaN,
    bytes / UTF-8 with surrogatepass as hex).
Two CPython errors are not decoding errors: "negative PUT argument" and "Memo value not found"
depend on what the index means, not on how it is read, and brine checks them when it runs the
pickle, not in the decoder.  For those cases the test checks that brine decoded the same index
CPython did.

Prints one "FAIL" line per mismatch (input bytes, CPython's result, brine's result) and ends
with "N passed, M failed".  Exit status 1 if any failed.
"""
import concurrent.futures
import json
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import warnings

import _pickle

# pickle.loads must be the C unpickler: that is the behaviour brine reproduces.
assert pickle.loads is _pickle.loads, "pickle.loads is not the C _pickle module"

OFFSET_IN_ERROR = re.compile(r"at offset (\d+)")
DEFAULT_MAX_STR_DIGITS = sys.int_info.default_max_str_digits  # 4300


class Case:
    """One pickle.  `target` is the offset of the opcode under test; `kind` says how CPython's
    result is read: "value" (the pickle's result is the opcode's decoded value), "put" or
    "get" (text memo index, see check_put / check_get)."""

    def __init__(self, group, data, target=0, kind="value", also_default_encoding=False):
        self.group = group
        self.data = data
        self.target = target
        self.kind = kind
        self.also_default_encoding = also_default_encoding


CASES = []


def add(group, items, build, **kw):
    for item in items:
        data, target = build(item)
        CASES.append(Case(group, data, target, **kw))


def line_op(code):
    """b"<code><text>\\n." with the opcode under test at offset 0."""
    return lambda text: (code + text + b"\n.", 0)


# ----------------------------------------------------------------------------------------------
# INT: _pickle.c load_int runs C strtol(s, &end, 0) on the NUL-terminated copy of the line; if
# errno is set or *end is neither '\n' nor NUL it retries with PyLong_FromString(s, NULL, 0).
# strtol(base 0) reads C literals (0x1F hex, 010 octal!), PyLong_FromString(base 0) Python
# literals (0o7, 0b1, underscores) and refuses "010".  A 3-byte line worth 0 or 1 is a bool.
# ----------------------------------------------------------------------------------------------
add("INT plain", [b"0", b"1", b"2", b"-1", b"10", b"42", b"-42", b"123456789", b"-0"], line_op(b"I"))
add("INT bools (len == 3 with the newline, value 0 or 1; not only 00/01)",
    [b"00", b"01", b"+0", b"+1", b"-0", b" 0", b" 1", b"\t1", b"0\x00", b"1\x00", b"\x00\x00",
     b"02", b"11", b"0 ", b"1 "], line_op(b"I"))
add("INT strtol hex (C literal)", [b"0x1F", b"0X1f", b"-0x10", b"+0x10", b"0x0", b"0xffffffff",
                                   b"0x7fffffffffffffff", b"0x8000000000000000", b"-0x8000000000000000",
                                   b"-0x8000000000000001", b"0x1F ", b"0x1F\x00zz"], line_op(b"I"))
add("INT strtol stops inside a prefix, PyLong_FromString decides",
    [b"0x", b"0X", b"0x_1F", b"0x1_F", b"0xg", b"0x 1", b"0b101", b"0B11", b"0b", b"0b2", b"0o7",
     b"0O17", b"0o", b"0o8", b"0o_7"], line_op(b"I"))
add("INT octal: strtol reads 010 as 8; 08/09 fall back to PyLong_FromString and fail",
    [b"010", b"0777", b"-010", b"000", b"0000", b"08", b"09", b"010 ", b"0_10", b"00_0", b"0_0", b"007"],
    line_op(b"I"))
add("INT underscores (only PyLong_FromString accepts them, one at a time, between digits)",
    [b"1_000", b"1_0_0", b"1__0", b"_1", b"1_", b"-1_000", b"1_000_000_000_000_000_000_000"], line_op(b"I"))
add("INT whitespace (C isspace: strtol skips leading, PyLong_FromString allows trailing)",
    [b" 5", b"5 ", b" 5 ", b"\t5", b"5\t", b"\x0b5", b"\x0c5", b"5\r", b"\r5", b" ", b"  ", b"\t",
     b"5 5", b"\x1c5", b"5\x1c", b"\xa05", b"5\xa0"], line_op(b"I"))
add("INT signs", [b"+5", b"-5", b"--5", b"+-5", b"-+5", b"+", b"-", b"- 5", b"+ 5", b"++1"], line_op(b"I"))
add("INT beyond a C long: strtol sets ERANGE, PyLong_FromString gives a big int",
    [b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
     b"-9223372036854775809", b"18446744073709551615", b"18446744073709551616",
     b"99999999999999999999999999999999999999", b"-" + b"9" * 100, b"0x" + b"f" * 40,
     b"-0x1" + b"0" * 32, b"0o" + b"7" * 60, b"0b" + b"1" * 200, b"1" + b"0" * 30 + b" ",
     b"0x" + b"f" * 5000,  # power-of-two bases are not subject to the digit limit
     # leading zeros do not overflow strtol however many there are
     b"0x" + b"0" * 40 + b"1", b"0" * 40, b"0" * 40 + b"7", b"-" + b"0" * 60 + b"1"],
    line_op(b"I"))
add("INT decimal digit limit: CPython refuses more than 4300 digits",
    [b"1" * 4300, b"1" * 4301, b"-" + b"9" * 4300, b"-" + b"9" * 4301, b"1_" * 4300 + b"1",
     b"1_" * 4299 + b"1", b"0" * 4301],  # leading zeros count as digits
    line_op(b"I"))
add("INT embedded NUL: C string functions stop there, the rest of the line is ignored",
    [b"12\x00zz", b"\x00", b"\x00zz", b"-\x00", b"1_0\x00zz", b"0x1F\x00zz", b" \x00", b"99999999999999999999\x00x",
     b"010\x00"], line_op(b"I"))
add("INT garbage", [b"", b"1L", b"1.0", b"1e5", b"abc", b"\xd9\xa1", b"1 2", b"0x1G", b"inf"], line_op(b"I"))
CASES.append(Case("INT missing newline (truncated)", b"I5"))
CASES.append(Case("INT missing newline (truncated)", b"I"))

# ----------------------------------------------------------------------------------------------
# LONG: load_long cuts one 'L' before the newline (not required), then PyLong_FromString(s,
# NULL, 0): Python literal syntax, "010" refused, hex/octal/binary prefixes accepted.
# ----------------------------------------------------------------------------------------------
add("LONG with and without L", [b"0L", b"1L", b"-1L", b"1", b"-1", b"0", b"123456789012345678901234567890L",
                               b"-123456789012345678901234567890", b"9223372036854775808L"], line_op(b"L"))
add("LONG base-0 literals", [b"0x10L", b"0X10", b"0o17L", b"0b11L", b"010L", b"010", b"00L", b"000",
                             b"08L", b"0x_10L", b"0xL", b"0b"], line_op(b"L"))
add("LONG odd suffixes and spacing", [b"L", b"", b"LL", b"1LL", b"1l", b"1 L", b" 5L", b"5 L", b"+5L",
                                      b"-0L", b"1_000L", b"1__0L", b"12\x00zzL", b"\x00L", b"1L ",
                                      b"1.0L", b"1e5L", b" L", b"-L"], line_op(b"L"))
add("LONG digit limit", [b"1" * 4300 + b"L", b"1" * 4301 + b"L", b"1" * 4301, b"0x" + b"f" * 5000 + b"L"],
    line_op(b"L"))
CASES.append(Case("LONG missing newline (truncated)", b"L5L"))

# ----------------------------------------------------------------------------------------------
# FLOAT: load_float calls PyOS_string_to_double(s, &end, OverflowError) and needs *end to be
# '\n' or NUL.  Python's own strtod: no leading whitespace, no underscores, no hex floats,
# inf/infinity/nan in any case; overflow raises OverflowError, underflow rounds to 0.
# ----------------------------------------------------------------------------------------------
add("FLOAT plain", [b"1.5", b"-1.5", b"0.0", b"-0.0", b"1", b"-1", b"0.1", b"1e10", b"1E10",
                    b"1e+10", b"1e-10", b"3.141592653589793", b"123456789012345678901234567890",
                    b"00.5", b"0001", b"1.0e0", b"1e0001"], line_op(b"F"))
add("FLOAT special values", [b"inf", b"-inf", b"+inf", b"Infinity", b"-Infinity", b"INF", b"iNfInItY",
                             b"nan", b"-nan", b"NaN", b"+nan", b"NAN", b"infinit", b"infinityx",
                             b"infx", b"nanx", b"nan(1)", b"in", b"na", b"-", b"+"], line_op(b"F"))
add("FLOAT range: overflow is an error, underflow is not",
    [b"1e500", b"-1e500", b"1e308", b"1.7976931348623157e308", b"1.7976931348623158e308",
     b"1.7976931348623159e308", b"1e-400", b"-1e-400", b"4.9e-324", b"2.4703282292062328e-324",
     b"2.4703282292062327e-324", b"2.2250738585072014e-308", b"1" + b"0" * 400, b"0." + b"0" * 400 + b"1",
     b"1e99999999999999999999", b"1e-99999999999999999999"], line_op(b"F"))
add("FLOAT partial syntax", [b"+1.5", b".5", b"5.", b".", b"-.5", b"+.5", b"1e", b"1e+", b"1e-",
                             b"e5", b"1.0e", b"1..0", b"1.0.0", b"1,5", b"1.5f", b"1.5L", b"1d5",
                             b"", b"\x00", b"1.5\x00junk", b"1e\x00"], line_op(b"F"))
add("FLOAT refused by PyOS_string_to_double though float() accepts",
    [b" 1.0", b"1.0 ", b"\t1.0", b"1.5\r", b"1_0.0", b"1.0_0", b"0x1p3", b"0x10", b"\xd9\xa1.5", b" inf"], line_op(b"F"))
CASES.append(Case("FLOAT missing newline (truncated)", b"F1.5"))

# ----------------------------------------------------------------------------------------------
# STRING: load_string wants the line (without newline) to be >= 2 bytes, start and end with the
# same quote, then PyBytes_DecodeEscape of the inside.  encoding="bytes" gives the raw bytes;
# the default encoding (ASCII) is also tried, to check the str conversion is the only thing
# that fails for non-ASCII content.
# ----------------------------------------------------------------------------------------------
add("STRING quoting", [b"'abc'", b'"abc"', b"''", b'""', b"'", b'"', b"'abc\"", b"\"abc'", b"abc",
                       b"'a'b'", b"'a\"b'", b" 'a'", b"'a' ", b"'\x00'", b"'a\x00b'"],
    line_op(b"S"), also_default_encoding=True)
add("STRING escapes", [b"'\\x41'", b"'\\x4a\\x4B'", b"'\\101'", b"'\\0'", b"'\\00'", b"'\\000'",
                       b"'\\0000'", b"'\\777'", b"'\\400'", b"'\\8'", b"'\\18'", b"'\\q'", b"'\\\"'",
                       b"'\\''", b"'\\\\'", b"'\\n\\t\\r'", b"'\\a\\b\\f\\v'", b"'\\u0041'", b"'\\N{DASH}'",
                       b"'\\xe9'", b"'\\xff\\x00'", b"'\\ '", b"'\\\\x41'", b"'\\\xe9'"],
    line_op(b"S"), also_default_encoding=True)
add("STRING bad escapes", [b"'\\x4'", b"'\\x'", b"'\\x4g'", b"'\\xZZ'", b"'\\'", b"'a\\'", b"'\\\\\\'"],
    line_op(b"S"), also_default_encoding=True)
add("STRING non-ASCII bytes (fine as bytes, UnicodeDecodeError only with encoding='ASCII')",
    [b"'\xe9'", b"'\xff\xfe'", b"'\xc3\xa9'"], line_op(b"S"), also_default_encoding=True)
# A backslash-newline continuation cannot span lines: the line ends at the first '\n'.
CASES.append(Case("STRING line continuation", b"S'a\\\nb'\n.", also_default_encoding=True))
CASES.append(Case("STRING missing newline (truncated)", b"S'abc'"))

# SHORT_BINSTRING / BINSTRING: counted, no escapes; BINSTRING's count is read unsigned.
add("SHORT_BINSTRING", [b"U\x03abc.", b"U\x00.", b"U\x01\xe9.", b"U\x05ab", b"U"], lambda d: (d, 0),
    also_default_encoding=True)
add("BINSTRING", [b"T\x03\x00\x00\x00abc.", b"T\x00\x00\x00\x00.", b"T\x02\x00\x00\x00\xff\x00.",
                  b"T\xff\xff\xff\xffabc.", b"T\x00\x00\x00\x80abc.", b"T\x05\x00\x00\x00ab",
                  b"T\x01\x00"], lambda d: (d, 0), also_default_encoding=True)

# ----------------------------------------------------------------------------------------------
# UNICODE: load_unicode decodes the line with raw-unicode-escape: only \uXXXX and \UXXXXXXXX
# are escapes (a backslash before anything else is kept, and so is a backslash pair), other
# bytes are Latin-1 code points; surrogates from \u escapes are kept one by one (never paired).
# ----------------------------------------------------------------------------------------------
add("UNICODE", [b"abc", b"", b"\\u0041", b"\\u00e9", b"\\U0001F600", b"\\U0001f600", b"\\U0010FFFF",
                b"\\U00110000", b"\\UFFFFFFFF", b"\\u12", b"\\u", b"\\U", b"\\U0001F60", b"\\uZZZZ",
                b"\\u004G", b"\\\\u0041", b"\\\\\\u0041", b"\\x41", b"\\n", b"\\", b"a\\", b"\\\\",
                b"\xe9", b"\xff", b"\x00", b"\x80", b"\\ud800", b"\\udfff", b"\\ud83d\\ude00",
                b"\\U0000D800", b"\\u00411", b"\\N{DASH}", b"\\u0000"], line_op(b"V"))
CASES.append(Case("UNICODE missing newline (truncated)", b"Vabc"))

# BINUNICODE family: UTF-8 with the surrogatepass handler (encoded surrogates are accepted,
# overlong forms, code points above U+10FFFF and truncated sequences are not).
UTF8_SAMPLES = [b"abc", b"", b"\xc3\xa9", b"\xf0\x9f\x98\x80", b"\xe2\x82\xac", b"\x00", b"\xff",
                b"\xfe", b"\x80", b"\xc3", b"\xe2\x82", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80",
                b"\xe0\x9f\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x8f\xbf\xbf",
                b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf",
                b"\xed\xa0\xbd\xed\xb8\x80", b"\xed\xa0", b"\xed\x9f\xbf", b"\xee\x80\x80",
                b"a\xc3\xa9\xed\xb0\x80z", b"\xc3\xa9\x80"]
add("SHORT_BINUNICODE", UTF8_SAMPLES, lambda s: (b"\x8c" + bytes([len(s)]) + s + b".", 0))
add("BINUNICODE", UTF8_SAMPLES, lambda s: (b"X" + struct.pack("<I", len(s)) + s + b".", 0))
add("BINUNICODE8", UTF8_SAMPLES[:6] + UTF8_SAMPLES[20:23],
    lambda s: (b"\x8d" + struct.pack("<Q", len(s)) + s + b".", 0))
add("BINUNICODE bad counts", [b"X\x05\x00\x00\x00ab", b"X\xff\xff\xff\xffab", b"\x8c\x05ab", b"X\x01\x00",
                              b"\x8d\xff\xff\xff\xff\xff\xff\xff\xffab", b"\x8d\x00\x00\x00\x00\x00\x00\x00\x80.",
                              b"\x8d\x03\x00\x00\x00\x00\x00\x00\x00ab"], lambda d: (d, 0))

# Binary bytes: no decoding, but counts are checked (8-byte counts above PY_SSIZE_T_MAX refused).
add("BINBYTES family", [b"C\x03abc.", b"C\x00.", b"B\x02\x00\x00\x00\xff\x00.", b"B\xff\xff\xff\xffab",
                        b"\x8e\x01\x00\x00\x00\x00\x00\x00\x00z.", b"\x8e\x00\x00\x00\x00\x00\x00\x00\x80.",
                        b"\x96\x02\x00\x00\x00\x00\x00\x00\x00hi.", b"\x96\x00\x00\x00\x00\x00\x00\x00\x00.",
                        b"\x96\xff\xff\xff\xff\xff\xff\xff\x7f.", b"C\x05ab"], lambda d: (d, 0))

# ----------------------------------------------------------------------------------------------
# LONG1 / LONG4: little-endian two's complement of the given length (not necessarily minimal);
# a negative LONG4 count is refused.  Prefixed with PROTO 2 as the pickler writes them.
# ----------------------------------------------------------------------------------------------
def long_n(code, width):
    return lambda body: (b"\x80\x02" + code + len(body).to_bytes(width, "little") + body + b".", 2)


LONG_BODIES = [b"", b"\x00", b"\x01", b"\xff", b"\x7f", b"\x80", b"\xff\x00", b"\x00\x80",
               b"\x01\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff\xff\xff\xff\x7f",
               b"\x00\x00\x00\x00\x00\x00\x00\x80", b"\xff\xff\xff\xff\xff\xff\xff\xff\x00",
               b"\x00\x00\x00\x00\x00\x00\x00\x00\x01", b"\xff\xff\xff\xff\xff\xff\xff\x7f\xff",
               b"\x00\x00\x00\x00\x00\x00\x00\x80\xff", b"\x01" * 9 + b"\x00" * 20,
               b"\xff" * 30, b"\xab" * 100, b"\x12\x34" * 1000]
add("LONG1", LONG_BODIES[:19], long_n(b"\x8a", 1))
add("LONG4", LONG_BODIES, long_n(b"\x8b", 4))
add("LONG1/LONG4 bad counts", [b"\x80\x02\x8a\x05\x01\x02", b"\x80\x02\x8a",
                               b"\x80\x02\x8b\xff\xff\xff\xff\x01.", b"\x80\x02\x8b\x00\x00\x00\x80.",
                               b"\x80\x02\x8b\x02\x00\x00\x00\x01", b"\x80\x02\x8b\x00\x00"],
    lambda d: (d, 2))

# Fixed-width binary numbers (BININT is signed, BININT1/2 unsigned) and BINFLOAT (big-endian
# IEEE-754; NaN payloads and -0.0 must survive).
add("BININT family", [b"J\xff\xff\xff\xff.", b"J\x00\x00\x00\x80.", b"J\xff\xff\xff\x7f.", b"K\xff.",
                      b"M\xff\xff.", b"M\x00\x80.", b"J\x01\x02", b"K", b"M\x01"], lambda d: (d, 0))
add("BINFLOAT", [bytes.fromhex(h) for h in (
    "3ff8000000000000", "8000000000000000", "0000000000000000", "7ff0000000000000", "fff0000000000000",
    "7ff8000000000000", "fff8000000000000", "7ff8000000000001", "7ff0000000000001", "7fffffffffffffff",
    "0000000000000001", "800fffffffffffff", "7fefffffffffffff", "3fb999999999999a")],
    lambda b: (b"G" + b + b".", 0))
CASES.append(Case("BINFLOAT truncated", b"G\x3f\xf8\x00"))

# FRAME: load_frame reads the 8-byte length (above PY_SSIZE_T_MAX -> OverflowError) and then
# the whole frame at once, so a frame longer than the remaining data is an error; a frame that
# ends early is not (_pickle.c does not check frame boundaries).
add("FRAME length", [3, 1, 0, 2, 4, 100, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1],
    lambda n: (b"\x80\x04\x95" + n.to_bytes(8, "little") + b"K\x05.", 2), kind="frame")
CASES.append(Case("FRAME length truncated", b"\x80\x04\x95\x03\x00\x00", target=2, kind="frame"))

# ----------------------------------------------------------------------------------------------
# GET / PUT: load_get / load_put read the line with PyLong_FromString(s, NULL, 10) (explicit
# base 10: "010" is 10, "0x1" is refused; whitespace, sign and single underscores are accepted)
# then PyLong_AsSsize_t (too large -> OverflowError).  PUT indices are kept small here: a PUT to
# a huge index that fits in Py_ssize_t makes CPython allocate a memo array that large.
# ----------------------------------------------------------------------------------------------
MEMO_TEXTS = [b"0", b"1", b"5", b"00", b"01", b"010", b" 1", b"1 ", b"\t1", b"1\r", b"+1", b"-0",
              b"1_0", b"1__0", b"_1", b"1_", b"0x1", b"0o1", b"1L", b"1.0", b"", b" ", b"+", b"1\x00zz",
              b"\x00", b"\xd9\xa1", b"-1", b"-5", b"99999999999999999999", b"-99999999999999999999",
              b"1" * 4301]
add("PUT text index", MEMO_TEXTS, lambda t: (b"I7\np" + t + b"\n.", 3), kind="put")
add("GET text index", MEMO_TEXTS + [b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808"],
    lambda t: (b"g" + t + b"\n.", 0), kind="get")


# ----------------------------------------------------------------------------------------------
# Running both sides
# ----------------------------------------------------------------------------------------------

def cpython(data, encoding="bytes"):
    """('ok', value) or ('raise', exception) from the C unpickler."""
    try:
        return "ok", pickle.loads(data, encoding=encoding)
    except Exception as e:  # the loader raises many types: ValueError, UnpicklingError, ...
        return "raise", e


def describe(outcome):
    kind, v = outcome
    if kind == "raise":
        return f"raises {type(v).__name__}: {str(v)[:100]}"
    text = repr(v)
    return f"returns {text[:100]}{'...' if len(text) > 100 else ''}"


def decimal(v):
    """str(v) without the int-to-str digit limit (a 5000-hex-digit INT is a valid value)."""
    sys.set_int_max_str_digits(0)
    try:
        return str(v)
    finally:
        sys.set_int_max_str_digits(DEFAULT_MAX_STR_DIGITS)


def as_brine_arg(value):
    """CPython's decoded value in brine's JSON argument form."""
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": decimal(value)}
    if isinstance(value, float):
        return {"float_bits": struct.pack(">d", value).hex()}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, str):
        return {"str": value.encode("utf-8", "surrogatepass").hex()}
    raise TypeError(f"unexpected value {value!r}")


def is_nan_bits(arg):
    if not isinstance(arg, dict) or "float_bits" not in arg:
        return False
    return math.isnan(struct.unpack(">d", bytes.fromhex(arg["float_bits"]))[0])


def same_arg(want, got):
    return want == got or (is_nan_bits(want) and is_nan_bits(got))  # any NaN payload matches


# `brine disasm` lists the pickles the scan executes, and the scan reads a stream that has no
# PROTO and fails without doing anything as "not a pickle" (it runs nothing, so nothing is
# listed).  Such a case is given to brine behind this PROTO opcode (decoding does not depend on
# the protocol in _pickle.c, and protocol 5 admits every opcode); brine's offsets are then
# shifted back, and the PROTO instruction is dropped, before the comparison.
PROTO_PREFIX = b"\x80\x05"


def brine_bytes(data):
    return data if data[:1] == b"\x80" else PROTO_PREFIX + data


def unshift(stream, shift):
    """brine's listing of PROTO_PREFIX + data as a listing of data."""
    if not shift:
        return stream, None
    ins = stream["instructions"]
    if not ins or ins[0]["offset"] != 0 or ins[0]["op"] != "PROTO":
        return None, f"brine does not list the added PROTO at offset 0: {stream!r:.200}"
    out = dict(stream)
    out["instructions"] = [dict(i, offset=i["offset"] - shift) for i in ins[1:]]
    if "error" in out:
        out["error"] = OFFSET_IN_ERROR.sub(lambda m: f"at offset {int(m.group(1)) - shift}", out["error"])
    return out, None


def run_brine(brine, path, shift=0):
    proc = subprocess.run([brine, "disasm", "--json", path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    if proc.returncode not in (0, 2):
        return None, f"brine exited {proc.returncode}: {proc.stderr.decode(errors='replace')[:200]}"
    try:
        listing = json.loads(proc.stdout)
    except ValueError:
        return None, f"brine printed no JSON: {proc.stdout[:200]!r}"
    streams = [e for e in listing if "instructions" in e]
    if not streams or streams[0]["start"] != 0:
        return None, f"brine lists no stream at offset 0: {listing!r:.200}"
    return unshift(streams[0], shift)


class Brine:
    """brine's view of one case: the target instruction (or None) and the stream's error."""

    def __init__(self, stream, target):
        self.error = stream.get("error")
        self.ins = next((i for i in stream["instructions"] if i["offset"] == target), None)
        self.stream = stream

    def describe(self):
        if self.ins is not None:
            text = f"decodes {self.ins['op']} {json.dumps(self.ins['arg'])}"
            text = text if len(text) <= 160 else text[:160] + "..."
            return text + (f", then error: {self.error}" if self.error else "")
        return f"error: {self.error}" if self.error else "no instruction at the target offset"


def error_at_target(b, target):
    """brine stopped with an error at the target opcode (not before, not after)."""
    if b.error is None or any(i["offset"] >= target for i in b.stream["instructions"]):
        return False
    m = OFFSET_IN_ERROR.search(b.error)
    return m is None or int(m.group(1)) == target


def decoded_cleanly(b, data):
    """No error, the target decoded, and STOP found at the last byte: brine consumed exactly
    the argument bytes CPython did."""
    last = b.stream["instructions"][-1] if b.stream["instructions"] else None
    return (b.error is None and b.ins is not None and last is not None and last["op"] == "STOP"
            and last["offset"] == len(data) - 1)


def check_value(case, b):
    """The pickle's result is the target opcode's value."""
    outcome = cpython(case.data)
    if outcome[0] == "raise":
        if not error_at_target(b, case.target):
            return f"CPython {describe(outcome)}; brine {b.describe()}"
        return None
    if not decoded_cleanly(b, case.data):
        return f"CPython {describe(outcome)}; brine {b.describe()}"
    want = as_brine_arg(outcome[1])
    if not same_arg(want, b.ins["arg"]):
        return f"CPython {describe(outcome)} = {json.dumps(want)[:120]}; brine {b.describe()}"
    if case.also_default_encoding:
        # With the default encoding="ASCII" the same bytes become str; a non-ASCII string makes
        # only this conversion fail, which is not a decoding error.
        plain = cpython(case.data, encoding="ASCII")
        raw = bytes(outcome[1])
        if plain[0] == "ok":
            if plain[1] != raw.decode("ascii"):
                return f"CPython ASCII {describe(plain)} differs from bytes {describe(outcome)}"
        elif not (isinstance(plain[1], UnicodeDecodeError) and not raw.isascii()):
            return f"CPython ASCII {describe(plain)} though bytes mode {describe(outcome)}"
    return None


def check_get(case, b):
    """GET with an empty memo: CPython either fails to read the index (ValueError /
    OverflowError) or reports "Memo value not found at index N", which names the index read."""
    outcome = cpython(case.data)
    kind, e = outcome
    m = re.fullmatch(r"Memo value not found at index (-?\d+)", str(e)) if kind == "raise" else None
    if m is None:
        if kind == "ok":
            return f"CPython {describe(outcome)} from an empty memo?"
        if not error_at_target(b, case.target):
            return f"CPython {describe(outcome)}; brine {b.describe()}"
        return None
    want = {"int": m.group(1)}
    if b.ins is None or b.ins["op"] != "GET" or b.ins["arg"] != want:
        return f"CPython reads index {m.group(1)} ({describe(outcome)}); brine {b.describe()}"
    return None


def check_put(case, b):
    """b"I7\\np<text>\\n.": if CPython accepts, the index it used is found by reading it back
    with a GET of brine's index; "negative PUT argument" means the index read was negative."""
    outcome = cpython(case.data)
    kind, e = outcome
    if kind == "raise" and str(e) == "negative PUT argument":
        if b.ins is None or b.ins["op"] != "PUT" or int(b.ins["arg"].get("int", "0")) >= 0:
            return f"CPython reads a negative index ({describe(outcome)}); brine {b.describe()}"
        return None
    if kind == "raise":
        if not error_at_target(b, case.target):
            return f"CPython {describe(outcome)}; brine {b.describe()}"
        return None
    if not decoded_cleanly(b, case.data) or b.ins["op"] != "PUT" or "int" not in b.ins["arg"]:
        return f"CPython {describe(outcome)}; brine {b.describe()}"
    n = b.ins["arg"]["int"]
    back = cpython(case.data[:-1] + b"0g" + n.encode() + b"\n.")
    if back != ("ok", 7):
        return f"brine reads index {n}, but GET {n} after CPython's PUT {describe(back)}"
    return None


def check_frame(case, b):
    """b"PROTO 4, FRAME n, BININT1 5, STOP": the value is 5 whenever CPython reads the FRAME."""
    outcome = cpython(case.data)
    if outcome[0] == "raise":
        if not error_at_target(b, case.target):
            return f"CPython {describe(outcome)}; brine {b.describe()}"
        return None
    want = {"int": str(int.from_bytes(case.data[3:11], "little"))}
    if not decoded_cleanly(b, case.data) or b.ins["op"] != "FRAME" or b.ins["arg"] != want:
        return f"CPython {describe(outcome)} with FRAME {want['int']}; brine {b.describe()}"
    return None


CHECKS = {"value": check_value, "get": check_get, "put": check_put, "frame": check_frame}


def main():
    if len(sys.argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    brine = sys.argv[1]
    warnings.simplefilter("ignore", DeprecationWarning)  # PyBytes_DecodeEscape on \q etc.
    sys.set_int_max_str_digits(DEFAULT_MAX_STR_DIGITS)  # CPython's default limit is under test
    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="brine-decoder-") as tmp:
        jobs = []
        for n, case in enumerate(CASES):
            path = os.path.join(tmp, f"case{n:04d}.pkl")
            given = brine_bytes(case.data)
            with open(path, "wb") as f:
                f.write(given)
            jobs.append((path, len(given) - len(case.data)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as pool:
            results = list(pool.map(lambda j: run_brine(brine, *j), jobs))
    for case, (stream, problem) in zip(CASES, results):
        if problem is None:
            problem = CHECKS[case.kind](case, Brine(stream, case.target))
        if problem:
            failed += 1
            shown = case.data if len(case.data) <= 80 else case.data[:60] + b"..." + case.data[-10:]
            print(f"FAIL [{case.group}] {shown!r} ({len(case.data)} bytes): {problem}")
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
