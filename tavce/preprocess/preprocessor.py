"""The ``Preprocessor`` interface and its default implementation.

``FacePreprocessor.prepare`` runs the whole source-image path once:

1. find the face: explicit ``landmarks`` (no model at all), an explicit
   ``face_box`` (landmark predictor inside the box, no detector), or the
   landmarker's detector (largest face, or ``face_index`` counted left to right);
2. crop per mode (:mod:`tavce.preprocess.crop`) and resize to the S×S working image;
3. map the landmarks into the working image, align for the 3DMM network
   (:mod:`tavce.preprocess.alignment`) and regress the coefficients.

:meth:`FacePreprocessor.restore_frames` turns rendered S×S frames into the output
video's frames: uint8 (the original's rounding), pasted back into the photo in
``full`` / ``extfull``, resized to the crop's aspect otherwise.

Deviation: the original re-detects landmarks on the working image before the 3DMM alignment;
we map the photo's landmarks through the crop instead (exact, no second
detection that could fail or drift on a squashed crop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from tavce.errors import FaceNotDetectedError, InvalidArgumentError
from tavce.image import ImageSource, frames_to_uint8, load_image
from tavce.models.base import TavceModule, module_device
from tavce.models.face_recon import FaceReconNet, FaceReconstructor, source_coefficients
from tavce.preprocess.alignment import align_for_reconstruction, flip_landmarks_y
from tavce.preprocess.crop import compute_crop_geometry, crop_working_image, restore_aspect_size
from tavce.preprocess.landmarks import FaceLandmarker, default_landmarker, select_face
from tavce.preprocess.paste import DEFAULT_FEATHER, paste_back
from tavce.preprocess.reference_video import video_coefficients
from tavce.types import RENDER_SIZES, CropGeometry, CropMode, PreparedSource

__all__ = [
    "AcceptsLandmarker",
    "FacePreprocessor",
    "FacePreprocessorConfig",
    "Preprocessor",
    "ReadsReferenceVideos",
    "check_face_box",
    "map_landmarks_to_working_image",
]

logger = logging.getLogger(__name__)

# Guards the first use of a preprocessor's default landmarker: concurrent first callers
# would each build a backend (seconds, and a model pack's memory); module-level because
# a lock attribute would make the module impossible to pickle or deepcopy.
_LANDMARKER_CREATION = threading.Lock()


@runtime_checkable
class Preprocessor(Protocol):
    """Turns a photo into a :class:`PreparedSource`, and rendered frames into the output video's frames."""

    def prepare(
        self,
        image: ImageSource,
        mode: str = "crop",
        size: int = 256,
        *,
        face_box: Sequence[float] | None = None,
        landmarks: np.ndarray | None = None,
        face_index: int | None = None,
    ) -> PreparedSource: ...

    def restore_frames(self, frames: torch.Tensor, source: PreparedSource) -> np.ndarray:
        """(N, 3, S, S) rendered frames in [0, 1] -> (N, H, W, 3) uint8 RGB frames of the video.

        H×W is the same for every call with one ``source`` (the video's size).
        """
        ...


@runtime_checkable
class AcceptsLandmarker(Protocol):
    """A preprocessor whose face landmarker can be chosen (``from_pretrained(landmarker=)``, ``--landmarker``)."""

    def use_landmarker(self, landmarker: FaceLandmarker | None) -> None:
        """Find faces with ``landmarker`` from now on; None restores the default choice."""
        ...


@runtime_checkable
class ReadsReferenceVideos(Protocol):
    """A preprocessor that measures reference videos (``ref_pose`` / ``ref_eyeblink`` given as a video)."""

    def video_coefficients(self, video: str | Path, mode: str = "crop", size: int = 256) -> torch.Tensor:
        """(T, 73) coefficients of the video's frames at 25 fps, cut like a photo in ``mode``."""
        ...


def map_landmarks_to_working_image(landmarks: np.ndarray, geometry: CropGeometry, size: int) -> np.ndarray:
    """(68, 2) photo landmarks -> float32 coordinates in the S×S working image (pixel-centre convention)."""
    scale = np.array(geometry.resized_size, np.float64) / np.array(geometry.image_size, np.float64)
    resized = (landmarks.astype(np.float64) + 0.5) * scale - 0.5
    left, top, right, bottom = geometry.source_box
    stretch = np.array([size / (right - left), size / (bottom - top)])
    return ((resized - [left, top] + 0.5) * stretch - 0.5).astype(np.float32)


