"""Occlusion-aware SPADE generator (face-vid2vid / SadTalker), with optional TAVCE CERL.

The source image is encoded into a 2-D
appearance feature F (B, 512, h, w) with h = H/4, optionally fused with the
audio relationship (CERL, cerl.py), lifted to a 3-D volume V (32 ch × depth 16),
warped by the dense motion field the keypoints induce, masked by the predicted
occlusion and decoded by the SPADE decoder into an RGB image in (0, 1).

Without a relationship the computation is exactly SadTalker's generator. A
generator built with ``cerl=True`` still accepts ``relationship=None`` (CERL is
skipped entirely, including its output conv, as the original does); one built with
``cerl=False`` refuses a relationship instead of ignoring it.

Precision (precision.py): cast to a half type, the generator keeps its *volume path* in
float32 — CERL fusion, the 3-D residual blocks, the warp, the bottleneck and its
projection (about 5 % of a frame's FLOPs). Measured on the full-size renderer in
bfloat16, this path carried about a third of the frames' squared error (PSNR against
float32 40.0 → 41.6 dB). The encoder, the dense motion's hourglass and the SPADE decoder
(the bulk of the work) run in the half type.

The work is split so that a renderer can run the source-only part once per clip:
:meth:`encode` (→ F), :meth:`lift` (F → V), :meth:`prepare_volume` (V → the
compressed volume for the dense motion) and :meth:`animate` (per frame).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, InvalidImageError
from tavce.models.base import TavceModule, load_state_dict_strict
from tavce.models.renderer.cerl import CERLConfig, CERLFusion
from tavce.models.renderer.dense_motion import DenseMotionConfig, DenseMotionNetwork, grid_sample_3d
from tavce.models.renderer.fast_conv import reductions_enabled
from tavce.models.renderer.precision import (
    Float32Conv2d,
    Float32Weights,
    contiguous_state_dict,
    hold_conv_weights_in,
    preferred_memory_format,
)
from tavce.models.renderer.spade import SPADEDecoder, SPADEDecoderConfig
from tavce.models.renderer.spectral import fold_spectral_norm

__all__ = [
    "ConvNormAct2d",
    "Float32ConvNormAct2d",
    "ResBlock3d",
    "GeneratorConfig",
    "GeneratorOutput",
    "OcclusionAwareSPADEGenerator",
    "has_cerl_weights",
    "load_inference_generator",
]

CERL_KEYS = tuple(f"fusion.{layer}.{leaf}" for layer in ("proj_down", "proj_up", "output") for leaf in ("weight", "bias"))


class ConvNormAct2d(nn.Module):
    """conv3x3 + BatchNorm + activation (ReLU, or LeakyReLU(0.01) as the original ``third`` uses)."""

    def __init__(self, in_channels: int, out_channels: int, leaky: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.leaky = leaky

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = self.norm(self.conv(features.to(self.conv.weight.dtype)))
        return F.leaky_relu(features, 0.01) if self.leaky else F.relu(features)


class Float32ConvNormAct2d(Float32Weights, ConvNormAct2d):
    """A :class:`ConvNormAct2d` that stays float32 in a half-precision parent (same parameters and keys)."""


class ResBlock3d(Float32Weights, nn.Module):
    """Pre-activation 3-D residual block: x + conv(relu(bn(conv(relu(bn(x)))))), 3x3x3 convs.

    Part of the float32 volume path: weights stay float32 in a half-precision generator.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm3d(channels)
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        volume = volume.to(self.conv1.weight.dtype)
        hidden = self.conv1(F.relu(self.norm1(volume)))
        return volume + self.conv2(F.relu(self.norm2(hidden)))


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator sizes; defaults are the official SadTalker/TAVCE ones (facerender.yaml).

    ``cerl`` adds the TAVCE fusion layers; ``spectral_norm`` keeps the decoder's
    spectral normalisation (training); inference uses folded plain weights.
    """

    image_channels: int = 3
    base_channels: int = 64
    max_channels: int = 512
    num_down_blocks: int = 2
    volume_channels: int = 32
    volume_depth: int = 16
    num_volume_blocks: int = 6
    num_keypoints: int = 15
    motion_base_channels: int = 32
    motion_num_blocks: int = 5
    motion_max_channels: int = 1024
    motion_compressed_channels: int = 4
    decoder_hidden_channels: int = 512
    decoder_num_middle_blocks: int = 6
    decoder_up_channels: tuple[int, ...] = (256, 64)
    spade_hidden_channels: int = 128
    cerl: bool = False
    relationship_dim: int = 128
    spectral_norm: bool = False

    def __post_init__(self) -> None:
        if self.volume_channels * self.volume_depth != self.max_channels:
            raise InvalidArgumentError(
                f"GeneratorConfig: volume_channels·volume_depth ({self.volume_channels}·{self.volume_depth}) "
                f"must equal max_channels ({self.max_channels})."
            )

    @property
    def image_size_multiple(self) -> int:
        """Image sides must be multiples of this: the encoder and the hourglass halve them repeatedly (128)."""
        return 2 ** (self.num_down_blocks + self.motion_num_blocks)

    @property
    def bottleneck_channels(self) -> int:
        return min(self.max_channels, self.base_channels * 2**self.num_down_blocks)


@dataclass
class GeneratorOutput:
    """prediction (B, 3, H, W) in (0, 1); mask (B, K+1, D, h, w); occlusion_map (B, 1, h, w).

    The prediction has the generator's dtype; mask and occlusion map are float32 for a
    half-precision generator (they are computed in float32, precision.py).
    """

    prediction: torch.Tensor
    mask: torch.Tensor
    occlusion_map: torch.Tensor


class OcclusionAwareSPADEGenerator(TavceModule):
    """Source image + keypoints (+ audio relationship) → rendered frame."""

    config_class = GeneratorConfig

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__(config)

        def width(level: int) -> int:
            return min(config.max_channels, config.base_channels * 2**level)

        self.first = ConvNormAct2d(config.image_channels, config.base_channels)
        self.down_blocks = nn.ModuleList(
            ConvNormAct2d(width(i), width(i + 1)) for i in range(config.num_down_blocks)
        )
        self.to_features = nn.Conv2d(config.bottleneck_channels, config.max_channels, kernel_size=1)
        self.fusion = CERLFusion(CERLConfig(config.max_channels, config.relationship_dim)) if config.cerl else None
        self.volume_blocks = nn.Sequential(*(ResBlock3d(config.volume_channels) for _ in range(config.num_volume_blocks)))
        self.dense_motion = DenseMotionNetwork(
            DenseMotionConfig(
                volume_channels=config.volume_channels,
                volume_depth=config.volume_depth,
                compressed_channels=config.motion_compressed_channels,
                base_channels=config.motion_base_channels,
                num_blocks=config.motion_num_blocks,
                max_channels=config.motion_max_channels,
                num_keypoints=config.num_keypoints,
            )
        )
        self.bottleneck = Float32ConvNormAct2d(config.max_channels, config.bottleneck_channels, leaky=True)
        self.bottleneck_projection = Float32Conv2d(config.bottleneck_channels, config.bottleneck_channels, kernel_size=1)
        self.decoder = SPADEDecoder(
            SPADEDecoderConfig(
                input_channels=config.bottleneck_channels,
                hidden_channels=config.decoder_hidden_channels,
                num_middle_blocks=config.decoder_num_middle_blocks,
                up_channels=config.decoder_up_channels,
                image_channels=config.image_channels,
                spectral_norm=config.spectral_norm,
                spade_hidden_channels=config.spade_hidden_channels,
            )
        )
        self.register_state_dict_post_hook(contiguous_state_dict)

    @property
    def has_cerl(self) -> bool:
        return self.fusion is not None

    def check_image_size(self, image: torch.Tensor) -> None:
        """Raise InvalidImageError unless ``image`` is (B, C, H, W) with H, W positive multiples of 128."""
        multiple = self.config.image_size_multiple
        height, width = image.shape[-2:] if image.ndim == 4 else (0, 0)
        if image.shape[1:2] != (self.config.image_channels,) or not height or height % multiple or width % multiple:
            raise InvalidImageError(
                f"source_image: expected (B, {self.config.image_channels}, H, W) with H and W multiples of "
                f"{multiple}, got {tuple(image.shape)}; resize the source to 256x256 (or 512x512)."
            )

    def encode(self, source_image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] → appearance feature F (B, 512, H/4, W/4), the CERL input."""
        features = self.first(source_image)
        for block in self.down_blocks:
            features = F.avg_pool2d(block(features), kernel_size=2)
        return self.to_features(features)

    def fuse(self, features: torch.Tensor, relationship: torch.Tensor | None) -> torch.Tensor:
        """Apply CERL when a relationship is given; ``None`` returns ``features`` untouched.

        Raises:
            InvalidArgumentError: a relationship was given to a generator without CERL weights.
        """
        if relationship is None:
            return features
        if self.fusion is None:
            raise InvalidArgumentError(
                "relationship: this generator has no CERL fusion weights (SadTalker weights, 'no CERL' mode); "
                "pass relationship=None or load TAVCE face-render weights."
            )
        return self.fusion(features, relationship)

    def lift(self, features: torch.Tensor) -> torch.Tensor:
        """F (B, 512, h, w) → feature volume V (B, 32, 16, h, w) after the 3-D residual blocks."""
        batch, _, height, width = features.shape
        volume = features.view(batch, self.config.volume_channels, self.config.volume_depth, height, width)
        if not reductions_enabled() or not len(self.volume_blocks):
            return self.volume_blocks(volume)
        # The float32 3-D convs run about 1.4x faster channels-last on the CPU: cast and re-lay out in one
        # copy, weights held likewise; V itself is returned contiguous, as its samplers read it.
        weight = cast(ResBlock3d, self.volume_blocks[0]).conv1.weight
        layout = preferred_memory_format(weight)
        hold_conv_weights_in(self.volume_blocks, layout)
        return self.volume_blocks(volume.to(weight.dtype, memory_format=layout)).contiguous()

    def prepare_volume(self, volume: torch.Tensor) -> torch.Tensor:
        """V → the compressed volume the dense motion network samples (source-only work)."""
        return self.dense_motion.compress_volume(volume)

    def animate(
        self, volume: torch.Tensor, compressed: torch.Tensor, kp_source: torch.Tensor, kp_driving: torch.Tensor
    ) -> GeneratorOutput:
        """Warp V towards the driving keypoints and decode.

        Args:
            volume: V, (1 or B, 32, 16, h, w); a batch of 1 is shared by all frames.
            compressed: :meth:`prepare_volume` of ``volume``.
            kp_source, kp_driving: (B, K, 3) keypoints.
        """
        batch = kp_driving.shape[0]
        motion = self.dense_motion(compressed, kp_source, kp_driving)
        volume = volume.expand(batch, *volume.shape[1:])
        warped = grid_sample_3d(volume, motion.deformation)
        _, channels, depth, height, width = warped.shape
        features = self.bottleneck(warped.reshape(batch, channels * depth, height, width))
        features = self.bottleneck_projection(features) * motion.occlusion_map.to(features.dtype)
        # The decoder casts S to its own dtype.
        return GeneratorOutput(self.decoder(features), motion.mask, motion.occlusion_map)

    def forward(
        self,
        source_image: torch.Tensor,
        kp_source: torch.Tensor,
        kp_driving: torch.Tensor,
        relationship: torch.Tensor | None = None,
    ) -> GeneratorOutput:
        """Render one batch.

        Args:
            source_image: (B, 3, H, W) in [0, 1], H and W multiples of 128 (``config.image_size_multiple``).
            kp_source, kp_driving: (B, 15, 3) keypoints.
            relationship: None (no CERL), (B, 128) differences d or (B, 128, 128) matrices R.
        """
        self.check_image_size(source_image)
        volume = self.lift(self.fuse(self.encode(source_image), relationship))
        return self.animate(volume, self.prepare_volume(volume), kp_source, kp_driving)


