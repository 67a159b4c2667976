"""ParseNet: per-pixel face-part labels (19 classes) of a restored face, for the paste-back mask.

A residual encoder (512 → 32 px), ten residual blocks at 32 px and a residual
decoder back to full size, with two 3×3 heads: 19 parsing logits and an RGB
image (unused by the enhancer). Every convolution is preceded by reflection
padding; downsampling is a stride-2 conv, upsampling a nearest ×2 resize.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.base import TavceModule
from tavce.models.renderer.precision import memory_format_of, preferred_memory_format

__all__ = ["ParseNetConfig", "ParseNet", "FACE_LABELS"]

FACE_LABELS = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15})
"""Parsing classes that belong to the face mask (skin, brows, eyes, ears, nose, mouth, lips, ...);
background (0), neck (14) and 16-18 (clothes, hair, hat) do not."""


@dataclass(frozen=True)
class ParseNetConfig:
    """Sizes; defaults are facexlib's ``ParseNet(in_size=512, out_size=512, parsing_ch=19)``.

    Attributes:
        image_size: the resolution the network was built for (input = output side).
        num_classes: parsing channels.
        base_channels: width of the first layer; widths double per down step, clipped to [32, 256].
        min_feature_size: resolution of the residual body.
        body_blocks: residual blocks of the body.
    """

    image_size: int = 512
    num_classes: int = 19
    base_channels: int = 64
    min_feature_size: int = 32
    body_blocks: int = 10
    max_channels: int = 256
    min_channels: int = 32

    def __post_init__(self) -> None:
        steps = math.log2(self.image_size / self.min_feature_size)
        if steps < 0 or steps != int(steps):
            raise InvalidArgumentError(
                f"ParseNetConfig: image_size {self.image_size} / min_feature_size {self.min_feature_size} must be a power of two"
            )

    @property
    def steps(self) -> int:
        return int(math.log2(self.image_size / self.min_feature_size))

    def clip(self, channels: int) -> int:
        return max(self.min_channels, min(channels, self.max_channels))


class ConvLayer(nn.Module):
    """[nearest ×2] → reflection pad → 3×3 conv (stride 2 when ``down``) → [BatchNorm] → [LeakyReLU(0.2)]."""

    def __init__(
        self, in_channels: int, out_channels: int, *, resample: str = "none", norm: bool = False, activation: bool = False
    ) -> None:
        super().__init__()
        self.upsample = resample == "up"
        self.conv = nn.Conv2d(in_channels, out_channels, 3, stride=2 if resample == "down" else 1, bias=not norm)
        self.norm = nn.BatchNorm2d(out_channels) if norm else nn.Identity()
        self.activation = nn.LeakyReLU(0.2, inplace=True) if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = _upsampled_reflect_padded(x) if self.upsample else F.pad(x, (1, 1, 1, 1), mode="reflect")
        if isinstance(self.norm, nn.BatchNorm2d) and self.norm.track_running_stats and not self.training:
            # The running statistics are constants in eval mode: folded into the kernel, they save a pass.
            return self.activation(F.conv2d(padded, *_batch_norm_folded(self.conv, self.norm), stride=self.conv.stride))
        return self.activation(self.norm(self.conv(padded)))


def _batch_norm_folded(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weight, bias) of ``norm(conv(x))`` as one convolution, with the norm's running statistics.

    Folded in float32 and cast to the conv's dtype; the weight keeps its layout.
    """
    mean, variance = cast(torch.Tensor, norm.running_mean), cast(torch.Tensor, norm.running_var)
    scale = norm.weight.float() * torch.rsqrt(variance.float() + norm.eps)
    bias = norm.bias.float() - mean.float() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.float() * scale
    weight = conv.weight.float() * scale[:, None, None, None]
    return weight.to(conv.weight.dtype), bias.to(conv.weight.dtype)


