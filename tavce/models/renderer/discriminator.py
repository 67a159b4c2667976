"""Multi-scale patch discriminator (face-vid2vid ``MultiScaleDiscriminator``). Training only.

The released TAVCE code never builds it; it is ported for training with the face-vid2vid
losses (facerender.yaml ``discriminator_params``: scales [1], base 32, max 512, 4 blocks,
spectral norm). One patch discriminator per image-pyramid scale:

* 4 down blocks: conv 4×4, stride 1, no padding (spectral norm) → InstanceNorm(affine)
  (all blocks but the first) → LeakyReLU(0.2) → avg-pool 2 (all blocks but the last);
  channels 3 → 64 → 128 → 256 → 512;
* prediction: conv 1×1 (spectral norm) 512 → 1.

Spectral normalisation is ``torch.nn.utils.spectral_norm`` (the checkpoint layout
``weight_orig``/``weight_u``/``weight_v``): a power iteration updates u, v on every
training-mode call; in eval mode the weight is ``weight_orig / (uᵀ·W·v)`` with the stored
vectors and no iteration, as the original. InstanceNorm keeps no running
statistics, so it normalises per image in eval mode too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import InvalidArgumentError, InvalidImageError
from tavce.models.base import TavceModule
from tavce.models.renderer.keypoint_detector import AntiAliasDownsample
from tavce.models.renderer.spectral import maybe_spectral

__all__ = ["DiscriminatorConfig", "DiscriminatorOutput", "MultiScaleDiscriminator", "scale_label"]


def scale_label(scale: float) -> str:
    """The module key of a pyramid scale, as the original names it: 1 → "1", 0.5 → "0-5"."""
    return f"{scale:g}".replace(".", "-")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Sizes; defaults are the official ones. Block i has min(max_channels, base·2^(i+1)) channels."""

    image_channels: int = 3
    base_channels: int = 32
    max_channels: int = 512
    num_blocks: int = 4
    scales: tuple[float, ...] = (1.0,)
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        if not self.scales or len({scale_label(scale) for scale in self.scales}) != len(self.scales):
            raise InvalidArgumentError(f"DiscriminatorConfig: scales {self.scales} must be non-empty and distinct.")


@dataclass
class DiscriminatorOutput:
    """One scale's result.

    Attributes:
        feature_maps: the output of every down block (for the feature-matching loss),
            e.g. (B, 64, 126, 126), (B, 128, 61, 61), (B, 256, 29, 29), (B, 512, 26, 26) at 256².
        prediction_map: (B, 1, h, w) real/fake logits per patch, h, w those of the last feature map.
    """

    feature_maps: list[torch.Tensor]
    prediction_map: torch.Tensor


class DiscriminatorBlock(nn.Module):
    """conv4×4 (no padding) → [InstanceNorm] → LeakyReLU(0.2) → [avg-pool 2]."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: bool, pool: bool, spectral_norm: bool) -> None:
        super().__init__()
        self.conv = maybe_spectral(nn.Conv2d(in_channels, out_channels, kernel_size=4), spectral_norm)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True) if norm else None
        self.pool = pool

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.conv(features)
        if self.norm is not None:
            features = self.norm(features)
        features = F.leaky_relu(features, 0.2)
        return F.avg_pool2d(features, kernel_size=2) if self.pool else features


class PatchDiscriminator(nn.Module):
    """(B, 3, H, W) → :class:`DiscriminatorOutput` (single scale)."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()

        def width(level: int) -> int:
            return min(config.max_channels, config.base_channels * 2**level)

        last = config.num_blocks - 1
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(
                config.image_channels if i == 0 else width(i),
                width(i + 1),
                norm=i != 0,
                pool=i != last,
                spectral_norm=config.spectral_norm,
            )
            for i in range(config.num_blocks)
        )
        self.prediction = maybe_spectral(nn.Conv2d(width(config.num_blocks), 1, kernel_size=1), config.spectral_norm)

    def forward(self, image: torch.Tensor) -> DiscriminatorOutput:
        feature_maps = []
        features = image
        for block in self.blocks:
            features = block(features)
            feature_maps.append(features)
        return DiscriminatorOutput(feature_maps, self.prediction(features))


class MultiScaleDiscriminator(TavceModule):
    """One :class:`PatchDiscriminator` per scale of ``config.scales``.

    Call it with an image (the pyramid is built here: anti-aliased downsampling as the
    keypoint detector's, identity at scale 1) or with a ready pyramid
    ``{scale: (B, 3, H·scale, W·scale)}``. Returns ``{scale: DiscriminatorOutput}``.
    """

    config_class = DiscriminatorConfig

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()) -> None:
        super().__init__(config)
        self.discriminators = nn.ModuleDict({scale_label(scale): PatchDiscriminator(config) for scale in config.scales})
        self.pyramid = nn.ModuleDict(
            {
                # Not in the checkpoints (the original builds its pyramid outside the discriminator).
                scale_label(scale): AntiAliasDownsample(config.image_channels, scale, persistent=False)
                for scale in config.scales
                if scale != 1
            }
        )

    def image_pyramid(self, image: torch.Tensor) -> dict[float, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] → ``{scale: image at that scale}`` for every configured scale."""
        if image.ndim != 4 or image.shape[1] != self.config.image_channels:
            raise InvalidImageError(
                f"image: expected (B, {self.config.image_channels}, H, W) in [0, 1], got {tuple(image.shape)}."
            )
        return {
            scale: image if scale == 1 else self.pyramid[scale_label(scale)](image) for scale in self.config.scales
        }

    def forward(self, images: torch.Tensor | Mapping[float, torch.Tensor]) -> dict[float, DiscriminatorOutput]:
        """Args: images, (B, 3, H, W) in [0, 1] or a pyramid holding every configured scale."""
        pyramid = self.image_pyramid(images) if isinstance(images, torch.Tensor) else dict(images)
        missing = [scale for scale in self.config.scales if scale not in pyramid]
        if missing:
            raise InvalidArgumentError(
                f"images: the pyramid lacks scales {missing}; pass one image per scale of {self.config.scales} "
                "or a single full-size image."
            )
        return {scale: self.discriminators[scale_label(scale)](pyramid[scale]) for scale in self.config.scales}
