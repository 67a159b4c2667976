"""Dense motion network: keypoints → 3-D deformation field and occlusion map.

Given the source feature volume V and source/driving
keypoints, it predicts for every voxel a soft assignment over K+1 motions (the
identity for the background plus one per keypoint, each a translation of the
identity grid by kp_source - kp_driving), combines them into a deformation field,
and predicts a 2-D occlusion map. Reproduced as the original computes it:
mask entries < 1e-3 zeroed without renormalising, grids built with
corner-aligned coordinates but sampled with ``align_corners=False`` (the weights were
trained with both).

Precision (precision.py): whatever the module's dtype, coordinates, Gaussian heat-maps,
sparse motions, the motion softmax, the deformation field, the trilinear sampling and
the occlusion conv + sigmoid are computed in float32 (for half-precision modules); the
3-D hourglass and the 7×7×7 mask conv run in the module's dtype. The up blocks of the
hourglass convolve their nearest-upsampled input in polyphase form (fast_conv.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from tavce.models.renderer.fast_conv import (
    DerivedWeights,
    clear_derived,
    conv3x3_of_nearest_upsampled,
    polyphase_pays,
    polyphase_weights,
    reductions_enabled,
    single_output_conv2d,
)
from tavce.models.renderer.precision import (
    Float32Conv2d,
    accurate_dtype,
    contiguous_state_dict,
    flush_subnormals_,
    hold_conv_weights_in,
    preferred_memory_format,
)

__all__ = [
    "coordinate_grid_3d",
    "grid_sample_3d",
    "keypoint_gaussians",
    "DownBlock3d",
    "UpBlock3d",
    "Hourglass3d",
    "DenseMotionConfig",
    "DenseMotion",
    "DenseMotionNetwork",
]

KEYPOINT_VARIANCE = 0.01
MASK_THRESHOLD = 1e-3


def coordinate_grid_3d(depth: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(D, H, W, 3) grid of (x, y, z) in [-1, 1], value 2·i/(n-1) - 1 along each axis."""

    def axis(size: int) -> torch.Tensor:
        steps = torch.arange(size, dtype=like.dtype, device=like.device)
        return 2 * (steps / (size - 1)) - 1

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def grid_sample_3d(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Trilinear ``grid_sample`` (zero padding, ``align_corners=False`` as the original, on corner-aligned grids) of a 5-D volume.

    Half-precision volumes and grids are sampled in float32 (a bfloat16 coordinate is off by up
    to a third of a voxel at 64 samples per axis); the result has the volume's dtype. Apple's
    MPS backend has no 3-D grid sampler; there the sampling runs on the CPU (in float32) and the
    result returns to the volume's device and dtype.
    """
    dtype = accurate_dtype(torch.promote_types(volume.dtype, grid.dtype))
    if volume.device.type != "mps":
        sampled = F.grid_sample(volume.to(dtype), grid.to(dtype), align_corners=False)
        return sampled.to(volume.dtype)
    sampled = F.grid_sample(volume.float().cpu(), grid.float().cpu(), align_corners=False)
    return sampled.to(device=volume.device, dtype=volume.dtype)


def keypoint_gaussians(keypoints: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, K, D, H, W) unnormalised Gaussians exp(-½‖grid - kp‖²/0.01) around (B, K, 3) keypoints."""
    offsets = grid[None, None] - keypoints[:, :, None, None, None, :]
    return torch.exp(-0.5 * (offsets**2).sum(-1) / KEYPOINT_VARIANCE)


class DownBlock3d(nn.Module):
    """conv3³ + BatchNorm + ReLU, then average pooling by 2 in height and width."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.norm(self.conv(features)), inplace=True)
        # avg_pool3d with kernel (1, 2, 2) as a 2-D pool over merged (C, D): the same numbers,
        # and 2-D pooling also has CPU bfloat16 kernels.
        batch, channels, depth, height, width = features.shape
        if features.is_contiguous(memory_format=torch.channels_last_3d) and not features.is_contiguous():
            # Held as (B, D, H, W, C): (B·D, C, H, W) channels-last views, pooled without a copy.
            per_depth = features.transpose(1, 2).reshape(batch * depth, channels, height, width)
            pooled = F.avg_pool2d(per_depth, kernel_size=2)
            return pooled.view(batch, depth, channels, height // 2, width // 2).transpose(1, 2)
        pooled = F.avg_pool2d(features.reshape(batch, channels * depth, height, width), kernel_size=2)
        return pooled.reshape(batch, channels, depth, height // 2, width // 2)


class UpBlock3d(nn.Module):
    """Nearest upsampling ×2 in height and width, then conv3³ + BatchNorm + ReLU.

    Where that pays (:func:`~tavce.models.renderer.fast_conv.polyphase_pays`: maps of 8×8 and
    more), the conv runs on the input itself in polyphase form (fast_conv.py): the same numbers
    as convolving the upsampled copy, with 2×2 instead of 3×3 taps in height and width per
    phase. The deepest blocks (2×2 and 4×4 maps, the widest weights) convolve the upsampled copy
    and keep no folded weights.
    """

    SCALES = (1, 2, 2)

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm3d(out_channels)
        self._derived = DerivedWeights()
        self.register_load_state_dict_post_hook(clear_derived)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C_in, D, H, W) → (B, C_out, D, 2H, 2W)."""
        if not reductions_enabled() or not polyphase_pays(features.shape[2:], self.SCALES):
            upsampled = F.interpolate(features, scale_factor=self.SCALES, mode="nearest")
            return F.relu(self.norm(self.conv(upsampled)), inplace=True)
        folded = self._derived.get(
            "polyphase", (self.conv.weight, self.conv.bias),
            lambda: polyphase_weights(self.conv.weight, self.conv.bias, self.SCALES),
        )
        return F.relu(self.norm(conv3x3_of_nearest_upsampled(features, folded, self.SCALES)), inplace=True)


class Hourglass3d(nn.Module):
    """3-D U-Net: ``num_blocks`` down blocks, as many up blocks with skip concatenation.

    Channels of level i: min(max_channels, base·2^(i+1)); the output has
    base + in_channels channels (the last skip is the input itself), refined by a
    final conv3³ + BatchNorm + ReLU.
    """

    def __init__(self, in_channels: int, base_channels: int, num_blocks: int, max_channels: int) -> None:
        super().__init__()

        def width(level: int) -> int:
            return min(max_channels, base_channels * 2**level)

        self.down_blocks = nn.ModuleList(
            DownBlock3d(in_channels if i == 0 else width(i), width(i + 1)) for i in range(num_blocks)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock3d((1 if i == num_blocks - 1 else 2) * width(i + 1), width(i)) for i in reversed(range(num_blocks))
        )
        self.out_channels = base_channels + in_channels
        self.out_conv = nn.Conv3d(self.out_channels, self.out_channels, 3, padding=1)
        self.out_norm = nn.BatchNorm3d(self.out_channels)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        skips = [features]
        for block in self.down_blocks:
            skips.append(block(skips[-1]))
        hidden = skips.pop()
        for block in self.up_blocks:
            hidden = torch.cat([block(hidden), skips.pop()], dim=1)
        # Rebound, so the concatenation is freed before the norm's output exists (the widest maps of the frame).
        hidden = self.out_conv(hidden)
        return F.relu(self.out_norm(hidden), inplace=True)


def _hourglass_memory_format(maps: torch.Tensor) -> torch.memory_format:
    """The layout of the hourglass's and the mask conv's maps: contiguous for float32 on the CPU.

    oneDNN's float32 3-D convs here run faster on contiguous maps where those of the rest of the
    renderer prefer channels-last: the 7×7×7 mask conv 255 vs 341 ms, the 1024-channel convs at
    4×4 and 8×8 56 vs 86 ms; a float32 frame 4.16 → 4.01 s (2-core Xeon with AVX-512).
    """
    if maps.dtype == torch.float32 and maps.device.type == "cpu":
        return torch.contiguous_format
    return preferred_memory_format(maps)


@dataclass(frozen=True)
class DenseMotionConfig:
    """Official sizes: 32-channel volume of depth 16, compressed to 4, hourglass 32/5/1024, 15 keypoints."""

    volume_channels: int = 32
    volume_depth: int = 16
    compressed_channels: int = 4
    base_channels: int = 32
    num_blocks: int = 5
    max_channels: int = 1024
    num_keypoints: int = 15


@dataclass
class DenseMotion:
    """Dense motion outputs.

    Attributes:
        mask: (B, K+1, D, h, w) softmax over motions, before the 1e-3 threshold.
        deformation: (B, D, h, w, 3) sampling grid (x, y, z) into the source volume.
        occlusion_map: (B, 1, h, w) in (0, 1).
    """

    mask: torch.Tensor
    deformation: torch.Tensor
    occlusion_map: torch.Tensor


class DenseMotionNetwork(nn.Module):
    """(V, kp_source, kp_driving) → :class:`DenseMotion`."""

    def __init__(self, config: DenseMotionConfig) -> None:
        super().__init__()
        self.config = config
        motions = config.num_keypoints + 1
        self.compress = nn.Conv3d(config.volume_channels, config.compressed_channels, kernel_size=1)
        self.compress_norm = nn.BatchNorm3d(config.compressed_channels)
        self.hourglass = Hourglass3d(
            motions * (config.compressed_channels + 1), config.base_channels, config.num_blocks, config.max_channels
        )
        self.mask = nn.Conv3d(self.hourglass.out_channels, motions, kernel_size=7, padding=3)
        # Float32 in half-precision modules: one output channel (cheap), followed by a sigmoid.
        self.occlusion = Float32Conv2d(self.hourglass.out_channels * config.volume_depth, 1, kernel_size=7, padding=3)
        self.register_state_dict_post_hook(contiguous_state_dict)

    def compress_volume(self, volume: torch.Tensor) -> torch.Tensor:
        """(B, C, D, h, w) → (B, compressed, D, h, w); depends on the source only."""
        return F.relu(self.compress_norm(self.compress(volume.to(self.compress.weight.dtype))))

    def _occlusion_logits(self, features: torch.Tensor) -> torch.Tensor:
        if not reductions_enabled():
            return self.occlusion(features)
        conv = self.occlusion
        features = features.to(conv.weight.dtype)
        return single_output_conv2d(features, conv.weight, conv.bias, cast(int, conv.padding[0]))

    def forward(self, compressed: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> DenseMotion:
        """Predict the motion.

        Args:
            compressed: (1 or B, compressed, D, h, w) output of :meth:`compress_volume`.
            kp_source, kp_driving: (B, K, 3) keypoints in [-1, 1] (x, y, z).

        Half-precision modules return the mask, deformation and occlusion map in float32.
        """
        batch, num_kp = kp_driving.shape[:2]
        _, channels, depth, height, width = compressed.shape
        dtype = compressed.dtype
        accurate = accurate_dtype(dtype)
        kp_source, kp_driving = kp_source.to(accurate), kp_driving.to(accurate)
        grid = coordinate_grid_3d(depth, height, width, compressed.new_empty(0, dtype=accurate))
        # Motion k maps a driving-frame voxel to the source: grid - kp_driving_k + kp_source_k
        # (evaluated in this order, as the original does, for bit-level parity).
        keypoint_motions = grid - kp_driving[:, :, None, None, None, :] + kp_source[:, :, None, None, None, :]
        sparse_motions = torch.cat([grid.expand(batch, 1, *grid.shape), keypoint_motions], dim=1)
        motions = num_kp + 1
        repeated = compressed.expand(batch, *compressed.shape[1:]).unsqueeze(1).expand(-1, motions, -1, -1, -1, -1)
        deformed = grid_sample_3d(
            repeated.reshape(batch * motions, channels, depth, height, width),
            sparse_motions.reshape(batch * motions, depth, height, width, 3),
        ).view(batch, motions, channels, depth, height, width)
        heatmaps = flush_subnormals_(keypoint_gaussians(kp_driving, grid) - keypoint_gaussians(kp_source, grid))
        background = torch.zeros_like(heatmaps[:, :1])
        heatmaps = torch.cat([background, heatmaps], dim=1).unsqueeze(2)
        hourglass_input = torch.cat([heatmaps.to(dtype), deformed], dim=2).view(batch, -1, depth, height, width)
        if reductions_enabled():
            # The hourglass and the mask conv in the 3-D kernels' preferred layout, weights included.
            layout = _hourglass_memory_format(hourglass_input)
            hourglass_input = hourglass_input.contiguous(memory_format=layout)
            hold_conv_weights_in(self.hourglass, layout)
            hold_conv_weights_in(self.mask, layout)
        prediction = self.hourglass(hourglass_input)

        mask = F.softmax(self.mask(prediction).to(accurate, memory_format=torch.contiguous_format), dim=1)
        kept = torch.where(mask < MASK_THRESHOLD, torch.zeros_like(mask), mask)
        deformation = (sparse_motions * kept.unsqueeze(-1)).sum(dim=1)
        occlusion_map = torch.sigmoid(self._occlusion_logits(prediction.reshape(batch, -1, height, width)))
        return DenseMotion(mask=mask, deformation=deformation, occlusion_map=occlusion_map)
