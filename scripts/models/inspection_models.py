#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Purpose-built inspection models whose behaviour is known, for testing the inspection chain
(no real inspection model can be had here). Written with the `onnx` package, opset 13.

darkblob.onnx — a whole-image classifier, labels `ok,ng`. Input `image` [1, 3, H, W] (RGB in
0..1: inferfilter's classifier defaults), output `scores` [1, 2] (logits). It says `ng` when some
8×8 patch of the model input (after resizing) is on average darker than mid-grey, i.e. a dark
blob on a light part:
    darkness = 1 − mean over channels; patch = 8×8 average of darkness; m = max over patches;
    logit(ng) = 20·(m − 0.5), logit(ok) = −logit(ng).
Letterbox padding is black (0): give the model an input of the frame's aspect
(inference-size) so no padding counts as dark.

usage: inspection_models.py OUT_DIR
"""
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper


def const(name, value):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(name + "_t", TensorProto.FLOAT, [], [value]))


def darkblob():
    nodes = [
        const("one", 1.0),
        const("half", 0.5),
        const("gain", 20.0),
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["one", "grey"], ["dark"]),
        helper.make_node("AveragePool", ["dark"], ["patch"], kernel_shape=[8, 8], strides=[1, 1]),
        helper.make_node("GlobalMaxPool", ["patch"], ["m"]),
        helper.make_node("Sub", ["m", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["ng"]),
        helper.make_node("Neg", ["ng"], ["ok"]),
        helper.make_node("Concat", ["ok", "ng"], ["logits"], axis=1),
        helper.make_node("Flatten", ["logits"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "darkblob",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="veil")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(darkblob(), out / "darkblob.onnx")
    print(f"wrote {out / 'darkblob.onnx'}")


if __name__ == "__main__":
    main()
