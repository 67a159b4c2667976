"""SPADE decoder of the face renderer (reference-pipeline.md §4.6, last rows).

The warped, occlusion-masked feature S (256 channels at a quarter of the image
size) is both the decoder input and the "segmentation map" every SPADE layer is
conditioned on. Spectral normalisation of the residual convs exists only for
training (``spectral_norm=True``); inference networks hold folded plain weights
(see spectral.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tavce.models.renderer.spectral import maybe_spectral

LEAKY_SLOPE = 0.2


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: InstanceNorm(x)·(1 + γ(S)) + β(S).

    γ and β come from a shared 3x3 conv + ReLU on S resized (nearest) to x's size.
    """

    def __init__(self, channels: int, condition_channels: int, hidden_channels: int = 128) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(nn.Conv2d(condition_channels, hidden_channels, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden_channels, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden_channels, channels, 3, padding=1)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) features, (B, condition_channels, h, w) condition → (B, C, H, W)."""
        condition = F.interpolate(condition, size=features.shape[2:], mode="nearest")
        hidden = self.shared(condition)
        return self.norm(features) * (1 + self.gamma(hidden)) + self.beta(hidden)


class SPADEResBlock(nn.Module):
    """SPADE residual block f_in → f_out with f_mid = min(f_in, f_out).

    main = conv_1(lrelu(norm_1(conv_0(lrelu(norm_0(x)))))), shortcut = x, or
    conv_shortcut(norm_shortcut(x)) (1x1, no bias) when the channel count changes.
    """

    def __init__(
        self, in_channels: int, out_channels: int, condition_channels: int, spectral_norm: bool, spade_hidden: int = 128
    ) -> None:
        super().__init__()
        middle = min(in_channels, out_channels)
        self.norm_0 = SPADE(in_channels, condition_channels, spade_hidden)
        self.conv_0 = maybe_spectral(nn.Conv2d(in_channels, middle, 3, padding=1), spectral_norm)
        self.norm_1 = SPADE(middle, condition_channels, spade_hidden)
        self.conv_1 = maybe_spectral(nn.Conv2d(middle, out_channels, 3, padding=1), spectral_norm)
        self.learned_shortcut = in_channels != out_channels
        if self.learned_shortcut:
            self.norm_shortcut = SPADE(in_channels, condition_channels, spade_hidden)
            self.conv_shortcut = maybe_spectral(nn.Conv2d(in_channels, out_channels, 1, bias=False), spectral_norm)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        shortcut = features
        if self.learned_shortcut:
            shortcut = self.conv_shortcut(self.norm_shortcut(features, condition))
        hidden = self.conv_0(F.leaky_relu(self.norm_0(features, condition), LEAKY_SLOPE))
        hidden = self.conv_1(F.leaky_relu(self.norm_1(hidden, condition), LEAKY_SLOPE))
        return shortcut + hidden


@dataclass(frozen=True)
class SPADEDecoderConfig:
    """Decoder sizes (official: 256-channel input, 512 wide, 6 middle blocks, 512→256→64 up)."""

    input_channels: int = 256
    hidden_channels: int = 512
    num_middle_blocks: int = 6
    up_channels: tuple[int, ...] = (256, 64)
    image_channels: int = 3
    spectral_norm: bool = False
    spade_hidden_channels: int = 128


class SPADEDecoder(nn.Module):
    """S (B, 256, h, w) → image (B, 3, 4h, 4w) in (0, 1).

    input_conv 3x3 → middle SPADE blocks → (nearest ×2, SPADE block) per up stage →
    LeakyReLU(0.2) → output_conv 3x3 → sigmoid.
    """

    def __init__(self, config: SPADEDecoderConfig) -> None:
        super().__init__()
        self.config = config
        condition = config.input_channels
        self.input_conv = nn.Conv2d(config.input_channels, config.hidden_channels, 3, padding=1)
        self.middle_blocks = nn.ModuleList(
            SPADEResBlock(
                config.hidden_channels, config.hidden_channels, condition, config.spectral_norm, config.spade_hidden_channels
            )
            for _ in range(config.num_middle_blocks)
        )
        channels = (config.hidden_channels, *config.up_channels)
        self.up_blocks = nn.ModuleList(
            SPADEResBlock(channels[i], channels[i + 1], condition, config.spectral_norm, config.spade_hidden_channels)
            for i in range(len(config.up_channels))
        )
        self.output_conv = nn.Conv2d(channels[-1], config.image_channels, 3, padding=1)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        features = self.input_conv(condition)
        for block in self.middle_blocks:
            features = block(features, condition)
        for block in self.up_blocks:
            features = block(F.interpolate(features, scale_factor=2, mode="nearest"), condition)
        return torch.sigmoid(self.output_conv(F.leaky_relu(features, LEAKY_SLOPE)))
