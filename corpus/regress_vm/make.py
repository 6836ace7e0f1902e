#!/usr/bin/env python3
"""Regression samples for the symbolic VM's exactness (issue "Clean must mean exact", class 3: the memo;
class 10: an archive inside a bytes value is no polyglot).

Writes the samples next to this script and manifest.json. Run with Debian's /usr/bin/python3;
`--check` also loads each sample with the real loader under an audit hook that refuses the
payload global, and asserts which globals the loader resolved (nothing unapproved runs).
"""
import io
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SUB = os.path.basename(HERE)
# A plain pickle that runs a harmless command: what torch.load's legacy path unpickles first.
PAYLOAD = b"cos\nsystem\n(S'echo brine-test'\ntR."
HARMLESS = b"\x80\x02K\x01."


def u32(v):
    return struct.pack("<I", v)


def binbytes(b):
    return b"B" + u32(len(b)) + b


def memo_skew(get_index):
    """PUT at sparse index 1100, 22 dense PUTs, a PUT at 1105 that makes the dense storage cover
    1100, then a re-PUT of 1100 (which _pickle.c does not count as a new entry), then MEMOIZE
    harmless bytes (index 24 in CPython) and MEMOIZE payload bytes (index 25), then
    torch.storage._load_from_bytes(GET get_index)."""
    p = b"\x80\x04K\x01r" + u32(1100) + b"0"
    for i in range(22):
        p += b"K\x00q" + bytes([i]) + b"0"
    p += b"K\x02r" + u32(1105) + b"0"  # grows the dense part over index 1100
    p += b"K\x03r" + u32(1100) + b"0"
    p += binbytes(HARMLESS) + b"\x94" + b"0"
    p += binbytes(PAYLOAD) + b"\x94" + b"0"
    p += b"ctorch.storage\n_load_from_bytes\n" + b"h" + bytes([get_index]) + b"\x85R."
    return p


def zip_in_bytes():
    import pickle
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "a zip the model carries as data")
        z.writestr("data.pkl", PAYLOAD)
    return pickle.dumps({"attachment": buf.getvalue(), "n": 1}, protocol=4)


def joblib_object_subarray():
    import joblib
    import numpy as np
    buf = io.BytesIO()
    joblib.dump({"t": np.zeros(2, dtype=[("a", "O", (2,))]), "o": np.array(["x", 1, None], dtype=object)}, buf, protocol=3)
    return buf.getvalue()


SAMPLES = [
    ("memo_straddle_skew_payload.pkl", memo_skew(25), "malicious", ["os.system"],
     "memo index that straddles dense/sparse storage: a re-PUT of a sparse index must not count a new "
     "entry, so MEMOIZE indices match _pickle.c; GET 25 hands payload bytes to torch.storage._load_from_bytes, "
     "whose torch.load runs the nested pickle (os.system)"),
    ("memo_straddle_skew_benign.pkl", memo_skew(24), "error", [],
     "the same memo program; GET 24 hands the harmless bytes to _load_from_bytes (benign look-alike): no code runs, "
     "but those bytes are a plain pickle, not a torch file, so the nested torch.load fails (malformed:nested-not-torch)"),
    ("benign_zip_in_bytes_value.pkl", zip_in_bytes(), "clean", [],
     "a dict holding a zip archive as a bytes value (class 10, false alarm): its directory is found near the end "
     "of the file, but no loader opens a pickle's value as an archive, so it is data, not a polyglot"),
    ("benign_joblib_object_subarray.joblib", joblib_object_subarray(), "clean", [],
     "joblib.dump of a structured array with an object sub-array field: its elements are ndarrays rebuilt by "
     "_reconstruct inside the ndarray's BUILD state (the state walk must accept approved numpy values there)"),
]


def check(path, expect_globals):
    import pickle  # noqa: F401
    import torch
    seen = []

    class Refused(Exception):
        pass

    def hook(event, args):
        if event == "pickle.find_class":
            seen.append(f"{args[0]}.{args[1]}")
            if args[0] in ("os", "posix", "nt", "subprocess", "builtins"):
                raise Refused(f"{args[0]}.{args[1]}")
    sys.addaudithook(hook)
    try:
        torch.load(path)
    except Refused:
        pass
    except Exception as e:  # the benign twin is no valid torch file: the loader fails after the harmless load
        seen.append(f"<{type(e).__name__}>")
    for g in expect_globals:
        assert g in seen or g.replace("os.", "posix.") in seen, (path, seen)
    return seen


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
    if "--check" in sys.argv:
        for name, _, _, must, _ in SAMPLES:
            print(name, check(os.path.join(HERE, name), must))


if __name__ == "__main__":
    main()
