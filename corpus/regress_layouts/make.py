#!/usr/bin/env python3
"""Regression samples for torch's own reading of its layouts and Python's reading of .xz (issue
"Clean must mean exact"; classes the loader oracle listed as clean-but-unloadable): the storage
persistent-id arity per layout, the zip reader's version record and archive prefix, a storage key
reused with another dtype, the legacy magic number written as LONG4 / text LONG, xz stream padding.

Writes the samples next to this script and manifest.json. Run with Debian's /usr/bin/python3
(tests/oracle_gen.py builds the torch pickles with the real pickler). Payloads only run
os.system('echo brine-test') and are never loaded here.
"""
import json
import lzma
import os
import pickle
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SUB = os.path.basename(HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests"))
import oracle_gen as g  # noqa: E402

F4 = struct.pack("<4f", 1, 2, 3, 4)


def legacy(variant, payload_where=None):
    rng = random.Random(7)
    # legacy_bytes draws `where` itself when payload is set; pin it by retrying seeds
    for seed in range(1000):
        rng = random.Random(seed)
        where, data = g.legacy_bytes(rng, payload_where is not None, variant)
        if where == payload_where:
            return data
    raise SystemExit("no seed gives " + str(payload_where))


def torchzip(entries, pre="archive/", version=True, pid_legacy=False):
    members = [(pre + "data.pkl", g.torch_pickle(entries, False, 2, legacy=pid_legacy))]
    if version:
        members.append((pre + "version", b"3\n"))
    members.append((pre + "data/0", F4))
    return g.zip_bytes(members)


def legacy_key_twice():
    """The benign legacy file with its storage-key list naming '0' twice, raw sections of 4 and 2
    floats: torch's _set_from_file raises "storage has wrong byte size"."""
    data = legacy("magic_long4")
    keys = pickle.dumps(["0"], protocol=2)
    at = data.rfind(keys)
    assert at > 0
    return (data[:at] + pickle.dumps(["0", "0"], protocol=2) + struct.pack("<q", 4) + F4 +
            struct.pack("<q", 2) + F4[:8])


def main():
    pickle_a = {"w": [1, 2, 3], "n": "x" * 40}
    inner = pickle.dumps(pickle_a, protocol=2)
    samples = [
        ("legacy_magic_long4_benign.pt", legacy("magic_long4"), "clean",
         "legacy torch file whose magic number is pickled as LONG4: torch compares it by value, the legacy layout"),
        ("legacy_magic_text_benign.pt", legacy("magic_text"), "clean",
         "legacy torch file whose magic number is a protocol-0 text LONG: the legacy layout"),
        ("legacy_magic_long4_payload_in_object.pt", legacy("magic_long4", "object"), "malicious",
         "LONG4 magic number, os.system in the object pickle"),
        ("legacy_pid_5_items.pt", legacy("pid_short"), "error",
         "legacy object pickle with a 5-item storage id: _legacy_load unpacks 6, ValueError"),
        ("zip_pid_6_items.pt", torchzip({"a": ("FloatStorage", "0", 4)}, pid_legacy=True), "error",
         "torch zip whose data.pkl has 6-item storage ids: the zip reader unpacks 5, ValueError"),
        ("zip_missing_version.pt", torchzip({"a": ("FloatStorage", "0", 4)}, version=False), "error",
         "torch zip without archive/version: PyTorchStreamReader requires it"),
        ("zip_two_level_prefix.pt", torchzip({"a": ("FloatStorage", "0", 4)}, pre="x/archive/"), "error",
         "entries under x/archive/: torch takes 'x' as the archive name and finds no x/data.pkl"),
        ("zip_plain_benign.pt", torchzip({"a": ("FloatStorage", "0", 4)}), "clean",
         "the look-alike torch loads: archive/ prefix, version, 5-item ids"),
        ("zip_key_reuse_dtype.pt", torchzip({"a": ("FloatStorage", "0", 4), "b": ("HalfStorage", "0", 8)}), "error",
         "storage '0' named as float then half: torch keeps the first storage for both"),
        ("legacy_key_twice_sizes.pt", legacy_key_twice(), "error",
         "legacy storage-key list names one key twice with 4 and 2 elements: torch.load fails (wrong size)"),
        ("xz_stream_padding.pkl.xz", lzma.compress(inner[:30]) + b"\0" * 4 + lzma.compress(inner[30:]), "error",
         "xz stream padding between streams: Python's lzma stops there, the pickle is truncated"),
        ("xz_two_streams_benign.pkl.xz", lzma.compress(inner[:30]) + lzma.compress(inner[30:]), "clean",
         "two xz streams back to back: Python's lzma reads both, one whole pickle"),
    ]
    manifest = {"samples": []}
    for name, data, expect, technique in samples:
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        manifest["samples"].append({"path": f"{SUB}/{name}", "expect": expect, "technique": technique,
                                    "source": "corpus/regress_layouts/make.py"})
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
