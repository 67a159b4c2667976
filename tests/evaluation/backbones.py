"""Tiny random metric backbones for the evaluation tests (imported by its test modules only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_linear_arcface_onnx(path: Path, weight: np.ndarray, size: int = 112) -> Path:
    """An ONNX "recognition model": (N, 3, size, size) → Flatten → MatMul(weight) → (N, D).

    Built with the onnx helpers (no exporter), named like insightface's exports so its
    wrapper picks the [−1, 1] input normalisation (no leading Sub / Mul node).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input.1"], ["flat"], name="Flatten_0", axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["683"], name="Gemm_1"),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, size, size])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", weight.shape[1]])],
        [numpy_helper.from_array(weight.astype(np.float32), name="W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