def has_cerl_weights(state_dict: dict[str, torch.Tensor], source: str = "generator") -> bool:
    """Whether a generator state dict (tavce names) carries the complete CERL fusion layers.

    Raises:
        IncompatibleWeightsError: only some of the fusion tensors are present.
    """
    present = [key for key in CERL_KEYS if key in state_dict]
    if present and len(present) != len(CERL_KEYS):
        missing = sorted(set(CERL_KEYS) - set(present))
        raise IncompatibleWeightsError(
            f"{source}: incomplete CERL fusion weights (missing {missing}); the checkpoint is damaged "
            "or mixes layouts. Use a complete TAVCE face-render checkpoint or a SadTalker one (no CERL)."
        )
    return bool(present)


def load_inference_generator(
    state_dict: dict[str, torch.Tensor], config: GeneratorConfig = GeneratorConfig(), source: str = "generator"
) -> OcclusionAwareSPADEGenerator:
    """An eval-mode generator for inference from converted weights (tavce names).

    Spectral-norm triples are folded into plain weights; CERL is enabled exactly when
    the fusion weights are present ("no CERL" mode otherwise, never random fusion
    layers, which the original's non-strict load would leave). ``config.cerl`` and ``config.spectral_norm`` are overridden.

    Raises:
        IncompatibleWeightsError: missing, unexpected or mis-shaped weights.
    """
    folded = fold_spectral_norm(state_dict)
    config = dataclasses.replace(config, cerl=has_cerl_weights(folded, source), spectral_norm=False)
    generator = OcclusionAwareSPADEGenerator(config)
    load_state_dict_strict(generator, folded, source=source)
    return generator.eval()
