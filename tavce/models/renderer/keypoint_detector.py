"""Keypoint detector: source image → canonical 3-D keypoints.

The image is low-passed and subsampled (anti-aliased ×0.25: 256² → 64², 512² → 128²),
encoded by 2-D down blocks, lifted by a 1×1 conv to a 3-D volume and decoded by 3-D
up blocks into one heat-map volume per keypoint (depth 16). Each keypoint is the
expectation of an (x, y, z) coordinate grid in [-1, 1] under the softmax of its
heat-map divided by the temperature (0.1). No Jacobians (``estimate_jacobian: False``).

The low-pass kernel is a buffer stored in the checkpoints (``down.weight`` in the
original naming), so it is loaded like a weight rather than recomputed; a new
module starts from the analytic kernel :func:`gaussian_kernel`.

In a half-precision module the keypoint head conv, the heat-map softmax (logits ×10 by
the temperature) and the expectation run in float32, and the keypoints come out in
float32 (precision.py); the encoder and the 3-D decoder run in the module's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import InvalidArgumentError, InvalidImageError
from tavce.models.base import TavceModule
from tavce.models.renderer.dense_motion import UpBlock3d, coordinate_grid_3d
from tavce.models.renderer.generator import ConvNormAct2d
from tavce.models.renderer.precision import Float32Conv3d

__all__ = ["AntiAliasDownsample", "KeypointDetector", "KeypointDetectorConfig", "gaussian_kernel"]


def gaussian_kernel(scale_factor: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The analytic low-pass kernel for subsampling by ``scale_factor`` (< 1), shape (size, size), sum 1.

    σ = (1/scale − 1)/2 and size = 2·round(4σ) + 1 (×0.25: σ = 1.5, 13×13); the kernel is the
    outer product of exp(−(i − c)²/(2σ²)) with itself, c the centre index, normalised to sum 1.
    """
    sigma = (1 / scale_factor - 1) / 2
    size = 2 * round(4 * sigma) + 1
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    profile = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = torch.outer(profile, profile)
    return (kernel / kernel.sum()).to(dtype)


class AntiAliasDownsample(nn.Module):
    """Depthwise Gaussian blur (zero padding) then every (1/scale)-th pixel from index 0.

    (B, C, H, W) → (B, C, ⌈H·scale⌉, ⌈W·scale⌉). The kernel is the persistent buffer
    ``kernel`` of shape (C, 1, k, k); ``persistent=False`` leaves it out of the state dict
    (for pyramids whose kernels no checkpoint stores).
    """

    def __init__(self, channels: int, scale_factor: float, persistent: bool = True) -> None:
        super().__init__()
        stride = round(1 / scale_factor)
        if not 0 < scale_factor < 1 or abs(stride * scale_factor - 1) > 1e-6:
            raise InvalidArgumentError(
                f"scale_factor: expected 1/n for an integer n >= 2 (e.g. 0.25), got {scale_factor}."
            )
        self.stride = stride
        kernel = gaussian_kernel(scale_factor)
        self.register_buffer("kernel", kernel.expand(channels, 1, *kernel.shape).clone(), persistent=persistent)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        padding = self.kernel.shape[-1] // 2
        blurred = F.conv2d(F.pad(image, (padding,) * 4), self.kernel, groups=image.shape[1])
        return blurred[:, :, :: self.stride, :: self.stride]


@dataclass(frozen=True)
class KeypointDetectorConfig:
    """Sizes; defaults are the official ones (facerender.yaml ``kp_detector_params``).

    Channels of encoder level i are min(max_channels, base·2^(i+1)); the 1×1 conv maps the
    last level to ``reshape_channels`` = (volume channels) × ``reshape_depth``, where the
    volume channels equal the deepest level's width; the decoder halves them back to base.
    """

    image_channels: int = 3
    base_channels: int = 32
    max_channels: int = 1024
    num_blocks: int = 5
    reshape_channels: int = 16384
    reshape_depth: int = 16
    num_keypoints: int = 15
    temperature: float = 0.1
    scale_factor: float = 0.25

    def __post_init__(self) -> None:
        volume_channels = self.level_channels(self.num_blocks)
        if self.reshape_channels != volume_channels * self.reshape_depth:
            raise InvalidArgumentError(
                f"KeypointDetectorConfig: reshape_channels ({self.reshape_channels}) must equal the deepest "
                f"encoder width ({volume_channels}) × reshape_depth ({self.reshape_depth}) = "
                f"{volume_channels * self.reshape_depth}."
            )

    def level_channels(self, level: int) -> int:
        """Width of encoder/decoder level ``level`` (0 = base)."""
        return min(self.max_channels, self.base_channels * 2**level)


class KeypointDetector(TavceModule):
    """(B, 3, S, S) image in [0, 1] → (B, K, 3) canonical keypoints (x, y, z) in [-1, 1]."""

    config_class = KeypointDetectorConfig

    def __init__(self, config: KeypointDetectorConfig = KeypointDetectorConfig()) -> None:
        super().__init__(config)
        self.downsample = (
            AntiAliasDownsample(config.image_channels, config.scale_factor) if config.scale_factor != 1 else None
        )
        levels = range(config.num_blocks)
        self.down_blocks = nn.ModuleList(
            ConvNormAct2d(config.image_channels if i == 0 else config.level_channels(i), config.level_channels(i + 1))
            for i in levels
        )
        self.to_volume = nn.Conv2d(config.level_channels(config.num_blocks), config.reshape_channels, kernel_size=1)
        self.up_blocks = nn.ModuleList(
            UpBlock3d(config.level_channels(i + 1), config.level_channels(i)) for i in reversed(levels)
        )
        self.keypoint_head = Float32Conv3d(config.base_channels, config.num_keypoints, kernel_size=3, padding=1)

    def heatmaps(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) → (B, K, depth, S·scale, S·scale) heat-maps, each a softmax over its volume.

        Float32 for half-precision modules (float64 modules stay float64).
        """
        if image.ndim != 4 or image.shape[1] != self.config.image_channels:
            raise InvalidImageError(
                f"image: expected (B, {self.config.image_channels}, S, S) in [0, 1], got {tuple(image.shape)}."
            )
        features = self.downsample(image) if self.downsample is not None else image
        for block in self.down_blocks:
            features = F.avg_pool2d(block(features), kernel_size=2)
        features = self.to_volume(features)
        batch, channels, height, width = features.shape
        volume = features.view(batch, channels // self.config.reshape_depth, self.config.reshape_depth, height, width)
        for block in self.up_blocks:
            volume = block(volume)
        logits = self.keypoint_head(volume)
        probabilities = F.softmax(logits.flatten(2) / self.config.temperature, dim=2)
        return probabilities.view_as(logits)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [0, 1] → (B, K, 3): the heat-map expectation of the coordinate grid."""
        heatmaps = self.heatmaps(image)
        grid = coordinate_grid_3d(*heatmaps.shape[2:], like=heatmaps)
        return (heatmaps.unsqueeze(-1) * grid).sum(dim=(2, 3, 4))
