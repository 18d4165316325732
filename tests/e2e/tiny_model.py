#!/usr/bin/python3
"""tiny_model.py: writes a small seeded random CNN as ONNX (for end-to-end tests that need a model
quickly): 3x64x64 input, two strided conv + ReLU layers, global average pool, a 16-d embedding
(the classifier's input) and an 8-way Gemm classifier.

Usage: tiny_model.py OUT.onnx [--seed N]
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    out = sys.argv[1]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1
    rng = np.random.default_rng(seed)

    def w(name, *shape):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name)

    inits = [w("c1w", 12, 3, 3, 3), numpy_helper.from_array(np.zeros(12, np.float32), "c1b"),
             w("c2w", 16, 12, 3, 3), numpy_helper.from_array(np.zeros(16, np.float32), "c2b"),
             w("fcw", 8, 16), numpy_helper.from_array(np.zeros(8, np.float32), "fcb")]
    nodes = [
        helper.make_node("Conv", ["input", "c1w", "c1b"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "c2w", "c2b"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["features"], axis=1),
        helper.make_node("Gemm", ["features", "fcw", "fcb"], ["logits"], transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 64, 64])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vitrine-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, out)


if __name__ == "__main__":
    main()
