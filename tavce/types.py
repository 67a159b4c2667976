"""Value types passed between components (one direction: audio/image -> coefficients -> frames).

Each type states its shapes and ranges and validates them once at construction;
functions downstream trust it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tavce.errors import InvalidArgumentError

SAMPLE_RATE = 16_000
FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
MEL_BINS = 80
MEL_STEPS_PER_WINDOW = 16
MOTION_DIM = 70  # expression 64 + pose 6
SOURCE_COEFF_DIM = 73  # motion 70 + crop parameters (scale, tx, ty)
CROP_MODES = ("crop", "extcrop", "resize", "full", "extfull")
RENDER_SIZES = (256, 512)
"""Sides S of the square working image the networks see (and of the official weights)."""
DTYPE_NAMES = ("float32", "float16", "bfloat16")
"""Precisions the networks run in, by torch's names."""
LANDMARKER_NAMES = ("auto", "insightface", "dlib")
"""Face landmark backends by name; ``auto`` is insightface when its model pack is installed, else dlib."""
"""How the photo becomes the working image; the full modes paste the animated crop back into the photo."""


@dataclass(frozen=True)
class AudioClip:
    """Mono float32 waveform at 16 kHz.

    Attributes:
        samples: (N,) float32, finite, nominally in [-1, 1].
        source: where it came from (path or "<array>"), for messages.
    """

    samples: np.ndarray
    source: str = "<array>"

    def __post_init__(self) -> None:
        if self.samples.ndim != 1 or self.samples.dtype != np.float32:
            raise InvalidArgumentError(
                f"{self.source}: AudioClip needs a 1-D float32 array, got {self.samples.dtype} {self.samples.shape}"
            )

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / SAMPLE_RATE

    @property
    def num_frames(self) -> int:
        """Video frames at 25 fps: floor(N / 640)."""
        return len(self.samples) // SAMPLES_PER_FRAME


@dataclass(frozen=True)
class AudioWindows:
    """Per-video-frame mel windows, (T, 1, 80, 16) float32 in [-4, 4]; T is the video length."""

    windows: torch.Tensor

    def __post_init__(self) -> None:
        shape = tuple(self.windows.shape)
        if len(shape) != 4 or shape[1:] != (1, MEL_BINS, MEL_STEPS_PER_WINDOW):
            raise InvalidArgumentError(f"AudioWindows must be (T, 1, 80, 16), got {shape}")

    @property
    def num_frames(self) -> int:
        return int(self.windows.shape[0])


@dataclass(frozen=True)
class MotionCoefficients:
    """Per-frame 3DMM motion coefficients.

    Attributes:
        expression: (T, 64) float32.
        pose: (T, 6) float32: rotation (pitch, yaw, roll) in radians, then translation (3).
        crop: optional (T, 3) crop parameters (scale, tx, ty) used by the 73-dim MappingNet of full modes.
        yaw, pitch, roll: optional (T,) float32 degrees that replace the head angles the renderer
            decodes from ``pose`` for each driving frame (free-view control); None keeps them.
    """

    expression: torch.Tensor
    pose: torch.Tensor
    crop: torch.Tensor | None = None
    yaw: torch.Tensor | None = None
    pitch: torch.Tensor | None = None
    roll: torch.Tensor | None = None

    def __post_init__(self) -> None:
        frames = self.expression.shape[0]
        if self.expression.shape != (frames, 64) or self.pose.shape != (frames, 6):
            raise InvalidArgumentError(
                f"MotionCoefficients need expression (T, 64) and pose (T, 6), "
                f"got {tuple(self.expression.shape)} and {tuple(self.pose.shape)}"
            )
        if self.crop is not None and self.crop.shape != (frames, 3):
            raise InvalidArgumentError(f"crop parameters must be (T, 3), got {tuple(self.crop.shape)}")
        for name, angles in self.head_angles().items():
            if angles is not None and tuple(angles.shape) != (frames,):
                raise InvalidArgumentError(f"{name} must be ({frames},) degrees, one per frame, got {tuple(angles.shape)}")

    def head_angles(self, start: int = 0, stop: int | None = None) -> dict[str, torch.Tensor | None]:
        """The yaw / pitch / roll overrides of frames ``start`` … ``stop − 1`` (None where not overridden)."""
        return {
            name: None if angles is None else angles[start:stop]
            for name, angles in (("yaw", self.yaw), ("pitch", self.pitch), ("roll", self.roll))
        }

    @property
    def num_frames(self) -> int:
        return int(self.expression.shape[0])

    def as_renderer_input(self) -> torch.Tensor:
        """(T, 70) or, with crop parameters, (T, 73): expression ‖ pose [‖ crop]."""
        parts = [self.expression, self.pose] + ([self.crop] if self.crop is not None else [])
        return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class AudioRelationship:
    """Per-frame temporal audio relationship in rank-one factor form.

    The original's relationship for frame t is the 128x128 covariance of the TAVC
    audio embeddings of frames max(t-1, 0) and t, which equals ½·d·dᵀ with
    d = a_prev - a_cur. ``differences`` holds d: (T, 128) float32; row 0 is zero.
    """

    differences: torch.Tensor

    def __post_init__(self) -> None:
        if self.differences.ndim != 2:
            raise InvalidArgumentError(f"AudioRelationship needs (T, D) differences, got {tuple(self.differences.shape)}")

    @property
    def num_frames(self) -> int:
        return int(self.differences.shape[0])

    def as_matrices(self) -> torch.Tensor:
        """(T, D, D) full relationship matrices ½·d·dᵀ."""
        return 0.5 * self.differences.unsqueeze(2) * self.differences.unsqueeze(1)


PathLike = str | Path
