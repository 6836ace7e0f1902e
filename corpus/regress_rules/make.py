#!/usr/bin/env python3
"""Regression samples for issue "Clean must mean exact", classes 4 (BUILD states on approved
objects) and 7 (packs approving by module prefix). Every payload here scanned clean before the
fix (with the default rules, or with the pack named in "with_packs"); the benign look-alikes must
stay clean. Run with Debian's /usr/bin/python3 from the repository root:

    /usr/bin/python3 corpus/regress_rules/make.py [--check]

--check loads each sample with the real pickle loader under an audit hook that records every
pickle.find_class and refuses anything outside collections/numpy/torch/sklearn/_codecs (no payload
here runs a command: they plant objects, or name a dangerous object the loader would hand over),
and prints what the loader resolved, which is how the techniques below were confirmed.
"""
import json
import os
import pickle
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = []


def s(text):
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def add(name, data, expect, technique, with_packs=None, note=""):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    entry = {"path": f"regress_rules/{name}", "expect": expect, "technique": technique, "source": "make.py"}
    if with_packs:
        entry["with_packs"] = with_packs
    if note:
        entry["note"] = note
    SAMPLES.append(entry)


P2 = b"\x80\x02"
OD = b"ccollections\nOrderedDict\n)R"
ENCODE = b"c_codecs\nencode\n" + s("x") + s("latin1") + b"\x86R"
REBUILD = b"ctorch._utils\n_rebuild_tensor_v2\n"


def main():
    # ---- class 4: BUILD states ----
    add("od_state_call.pkl", P2 + OD + b"}" + s("_metadata") + ENCODE + b"sb.", "unapproved",
        "BUILD on an approved OrderedDict whose state sets _metadata to the result of an approved call "
        "(old: the class alone approved the BUILD)")
    add("od_state_planted_callable.pkl", P2 + OD + b"}" + s("_metadata") + OD + b"s" + s("hook") + REBUILD + b"sb.",
        "unapproved", "OrderedDict state plants a callable attribute (torch._utils._rebuild_tensor_v2) that later code may call")
    add("od_slots_dunder_class.pkl", P2 + OD + b"N}" + s("__class__") + b"ctorch\nTensor\ns\x86b.", "malicious",
        "(None, slots) state: pickle's load_build setattr()s each slot item, so __class__ swaps the object's type "
        "(here the loader reaches setattr(od, '__class__', torch.Tensor) and raises on the layout; a compatible class is swapped)")
    add("od_state_dunder_reduce.pkl", P2 + OD + b"}" + s("__reduce_ex__") + REBUILD + b"sb.", "malicious",
        "a dunder key in the state dict replaces a protocol method of the instance")
    add("plain_reference_rebuild.pkl", P2 + b"}" + s("fn") + REBUILD + b"s.", "unapproved",
        "a global approved only to be called is returned as a value (reference was implied by any use)")
    # an object array whose elements include a callable: ndarray.__setstate__ puts it in the array
    dtype_o = b"cnumpy\ndtype\n" + s("O8") + b"\x89\x88\x87R(K\x03" + s("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb"
    arr = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + b"C\x01b" + b"\x87R"
           + b"(K\x01K\x02\x85" + dtype_o + b"\x89]" + b"(" + s("ok") + REBUILD + b"etb.")
    add("ndarray_object_state_global.pkl", P2 + arr, "unapproved",
        "an object array's state list carries a global into the array (state-value without approval)")
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n((" + s("storage") + b"ctorch\nFloatStorage\n" + s("0") + s("cpu")
              + b"K\x02tQK\x00K\x02\x85K\x01\x85\x89" + OD + b"tR")
    add("param_state_dunder_class.pkl", P2 + b"ctorch._utils\n_rebuild_parameter_with_state\n(" + tensor + b"\x89" + OD + b"}"
        + s("__class__") + b"K\x01stR.", "malicious",
        "torch's _set_obj_state setattr()s every key of a Parameter's Python state (argument 3): __class__ there")
    # look-alikes that must stay clean
    add("od_metadata_ok.pkl", P2 + OD + b"}" + s("_metadata") + OD + s("") + b"}" + s("version") + b"K\x01sssb" + s("w") + b"K\x01s.",
        "clean", "what torch's state_dict() writes: OrderedDict state {'_metadata': OrderedDict(...)}")
    arr_ok = arr.replace(REBUILD, s("fine"))
    add("ndarray_object_state_data.pkl", P2 + arr_ok, "clean", "object array whose state list holds only data")
    try:
        import numpy as np
        add("numpy_structured_p2.pkl", pickle.dumps(np.zeros(3, dtype=[("a", "<i4"), ("b", ">f8", (2,))]), protocol=2),
            "clean", "structured dtype with a subarray field: dtype 8-tuple state with fields and subarray")
        add("numpy_datetime_p4.pkl", pickle.dumps(np.array(["2020-01-01"], dtype="M8[D]"), protocol=4),
            "clean", "datetime dtype: 9-tuple state with datetime metadata")
    except ImportError:
        pass

    # ---- class 7: exact pack lists and re-exports ----
    reexport = (P2 + b"csklearn.linear_model._logistic\nLogisticRegression\n)\x81}" + s("C") + b"G?\xf0\x00\x00\x00\x00\x00\x00s"
                + s("_loss") + b"csklearn.utils._joblib\nload\nsb.")
    add("sklearn_state_reexport_joblib_load.pkl", reexport, "unapproved",
        "an estimator state plants sklearn.utils._joblib.load, which is joblib.load: the sklearn module entry "
        "approved it; brine now resolves it to joblib.numpy_pickle.load (denied)",
        with_packs={"sklearn": "malicious"})
    add("sklearn_private_submodule_class.pkl", P2 + b"csklearn.utils._testing\nTempMemmap\n)\x81}" + s("x") + b"K\x01sb.",
        "unapproved", "a class from a private sklearn submodule (test helper) is not an estimator: not in the exact list",
        with_packs={"sklearn": "unapproved"})
    add("torch_reexport_os_module.pkl", P2 + b"ctorch.nn.parallel.distributed\nos\n.", "unapproved",
        "torch.nn.parallel.distributed.os is the os module: the torch.nn.parallel module entry approved it as a "
        "plain name; brine now resolves it to os (denied)",
        with_packs={"torch-full-model": "malicious"})
    ok = P2 + b"csklearn.linear_model._logistic\nLogisticRegression\n)\x81}" + s("C") + b"G?\xf0\x00\x00\x00\x00\x00\x00s" + s("_sklearn_version") + s("1.2.1") + b"sb."
    add("sklearn_estimator_data_state.pkl", ok, "unapproved", "LogisticRegression with a data-only state",
        with_packs={"sklearn": "clean"})
    try:
        import io
        import torch
        buf = io.BytesIO()
        torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.GELU(), torch.nn.LayerNorm(2)), buf)
        add("torch_full_model_gelu_layernorm.pt", buf.getvalue(), "unapproved",
            "torch.save(model) of Linear, GELU, LayerNorm: exact classes with dict states",
            with_packs={"torch-full-model": "clean"})
    except ImportError:
        pass

    with open(os.path.join(HERE, "manifest.json"), "w") as f:
        json.dump({"generator": "corpus/regress_rules/make.py", "samples": SAMPLES}, f, indent=1)
        f.write("\n")


