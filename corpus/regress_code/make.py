#!/usr/bin/env python3
"""Regression samples for two "clean must mean exact" classes (corpus/regress_code/).

TorchScript spellings (class 8): a real torch.jit.save archive made with torch 1.13, whose
code/ member is rewritten to a spelling of torch.save in __setstate__ that a line matcher
missed or downgraded. Each rewritten archive is loaded with torch.jit.load here to confirm torch
compiles it and the write happens; the write goes to /tmp/brine-test-ts-write.pt and is removed.
Benign look-alikes (the names only in strings and comments) must not be reported as file writes.

Nested loader bytes (class 5): torch.storage._load_from_bytes(_codecs.encode(s)) where the
UTF-8 encoding of s (CPython's default) is a pickle calling os.system('echo brine-test') and the
latin-1 reading is harmless. Confirmed in a child process under an audit hook that raises when
pickle's find_class is asked for os.system, so the payload never runs.

Usage:  /usr/bin/python3 corpus/regress_code/make.py   (Debian's python3-torch 1.13)
Writes the samples and manifest.json next to this script. Only benign_tensor_pickle_p2.pkl differs
between runs (torch names a pickled storage by its address).
"""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SUB = os.path.basename(HERE)
WRITE_TARGET = "/tmp/brine-test-ts-write.pt"
SOURCE = "corpus/regress_code/make.py"

# ------------------------------------------------------------------ TorchScript

SETSTATE_HEAD = '''class M(Module):
  __parameters__ = []
  __buffers__ = []
  training : bool
  _is_full_backward_hook : Optional[bool]
  w : Tensor
  def forward(self: __torch__.M,
    x: Tensor) -> Tensor:
    return x
  def __getstate__(self: __torch__.M) -> Tuple[Tensor, bool]:
    w = self.w
    training = self.training
    return (w, training)
  def __setstate__(self: __torch__.M,
    state: Tuple[Tensor, bool]) -> NoneType:
    self.w = (state)[0]
    self.training = (state)[1]
    w = self.w
'''
TAIL = "    return None\n"

TS_SAMPLES = [
    # name, body in __setstate__, writes, technique
    ("ts_spaces", '    torch . save  (w, "PATH")\n', True, "spaces around the dot and before the parenthesis"),
    ("ts_name_split_in_brackets", '    _0 = (torch.\n      save)(w, "PATH")\n', True, "the dotted name split over two lines inside brackets"),
    ("ts_backslash", '    torch\\\n.save(w, "PATH")\n', True, "backslash line continuation inside the name"),
    ("ts_comment_in_call", '    torch.save( # torch.add\n      w, "PATH")\n', True, "a comment inside the call, arguments on the next line"),
    ("ts_autograd", '    torch.autograd.save(w, "PATH")\n', True, "torch.autograd resolves to the aten module again: aten::save"),
    ("ts_ops_autograd", '    ops.prim.autograd.save(w, "PATH")\n', True, "any namespace's autograd is aten: ops.prim.autograd.save is aten::save"),
    ("ts_alias_module", '    o = ops.aten\n    o.save(w, "PATH")\n', True, "a local holding the aten namespace"),
    ("ts_alias_chain", '    a = ops\n    b : Any = (a.aten)\n    b.save(w, "PATH")\n', True, "a chain of locals, annotated and parenthesized"),
    ("ts_getattr", '    getattr(getattr(ops, "aten"), "sa" "ve")(w, "PATH")\n', True, "getattr with literal names, concatenated"),
    ("ts_fork", '    fut = fork(torch.save, w, "PATH")\n    _1 = torch.wait(fut)\n', True, "the operator passed to fork, never followed by '('"),
    ("ts_after_triple_quote", '    s = """a " """\n    torch.save(w, "PATH")\n', True, "a triple-quoted string with a quote inside, before the call"),
    ("benign_ts_string_lookalike", '    s = "torch.save(w, \'PATH\')"\n    t = \'ops.aten.save\'\n', False, "the names only inside string literals"),
    ("benign_ts_comment_lookalike", '    # torch.save(w, "PATH")\n    s = """\n    torch.save(w, "PATH")\n    """\n', False, "the call only in a comment and a triple-quoted string"),
]

