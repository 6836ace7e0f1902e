#!/usr/bin/env python3
"""Regression samples for output that cannot lie (issue "Clean must mean exact", class 13).

Strings from the file reach the analyst's terminal: these samples put ANSI escape sequences, bidi
overrides and bytes that are not UTF-8 where a report shows them. tests/output_safety_test.py runs
every corpus file through every text output and asserts no raw control character reaches it.
"""
import io
import json
import os
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SUB = os.path.basename(HERE)
ERASE = "\x1b[1A\x1b[2K\r"  # cursor up, erase line, carriage return


def ansi_global():
    # os.system runs first; then a GLOBAL whose name erases the finding lines above it and prints
    # a fake verdict. The loader fails on that import, after the payload ran.
    fake = f"{ERASE}{ERASE}{ERASE}payload.pkl: CLEAN (pickle, 60 bytes, 1 pickle)"
    return (b"cos\nsystem\n(S'echo brine-test'\ntR0"
            + b"cbuiltins\n" + fake.encode() + b"\n.")


def bidi_global():
    # A right-to-left override makes 'os.system' read differently on screen.
    name = "sys\u202etem\u202c".encode()
    body = b"\x8c\x02os\x94\x8c" + bytes([len(name)]) + name + b"\x94\x93\x94."
    return b"\x80\x04\x95" + len(body).to_bytes(8, "little") + body


def ansi_member():
    # A zip member whose name carries an escape sequence and a byte that is not UTF-8.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", b"cos\nsystem\n(S'echo brine-test'\ntR.")
        z.writestr("archive/\x1b[2Kevil\x07.pkl", b"cos\nsystem\n(S'echo brine-test'\ntR.")
    data = bytearray(buf.getvalue())
    return bytes(data)


SAMPLES = [
    ("ansi_global_rewrites_report.pkl", ansi_global(), "malicious", ["os.system"],
     "a global name with ANSI cursor-up/erase-line sequences that would rewrite the report to read CLEAN"),
    ("bidi_override_global.pkl", bidi_global(), "malicious", [],
     "a global name holding a right-to-left override (U+202E) and pop (U+202C)"),
    ("ansi_zip_member_name.zip", ansi_member(), "malicious", ["os.system"],
     "a zip member name with an escape sequence and BEL"),
]


def main():
    samples = []
    for name, data, expect, must, technique in SAMPLES:
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        s = {"path": f"{SUB}/{name}", "expect": expect, "technique": technique, "source": f"{SUB}/make.py"}
        if must:
            s["must_report"] = must
        samples.append(s)
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump({"generator": f"corpus/{SUB}/make.py", "samples": samples}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
