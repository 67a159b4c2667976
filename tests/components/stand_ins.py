"""Minimal implementations of every component interface, as a researcher would write them.

Each is a registered :class:`~tavce.models.base.TavceModule` (so a pipeline holding it
saves and reloads) and does the least its interface asks — no landmark model, no
3DMM network, no keypoints — so the tests show the pipeline relies on the interfaces
alone. They are deliberately not good at their job.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tavce.components import register_component_class
from tavce.image import frames_to_uint8, load_image
from tavce.models.audio2coeff import Audio2CoeffOptions
from tavce.models.base import TavceModule
from tavce.models.tavc import TemporalCorrelationMetric, relationship_factor
from tavce.preprocess import PreparedSource, compute_crop_geometry, crop_working_image, paste_back
from tavce.testing import face_landmarks
from tavce.types import SOURCE_COEFF_DIM, AudioRelationship, AudioWindows, MotionCoefficients


@dataclass(frozen=True)
class PooledAudioEncoderConfig:
    embedding_dim: int = 16


@register_component_class
class PooledAudioEncoder(TavceModule):
    """AudioEncoder: each window's mean spectrum (80) through one linear layer -> (N, embedding_dim)."""

    config_class = PooledAudioEncoderConfig

    def __init__(self, config: PooledAudioEncoderConfig = PooledAudioEncoderConfig()) -> None:
        super().__init__(config)
        self.projection = nn.Linear(80, config.embedding_dim)

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        spectrum = windows.to(self.projection.weight.dtype).mean(dim=-1).flatten(1)
        return torch.tanh(self.projection(spectrum))


@dataclass(frozen=True)
class BoxPreprocessorConfig:
    """box_scale: the face box's standard-face scale (pixels per unit = box width / box_scale)."""

    box_scale: float = 1.6


@register_component_class
class BoxPreprocessor(TavceModule):
    """Preprocessor: the standard face fitted into the given face box, zero coefficients, no networks."""

    config_class = BoxPreprocessorConfig

    def prepare(
        self,
        image,
        mode: str = "crop",
        size: int = 256,
        *,
        face_box: Sequence[float] | None = None,
        landmarks: np.ndarray | None = None,
        face_index: int | None = None,
    ) -> PreparedSource:
        photo = load_image(image)
        height, width = photo.shape[:2]
        left, top, right, bottom = face_box if face_box is not None else (0, 0, width, height)
        if landmarks is None:
            centre = ((left + right) / 2, (top + bottom) / 2)
            landmarks = face_landmarks(centre, (right - left) / self.config.box_scale)
        geometry = compute_crop_geometry(landmarks, (width, height), mode)
        working = crop_working_image(photo, geometry, size)
        return PreparedSource(
            image=torch.from_numpy(working).permute(2, 0, 1).float().div(255).contiguous(),
            coefficients=torch.zeros(SOURCE_COEFF_DIM),
            reconstruction=torch.zeros(257),
            landmarks=np.asarray(landmarks, np.float32),
            geometry=geometry,
            original_image=photo if geometry.mode.pastes_back else None,
        )

    def restore_frames(self, frames: torch.Tensor, source: PreparedSource) -> np.ndarray:
        pixels = frames_to_uint8(frames)
        return paste_back(pixels, source) if source.mode.pastes_back else pixels


@dataclass(frozen=True)
class LoudnessAudio2CoeffConfig:
    sway: float = 0.05


@register_component_class
class LoudnessAudio2Coeff(TavceModule):
    """Audio2Coeff: expression from each window's mean spectrum, pose = source pose + seeded sway."""

    config_class = LoudnessAudio2CoeffConfig

    def __init__(self, config: LoudnessAudio2CoeffConfig = LoudnessAudio2CoeffConfig()) -> None:
        super().__init__(config)
        self.expression = nn.Linear(80, 64)

    def generate(
        self,
        windows: AudioWindows,
        source_coefficients: torch.Tensor,
        options: Audio2CoeffOptions | None = None,
        generator: torch.Generator | None = None,
    ) -> MotionCoefficients:
        options = options or Audio2CoeffOptions()
        spectrum = windows.windows.to(self.expression.weight.dtype).mean(dim=-1).flatten(1)
        expression = torch.tanh(self.expression(spectrum)) * options.expression_scale
        frames = windows.num_frames
        source = source_coefficients.reshape(-1).float()
        pose = source[64:70].expand(frames, 6).clone()
        if not options.still:
            pose[:, :3] += self.config.sway * torch.randn(frames, 3, generator=generator)
        return MotionCoefficients(expression.float(), pose, source[70:73].expand(frames, 3).clone())