HELPER_CODE = SETSTATE_HEAD.replace("  def __setstate__", '''  def helper(self: __torch__.M,
    w: Tensor) -> NoneType:
    torch.save(w, "PATH")
    return None
  def __setstate__''') + "    _0 = (self).helper(w, )\n" + TAIL


def base_archive():
    import torch
    from typing import Tuple

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.ones(2)

        def forward(self, x):
            return x

        @torch.jit.export
        def __getstate__(self):
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state: Tuple[torch.Tensor, bool]):
            self.w = state[0]
            self.training = state[1]

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(M()), buf)
    return buf.getvalue()


HELPER_MODULE = f'''import torch
def helper(w: torch.Tensor) -> None:
    torch.save(w, "{WRITE_TARGET}")
'''


def cross_file_archive():
    """__setstate__ calls a function that torch.jit.save puts in another code file."""
    import torch
    from typing import Tuple
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "brine_ts_helpers.py"), "w") as f:
            f.write(HELPER_MODULE)
        sys.path.insert(0, d)
        try:
            import brine_ts_helpers
        finally:
            sys.path.remove(d)

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.w = torch.ones(2)

            def forward(self, x):
                return x

            @torch.jit.export
            def __getstate__(self):
                return (self.w, self.training)

            @torch.jit.export
            def __setstate__(self, state: Tuple[torch.Tensor, bool]):
                self.w = state[0]
                self.training = state[1]
                brine_ts_helpers.helper(self.w)

        m = torch.jit.script(M())
        if os.path.exists(WRITE_TARGET):
            os.remove(WRITE_TARGET)
        buf = io.BytesIO()
        torch.jit.save(m, buf)
    names = zipfile.ZipFile(io.BytesIO(buf.getvalue())).namelist()
    assert any(n.endswith("code/__torch__/brine_ts_helpers.py") for n in names), names
    return buf.getvalue()


def rewrite(base, code):
    zin = zipfile.ZipFile(io.BytesIO(base))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zo:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("code/__torch__.py"):
                data = code.encode()
            zo.writestr(info, data)
    return out.getvalue()


def confirm_ts(data, writes):
    import torch
    if os.path.exists(WRITE_TARGET):
        os.remove(WRITE_TARGET)
    torch.jit.load(io.BytesIO(data))
    wrote = os.path.exists(WRITE_TARGET)
    if wrote:
        os.remove(WRITE_TARGET)
    if wrote != writes:
        sys.exit(f"torch.jit.load {'did not write' if writes else 'wrote'} the file")


# ------------------------------------------------------------------ nested bytes

def two_faced_text():
    """UTF-8: SHORT_BINBYTES of 0xC3 bytes, then the payload. latin-1: of 0xFF bytes, then None."""
    payload = "0cos\nsystem\n(S'echo brine-test'\ntR."
    s = "C\u00ff" + "A" * 194 + payload
    s += "A" * (257 - len(s)) + "0N."
    assert s.encode("utf-8")[197:197 + len(payload)] == payload.encode()
    return s


def load_from_encoded(text, encoding=None):
    def binunicode(t):
        b = t.encode("utf-8", "surrogatepass")
        return b"X" + struct.pack("<I", len(b)) + b
    p = b"\x80\x02ctorch.storage\n_load_from_bytes\nc_codecs\nencode\n" + binunicode(text)
    if encoding is not None:
        p += binunicode(encoding) + b"\x86"
    else:
        p += b"\x85"
    return p + b"R\x85R."


