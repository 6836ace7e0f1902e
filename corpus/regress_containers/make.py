#!/usr/bin/env python3
"""Regression samples for container recognition (brine issue "Clean must mean exact", classes 6,
11, 12 and 10b). Each payload layout scanned clean (or was not recognised) before the fix; each
benign look-alike must stay clean.

    python3 corpus/regress_containers/make.py            # write the samples and manifest.json
    python3 corpus/regress_containers/make.py --verify   # also confirm each payload is reached by
                                                         # the real loader (Debian torch 1.13,
                                                         # joblib, gzip/lzma + pickle)

--verify never runs a payload: an audit hook raises on pickle.find_class('os', 'system') before the
global resolves, and the sample counts as "reached" only when that hook fired.
"""
import bz2
import gzip
import io
import json
import lzma
import os
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import make_containers as mc  # noqa: E402  (pickle opcode helpers and the torch 0.1.x tar members)

SUB = "regress_containers"
PAYLOAD_P0 = mc.PAYLOAD_P0          # protocol 0 os.system('echo brine-test'), 35 bytes
PAYLOAD = mc.PAYLOAD                # protocol 2 os.system('echo brine-test')


# --------------------------------------------------------------------------- tar headers by hand
def tar_header(name, size, typeflag=b"0", linkname=b"", ustar=False, size_field=None, prefix=b""):
    """One 512-byte header. ustar=False writes a v7 header (no magic): Python's tarfile checks only
    the checksum, libarchive's ustar sniff (and brine's old sniff) needs the magic."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field if size_field is not None else b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = typeflag
    h[157:157 + len(linkname)] = linkname
    if ustar:
        h[257:265] = b"ustar\x0000"
    h[345:345 + len(prefix)] = prefix
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % (sum(h))
    return bytes(h)


def pad(data):
    return data + b"\0" * (-len(data) % 512)


def tar_members(members, ustar=False, end=True):
    out = b"".join(tar_header(n.encode(), len(d), ustar=ustar) + pad(d) for n, d in members)
    return out + (b"\0" * 1024 if end else b"")


def legacy_members(pickle_member=None):
    return [(n, d) for n, d in mc.tar_legacy_members(pickle_member)]


def payload_pickle_member():
    """The 'pickle' member with the payload before the real state (it still returns the state)."""
    return mc.proto(2) + mc.os_system_call() + mc.POP + mc.p2(mc.od((mc.xu("weight"), mc.xu(str(mc.TAR_TENSOR_KEY)) + mc.BINPERSID)))[2:]


# --------------------------------------------------------------------------- samples
SAMPLES = []


def add(name, data, expect, technique, loader, note, verify=None):
    assert len(data) < 200_000, name
    SAMPLES.append(dict(name=name, data=data, expect=expect, technique=technique, loader=loader, note=note, verify=verify))


def tar_v7_polyglot():
    """v7 tar (no ustar magic) whose first header's name field starts a protocol 2 pickle: BINBYTES
    that swallows the whole archive, then STOP as the file's last byte. pickle.load reads one
    harmless bytes object; tarfile (torch.load's first attempt) reads the members."""
    members = legacy_members(payload_pickle_member())
    body = b"".join(tar_header(n.encode(), len(d)) + pad(d) for n, d in members) + b"\0" * 1024
    # first member: a dummy whose name field starts with "\x80\x02B" + the 4-byte length (tarfile's
    # name ends at the first NUL; the header bytes stay what pickle reads).
    total = 512 + len(body) + 1                        # header + body + STOP
    first = tar_header(b"\x80\x02B" + struct.pack("<I", total - 8), 0)
    return first + body + b"."


def legacy_stream_that_is_a_tar(pickle_member):
    """A legacy torch stream (magic number, protocol, sys_info, object, keys, storages) whose first
    512 bytes are also a tar header with a valid checksum: sys_info is a bytes object (torch
    ignores it) whose contents are the rest of that header and a whole torch 0.1.x tar. brine
    recognised the magic number and read the five pickles; torch.load tries tarfile first."""
    head = mc.legacy_magic() + mc.legacy_protocol()
    tar_rest = b"".join(tar_header(n.encode(), len(d)) + pad(d) for n, d in legacy_members(pickle_member)) + b"\0" * 1024
    opener = b"\x80\x02B"
    start = len(head) + len(opener) + 4                # where the bytes object's contents begin
    total_in_bytes = 512 - start + len(tar_rest)
    block = bytearray(head + opener + struct.pack("<I", total_in_bytes) + b"\0" * (512 - start))
    # the header fields tarfile parses, inside the bytes object
    block[100:108] = b"0000644\0"
    block[108:124] = b"0000000\0" * 2
    block[124:136] = b"00000000000\0"
    block[136:148] = b"00000000000\0"
    block[156:157] = b"0"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    sys_info_end = b"."
    return bytes(block) + tar_rest + sys_info_end + mc.legacy_object() + mc.legacy_keys() + mc.LEGACY_STORAGES


def tar_hardlink_hides_pickle():
    """A hard-link entry whose size field is non-zero: libarchive reads that many bytes as the
    link's data, tarfile skips nothing for link entries and reads them as the next headers: a
    second 'pickle' member (v7 header) that only tarfile sees, and tarfile's getmember takes the
    last member of a name."""
    benign = legacy_members()
    visible = b"".join(tar_header(n.encode(), len(d), ustar=True) + pad(d) for n, d in benign)
    hidden_data = payload_pickle_member()
    hidden = tar_header(b"pickle", len(hidden_data)) + pad(hidden_data)
    link = tar_header(b"link", len(hidden), typeflag=b"1", linkname=b"sys_info", ustar=True)
    return visible + link + hidden + b"\0" * 1024


def tar_unknown_type_pickle():
    """'pickle' stored with type flag 'Z': tarfile reads unknown types as regular files."""
    members = legacy_members(payload_pickle_member())
    out = b""
    for n, d in members:
        out += tar_header(n.encode(), len(d), ustar=True, typeflag=b"Z" if n == "pickle" else b"0") + pad(d)
    return out + b"\0" * 1024


def tar_size_python_int():
    """The 'pickle' member's size written as '0o...' (Python's int(x, 8) reads it, libarchive's
    octal parser stops at 'o' and reads 0): the member's data, and where the next header is,
    differ between the two readers."""
    members = legacy_members(payload_pickle_member())
    out = b""
    for n, d in members:
        sf = (b"0o%o" % len(d)).ljust(11, b" ") + b"\0" if n == "pickle" else None
        out += tar_header(n.encode(), len(d), ustar=True, size_field=sf) + pad(d)
    return out + b"\0" * 1024


def lzma_alone(data, props_byte=None, dict_size=None):
    raw = lzma.compress(data, format=lzma.FORMAT_ALONE,
                        filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16, "lc": 0, "lp": 0, "pb": 0}])
    raw = bytearray(raw)
    if props_byte is not None:
        assert raw[0] == 0
    if dict_size is not None:
        raw[1:5] = struct.pack("<I", dict_size)
    return bytes(raw)


