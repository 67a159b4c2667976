"""``PreparedSource``: everything the animation needs from one photo, computed once.

A photo is prepared once (detection, crop, 3DMM coefficients) and can then be
animated by any number of audio clips; :meth:`PreparedSource.save` writes it to
one ``.safetensors`` file (tensors + JSON metadata, no pickle) and
:meth:`PreparedSource.load` reads it back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tavce.errors import InvalidArgumentError, InvalidImageError
from tavce.preprocess.crop import CropGeometry, CropMode
from tavce.types import MOTION_DIM, SOURCE_COEFF_DIM

__all__ = ["PreparedSource"]

FORMAT_NAME = "tavce.PreparedSource"
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)  # holds tensors and arrays: compared by identity
class PreparedSource:
    """A prepared source photo.

    Attributes:
        image: (3, S, S) float32 RGB in [0, 1], the working image the renderer sees (S = 256 or 512).
        coefficients: (73,) float32: expression 64 ‖ angle 3 ‖ translation 3 ‖ (s, t_x, t_y).
        reconstruction: (257,) float32 full 3DMM output (identity, texture, lighting included).
        landmarks: (68, 2) float32 landmarks of the chosen face in the ORIGINAL photo (x right, y down).
        geometry: crop mode and crop boxes (see :class:`~tavce.preprocess.crop.CropGeometry`).
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
            "format": FORMAT_NAME,
            "version": str(FORMAT_VERSION),
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
        if metadata.get("format") != FORMAT_NAME:
            raise InvalidImageError(f"{path}: not a tavce prepared source (format {metadata.get('format')!r})")
        if int(metadata.get("version", 0)) > FORMAT_VERSION:
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
