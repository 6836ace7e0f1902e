#!/usr/bin/python3
"""The alternative a user has today for converting a checkpoint: torch.load it (weights_only=True,
which still runs the pickle through torch's restricted unpickler) and write the tensors out.

    /usr/bin/python3 bench/py_convert.py safetensors|onnx IN OUT

safetensors: `safetensors.torch.save_file` is not packaged in Debian, so this writes the same
layout with the same steps it takes (contiguous tensors, JSON header padded to 8, bytes appended).
onnx: onnx.numpy_helper.from_array per tensor as an initializer and graph output, onnx.save.
Only for the benchmark: it handles flat {name: tensor} state dicts.
"""
import json
import struct
import sys

import torch

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
             torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
             torch.bool: "BOOL"}


def tensors(obj):
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def save_safetensors(sd, path):
    header, at, parts = {"__metadata__": {"format": "pt"}}, 0, []
    for name, t in sd.items():
        t = t.contiguous()
        n = t.numel() * t.element_size()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + n]}
        at += n
        parts.append(t)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for t in parts:
            f.write(t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes())


def save_onnx(sd, path):
    import onnx
    from onnx import helper, numpy_helper
    inits, outs = [], []
    for name, t in sd.items():
        arr = t.contiguous().numpy()
        inits.append(numpy_helper.from_array(arr, name))
        outs.append(helper.make_tensor_value_info(name, inits[-1].data_type, list(arr.shape)))
    graph = helper.make_graph([], "converted", [], outs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def main(fmt, src, dst):
    sd = tensors(torch.load(src, weights_only=True))
    (save_safetensors if fmt == "safetensors" else save_onnx)(sd, dst)


if __name__ == "__main__":
    main(*sys.argv[1:4])
