"""Audio2Coeff component: mel windows + source coefficients -> per-frame motion.

:class:`SadTalkerAudio2Coeff` holds ExpNet and the PoseVAE and runs the whole
SadTalker (or TAVCE-evaluation) procedure: blinks, expression, pose chunks,
smoothing, reference sequences, then still mode and expression scale, which the
original applies in the renderer's input stage and tavce applies here, so
that :class:`~tavce.types.MotionCoefficients` is exactly what the renderer consumes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch

from tavce.errors import InvalidArgumentError
from tavce.models.audio2coeff.blinks import random_blink_ratio
from tavce.models.audio2coeff.expression_net import ENCODER_BATCH, ExpressionNet, ExpressionNetConfig
from tavce.models.audio2coeff.pose_controls import add_reference_motion, camera_degrees, smooth_pose, tile_to_length
from tavce.models.audio2coeff.pose_vae import PoseVAE, PoseVAEConfig
from tavce.models.audio_encoder import AudioEncoder
from tavce.models.base import TavceModule
from tavce.types import MOTION_DIM, SOURCE_COEFF_DIM, AudioWindows, MotionCoefficients

__all__ = [
    "Audio2CoeffOptions",
    "Audio2Coeff",
    "SadTalkerAudio2CoeffConfig",
    "SadTalkerAudio2Coeff",
]

logger = logging.getLogger(__name__)

Variant = Literal["sadtalker", "tavce-eval"]
EXPRESSION_DIM = 64
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Audio2CoeffOptions:
    """What to generate.

    Attributes:
        pose_style: head-motion style class, 0..45 (official PoseVAE).
        expression_scale: multiplies the expression (0 = neutral face, 1 = as predicted).
        still: pose (and crop parameters) fixed to the source; only the expression moves.
        use_blink: random eye blinks (ignored when ``ref_eyeblink`` is given).
        ref_pose: optional (T_ref, 6) pose sequence whose motion relative to its first frame is added.
        ref_eyeblink: optional (T_ref, 64) expression sequence used as ExpNet's reference expression.
        yaw, pitch, roll: optional head angles in degrees (one or more each) that replace the renderer's
            decoded angles: one value holds still, several are walked through over the clip at an even
            pace (:func:`~tavce.models.audio2coeff.pose_controls.camera_degrees`).
        smooth_pose: Savitzky–Golay pose smoothing; None = the variant's default
            (on for "sadtalker", off for "tavce-eval": TAVCE's evaluation path does not smooth).
        variant: "sadtalker" (SadTalker CLI) or "tavce-eval" (TAVCE evaluation script).
    """

    pose_style: int = 0
    expression_scale: float = 1.0
    still: bool = False
    use_blink: bool = True
    ref_pose: torch.Tensor | None = None
    ref_eyeblink: torch.Tensor | None = None
    yaw: tuple[float, ...] | None = None
    pitch: tuple[float, ...] | None = None
    roll: tuple[float, ...] | None = None
    smooth_pose: bool | None = None
    variant: Variant = "sadtalker"

    def __post_init__(self) -> None:
        if isinstance(self.pose_style, bool) or not isinstance(self.pose_style, int):
            raise InvalidArgumentError(f"pose_style must be an int in 0..45, got {self.pose_style!r}")
        if not math.isfinite(self.expression_scale):
            raise InvalidArgumentError(f"expression_scale must be a finite number, got {self.expression_scale!r}")
        if self.variant not in ("sadtalker", "tavce-eval"):
            raise InvalidArgumentError(f"variant must be 'sadtalker' or 'tavce-eval', got {self.variant!r}")

    @property
    def smoothing(self) -> bool:
        return self.variant == "sadtalker" if self.smooth_pose is None else self.smooth_pose


@runtime_checkable
class Audio2Coeff(Protocol):
    """Anything that turns mel windows and a source face into motion coefficients."""

    def generate(
        self,
        windows: AudioWindows,
        source_coefficients: torch.Tensor,
        options: Audio2CoeffOptions | None = None,
        generator: torch.Generator | None = None,
    ) -> MotionCoefficients: ...


@dataclass(frozen=True)
class SadTalkerAudio2CoeffConfig:
    """Sub-network configs; the defaults are the official sizes."""

    expression_net: ExpressionNetConfig = ExpressionNetConfig()
    pose_vae: PoseVAEConfig = PoseVAEConfig()


class SadTalkerAudio2Coeff(TavceModule):
    """ExpNet + PoseVAE (test-time decoder) as one :class:`Audio2Coeff`.

    Args:
        config: sizes of the two networks.
        expression_audio_encoder, pose_audio_encoder: the :class:`~tavce.models.audio_encoder.AudioEncoder`
            of ExpNet and of the PoseVAE (each a Wav2Lip encoder with its own weights by default).
    """

    config_class = SadTalkerAudio2CoeffConfig
    component_slots = {
        "expression_audio_encoder": "expression_net.audio_encoder",
        "pose_audio_encoder": "pose_vae.audio_encoder",
    }

    def __init__(
        self,
        config: SadTalkerAudio2CoeffConfig = SadTalkerAudio2CoeffConfig(),
        *,
        expression_audio_encoder: AudioEncoder | None = None,
        pose_audio_encoder: AudioEncoder | None = None,
    ) -> None:
        super().__init__(config)
        self.expression_net = ExpressionNet(config.expression_net, audio_encoder=expression_audio_encoder)
        self.pose_vae = PoseVAE(config.pose_vae, audio_encoder=pose_audio_encoder)

    @torch.no_grad()
    def generate(
        self,
        windows: AudioWindows,
        source_coefficients: torch.Tensor,
        options: Audio2CoeffOptions | None = None,
        generator: torch.Generator | None = None,
    ) -> MotionCoefficients:
        """Motion coefficients for every frame of the audio.

        Args:
            windows: T per-frame mel windows.
            source_coefficients: (73,) or (70,) source coefficients: expression 64, rotation 3
                (radians), translation 3 [, crop scale, tx, ty].
            options: what to generate (defaults: style 0, blinks, smoothing, SadTalker alignment).
            generator: CPU generator for the blink gaps and the CVAE latents; None uses a fresh
                generator seeded with 0 (every call gives the same result).

        Returns:
            expression (T, 64) scaled by ``expression_scale``, pose (T, 6), and with a 73-dim source
            the source's crop parameters repeated T times.

        Raises:
            InvalidArgumentError: bad pose style, source shape, reference sequence or empty audio.
        """
        options = options or Audio2CoeffOptions()
        generator = generator if generator is not None else torch.Generator().manual_seed(DEFAULT_SEED)
        source = self._checked_source(source_coefficients)
        num_styles = self.config.pose_vae.num_styles
        if not 0 <= options.pose_style < num_styles:
            raise InvalidArgumentError(
                f"pose_style must be in 0..{num_styles - 1}, got {options.pose_style}; "
                f"pick one of the {num_styles} styles"
            )
        num_frames = windows.num_frames
        if num_frames == 0:
            raise InvalidArgumentError("windows: the audio has no whole 40 ms frame; give at least 0.04 s of audio")
        device = next(self.parameters()).device
        logger.debug(
            "Audio2Coeff: %d frames, %d pose chunks, variant %s",
            num_frames, self.pose_vae.num_chunks(num_frames), options.variant,
        )
        source = source.to(device)

        expression = self._expression(windows, source, options, generator)
        if options.still:
            # The original still replaces every generated pose; skip generating it.
            pose = source[EXPRESSION_DIM:MOTION_DIM].expand(num_frames, -1).clone()
        else:
            pose = self._pose(windows, source, options, generator)
        crop = source[MOTION_DIM:].expand(num_frames, -1).clone() if source.shape[0] == SOURCE_COEFF_DIM else None
        angles = {
            name: None if values is None else camera_degrees(values, num_frames)
            for name, values in (("yaw", options.yaw), ("pitch", options.pitch), ("roll", options.roll))
        }
        return MotionCoefficients(expression=expression * options.expression_scale, pose=pose, crop=crop, **angles)

    def _expression(
        self, windows: AudioWindows, source: torch.Tensor, options: Audio2CoeffOptions, generator: torch.Generator
    ) -> torch.Tensor:
        num_frames = windows.num_frames
        if options.ref_eyeblink is not None:
            ref_eyeblink = torch.as_tensor(options.ref_eyeblink, dtype=source.dtype, device=source.device)
            reference = tile_to_length(ref_eyeblink, num_frames, "ref_eyeblink")
            if reference.shape[1] != EXPRESSION_DIM:
                raise InvalidArgumentError(f"ref_eyeblink must be (T_ref, 64), got {tuple(ref_eyeblink.shape)}")
            blinks = torch.zeros(num_frames, 1)
        else:
            reference = source[:EXPRESSION_DIM].expand(num_frames, -1)
            blinks = random_blink_ratio(num_frames, generator) if options.use_blink else torch.zeros(num_frames, 1)
        if options.variant == "tavce-eval":
            # The TAVCE script feeds the first frame's reference expression to every frame.
            reference = reference[:1].expand(num_frames, -1)
        blinks = blinks.to(source)
        # ExpNet is per frame: a batch of windows at a time, into one result, keeps long clips' memory flat.
        expression = source.new_empty(num_frames, EXPRESSION_DIM)
        for start in range(0, num_frames, ENCODER_BATCH):
            frames = slice(start, start + ENCODER_BATCH)
            expression[frames] = self.expression_net(windows.select(frames).to(source), reference[frames], blinks[frames])
        return expression

    def _pose(
        self, windows: AudioWindows, source: torch.Tensor, options: Audio2CoeffOptions, generator: torch.Generator
    ) -> torch.Tensor:
        num_frames = windows.num_frames
        reference_pose = source[EXPRESSION_DIM:MOTION_DIM]
        latent_shape = (self.pose_vae.num_chunks(num_frames), self.config.pose_vae.latent_dim)
        latents = torch.randn(latent_shape, generator=generator)
        motion = self.pose_vae.sample_motion(windows, reference_pose, options.pose_style, latents, options.variant)
        pose = reference_pose + motion
        if options.smoothing:
            pose = smooth_pose(pose)
        if options.ref_pose is not None:
            pose = add_reference_motion(pose, options.ref_pose)
        return pose

    @staticmethod
    def _checked_source(source_coefficients: torch.Tensor) -> torch.Tensor:
        source = torch.as_tensor(source_coefficients, dtype=torch.float32)
        if source.ndim == 2 and source.shape[0] == 1:
            source = source[0]
        if source.ndim != 1 or source.shape[0] not in (MOTION_DIM, SOURCE_COEFF_DIM):
            raise InvalidArgumentError(
                f"source_coefficients must be (73,) or (70,) (expression 64, pose 6[, crop 3]), "
                f"got {tuple(source.shape)}"
            )
        return source