def _upsampled_reflect_padded(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) → (B, C, 2H + 2, 2W + 2): nearest ×2 then reflection padding by 1, in one pass.

    Reflecting a nearest-upsampled map repeats its edge rows and columns once more (row −1 of
    the padded map is upsampled row 1, a copy of input row 0), so the result is written as one
    broadcast copy of ``x`` plus its four one-pixel edges, in ``x``'s layout -- the same values
    as ``F.pad(F.interpolate(x, scale_factor=2), mode="reflect")`` without the upsampled map
    in between.
    """
    batch, channels, height, width = x.shape
    shape = (batch, channels, 2 * height + 2, 2 * width + 2)
    out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=memory_format_of(x))
    inner = out[:, :, 1:-1, 1:-1].unflatten(3, (width, 2)).unflatten(2, (height, 2))
    inner.copy_(x[:, :, :, None, :, None].expand(batch, channels, height, 2, width, 2))
    out[:, :, 0, 1:-1] = out[:, :, 1, 1:-1]
    out[:, :, -1, 1:-1] = out[:, :, -2, 1:-1]
    out[:, :, :, 0] = out[:, :, :, 1]
    out[:, :, :, -1] = out[:, :, :, -2]
    return out


class ResidualBlock(nn.Module):
    """conv1 (BN, LeakyReLU) → conv2 (BN) plus a shortcut (identity, or a conv when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, resample: str = "none") -> None:
        super().__init__()
        if resample == "none" and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = ConvLayer(in_channels, out_channels, resample=resample)
        first, second = {"down": ("none", "down"), "up": ("up", "none"), "none": ("none", "none")}[resample]
        self.conv1 = ConvLayer(in_channels, out_channels, resample=first, norm=True, activation=True)
        self.conv2 = ConvLayer(out_channels, out_channels, resample=second, norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)).add_(self.shortcut(x))


class ParseNet(TavceModule):
    """Face parser: (B, 3, H, W) RGB in [-1, 1] → (B, num_classes, H, W) logits (fully convolutional;
    H and W multiples of 2**steps). :meth:`labels` gives the argmax classes."""

    config_class = ParseNetConfig

    def __init__(self, config: ParseNetConfig | None = None) -> None:
        super().__init__(config)
        config = self.config
        blocks: list[nn.Module] = [ConvLayer(3, config.base_channels)]
        width = config.base_channels
        for _ in range(config.steps):
            blocks.append(ResidualBlock(config.clip(width), config.clip(width * 2), "down"))
            width *= 2
        self.encoder = nn.Sequential(*blocks)
        body_width = config.clip(width)
        self.body = nn.Sequential(*(ResidualBlock(body_width, body_width) for _ in range(config.body_blocks)))
        width = config.base_channels * 2**config.steps
        up = []
        for _ in range(config.steps):
            up.append(ResidualBlock(config.clip(width), config.clip(width // 2), "up"))
            width //= 2
        self.decoder = nn.Sequential(*up)
        self.image_head = ConvLayer(config.clip(width), 3)
        self.parsing_head = ConvLayer(config.clip(width), config.num_classes)

    def forward(self, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """faces (B, 3, H, W) in [-1, 1] → (parsing logits (B, num_classes, H, W), image (B, 3, H, W)).

        The maps run in the layout the convolution kernels read fastest (channels-last for half
        types and float32 on the CPU: :func:`~tavce.models.renderer.precision.preferred_memory_format`);
        the outputs keep it (same values, other strides).
        """
        decoded = self._decoded(faces)
        return self.parsing_head(decoded), self.image_head(decoded)

    def labels(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, H, W) int64 class of every pixel (the image head is not computed)."""
        return self.parsing_head(self._decoded(faces)).argmax(dim=1)

    def _decoded(self, faces: torch.Tensor) -> torch.Tensor:
        feature = self.encoder(faces.contiguous(memory_format=preferred_memory_format(faces)))
        return self.decoder(feature + self.body(feature))