@dataclass(frozen=True)
class ShiftRendererConfig:
    image_size: int = 256
    cerl: bool = False
    relationship_dim: int = 4


@dataclass
class ShiftSource:
    image: torch.Tensor


@register_component_class
class ShiftRenderer(TavceModule):
    """Renderer: the source image shifted by a linear map of each frame's coefficients (+ a CERL gain)."""

    config_class = ShiftRendererConfig

    def __init__(self, config: ShiftRendererConfig = ShiftRendererConfig()) -> None:
        super().__init__(config)
        self.motion = nn.Linear(70, 2)
        self.gain = nn.Linear(config.relationship_dim, 1) if config.cerl else None

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def has_cerl(self) -> bool:
        return self.config.cerl

    def prepare_source(self, source: PreparedSource) -> ShiftSource:
        return ShiftSource(source.image[None].to(self.motion.weight))

    def render(
        self,
        state: ShiftSource,
        coefficients: MotionCoefficients,
        start: int,
        stop: int,
        relationship: AudioRelationship | None = None,
    ) -> torch.Tensor:
        frames = coefficients.as_renderer_input()[start:stop, :70].to(self.motion.weight)
        shift = torch.tanh(self.motion(frames)) * 0.1
        affine = torch.zeros(stop - start, 2, 3, dtype=shift.dtype, device=shift.device)
        affine[:, 0, 0] = affine[:, 1, 1] = 1
        affine[:, :, 2] = shift
        image = state.image.expand(stop - start, -1, -1, -1)
        grid = F.affine_grid(affine, list(image.shape), align_corners=False)
        rendered = F.grid_sample(image, grid, padding_mode="border", align_corners=False)
        if self.gain is not None:
            differences = relationship.differences[start:stop].to(shift)
            rendered = rendered * (1 + 0.1 * torch.tanh(self.gain(differences)))[:, :, None, None]
        return rendered.clamp(0, 1)


@dataclass(frozen=True)
class PooledMetricConfig:
    embedding_dim: int = 4


@register_component_class
class PooledMetric(TavceModule, TemporalCorrelationMetric):
    """TemporalCorrelationMetric: an injected audio encoder, mouths by mean colour; the interface's default audio_relationships."""

    config_class = PooledMetricConfig
    component_slots = {"audio_encoder": "audio_encoder"}

    def __init__(self, config: PooledMetricConfig = PooledMetricConfig(), *, audio_encoder=None) -> None:
        super().__init__(config)
        if audio_encoder is None:
            audio_encoder = PooledAudioEncoder(PooledAudioEncoderConfig(config.embedding_dim))
        self.audio_encoder = audio_encoder
        self.mouth = nn.Linear(3, config.embedding_dim)

    def audio_relationship(self, previous_windows: torch.Tensor, current_windows: torch.Tensor) -> torch.Tensor:
        return relationship_factor(self.audio_encoder(previous_windows), self.audio_encoder(current_windows))

    def visual_relationship(self, previous_mouths: torch.Tensor, current_mouths: torch.Tensor) -> torch.Tensor:
        return relationship_factor(self.mouth(previous_mouths.mean((2, 3))), self.mouth(current_mouths.mean((2, 3))))


@dataclass(frozen=True)
class SourceRendererConfig:
    image_size: int = 256


@register_component_class
class SourceRenderer(TavceModule):
    """Renderer: every frame is the source working image, so a real face is in every frame (for the enhancer)."""

    config_class = SourceRendererConfig
    has_cerl = False

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def prepare_source(self, source: PreparedSource) -> torch.Tensor:
        return source.image[None]

    def render(self, state, coefficients: MotionCoefficients, start: int, stop: int, relationship=None) -> torch.Tensor:
        return state.expand(stop - start, -1, -1, -1).clone()