ALLOWED_PREFIXES = ("collections", "numpy", "torch", "sklearn", "_codecs", "copyreg", "builtins")


def check():
    """Loads each sample under an audit hook (never runs a payload: nothing here calls anything
    outside the allowed prefixes, and the hook refuses any other import)."""
    resolved = []

    def hook(event, args):
        if event == "pickle.find_class":
            module, name = args
            if not module.startswith(ALLOWED_PREFIXES):
                raise RuntimeError(f"refused {module}.{name}")
            resolved.append(f"{module}.{name}")

    sys.addaudithook(hook)
    import importlib
    for entry in json.load(open(os.path.join(HERE, "manifest.json")))["samples"]:
        path = os.path.join(os.path.dirname(HERE), entry["path"])
        if not path.endswith(".pkl"):
            continue
        resolved.clear()
        try:
            obj = pickle.load(open(path, "rb"))
            what = type(obj).__name__
            extra = {k: type(v).__name__ for k, v in vars(obj).items()} if hasattr(obj, "__dict__") else ""
        except Exception as e:  # noqa: BLE001
            what, extra = f"raised {type(e).__name__}: {e}", ""
        canon = []
        for g in resolved:
            m, _, n = g.rpartition(".")
            try:
                o = getattr(importlib.import_module(m), n)
                canon.append(f"{g} -> {getattr(o, '__module__', '?')}.{getattr(o, '__qualname__', getattr(o, '__name__', '?'))}")
            except Exception:  # noqa: BLE001
                canon.append(g)
        print(f"{entry['path']}: {what} {extra} | {'; '.join(canon)}")


if __name__ == "__main__":
    if "--check" in sys.argv:
        check()
    else:
        main()
