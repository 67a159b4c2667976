"""Head-pose/expression estimator (face-vid2vid ``HEEstimator``): image → :class:`HeadMotion`. Training only.

SadTalker and TAVCE build it and store it in their checkpoints, but inference never
calls it (the MappingNet predicts the motion from coefficients instead); it is ported
for training and checkpoint round trips.

Architecture (ResNet-50-like trunk, he_estimator golden case):

* stem: conv7×7 stride 2 pad 3 → BN → ReLU → max-pool 3 stride 2 pad 1;
* four stages (256, 512, 1024, 2048 channels): conv1×1 projection → BN → ReLU, then
  for stages 2-4 a stride-2 bottleneck, then 3, 3, 5, 2 plain bottlenecks;
* global average pool, linear heads: yaw, pitch, roll (66 bins each), translation (3),
  expression deltas (15 × 3).

The original returns the output of its ``fc_roll`` layer as "yaw" and the
output of ``fc_yaw`` as "roll". This module is named by meaning (``heads.yaw`` gives
yaw); :func:`tavce.convert.renderer.convert_he_estimator` loads the original
``fc_roll`` into ``heads.yaw`` and ``fc_yaw`` into ``heads.roll``, so the outputs equal
the original's "yaw" and "roll" outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import InvalidArgumentError, InvalidImageError
from tavce.models.base import TavceModule
from tavce.models.renderer.mapping_net import HeadMotion, MotionHeads

__all__ = ["HeadPoseEstimator", "HeadPoseEstimatorConfig"]


class ConvNormRelu(nn.Module):
    """conv (kernel k, stride s, padding k//2) + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(features)))


class Bottleneck(nn.Module):
    """C → C/4 (1×1) → C/4 (3×3, stride s) → C (1×1), each with BN; ReLU(main + shortcut).

    The shortcut is the identity for stride 1 and conv1×1 (stride s) + BN otherwise.
    """

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        hidden = channels // 4
        self.conv1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.norm1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, kernel_size=3, stride=stride, padding=1)
        self.norm2 = nn.BatchNorm2d(hidden)
        self.conv3 = nn.Conv2d(hidden, channels, kernel_size=1)
        self.norm3 = nn.BatchNorm2d(channels)
        if stride != 1:
            self.shortcut = nn.Conv2d(channels, channels, kernel_size=1, stride=stride)
            self.shortcut_norm = nn.BatchNorm2d(channels)
        else:
            self.shortcut = self.shortcut_norm = None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = F.relu(self.norm1(self.conv1(features)))
        hidden = F.relu(self.norm2(self.conv2(hidden)))
        hidden = self.norm3(self.conv3(hidden))
        shortcut = features if self.shortcut is None else self.shortcut_norm(self.shortcut(features))
        return F.relu(hidden + shortcut)


class Stage(nn.Module):
    """Projection to the stage width, an optional stride-2 bottleneck, then plain bottlenecks."""

    def __init__(self, in_channels: int, channels: int, num_blocks: int, strided: bool) -> None:
        super().__init__()
        self.projection = ConvNormRelu(in_channels, channels, kernel_size=1)
        self.strided_block = Bottleneck(channels, stride=2) if strided else None
        self.blocks = nn.Sequential(*(Bottleneck(channels) for _ in range(num_blocks)))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.projection(features)
        if self.strided_block is not None:
            features = self.strided_block(features)
        return self.blocks(features)


@dataclass(frozen=True)
class HeadPoseEstimatorConfig:
    """Sizes; defaults are the official ones (facerender.yaml ``he_estimator_params``).

    ``blocks_per_stage`` counts the plain bottlenecks after each stage's stride-2 one
    (the first stage has no stride-2 bottleneck). Stage widths must be multiples of 4.
    """

    image_channels: int = 3
    stem_channels: int = 64
    stage_channels: tuple[int, ...] = (256, 512, 1024, 2048)
    blocks_per_stage: tuple[int, ...] = (3, 3, 5, 2)
    num_bins: int = 66
    num_keypoints: int = 15

    def __post_init__(self) -> None:
        if len(self.stage_channels) != len(self.blocks_per_stage) or not self.stage_channels:
            raise InvalidArgumentError(
                f"HeadPoseEstimatorConfig: stage_channels {self.stage_channels} and blocks_per_stage "
                f"{self.blocks_per_stage} must be non-empty and of the same length."
            )
        if any(channels % 4 for channels in self.stage_channels):
            raise InvalidArgumentError(
                f"HeadPoseEstimatorConfig: stage_channels {self.stage_channels} must be multiples of 4 "
                "(bottlenecks work at a quarter of the width)."
            )


class HeadPoseEstimator(TavceModule):
    """(B, 3, H, W) image in [0, 1] → :class:`HeadMotion` (pose logits, translation, expression deltas)."""

    config_class = HeadPoseEstimatorConfig

    def __init__(self, config: HeadPoseEstimatorConfig = HeadPoseEstimatorConfig()) -> None:
        super().__init__(config)
        self.stem = ConvNormRelu(config.image_channels, config.stem_channels, kernel_size=7, stride=2)
        widths = (config.stem_channels, *config.stage_channels)
        self.stages = nn.ModuleList(
            Stage(widths[i], widths[i + 1], num_blocks, strided=i > 0)
            for i, num_blocks in enumerate(config.blocks_per_stage)
        )
        features = config.stage_channels[-1]
        self.heads = MotionHeads(features, config.num_bins, config.num_keypoints)

    def forward(self, image: torch.Tensor) -> HeadMotion:
        """Args: image (B, 3, H, W) in [0, 1]. Returns logits (B, 66) ×3, translation (B, 3), expression (B, 45)."""
        if image.ndim != 4 or image.shape[1] != self.config.image_channels:
            raise InvalidImageError(
                f"image: expected (B, {self.config.image_channels}, H, W) in [0, 1], got {tuple(image.shape)}."
            )
        features = F.max_pool2d(self.stem(image), kernel_size=3, stride=2, padding=1)
        for stage in self.stages:
            features = stage(features)
        return self.heads(F.adaptive_avg_pool2d(features, 1).flatten(1))
