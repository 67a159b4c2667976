"""Tiny random metric backbones for the evaluation tests (imported by its test modules only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tavce.models.base import TavceModule, register_component_class


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


# ---- tiny PyTorch backbones, saved and loaded as module folders like a researcher's own -------------------


@dataclass(frozen=True)
class TinyFeatureConfig:
    features: int = 6


@register_component_class
class TinyFeatureExtractor(TavceModule):
    """(B, 3, H, W) in [0, 1] → (B, features): one strided conv, global average pool."""

    config_class = TinyFeatureConfig

    def __init__(self, config: TinyFeatureConfig | None = None) -> None:
        super().__init__(config)
        self.conv = nn.Conv2d(3, self.config.features, kernel_size=4, stride=4)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(frames)).mean(dim=(2, 3))


@dataclass(frozen=True)
class TinyFaceConfig:
    input_size: int = 112
    embedding_dim: int = 8


@register_component_class
class TinyFaceNetwork(TavceModule):
    """(B, 3, S, S) in [−1, 1] → (B, embedding_dim)."""

    config_class = TinyFaceConfig

    def __init__(self, config: TinyFaceConfig | None = None) -> None:
        super().__init__(config)
        self.conv = nn.Conv2d(3, 4, kernel_size=8, stride=8)
        self.linear = nn.Linear(4 * (self.config.input_size // 8) ** 2, self.config.embedding_dim)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.tanh(self.conv(faces)).flatten(1))
