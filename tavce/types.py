"""Value types passed between components (one direction: audio/image -> coefficients -> frames).

Each type states its shapes and ranges and validates them once at construction;
functions downstream trust it. They sit below every layer that uses them
(preprocessing, models, pipeline, training), so none of those imports another
layer just for a type. The constants they are built on (and that
the command line builds its parser from) are in the torch-free :mod:`tavce.constants`,
re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch

from tavce.constants import (
    DTYPE_NAMES,
    LANDMARKER_NAMES,
    CROP_MODES,
    CROP_ONLY_MODES,
    FPS,
    MEL_BINS,
    MEL_STEPS_PER_WINDOW,
    MOTION_DIM,
    RENDER_SIZES,
    SAMPLE_RATE,
    SAMPLES_PER_FRAME,
    SOURCE_COEFF_DIM,
    CropMode,
)
from tavce.errors import InvalidArgumentError, InvalidImageError

__all__ = [
    "CROP_MODES",
    "CROP_ONLY_MODES",
    "DTYPE_NAMES",
    "FPS",
    "LANDMARKER_NAMES",
    "MEL_BINS",
    "MEL_STEPS_PER_WINDOW",
    "MOTION_DIM",
    "RENDER_SIZES",
    "SAMPLES_PER_FRAME",
    "SAMPLE_RATE",
    "SOURCE_COEFF_DIM",
    "AudioClip",
    "AudioRelationship",
    "AudioWindows",
    "Box",
    "CropGeometry",
    "CropMode",
    "MotionCoefficients",
    "PathLike",
    "PreparedSource",
]

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


class AudioWindows:
    """Per-video-frame mel windows: T windows of (1, 80, 16) float32 in [-4, 4]; T is the video length.

    Adjacent windows share 13 of their 16 mel steps, so the windows are held as a spectrogram
    (M, 80) and each frame's 16 row numbers (T, 16): five times smaller than the (T, 1, 80, 16)
    tensor (77 MB for a 10-minute clip). Windows are gathered when read: :meth:`batches` and
    :meth:`select` give a few at a time, so a consumer that reads them in batches never holds
    them all; :attr:`windows` gathers the whole tensor.

    Build one from a (T, 1, 80, 16) tensor (``AudioWindows(tensor)``) or, as
    :func:`tavce.audio.frame_windows` does, from a spectrogram with :meth:`from_mel`.
    """

    __slots__ = ("_mel", "_rows")

    def __init__(self, windows: torch.Tensor) -> None:
        shape = tuple(windows.shape)
        if len(shape) != 4 or shape[1:] != (1, MEL_BINS, MEL_STEPS_PER_WINDOW):
            raise InvalidArgumentError(f"AudioWindows must be (T, 1, 80, 16), got {shape}")
        # A whole tensor is its own spectrogram: row 16·t + k is step k of window t.
        self._mel = windows[:, 0].transpose(1, 2).reshape(-1, MEL_BINS)
        self._rows = torch.arange(self._mel.shape[0], device=windows.device).view(-1, MEL_STEPS_PER_WINDOW)

    @classmethod
    def from_mel(cls, mel_by_time: torch.Tensor, rows: torch.Tensor) -> AudioWindows:
        """Windows gathered from a spectrogram: window t is ``mel_by_time[rows[t]]`` transposed to (80, 16).

        Args:
            mel_by_time: (M, 80) mel spectrogram, time first, in [-4, 4].
            rows: (T, 16) int64 row numbers in [0, M).

        Raises:
            InvalidArgumentError: a spectrogram that is not (M, 80), or rows that are not (T, 16)
                int64 within it.
        """
        if mel_by_time.ndim != 2 or mel_by_time.shape[1] != MEL_BINS:
            raise InvalidArgumentError(f"AudioWindows.from_mel: mel_by_time must be (M, 80), got {tuple(mel_by_time.shape)}")
        if rows.ndim != 2 or rows.shape[1] != MEL_STEPS_PER_WINDOW or rows.dtype != torch.int64:
            raise InvalidArgumentError(f"AudioWindows.from_mel: rows must be (T, 16) int64, got {tuple(rows.shape)} {rows.dtype}")
        if rows.numel() and not 0 <= int(rows.min()) <= int(rows.max()) < mel_by_time.shape[0]:
            raise InvalidArgumentError(f"AudioWindows.from_mel: rows must lie in [0, {mel_by_time.shape[0]})")
        windows = cls.__new__(cls)
        windows._mel, windows._rows = mel_by_time, rows
        return windows

    @property
    def num_frames(self) -> int:
        return int(self._rows.shape[0])

    @property
    def windows(self) -> torch.Tensor:
        """(T, 1, 80, 16), gathered whole (a new tensor on each access; long clips: use :meth:`batches`)."""
        return self.select(slice(None))

    def select(self, frames: torch.Tensor | slice) -> torch.Tensor:
        """(N, 1, 80, 16) windows of the given frames: a slice, or N int64 frame indices in [0, T) in any order.

        Indices outside [0, T) raise torch's ``IndexError`` (this is the per-batch read path of
        the models, which pass ranges they built from :attr:`num_frames`).
        """
        return self._mel[self._rows[frames]].transpose(1, 2).unsqueeze(1).contiguous()

    def batches(self, size: int) -> Iterator[torch.Tensor]:
        """The windows in frame order, ``size`` (≥ 1) at a time: (≤ size, 1, 80, 16) each."""
        if size < 1:
            raise InvalidArgumentError(f"AudioWindows.batches: size must be at least 1, got {size}")
        for start in range(0, self.num_frames, size):
            yield self.select(slice(start, start + size))

    def __getitem__(self, frames: slice) -> AudioWindows:
        """The windows of a range of frames (sharing this one's spectrogram)."""
        if not isinstance(frames, slice):
            raise InvalidArgumentError(
                f"AudioWindows[{frames!r}]: index with a slice of frames (windows[a:b]); "
                "select(frames) gives the (N, 1, 80, 16) tensor of given frames"
            )
        return AudioWindows.from_mel(self._mel, self._rows[frames])

    def __repr__(self) -> str:
        return f"AudioWindows(num_frames={self.num_frames}, dtype={self._mel.dtype})"


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
            raise InvalidArgumentError(
                f"AudioRelationship needs (T, D) differences, got {tuple(self.differences.shape)}"
            )

    @property
    def num_frames(self) -> int:
        return int(self.differences.shape[0])

    def as_matrices(self) -> torch.Tensor:
        """(T, D, D) full relationship matrices ½·d·dᵀ."""
        return 0.5 * self.differences.unsqueeze(2) * self.differences.unsqueeze(1)


Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in pixels, right/bottom exclusive."""


@dataclass(frozen=True)
class CropGeometry:
    """Where the working image comes from in the original photo.

    Attributes:
        image_size: (W, H) of the original photo.
        resized_size: (W, H) after the shrink of very large faces (= ``image_size`` mostly).
        crop_box: bordered crop C in the resized image; None in ``resize`` mode.
        tight_box: tight box Q relative to C, as the original truncates it; None in ``resize``
            mode. Its right and bottom edges are both clamped by the resized photo's *width*
            (the original's behaviour): on a landscape photo Q may reach past the bottom of C,
            on a portrait photo its bottom may be cut short.
        tight_box_float: Q before truncation (the original's ``quad`` output).
        mode: the crop mode.
    """

    image_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop_box: Box | None
    tight_box: Box | None
    tight_box_float: tuple[float, float, float, float] | None
    mode: CropMode

    @property
    def crop_info_size(self) -> tuple[int, int]:
        """(w, h) the original restores the output aspect from: tight box size, or the photo in resize mode."""
        if self.tight_box is None:
            return self.image_size
        left, top, right, bottom = self.tight_box
        return right - left, bottom - top

    @property
    def tight_box_in_image(self) -> Box:
        """The original's ``full``-mode paste box (C origin + Q), untruncated, in resized-image pixels."""
        self._require_crop()
        left, top, right, bottom = cast(Box, self.tight_box)
        crop_left, crop_top = cast(Box, self.crop_box)[:2]
        return crop_left + left, crop_top + top, crop_left + right, crop_top + bottom

    @property
    def source_box(self) -> Box:
        """The region of the resized image the working image actually shows (numpy slicing clips Q to C)."""
        if self.crop_box is None:
            return 0, 0, *self.resized_size
        if self.mode.extended:
            return self.crop_box
        crop_left, crop_top, crop_right, crop_bottom = self.crop_box
        left, top, right, bottom = cast(Box, self.tight_box)
        return (
            crop_left + left,
            crop_top + top,
            crop_left + min(right, crop_right - crop_left),
            crop_top + min(bottom, crop_bottom - crop_top),
        )

    @property
    def paste_box(self) -> tuple[float, float, float, float]:
        """:attr:`source_box` in ORIGINAL photo pixels.

        The shrink of very large faces is undone here; the original pasted with the box in
        shrunk-image pixels, which misplaces the face on such photos.
        """
        scale_x = self.image_size[0] / self.resized_size[0]
        scale_y = self.image_size[1] / self.resized_size[1]
        left, top, right, bottom = self.source_box
        return left * scale_x, top * scale_y, right * scale_x, bottom * scale_y

    def _require_crop(self) -> None:
        if self.crop_box is None or self.tight_box is None:
            raise InvalidArgumentError(f"mode={self.mode.value!r} has no crop box; only crop/full/ext modes do")

    def to_dict(self) -> dict:
        return {
            "image_size": list(self.image_size),
            "resized_size": list(self.resized_size),
            "crop_box": None if self.crop_box is None else list(self.crop_box),
            "tight_box": None if self.tight_box is None else list(self.tight_box),
            "tight_box_float": None if self.tight_box_float is None else list(self.tight_box_float),
            "mode": self.mode.value,
        }

    @classmethod
    def from_dict(cls, values: dict) -> CropGeometry:
        def ints(key):
            return None if values[key] is None else tuple(int(v) for v in values[key])

        floats = values["tight_box_float"]
        return cls(
            image_size=ints("image_size"),
            resized_size=ints("resized_size"),
            crop_box=ints("crop_box"),
            tight_box=ints("tight_box"),
            tight_box_float=None if floats is None else cast(tuple[float, float, float, float], tuple(float(v) for v in floats)),
            mode=CropMode.parse(values["mode"]),
        )


_PREPARED_SOURCE_FORMAT = "tavce.PreparedSource"
_PREPARED_SOURCE_VERSION = 1


@dataclass(frozen=True, eq=False)  # holds tensors and arrays: compared by identity
class PreparedSource:
    """A prepared source photo: everything the animation needs from it, computed once.

    A photo is prepared once (detection, crop, 3DMM coefficients) and can then be
    animated by any number of audio clips; :meth:`save` writes it to one
    ``.safetensors`` file (tensors + JSON metadata, no pickle) and :meth:`load`
    reads it back.

    Attributes:
        image: (3, S, S) float32 RGB in [0, 1], the working image the renderer sees (S = 256 or 512).
        coefficients: (73,) float32: expression 64 ‖ angle 3 ‖ translation 3 ‖ (s, t_x, t_y).
        reconstruction: (257,) float32 full 3DMM output (identity, texture, lighting included).
        landmarks: (68, 2) float32 landmarks of the chosen face in the ORIGINAL photo (x right, y down).
        geometry: crop mode and crop boxes (see :class:`CropGeometry`).
        original_image: (H, W, 3) uint8 photo, kept for paste-back modes (full, extfull); else None.
        landmarker: name of the landmark backend used ("explicit" for user-given landmarks).
    """

    image: torch.Tensor
    coefficients: torch.Tensor
    reconstruction: torch.Tensor
    landmarks: np.ndarray
    geometry: CropGeometry
    original_image: np.ndarray | None = None
    landmarker: str = "explicit"

    def __post_init__(self) -> None:
        size = self.image.shape[-1]
        if self.image.ndim != 3 or tuple(self.image.shape) != (3, size, size) or self.image.dtype != torch.float32:
            raise InvalidArgumentError(
                f"image: expected (3, S, S) float32, got {tuple(self.image.shape)} {self.image.dtype}"
            )
        if tuple(self.coefficients.shape) != (SOURCE_COEFF_DIM,):
            raise InvalidArgumentError(
                f"coefficients: expected ({SOURCE_COEFF_DIM},), got {tuple(self.coefficients.shape)}"
            )
        if self.landmarks.shape != (68, 2):
            raise InvalidArgumentError(f"landmarks: expected (68, 2), got {self.landmarks.shape}")
        if self.geometry.mode.pastes_back and self.original_image is None:
            raise InvalidArgumentError(f"mode={self.mode.value!r} pastes back and needs original_image")

    @property
    def size(self) -> int:
        """S, the working image side."""
        return int(self.image.shape[-1])

    @property
    def mode(self) -> CropMode:
        return self.geometry.mode

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) of the original photo."""
        return self.geometry.image_size

    @property
    def motion_coefficients(self) -> torch.Tensor:
        """(70,) expression + pose: what Audio2Coeff and the 70-dim MappingNet use."""
        return self.coefficients[:MOTION_DIM]

    def save(self, path: str | Path) -> Path:
        """Write one ``.safetensors`` file (atomically); returns its path."""
        from tavce.hub import save_safetensors

        tensors = {
            "image": self.image,
            "coefficients": self.coefficients,
            "reconstruction": self.reconstruction,
            "landmarks": torch.from_numpy(np.ascontiguousarray(self.landmarks, dtype=np.float32)),
        }
        if self.original_image is not None:
            tensors["original_image"] = torch.from_numpy(np.ascontiguousarray(self.original_image))
        metadata = {
            "format": _PREPARED_SOURCE_FORMAT,
            "version": str(_PREPARED_SOURCE_VERSION),
            "geometry": json.dumps(self.geometry.to_dict()),
            "landmarker": self.landmarker,
        }
        return save_safetensors(tensors, path, metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> PreparedSource:
        """Read a file written by :meth:`save`.

        Raises:
            InvalidImageError: the file is missing or is not a prepared source of a known version.
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise InvalidImageError(
                f"{path}: prepared source file not found; create it with Preprocessor.prepare(...).save()"
            )
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except Exception as error:  # safetensors raises its own error types and OSError
            raise InvalidImageError(f"{path}: not a readable safetensors file ({error})") from error
        if metadata.get("format") != _PREPARED_SOURCE_FORMAT:
            raise InvalidImageError(f"{path}: not a tavce prepared source (format {metadata.get('format')!r})")
        if int(metadata.get("version", 0)) > _PREPARED_SOURCE_VERSION:
            raise InvalidImageError(f"{path}: written by a newer tavce (version {metadata['version']}); upgrade tavce")
        original = tensors.get("original_image")
        return cls(
            image=tensors["image"],
            coefficients=tensors["coefficients"],
            reconstruction=tensors["reconstruction"],
            landmarks=tensors["landmarks"].numpy(),
            geometry=CropGeometry.from_dict(json.loads(metadata["geometry"])),
            original_image=None if original is None else original.numpy(),
            landmarker=metadata.get("landmarker", "explicit"),
        )


PathLike = str | Path
