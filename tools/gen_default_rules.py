#!/usr/bin/env python3
"""Writes rules/default.json. The default set approves exactly what a plain PyTorch or numpy
weights file needs (docs/rules.md). Kept as a generator because the torch dtype, storage and
numpy module-spelling lists are long and regular; review the generated diff like any data change.
"""
import json
import sys

INT_TUPLE = {"type": "tuple", "of": {"type": "int"}}
HOOKS = {"type": "one_of", "options": [
    {"type": "call", "names": ["collections.OrderedDict"], "empty": True},
    {"type": "dict", "max_len": 0},
    {"type": "none"},
]}
# A storage is a persistent id (torch.save), or torch.storage._load_from_bytes(b'...') when the
# tensor was pickled with plain pickle (the bytes are a whole torch.save file, scanned in place).
STORAGE = {"type": "one_of", "options": [{"type": "persistent_id"},
                                         {"type": "call", "names": ["torch.storage._load_from_bytes"]}]}
TORCH_DTYPES = [
    "float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
    "complex128", "complex64", "complex32", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
    "float4_e2m1fn_x2", "uint16", "uint32", "uint64", "bits8", "bits16", "bits1x8", "bits2x4", "bits4x2",
    "uint1", "uint2", "uint3", "uint4", "uint5", "uint6", "uint7",
    "int1", "int2", "int3", "int4", "int5", "int6", "int7",
]
DTYPE = {"type": "global", "names": [f"torch.{d}" for d in TORCH_DTYPES]}
STORAGE_CLASSES = [
    "DoubleStorage", "FloatStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage",
    "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage",
    "ComplexDoubleStorage", "QInt8Storage", "QUInt8Storage", "QInt32Storage", "QUInt4x2Storage",
    "QUInt2x4Storage",
]
QSCHEMES = ["per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
            "per_channel_symmetric", "per_channel_affine_float_qparams"]
REBUILDS = ["_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
            "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
            "_rebuild_sparse_csr_tensor", "_rebuild_meta_tensor_no_storage", "_rebuild_nested_tensor",
            "_rebuild_device_tensor_from_numpy", "_rebuild_xla_tensor",
            "_rebuild_device_tensor_from_cpu_tensor", "_rebuild_wrapper_subclass"]
TENSOR = {"type": "call", "names": [f"torch._utils.{r}" for r in REBUILDS] + ["torch._tensor._rebuild_from_type_v2"]}
NUMPY_CORES = ["numpy.core", "numpy._core"]

def allow(target, use, note, args=None, result=None, module=False, state=None, state_arg=None):
    entry = {"module" if module else "global": target, "use": use}
    if args is not None:
        entry["args"] = args
    if state is not None:
        entry["state"] = state
    if state_arg is not None:
        entry["state_arg"] = state_arg
    if result is not None:
        entry["result"] = result
    entry["note"] = note
    return entry