def lzma_alone_default_props(data, dict_size):
    raw = bytearray(lzma.compress(data, format=lzma.FORMAT_ALONE,
                                  filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 1 << 12}]))
    raw[1:5] = struct.pack("<I", dict_size)
    return bytes(raw)


def joblib_zf(data, hexfield, space):
    return b"ZF" + hexfield.ljust(19, b" ") + (b" " if space else b"") + zlib.compress(data)


def gzip_padded(parts):
    return (b"\0" * 512).join(gzip.compress(p, mtime=0) for p in parts)


def py_tar(members, fmt, pax_headers=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, pax_headers=pax_headers) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = len(data), 0, 0o644, 0, 0, "", ""
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def npz_after_eocd():
    hdr = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    hdr = hdr + " " * (64 - 10 - len(hdr) - 1) + "\n"
    npy = b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode() + PAYLOAD
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("arr.npy", (1980, 1, 1, 0, 0, 0)), npy)
    return b"PK\x05\x06" + bytes(18) + buf.getvalue()


def build():
    add("payload_tar_v7_bytes_pickle_polyglot.pt", tar_v7_polyglot(), "malicious",
        "v7 tar (no ustar magic; tarfile checks only the checksum) of a torch 0.1.x checkpoint whose first "
        "header starts a protocol 2 pickle that reads the whole file as one bytes object",
        "torch.load", "old brine: no 'ustar' magic -> not a tar -> the file is a harmless pickle -> clean; "
        "torch.load tries tarfile first and unpickles the 'pickle' member", "torch")
    add("payload_legacy_stream_first_block_is_tar.pt", legacy_stream_that_is_a_tar(payload_pickle_member()), "malicious",
        "legacy torch stream (magic number first) whose first 512 bytes are a valid tar header; the tar's "
        "'pickle' member carries the payload, the five stream pickles are benign", "torch.load",
        "old brine: legacy magic -> five benign pickles -> clean; torch.load opens it with tarfile first", "torch")
    add("polyglot_benign_legacy_stream_first_block_is_tar.pt", legacy_stream_that_is_a_tar(None), "malicious",
        "the same file with a benign tar: both readings are benign, but the file is a tar/pickle polyglot",
        "torch.load", "a stream that is also a tar is evasion:polyglot whatever it holds (the tar and the stream "
        "are different files to different readers)", "torch-benign")
    add("benign_tar_v7_legacy_state_dict.pt", tar_members(legacy_members()), "clean",
        "torch 0.1.x tar checkpoint with v7 headers (no ustar magic)", "torch.load",
        "old brine: not recognised (error); torch.load reads it as a tar", "torch-benign")
    add("payload_tar_hardlink_data_hides_pickle.pt", tar_hardlink_hides_pickle(), "malicious",
        "hard-link entry with a size: libarchive reads its 'data', tarfile reads those bytes as headers "
        "(a second 'pickle', which getmember prefers as the last of that name)", "torch.load",
        "old brine read the tar with libarchive only: the hidden 'pickle' is link data to it", "torch")
    add("payload_tar_unknown_typeflag_pickle.pt", tar_unknown_type_pickle(), "malicious",
        "'pickle' member with type flag 'Z', which tarfile reads as a regular file", "torch.load",
        "readers that skip non-regular entries never see the member torch unpickles", "torch")
    add("payload_tar_size_0o_octal_prefix.pt", tar_size_python_int(), "malicious",
        "'pickle' member size written '0o...' (Python int(x, 8) accepts it; C octal parsers read 0)",
        "torch.load", "libarchive and tarfile disagree on the member's data and on the next header", "torch")
    state = pickle.dumps({"w": [1.0, 2.0]}, protocol=2)
    add("benign_tar_gnu_longname_pickle.tar", py_tar([("d/" + "x" * 150 + ".pkl", state)], tarfile.GNU_FORMAT), "clean",
        "GNU-format tar with a 150-character member name (an 'L' longname header)", "tarfile / GNU tar",
        "both tar readings agree: must stay clean", None)
    add("benign_tar_pax_global_header_pickle.tar", py_tar([("a.pkl", state)], tarfile.PAX_FORMAT, {"comment": "brine"}),
        "clean", "pax tar with a global header (a comment, as git archive writes)", "tarfile / GNU tar",
        "a global header that renames nothing: must stay clean", None)
    add("payload_npz_after_leading_eocd_record.npz", npz_after_eocd(), "malicious",
        "an end-of-central-directory record, then an npz whose object array is the payload pickle",
        "numpy.load(allow_pickle=True)", "numpy.load takes PK\\x05\\x06 as a zip; zipfile finds the real directory "
        "from the end (old brine found it only as a polyglot of an unknown file)", "numpy")
    payload_state = PAYLOAD[:-1] + b"0" + state[2:]   # os.system(...) POP, then the state
    add("payload_lzma_alone_lc0_lp0_pb0.pkl.lzma", lzma_alone(payload_state, props_byte=0), "malicious",
        ".lzma (lzma-alone) with properties lc=0 lp=0 pb=0 (byte 0x00)", "lzma.open + pickle.load (pandas.read_pickle)",
        "old brine knew only the properties byte 0x5d", "lzma")
    add("payload_joblib_lzma_dict_2kib.pkl", lzma_alone_default_props(payload_state, 1 << 11), "malicious",
        ".lzma with the 0x5d properties and a 2 KiB dictionary (liblzma's .lzma check accepts 2^n)", "joblib.load",
        "old brine accepted dictionaries from 4 KiB; joblib detects the b'\\x5d\\x00' prefix and lzma accepts it", "joblib")
    add("payload_joblib_zf_hex_without_0x_space.pkl", joblib_zf(payload_state, b"%x" % len(payload_state), True),
        "malicious", "joblib < 0.10 ZF header with the length in hex without '0x' and a space before the zlib stream",
        "joblib.load", "read_zfile parses int(header, 16) and skips one space; old brine wanted 'ZF0x' and zlib at 21", "joblib")
    half = len(payload_state) // 2
    add("payload_gzip_nul_padding_between_members.pkl.gz", gzip_padded([payload_state[:half], payload_state[half:]]),
        "malicious", "two gzip members with 512 NUL bytes between them, the pickle split across them",
        "gzip.open + pickle.load (pandas.read_pickle)",
        "Python's gzip skips NUL padding between members; old brine stopped at the padding", "gzip")
    add("benign_gzip_nul_padding_between_members.pkl.gz", gzip_padded([state[:10], state[10:]]) + b"\0" * 100,
        "clean", "benign pickle split over two gzip members with NUL padding (and trailing padding)",
        "gzip.open + pickle.load", "must stay clean", "gzip-benign")
    empty_npz = io.BytesIO()
    import numpy
    numpy.savez(empty_npz)
    add("benign_npz_empty_eocd_only.npz", empty_npz.getvalue(), "clean",
        "numpy.savez() with no arrays: the file is only an end-of-central-directory record",
        "numpy.load", "numpy.load checks for PK\\x03\\x04 or PK\\x05\\x06; old brine reported not-a-pickle", None)
    zeros = pickle.dumps(bytes(100_000_000), protocol=3)
    add("benign_pickle_100mb_zeros.pkl.xz", lzma.compress(zeros), "clean",
        "pickle of 100 MB of zeros, xz (ratio ~7,000:1)", "lzma.open + pickle.load",
        "old brine: limit:max-compression-ratio (a bomb); one layer is bounded by the absolute budget only", None)
    add("benign_pickle_100mb_zeros.pkl.bz2", bz2.compress(zeros), "clean",
        "pickle of 100 MB of zeros, bzip2 (ratio ~700,000:1)", "bz2.open + pickle.load",
        "as above", None)


