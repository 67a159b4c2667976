"""MappingNet: a window of 3DMM coefficients → head-pose bins, translation, keypoint deltas.

The head outputs are logits over 66 pose bins (decoded
to degrees by :func:`tavce.models.renderer.keypoint_transform.bins_to_degrees`), a
translation and per-keypoint expression deltas.

The MappingNet is tiny and its outputs are softmax logits and keypoint offsets, so it
keeps float32 weights when a renderer is cast to a half type (precision.py); its
inputs are cast to its weights' dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule
from tavce.models.renderer.precision import Float32Weights

__all__ = ["HeadMotion", "MappingNet", "MappingNetConfig", "MotionHeads"]


@dataclass
class HeadMotion:
    """Per-frame head motion predicted from coefficients (MappingNet) or an image (head-pose estimator).

    Attributes:
        yaw, pitch, roll: (B, num_bins) logits over 3°-wide bins.
        translation: (B, 3); only its y component moves the keypoints.
        expression: (B, K·3) keypoint deltas.
    """

    yaw: torch.Tensor
    pitch: torch.Tensor
    roll: torch.Tensor
    translation: torch.Tensor
    expression: torch.Tensor


class MotionHeads(nn.Module):
    """Five linear heads from one pooled feature to a :class:`HeadMotion` (MappingNet and head-pose estimator)."""

    def __init__(self, features: int, num_bins: int, num_keypoints: int) -> None:
        super().__init__()
        self.yaw = nn.Linear(features, num_bins)
        self.pitch = nn.Linear(features, num_bins)
        self.roll = nn.Linear(features, num_bins)
        self.translation = nn.Linear(features, 3)
        self.expression = nn.Linear(features, 3 * num_keypoints)

    def forward(self, pooled: torch.Tensor) -> HeadMotion:
        """(B, features) → logits (B, num_bins) ×3, translation (B, 3), expression (B, 3·K)."""
        return HeadMotion(
            yaw=self.yaw(pooled),
            pitch=self.pitch(pooled),
            roll=self.roll(pooled),
            translation=self.translation(pooled),
            expression=self.expression(pooled),
        )


@dataclass(frozen=True)
class MappingNetConfig:
    """Sizes; defaults are the official ones (facerender.yaml ``mapping_params``).

    ``coeff_dim`` is 70 (expression + pose + translation) or 73 with the crop
    parameters the full modes append (``mapping_00109``).
    """

    coeff_dim: int = 70
    hidden_channels: int = 1024
    num_layers: int = 3
    num_keypoints: int = 15
    num_bins: int = 66
    window: int = 27

    @property
    def receptive_frames(self) -> int:
        """Frames consumed by the convolutions: 7 by the first conv, 6 by each dilated layer."""
        return 7 + 6 * self.num_layers


class MappingNet(Float32Weights, TavceModule):
    """(B, coeff_dim, window) coefficient windows → :class:`HeadMotion`.

    The first conv (kernel 7) shortens the window by 6 frames; each residual layer
    (LeakyReLU(0.1), conv kernel 3 dilation 3) by 6 more, its skip cropped by 3 on
    each side; the remaining frames are averaged and fed to five linear heads.
    """

    config_class = MappingNetConfig

    def __init__(self, config: MappingNetConfig = MappingNetConfig()) -> None:
        super().__init__(config)
        if config.window < config.receptive_frames:
            raise InvalidArgumentError(
                f"MappingNetConfig: window {config.window} is shorter than the {config.receptive_frames} frames "
                f"its {config.num_layers} layers consume."
            )
        hidden = config.hidden_channels
        self.input_conv = nn.Conv1d(config.coeff_dim, hidden, kernel_size=7)
        self.layers = nn.ModuleList(nn.Conv1d(hidden, hidden, kernel_size=3, dilation=3) for _ in range(config.num_layers))
        self.heads = MotionHeads(hidden, config.num_bins, config.num_keypoints)

    def forward(self, coefficient_windows: torch.Tensor) -> HeadMotion:
        """Args: coefficient_windows (B, coeff_dim, window) float, window = config.window (27)."""
        expected = (self.config.coeff_dim, self.config.window)
        if coefficient_windows.ndim != 3 or tuple(coefficient_windows.shape[1:]) != expected:
            raise InvalidArgumentError(
                f"MappingNet: expected coefficient windows (B, {expected[0]}, {expected[1]}), "
                f"got {tuple(coefficient_windows.shape)}."
            )
        hidden = self.input_conv(coefficient_windows.to(self.input_conv.weight.dtype))
        for layer in self.layers:
            hidden = layer(F.leaky_relu(hidden, 0.1)) + hidden[:, :, 3:-3]
        return self.heads(hidden.mean(dim=-1))