def torch_rules():
    out = []
    a = out.append
    # OrderedDict.__reduce__ gives vars(self) as the state (None when empty, and then no BUILD);
    # the only attribute torch's state_dict() sets is _metadata, itself an OrderedDict
    # (torch/nn/modules/module.py: destination._metadata = OrderedDict()).
    a(allow("collections.OrderedDict", ["call", "build", "setitem"],
            "state_dict container; BUILD sets its _metadata attribute",
            {"max": 1, "items": [{"type": "one_of", "options": [{"type": "list"}, {"type": "tuple"}, {"type": "dict"}]}]},
            state={"shapes": ["dict"], "keys": ["_metadata"],
                   "items": {"_metadata": {"type": "call", "names": ["collections.OrderedDict"]}}}))
    a(allow("torch._utils._rebuild_tensor_v2", ["call"],
            "dense tensor: (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])",
            {"min": 6, "max": 7, "items": [STORAGE, {"type": "int"}, INT_TUPLE, INT_TUPLE, {"type": "bool"}, HOOKS,
                                           {"type": "one_of", "options": [{"type": "dict", "keys": {"type": "str"}, "of": {"type": "bool"}}, {"type": "none"}]}]}))
    a(allow("torch._utils._rebuild_tensor_v3", ["call"],
            "torch >= 2.1 tensors of the new dtypes: (untyped storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])",
            {"min": 7, "max": 8, "items": [STORAGE, {"type": "int"}, INT_TUPLE, INT_TUPLE, {"type": "bool"}, HOOKS, DTYPE,
                                           {"type": "one_of", "options": [{"type": "dict", "keys": {"type": "str"}, "of": {"type": "bool"}}, {"type": "none"}]}]}))
    a(allow("torch._utils._rebuild_tensor", ["call"], "pre-1.0 tensors: (storage, offset, size, stride)",
            {"min": 4, "max": 4, "items": [STORAGE, {"type": "int"}, INT_TUPLE, INT_TUPLE]}))
    a(allow("torch._utils._rebuild_parameter", ["call"], "nn.Parameter: (tensor, requires_grad, hooks)",
            {"min": 3, "max": 3, "items": [TENSOR, {"type": "bool"}, HOOKS]}))
    a(allow("torch._utils._rebuild_parameter_with_state", ["call"],
            "Parameter with Python attributes: (tensor, requires_grad, hooks, state)",
            {"min": 4, "max": 4, "items": [TENSOR, {"type": "bool"}, HOOKS,
                                           {"type": "one_of", "options": [{"type": "dict", "keys": {"type": "str"}}, {"type": "tuple", "max_len": 2}, {"type": "none"}]}]},
            state_arg="arg3"))
    a(allow("torch._utils._rebuild_qtensor", ["call"],
            "quantized tensor: (storage, offset, size, stride, (qscheme, scale(s), zero point(s)[, axis]), requires_grad, hooks)",
            {"min": 7, "max": 7, "items": [STORAGE, {"type": "int"}, INT_TUPLE, INT_TUPLE,
                                           {"type": "tuple", "max_len": 4, "of": {"type": "one_of", "options": [
                                               {"type": "global", "names": [f"torch.{q}" for q in QSCHEMES]},
                                               {"type": "number"}, TENSOR]}},
                                           {"type": "bool"}, HOOKS]}))
    layout = {"type": "one_of", "options": [{"type": "call", "names": ["torch.serialization._get_layout"]},
                                            {"type": "global", "names": ["torch.sparse_coo", "torch.sparse_csr", "torch.sparse_csc", "torch.sparse_bsr", "torch.sparse_bsc", "torch.strided"]}]}
    sparse_part = {"type": "one_of", "options": [TENSOR, {"type": "call", "names": ["torch.Size"]}, INT_TUPLE, {"type": "bool"}]}
    a(allow("torch._utils._rebuild_sparse_tensor", ["call"], "sparse COO/CSR/CSC/BSR/BSC: (layout, (components...))",
            {"min": 2, "max": 2, "items": [layout, {"type": "tuple", "max_len": 5, "of": sparse_part}]}))
    a(allow("torch._utils._rebuild_sparse_csr_tensor", ["call"], "torch 1.x sparse CSR: (layout, (crow, col, values, size))",
            {"min": 2, "max": 2, "items": [layout, {"type": "tuple", "max_len": 4, "of": sparse_part}]}))
    a(allow("torch._utils._rebuild_meta_tensor_no_storage", ["call"], "meta tensor, no data: (dtype, size, stride, requires_grad)",
            {"min": 4, "max": 4, "items": [DTYPE, INT_TUPLE, INT_TUPLE, {"type": "bool"}]}))
    a(allow("torch._utils._rebuild_nested_tensor", ["call"], "nested tensor: (buffer, sizes, strides, offsets)",
            {"min": 4, "max": 4, "items": [TENSOR, TENSOR, TENSOR, {"type": "one_of", "options": [TENSOR, INT_TUPLE, {"type": "list", "of": {"type": "int"}}]}]}))
    ndarray_arg = {"type": "call", "names": [f"{c}.multiarray._reconstruct" for c in NUMPY_CORES] + [f"{c}.numeric._frombuffer" for c in NUMPY_CORES]}
    for name in ["_rebuild_device_tensor_from_numpy", "_rebuild_xla_tensor"]:
        a(allow(f"torch._utils.{name}", ["call"], "XLA/ORT-era device tensor: (ndarray, dtype, device, requires_grad)",
                {"min": 4, "max": 4, "items": [ndarray_arg, DTYPE, {"type": "str"}, {"type": "bool"}]}))
    a(allow("torch._utils._rebuild_device_tensor_from_cpu_tensor", ["call"], "device tensor from a CPU tensor: (tensor, dtype, device, requires_grad)",
            {"min": 4, "max": 4, "items": [TENSOR, DTYPE, {"type": "str"}, {"type": "bool"}]}))
    a(allow("torch._utils._rebuild_wrapper_subclass", ["call"],
            "storage-less tensor subclass: (cls, dtype, size, stride, offset, layout, device, requires_grad); cls must itself be approved",
            {"min": 8, "max": 8, "items": [{"type": "global", "use": ["instantiate"]}, DTYPE, INT_TUPLE, INT_TUPLE, {"type": "int"},
                                           layout, {"type": "one_of", "options": [{"type": "call", "names": ["torch.device"]}, {"type": "str"}]}, {"type": "bool"}]}))
    rebuild_funcs = [f"torch._utils.{r}" for r in REBUILDS if r not in ("_rebuild_wrapper_subclass",)]
    a(allow("torch._tensor._rebuild_from_type_v2", ["call"],
            "tensor subclass or tensor with Python state: (func, type, args, state); func must be a tensor rebuild function and type an approved class",
            {"min": 4, "max": 4, "items": [{"type": "global", "names": rebuild_funcs, "use": ["call"]},
                                           {"type": "global", "use": ["instantiate"]}, {"type": "tuple"},
                                           {"type": "one_of", "options": [{"type": "dict", "keys": {"type": "str"}}, {"type": "tuple", "max_len": 2}, {"type": "none"}]}]},
            state_arg="arg3"))
    for cls in ["torch.Tensor", "torch.nn.parameter.Parameter"]:
        a(allow(cls, ["reference", "instantiate"], "tensor classes named by _rebuild_from_type_v2"))
    for s in STORAGE_CLASSES:
        a(allow(f"torch.{s}", ["reference"], "storage class named in a persistent id"))
        a(allow(f"torch.cuda.{s}", ["reference"], "CUDA storage class named in a persistent id"))
    for t in ["DoubleTensor", "FloatTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor", "ShortTensor",
              "CharTensor", "ByteTensor", "BoolTensor", "ComplexFloatTensor", "ComplexDoubleTensor"]:
        for mod in ["torch", "torch.cuda"]:
            a(allow(f"{mod}.{t}", ["reference"], "legacy tensor type named in torch 0.1.x tar checkpoints"))
    for s in ["torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.storage._UntypedStorage", "torch.UntypedStorage", "torch.TypedStorage"]:
        a(allow(s, ["reference"], "untyped/typed storage class named in a persistent id"))
    for d in TORCH_DTYPES:
        a(allow(f"torch.{d}", ["reference"], "dtype object"))
    for q in QSCHEMES:
        a(allow(f"torch.{q}", ["reference"], "quantization scheme"))
    for l in ["sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "strided"]:
        a(allow(f"torch.{l}", ["reference"], "tensor layout object"))
    entry = allow("torch.storage._load_from_bytes", ["call"],
                  "storage of a tensor pickled with plain pickle: torch.load of the embedded bytes, which brine scans as a file",
                  {"min": 1, "max": 1, "items": [{"type": "one_of", "options": [{"type": "bytes"}, {"type": "call", "names": ["_codecs.encode"]}]}]})
    entry["loads"] = "arg0"
    a(entry)
    a(allow("torch.Size", ["call"], "torch.Size((...)): a tuple of ints",
            {"min": 1, "max": 1, "items": [INT_TUPLE]}))
    a(allow("torch.device", ["call"], "torch.device('cuda', 0)",
            {"min": 1, "max": 2, "items": [{"type": "str", "max_len": 64}, {"type": "int"}]}))
    a(allow("torch.serialization._get_layout", ["call"], "layout by name: ('torch.sparse_coo',)",
            {"min": 1, "max": 1, "items": [{"type": "str", "max_len": 64}]}))
    return out

def numpy_rules():
    out = []
    a = out.append
    dtype_call = {"type": "call", "names": ["numpy.dtype"]}
    raw = {"type": "one_of", "options": [{"type": "bytes"}, {"type": "str"}, {"type": "call", "names": ["_codecs.encode"]}]}
    cores = NUMPY_CORES + ["numpy.core._multiarray_umath"]
    for core in cores:
        mod = core if core.endswith("_multiarray_umath") else f"{core}.multiarray"
        # "state-value": an object array's elements are its BUILD state's rawdata list, and
        # numpy writes nested arrays and scalars there (an object sub-array field, joblib's
        # object arrays); each such call is still judged by its own entry.
        a(allow(f"{mod}._reconstruct", ["call", "state-value"], "ndarray.__reduce__: (ndarray class, (0,), b'b'); BUILD then sets shape, dtype and data",
                {"min": 3, "max": 3, "items": [{"type": "global", "names": ["numpy.ndarray"], "use": ["instantiate"]}, INT_TUPLE, raw]},
                result="arg0"))
        a(allow(f"{mod}.scalar", ["call", "state-value"], "numpy scalar: (dtype, raw bytes)",
                {"min": 1, "max": 2, "items": [dtype_call, raw]}))
    for core in NUMPY_CORES:
        a(allow(f"{core}.numeric._frombuffer", ["call"], "protocol-5 ndarray: (buffer, dtype, shape, order)",
                {"min": 4, "max": 4, "items": [{"type": "one_of", "options": [{"type": "bytes"}, {"type": "call", "names": ["builtins.bytearray"]}]},
                                               dtype_call, INT_TUPLE, {"type": "str", "values": ["C", "F", "A", "K"]}]}))
    # ndarray.__setstate__ (numpy/core/src/multiarray/methods.c, array_setstate) parses
    # (version, shape, dtype, is_fortran, rawdata) and, failing that, the versionless
    # (shape, dtype, is_fortran, rawdata); shape must be a tuple and dtype a dtype instance;
    # rawdata is the bytes (a str for protocol <= 2 pickles, or _codecs.encode) or, for object
    # arrays, a list of the elements -- whose globals and calls the state walk judges.
    dtype_call_spec = {"type": "call", "names": ["numpy.dtype"]}
    rawdata = {"type": "one_of", "options": [{"type": "bytes"}, {"type": "str"},
                                             {"type": "call", "names": ["_codecs.encode"]},
                                             {"type": "call", "names": ["builtins.bytes"], "empty": True}, {"type": "list"}]}
    flag = {"type": "one_of", "options": [{"type": "bool"}, {"type": "int"}]}
    a(allow("numpy.ndarray", ["instantiate", "build"], "ndarray class; BUILD is ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata))",
            state={"shapes": ["tuple"], "tuple": {"min": 5, "max": 5, "items": [{"type": "int"}, INT_TUPLE, dtype_call_spec, flag, rawdata]}}))
    a(allow("numpy.ndarray", ["build"], "ndarray.__setstate__ also takes the versionless (shape, dtype, is_fortran, rawdata)",
            state={"shapes": ["tuple"], "tuple": {"min": 4, "max": 4, "items": [INT_TUPLE, dtype_call_spec, flag, rawdata]}}))
    # joblib/numpy_pickle.py NumpyArrayWrapper.__init__ sets exactly these attributes; joblib then
    # calls subclass (ndarray, memmap or matrix: read_array / unpickler.np.memmap) with the data.
    subclass = {"type": "global", "names": ["numpy.ndarray", "numpy.memmap", "numpy.matrix"]}
    for mod in ["joblib.numpy_pickle", "sklearn.externals.joblib.numpy_pickle"]:
        a(allow(f"{mod}.NumpyArrayWrapper", ["instantiate", "build"],
                "joblib's array record: created empty, given (subclass, shape, order, dtype, allow_mmap[, alignment]) by BUILD; "
                "the array bytes that follow are read by brine as joblib does",
                {"max": 0},
                state={"shapes": ["dict"],
                       "keys": ["subclass", "shape", "order", "dtype", "allow_mmap", "numpy_array_alignment_bytes"],
                       "items": {"subclass": subclass, "shape": INT_TUPLE, "order": {"type": "str", "values": ["C", "F"]},
                                 "dtype": dtype_call_spec, "allow_mmap": {"type": "bool"},
                                 "numpy_array_alignment_bytes": {"type": "one_of", "options": [{"type": "int"}, {"type": "none"}]}}}))
    # dtype.__setstate__ (numpy/core/src/multiarray/descriptor.c, arraydescr_setstate) switches on
    # the tuple's length: 9 (version 4: + metadata), 8 (version 3), 7, 6 and 5 (version 0/1)
    # items of (version, byteorder, subarray, names, fields, elsize, alignment, flags, metadata);
    # the 5- and 6-tuples drop subarray/names. subarray is (dtype, shape); fields maps a name to
    # (dtype, offset[, title]); datetime metadata is (metadata dict or None, (unit, num, den, events)).
    byteorder = {"type": "one_of", "options": [{"type": "str", "max_len": 1}, {"type": "bytes", "max_len": 1}]}
    none = {"type": "none"}
    subarray = {"type": "one_of", "options": [none, {"type": "tuple", "max_len": 2, "of": {"type": "one_of", "options": [dtype_call_spec, INT_TUPLE, {"type": "int"}]}}]}
    names = {"type": "one_of", "options": [none, {"type": "tuple", "of": {"type": "str"}}]}
    fields = {"type": "one_of", "options": [none, {"type": "dict", "keys": {"type": "str"},
                                                   "of": {"type": "tuple", "max_len": 3, "of": {"type": "one_of", "options": [dtype_call_spec, {"type": "int"}, {"type": "any_data"}]}}}]}
    unit = {"type": "one_of", "options": [{"type": "bytes", "max_len": 16}, {"type": "str", "max_len": 16},
                                          {"type": "call", "names": ["_codecs.encode"]}, {"type": "int"}]}
    md_dict = {"type": "dict", "of": {"type": "any_data"}}
    metadata = {"type": "one_of", "options": [none, md_dict,
                                              {"type": "tuple", "max_len": 2, "of": {"type": "one_of", "options": [
                                                  none, md_dict, {"type": "tuple", "max_len": 4, "of": unit}]}}]}
    i = {"type": "int"}
    dtype_states = [
        (9, [i, byteorder, subarray, names, fields, i, i, i, metadata]),
        (8, [i, byteorder, subarray, names, fields, i, i, i]),
        (7, [i, byteorder, subarray, names, fields, i, i]),
        (6, [i, byteorder, subarray, fields, i, i]),
        (5, [i, byteorder, fields, i, i]),
    ]
    for n, items in dtype_states:
        a(allow("numpy.dtype", ["call", "build"] if n == 9 else ["build"],
                f"numpy.dtype(typestr, align, copy) then BUILD with the byte order and fields: the {n}-item state",
                {"min": 1, "max": 3, "items": [{"type": "str", "max_len": 64}, {"type": "bool"}, {"type": "bool"}]} if n == 9 else None,
                state={"shapes": ["tuple"], "tuple": {"min": n, "max": n, "items": items}}))
    return out

def builtin_rules():
    out = []
    a = out.append
    seq = {"type": "one_of", "options": [{"type": "list"}, {"type": "tuple"}, {"type": "set"}]}
    a(allow("builtins.set", ["call"], "protocol <= 3 sets: set([items])", {"max": 1, "items": [seq]}))
    a(allow("builtins.frozenset", ["call"], "protocol <= 3 frozensets: frozenset([items])", {"max": 1, "items": [seq]}))
    num_or_none = {"type": "one_of", "options": [{"type": "number"}, {"type": "none"}]}
    a(allow("builtins.slice", ["call"], "slice(start, stop, step) of numbers", {"max": 3, "rest": num_or_none}))
    a(allow("builtins.complex", ["call"], "complex(real, imag)", {"max": 2, "rest": {"type": "number"}}))
    a(allow("builtins.bytearray", ["call"], "protocol <= 4 bytearrays: bytearray(b'...') or bytearray(str, 'latin-1'); never a size",
            {"max": 2, "items": [{"type": "one_of", "options": [{"type": "bytes"}, {"type": "str"}, {"type": "call", "names": ["_codecs.encode"]}]}, {"type": "str", "values": ["latin-1", "latin1"]}]}))
    a(allow("builtins.bytes", ["call"], "protocol <= 2 empty bytes: bytes(); never a size", {"max": 0}))
    a(allow("_codecs.encode", ["call"], "protocol <= 2 bytes: _codecs.encode(str, 'latin1')",
            {"min": 1, "max": 2, "items": [{"type": "str"}, {"type": "str", "values": ["latin1", "latin-1"]}]}))
    return out

def main():
    doc = {
        "schema": "brine-rules/1",
        "name": "default",
        "description": "Exactly what a plain PyTorch state_dict/tensor file or a numpy array pickle needs. "
                       "Generated by tools/gen_default_rules.py.",
        "allow": torch_rules() + numpy_rules() + builtin_rules(),
    }
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")

if __name__ == "__main__":
    main()