@dataclass(frozen=True)
class FacePreprocessorConfig:
    """Settings of :class:`FacePreprocessor` (saved with its 3DMM network).

    Attributes:
        clamp_bottom_by_height: clamp the tight box's bottom by the crop's height instead of the
            photo's width (see :func:`compute_crop_geometry`); False = original.
        feather: paste-back blend band, fraction of the box's shorter side.
        crop_aspect_output: crop-mode videos take the aspect of the region the working image
            shows (in the ext modes: the bordered crop, not the tight box); False = the original's size.
    """

    clamp_bottom_by_height: bool = False
    feather: float = DEFAULT_FEATHER
    crop_aspect_output: bool = False


class FacePreprocessor(TavceModule):
    """Default :class:`Preprocessor`: landmarker + original crop math + 3DMM network.

    Args:
        config: crop and paste-back settings.
        face_recon: the 3DMM network (default an untrained :class:`~tavce.models.face_recon.FaceReconNet`;
            load weights with ``from_pretrained``); any :class:`~tavce.models.face_recon.FaceReconstructor`.
        landmarker: face detector + landmarks; None picks :func:`default_landmarker` on first use
            (insightface if its model pack is present, else dlib). Not saved: it is a runtime choice.
    """

    config_class = FacePreprocessorConfig
    component_slots = {"face_recon": "face_recon"}

    def __init__(
        self,
        config: FacePreprocessorConfig | None = None,
        *,
        face_recon: FaceReconstructor | None = None,
        landmarker: FaceLandmarker | None = None,
    ) -> None:
        super().__init__(config or FacePreprocessorConfig())
        self.face_recon = face_recon if face_recon is not None else FaceReconNet()
        if isinstance(self.face_recon, torch.nn.Module):
            self.face_recon.eval()
        self._landmarker = landmarker
        self._backend_logged = False

    @property
    def landmarker(self) -> FaceLandmarker:
        """The landmark backend, created on first use (once, also under concurrent first callers)."""
        if self._landmarker is None or not self._backend_logged:
            with _LANDMARKER_CREATION:
                if self._landmarker is None:
                    self._landmarker = default_landmarker()
                if not self._backend_logged:
                    logger.info("face landmarks: %s backend", self._landmarker.name)
                    self._backend_logged = True
        return self._landmarker

    @landmarker.setter
    def landmarker(self, landmarker: FaceLandmarker | None) -> None:
        self._landmarker = landmarker
        self._backend_logged = False

    def use_landmarker(self, landmarker: FaceLandmarker | None) -> None:
        """See :class:`AcceptsLandmarker`."""
        self.landmarker = landmarker

    def video_coefficients(self, video: str | Path, mode: str = "crop", size: int = 256) -> torch.Tensor:
        """See :class:`ReadsReferenceVideos` and :func:`tavce.preprocess.reference_video.video_coefficients`."""
        return video_coefficients(
            video,
            landmarker=self.landmarker,
            face_recon=self.face_recon,
            mode=mode,
            size=size,
            clamp_bottom_by_height=self.config.clamp_bottom_by_height,
        )

    def prepare(
        self,
        image: ImageSource,
        mode: str | CropMode = "crop",
        size: int = 256,
        *,
        face_box: Sequence[float] | None = None,
        landmarks: np.ndarray | None = None,
        face_index: int | None = None,
    ) -> PreparedSource:
        """Prepare one photo (any source :func:`tavce.image.load_image` accepts).

        Args:
            mode: crop, extcrop, resize, full or extfull (docs/preprocess.md).
            size: working image side, 256 or 512.
            face_box: (left, top, right, bottom) pixels of the face to use; skips detection.
            landmarks: (68, 2) iBUG landmarks (x right, y down) in photo pixels; skips every model but the 3DMM net.
            face_index: which detected face (left to right) instead of the largest.

        Raises:
            FaceNotDetectedError: no face found (the message says what to try).
            InvalidArgumentError / InvalidImageError: bad arguments or image.
        """
        photo = load_image(image)
        crop_mode = CropMode.parse(mode)
        if size not in RENDER_SIZES:
            raise InvalidArgumentError(f"size={size!r}: the networks work at {' or '.join(map(str, RENDER_SIZES))}")
        face_landmarks, backend = self._locate_face(photo, face_box, landmarks, face_index)
        height, width = photo.shape[:2]
        geometry = compute_crop_geometry(
            face_landmarks, (width, height), crop_mode, clamp_bottom_by_height=self.config.clamp_bottom_by_height
        )
        working = crop_working_image(photo, geometry, size)
        working_landmarks = map_landmarks_to_working_image(face_landmarks, geometry, size)
        aligned = align_for_reconstruction(working, flip_landmarks_y(working_landmarks, size))

        face = torch.from_numpy(aligned.image).permute(2, 0, 1)[None].to(module_device(self.face_recon), torch.float32) / 255.0
        with torch.no_grad():
            reconstruction = self.face_recon(face).float().cpu()
        coefficients = source_coefficients(reconstruction, aligned.trans_params)[0]
        return PreparedSource(
            image=torch.from_numpy(working).permute(2, 0, 1).float().div(255.0).contiguous(),
            coefficients=coefficients.contiguous(),
            reconstruction=reconstruction[0].contiguous(),
            landmarks=face_landmarks.astype(np.float32),
            geometry=geometry,
            original_image=photo if crop_mode.pastes_back else None,
            landmarker=backend,
        )

    def restore_frames(self, frames: torch.Tensor, source: PreparedSource) -> np.ndarray:
        """(N, 3, S, S) frames in [0, 1] -> (N, H, W, 3) uint8: pasted into the photo, or at the crop's aspect.

        Raises:
            RenderError: the frames hold NaN or infinite values.
        """
        pixels = frames_to_uint8(frames)
        if source.mode.pastes_back:
            return self.paste_back(pixels, source)
        width, height = restore_aspect_size(source.geometry, source.size, crop_aspect=self.config.crop_aspect_output)
        if (width, height) == (pixels.shape[2], pixels.shape[1]):
            return pixels
        import cv2

        return np.stack([cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR) for frame in pixels])

    def paste_back(self, frames: np.ndarray | torch.Tensor, source: PreparedSource) -> np.ndarray:
        """See :func:`tavce.preprocess.paste.paste_back`."""
        return paste_back(frames, source, feather=self.config.feather)

    def _locate_face(
        self,
        photo: np.ndarray,
        face_box: Sequence[float] | None,
        landmarks: np.ndarray | None,
        face_index: int | None,
    ) -> tuple[np.ndarray, str]:
        height, width = photo.shape[:2]
        if landmarks is not None:
            points = np.asarray(landmarks, dtype=np.float32)
            if points.shape != (68, 2) or not np.isfinite(points).all():
                raise InvalidArgumentError(
                    f"landmarks: expected finite (68, 2) iBUG points in pixels, got shape {points.shape}"
                )
            return points, "explicit"
        if face_box is not None:
            box = check_face_box(face_box, width, height)
            return self.landmarker.landmarks_in_box(photo, box).astype(np.float32), self.landmarker.name
        faces = self.landmarker.detect(photo)
        if not faces:
            raise FaceNotDetectedError(
                f"no face found in the {width}x{height} source image by the {self.landmarker.name} detector. "
                "Try a larger or more frontal, well-lit photo (face at least ~80 px wide, both eyes visible), "
                "or give the face box yourself: face_box=(left, top, right, bottom) in pixels (--face-box X0,Y0,X1,Y1)."
            )
        return select_face(faces, face_index, (width, height)).landmarks, self.landmarker.name


def check_face_box(face_box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """The box clipped to the ``width`` x ``height`` image; refused when malformed or when nothing of it lies inside.

    Raises:
        InvalidArgumentError: naming the box, the image size and the expected form.
    """
    try:
        values = np.asarray(face_box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.empty(0)
    if values.shape != (4,) or not np.isfinite(values).all():
        raise InvalidArgumentError(f"face_box={face_box!r}: expected four numbers (left, top, right, bottom) in pixels")
    left, top = max(values[0], 0.0), max(values[1], 0.0)
    right, bottom = min(values[2], float(width)), min(values[3], float(height))
    if not (left < right and top < bottom):
        raise InvalidArgumentError(
            f"face_box={tuple(values.tolist())}: empty or outside the {width}x{height} image; "
            "give (left, top, right, bottom) with left < right and top < bottom, in pixels"
        )
    return float(left), float(top), float(right), float(bottom)