HOOK_CHILD = r'''
import sys, pickle
class Stop(Exception): pass
def hook(event, args):
    if event == "pickle.find_class" and args[0] in ("os", "posix", "nt"):
        raise Stop(f"{args[0]}.{args[1]}")
sys.addaudithook(hook)
import torch
try:
    pickle.loads(sys.stdin.buffer.read())
except Stop as e:
    print("RESOLVES", e)
except Exception as e:
    print("FAILS", type(e).__name__)
else:
    print("LOADS")
'''


def confirm_pickle(data, expect):
    out = subprocess.run([sys.executable, "-c", HOOK_CHILD], input=data, stdout=subprocess.PIPE, check=True).stdout.decode()
    if not out.startswith(expect):
        sys.exit(f"under the audit hook: {out!r}, expected {expect}")


def main():
    samples = []

    def add(name, data, expect, technique, **extra):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        samples.append(dict(path=f"{SUB}/{name}", expect=expect, technique=technique, source=SOURCE, **extra))

    base = base_archive()
    for name, body, writes, technique in TS_SAMPLES:
        data = rewrite(base, SETSTATE_HEAD + body.replace("PATH", WRITE_TARGET) + TAIL)
        confirm_ts(data, writes)
        # Every TorchScript archive is at least unapproved (its code runs); a write in __setstate__ is malicious.
        add(name + ".pt", data, "malicious" if writes else "unapproved",
            ("torch.save in __setstate__ spelled with " if writes else "benign look-alike: ") + technique)
    data = rewrite(base, HELPER_CODE.replace("PATH", WRITE_TARGET))
    confirm_ts(data, True)
    add("ts_setstate_calls_helper.pt", data, "malicious", "__setstate__ calls a method of its class that calls torch.save")
    data = cross_file_archive()
    confirm_ts(data, True)
    add("ts_setstate_calls_other_file.pt", data, "malicious",
        "__setstate__ calls a function that torch.jit.save writes to another code file, which calls torch.save")

    s = two_faced_text()
    data = load_from_encoded(s)
    confirm_pickle(data, "RESOLVES os.system")
    add("nested_codecs_encode_default_utf8.pkl", data, "malicious",
        "torch.storage._load_from_bytes(_codecs.encode(s)): one argument encodes UTF-8, whose reading calls os.system; "
        "the latin-1 reading is harmless", must_report=["os.system"])
    data = load_from_encoded(s, "latin1")
    confirm_pickle(data, "FAILS")  # the nested torch.load reads None, not a magic number
    add("benign_nested_codecs_encode_latin1.pkl", data, "error",
        "the same text encoded latin-1 as protocol 2 writes bytes: the harmless reading; the nested bytes are a "
        "plain pickle, not a torch file, so the nested torch.load fails after it (malformed:nested-not-torch)")
    data = load_from_encoded("N.\u0100", "latin1")
    confirm_pickle(data, "FAILS")
    add("nested_codecs_encode_unencodable.pkl", data, "unapproved",
        "latin-1 cannot encode U+0100: the bytes cannot be computed, so the file cannot be clean")
    data = (b"\x80\x02ctorch.storage\n_load_from_bytes\nc_codecs\nencode\nT\x04\x00\x00\x00N.\xc3\xa9"
            b"X\x06\x00\x00\x00latin1\x86R\x85R.")
    add("nested_binstring_nonascii.pkl", data, "unapproved",
        "_codecs.encode of a non-ASCII BINSTRING: its str depends on the unpickler's encoding")
    import torch
    data = pickle.dumps(torch.ones(3), protocol=2)
    confirm_pickle(data, "LOADS")
    add("benign_tensor_pickle_p2.pkl", data, "clean", "pickle.dumps(tensor, protocol=2): a storage as _load_from_bytes(_codecs.encode(s, 'latin1'))")

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump({"samples": samples}, f, indent=1)
        f.write("\n")
    print(f"{len(samples)} samples")


if __name__ == "__main__":
    main()
