"""The 3DMM coefficient regressor.

A ResNet-50 turns the aligned 224×224 RGB face (values in [0, 1], no mean/std
normalisation) into a pooled 2048-d feature; seven 1×1 convolutions regress the
257 Basel-Face-Model coefficients: identity 80, expression 64, texture 80,
angle 3 (pitch, yaw, roll in radians), lighting 27 (spherical harmonics),
translation (x, y) 2 and z 1. Only expression, angle and translation drive the
animation; :func:`source_coefficients` packs them with the alignment's crop
parameters into the 73-dim source vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule
from tavce.models.face_recon._resnet import ResNetBackbone

__all__ = [
    "COEFFICIENT_LAYOUT",
    "FaceReconConfig",
    "FaceReconNet",
    "FaceReconstructor",
    "split_coefficients",
    "source_coefficients",
]

# Order of the 257 outputs (= order of the official ``final_layers``; translation is two heads, xy then z).
COEFFICIENT_LAYOUT: tuple[tuple[str, int], ...] = (
    ("identity", 80),
    ("expression", 64),
    ("texture", 80),
    ("angle", 3),
    ("lighting", 27),
    ("translation", 3),
)
HEAD_NAMES = ("identity", "expression", "texture", "angle", "lighting", "translation_xy", "translation_z")


@dataclass(frozen=True)
class FaceReconConfig:
    """Sizes of :class:`FaceReconNet`; the defaults are the official ResNet-50 regressor.

    Attributes:
        blocks_per_stage: bottleneck blocks in each of the four stages ((3, 4, 6, 3) = ResNet-50).
        base_width: channels of the stem (64); the pooled feature has base_width·32 channels.
        head_dims: output sizes of the seven heads, in :data:`HEAD_NAMES` order.
    """

    blocks_per_stage: tuple[int, ...] = (3, 4, 6, 3)
    base_width: int = 64
    head_dims: tuple[int, ...] = (80, 64, 80, 3, 27, 2, 1)


@runtime_checkable
class FaceReconstructor(Protocol):
    """Anything that maps aligned faces (B, 3, 224, 224) in [0, 1] to (B, 257) 3DMM coefficients."""

    def __call__(self, aligned_faces: torch.Tensor) -> torch.Tensor: ...


class FaceReconNet(TavceModule):
    """ResNet + seven 1×1-conv heads: (B, 3, 224, 224) RGB in [0, 1] -> (B, 257) float32."""

    config_class = FaceReconConfig

    def __init__(self, config: FaceReconConfig | None = None) -> None:
        config = config or FaceReconConfig()
        super().__init__(config)
        if len(config.head_dims) != len(HEAD_NAMES):
            raise InvalidArgumentError(f"head_dims: expected {len(HEAD_NAMES)} sizes, got {config.head_dims}")
        self.backbone = ResNetBackbone(config.blocks_per_stage, config.base_width)
        self.heads = nn.ModuleDict(
            {name: nn.Conv2d(self.backbone.out_channels, dim, 1) for name, dim in zip(HEAD_NAMES, config.head_dims)}
        )

    def forward(self, aligned_faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float RGB in [0, 1] -> (B, sum(head_dims)) coefficients (257 by default)."""
        if aligned_faces.ndim != 4 or aligned_faces.shape[1] != 3:
            raise InvalidArgumentError(
                f"aligned_faces: expected (B, 3, 224, 224) RGB, got {tuple(aligned_faces.shape)}"
            )
        pooled = self.backbone(aligned_faces)
        return torch.cat([head(pooled) for head in self.heads.values()], dim=1).flatten(1)


def split_coefficients(coefficients: torch.Tensor) -> dict[str, torch.Tensor]:
    """(..., 257) -> named slices of :data:`COEFFICIENT_LAYOUT` (views)."""
    total = sum(dim for _, dim in COEFFICIENT_LAYOUT)
    if coefficients.shape[-1] != total:
        raise InvalidArgumentError(
            f"coefficients: expected {total} values in the last dimension, got {tuple(coefficients.shape)}"
        )
    names = [name for name, _ in COEFFICIENT_LAYOUT]
    return dict(zip(names, coefficients.split([dim for _, dim in COEFFICIENT_LAYOUT], dim=-1)))


def source_coefficients(coefficients: torch.Tensor, trans_params: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The stored 73-dim vector(s): expression 64 ‖ angle 3 ‖ translation 3 ‖ (s, t_x, t_y).

    Args:
        coefficients: (B, 257) network output.
        trans_params: (5,) or (B, 5) alignment parameters (W, H, s, t_x, t_y); converted to float32 first,
            as the original stores them.

    Returns:
        (B, 73) float32 (``tavce.types.SOURCE_COEFF_DIM``); the first 70 are the motion coefficients.
    """
    parts = split_coefficients(coefficients)
    params = trans_params if torch.is_tensor(trans_params) else torch.from_numpy(np.asarray(trans_params))
    crop = params.to(torch.float32).reshape(-1, 5)[:, 2:].to(coefficients.device)
    crop = crop.expand(coefficients.shape[0], 3)
    return torch.cat([parts["expression"], parts["angle"], parts["translation"], crop], dim=1)
