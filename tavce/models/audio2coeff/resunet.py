"""The residual U-Net that refines a pose sequence inside the PoseVAE.

It treats a (S, 6) pose sequence as a one-channel S x 6 image and only ever
strides along time, so S must be divisible by 8 (three halvings).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "ResidualBlock",
    "ResUnet",
]

_TIME_STRIDE = (2, 1)


class ResidualBlock(nn.Module):
    """Pre-activation residual block: BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3, plus a conv3x3(stride)+BN skip."""

    def __init__(self, in_channels: int, out_channels: int, stride: int | tuple[int, int]) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1)
        self.norm2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip_conv = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1)
        self.skip_norm = nn.BatchNorm2d(out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        residual = self.conv1(torch.relu(self.norm1(features)))
        residual = self.conv2(torch.relu(self.norm2(residual)))
        return residual + self.skip_norm(self.skip_conv(features))


class ResUnet(nn.Module):
    """(B, 1, S, 6) -> (B, 1, S, 6) in (0, 1) (sigmoid output).

    Args:
        channels: feature channels of the four levels (official (32, 64, 128, 256)).
    """

    def __init__(self, channels: tuple[int, int, int, int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        first = channels[0]
        self.stem_conv1 = nn.Conv2d(1, first, 3, padding=1)
        self.stem_norm = nn.BatchNorm2d(first)
        self.stem_conv2 = nn.Conv2d(first, first, 3, padding=1)
        self.stem_skip = nn.Conv2d(1, first, 3, padding=1)
        # down.2 is the bottleneck ("bridge").
        self.down = nn.ModuleList(
            ResidualBlock(channels[level], channels[level + 1], _TIME_STRIDE) for level in range(3)
        )
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(channels[level], channels[level], _TIME_STRIDE, _TIME_STRIDE) for level in (3, 2, 1)
        )
        self.up = nn.ModuleList(
            ResidualBlock(channels[level] + channels[level - 1], channels[level - 1], 1) for level in (3, 2, 1)
        )
        self.output_conv = nn.Conv2d(first, 1, 1)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        stem = self.stem_conv2(torch.relu(self.stem_norm(self.stem_conv1(sequence)))) + self.stem_skip(sequence)
        skips = [stem]
        for block in self.down:
            skips.append(block(skips[-1]))
        features = skips.pop()
        for upsample, block in zip(self.upsample, self.up):
            features = block(torch.cat([upsample(features), skips.pop()], dim=1))
        return torch.sigmoid(self.output_conv(features))
