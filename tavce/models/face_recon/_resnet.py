"""A torchvision-layout bottleneck ResNet (ResNet-50 by default) without the classifier.

Parameter names follow torchvision (``conv1``, ``bn1``, ``layer1``–``layer4``,
``downsample.0/1``) so the official Deep3DFaceRecon weights load with an identity
rename; torchvision itself is not needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

EXPANSION = 4


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3 (carries the stride), 1×1 expand, with a projected shortcut when the shape changes."""

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shortcut = features if self.downsample is None else self.downsample(features)
        residual = self.relu(self.bn1(self.conv1(features)))
        residual = self.relu(self.bn2(self.conv2(residual)))
        residual = self.bn3(self.conv3(residual))
        return self.relu(residual + shortcut)


class ResNetBackbone(nn.Module):
    """(B, 3, H, W) -> (B, base_width·8·4, 1, 1) globally average-pooled features."""

    def __init__(self, blocks_per_stage: Sequence[int] = (3, 4, 6, 3), base_width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = base_width
        for stage, num_blocks in enumerate(blocks_per_stage):
            width = base_width * 2**stage
            blocks = []
            for index in range(num_blocks):
                blocks.append(Bottleneck(channels, width, stride=2 if stage > 0 and index == 0 else 1))
                channels = width * EXPANSION
            setattr(self, f"layer{stage + 1}", nn.Sequential(*blocks))
        self.num_stages = len(blocks_per_stage)
        self.out_channels = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.maxpool(self.relu(self.bn1(self.conv1(image))))
        for stage in range(self.num_stages):
            features = getattr(self, f"layer{stage + 1}")(features)
        return self.avgpool(features)
