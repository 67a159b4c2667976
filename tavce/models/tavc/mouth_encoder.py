"""The TAVC mouth encoder: an ArcFace-style IResNet18 on 112×112 mouth crops.

Architecture: a 3×3 stem (no bias) + BatchNorm +
PReLU, four stages of pre-activation blocks, each stage halving the size
(112 -> 7), then BatchNorm, flatten (C, H, W order), dropout (p = 0), a linear
layer to the embedding and a BatchNorm1d whose weight is fixed to 1 and frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule

__all__ = [
    "PreActivationBlock",
    "MouthEncoderConfig",
    "MouthEncoder",
]

BATCH_NORM_EPS = 1e-5


class PreActivationBlock(nn.Module):
    """IResNet basic block: BN -> conv3×3 -> BN -> PReLU -> conv3×3 (stride) -> BN, plus shortcut.

    The shortcut is a strided 1×1 conv + BN when the size or width changes; there is
    no activation after the sum.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm2d(in_channels, eps=BATCH_NORM_EPS)
        self.conv_in = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)
        self.middle_norm = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS)
        self.activation = nn.PReLU(out_channels)
        self.conv_out = nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False)
        self.output_norm = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS),
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.conv_in(self.input_norm(features))
        out = self.conv_out(self.activation(self.middle_norm(out)))
        return self.output_norm(out) + self.shortcut(features)


@dataclass(frozen=True)
class MouthEncoderConfig:
    """Sizes of the mouth encoder; the defaults are TAVCE's IResNet18 (num_features 128).

    Attributes:
        image_size: side of the square input crop; must be a multiple of 2**len(stage_channels).
        stem_channels: width of the stem.
        stage_channels: width of each stage (each stage halves the size).
        blocks_per_stage: blocks in each stage.
        embedding_dim: output size.
        dropout: dropout before the projection (0 in TAVCE).
    """

    image_size: int = 112
    stem_channels: int = 64
    stage_channels: tuple[int, ...] = (64, 128, 256, 512)
    blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2)
    embedding_dim: int = 128
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if len(self.stage_channels) != len(self.blocks_per_stage):
            raise InvalidArgumentError("MouthEncoderConfig: stage_channels and blocks_per_stage differ in length")
        if self.image_size % (2 ** len(self.stage_channels)):
            raise InvalidArgumentError(
                f"MouthEncoderConfig: image_size {self.image_size} is not a multiple of "
                f"{2 ** len(self.stage_channels)} (one halving per stage)"
            )

    @property
    def final_size(self) -> int:
        return self.image_size // 2 ** len(self.stage_channels)


class MouthEncoder(TavceModule):
    """Mouth crops (N, 3, S, S) RGB in [−1, 1] (S = 112) -> embeddings (N, embedding_dim)."""

    config_class = MouthEncoderConfig

    def __init__(self, config: MouthEncoderConfig | None = None) -> None:
        super().__init__(config or MouthEncoderConfig())
        config = self.config
        self.stem = nn.Sequential(
            nn.Conv2d(3, config.stem_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(config.stem_channels, eps=BATCH_NORM_EPS),
            nn.PReLU(config.stem_channels),
        )
        stages = []
        in_channels = config.stem_channels
        for out_channels, blocks in zip(config.stage_channels, config.blocks_per_stage):
            stage = [PreActivationBlock(in_channels, out_channels, stride=2)]
            stage += [PreActivationBlock(out_channels, out_channels, stride=1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*stage))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.final_norm = nn.BatchNorm2d(in_channels, eps=BATCH_NORM_EPS)
        self.dropout = nn.Dropout(config.dropout)
        self.projection = nn.Linear(in_channels * config.final_size**2, config.embedding_dim)
        self.embedding_norm = nn.BatchNorm1d(config.embedding_dim, eps=BATCH_NORM_EPS)
        # TAVCE fixes the scale of the output BatchNorm to 1 and never trains it.
        nn.init.ones_(self.embedding_norm.weight)
        self.embedding_norm.weight.requires_grad_(False)

    def forward(self, mouths: torch.Tensor) -> torch.Tensor:
        """Args: mouths (N, 3, S, S) in [−1, 1]. Returns (N, embedding_dim)."""
        size = self.config.image_size
        if mouths.ndim != 4 or tuple(mouths.shape[1:]) != (3, size, size):
            raise InvalidArgumentError(
                f"MouthEncoder: mouth crops must be (N, 3, {size}, {size}), got {tuple(mouths.shape)}; "
                "make them with tavce.preprocess.mouth (crop_mouth / crop_mouths)."
            )
        features = self.final_norm(self.stages(self.stem(mouths)))
        return self.embedding_norm(self.projection(self.dropout(features.flatten(1))))