# --------------------------------------------------------------------------- verification
class Reached(Exception):
    pass


def hook(event, args):
    if event == "pickle.find_class" and args[0] in ("os", "posix") and args[1] == "system":
        raise Reached(f"{args[0]}.{args[1]}")


def verify(path, how):
    """True if the loader reaches os.system (the hook stops it first); False if it loads without."""
    try:
        if how in ("torch", "torch-benign"):
            import torch
            torch.load(path)
        elif how == "joblib":
            import joblib
            joblib.load(path)
        elif how in ("gzip", "gzip-benign"):
            with gzip.open(path) as f:
                pickle.load(f)
        elif how == "numpy":
            import numpy
            numpy.load(path, allow_pickle=True)["arr"]
        elif how == "lzma":
            with lzma.open(path) as f:
                pickle.load(f)
        else:
            return None
    except Reached:
        return True
    except Exception as e:  # noqa: BLE001
        return f"failed: {type(e).__name__}: {e}"
    return False


def main():
    build()
    manifest = {"samples": []}
    for s in SAMPLES:
        with open(os.path.join(HERE, s["name"]), "wb") as f:
            f.write(s["data"])
        manifest["samples"].append({"path": f"{SUB}/{s['name']}", "expect": s["expect"], "with_packs": {},
                                    "must_report": ["os.system"] if s["name"].startswith("payload_") else [],
                                    "technique": s["technique"], "source": "regress_containers/make.py",
                                    "loader": s["loader"], "note": s["note"]})
    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    if "--verify" in sys.argv:
        sys.addaudithook(hook)
        bad = 0
        for s in SAMPLES:
            if not s["verify"]:
                continue
            r = verify(os.path.join(HERE, s["name"]), s["verify"])
            want = not s["verify"].endswith("-benign")
            ok = r is want
            bad += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {s['name']}: {'payload reached' if r is True else 'loaded without payload' if r is False else r}")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
