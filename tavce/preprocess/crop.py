"""Crop modes and the FFHQ-style quad/crop math (reference-pipeline.md §2.3–2.5, §6.2).

:func:`compute_crop_geometry` turns 68 landmarks into a :class:`CropGeometry`
(shrunk size, bordered crop box, tight box) exactly like the original
``align_face``; :func:`crop_working_image` cuts a frame with it and resizes the
result to the S×S working image with cv2 bilinear, as the original does.

Quirks (§9): the tight box's bottom is clamped by the image *width* (13,
reproduced; ``clamp_bottom_by_height=True`` clamps both sides of the tight box by
the crop's own size instead), and ext modes restore the tight box's aspect ratio
(15, reproduced by :func:`restore_aspect_size` unless ``crop_aspect=True``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import cv2
import numpy as np

from tavce.errors import InvalidArgumentError

__all__ = [
    "CropMode",
    "CropGeometry",
    "compute_crop_geometry",
    "crop_frame",
    "crop_working_image",
    "restore_aspect_size",
    "WORKING_SIZES",
]

WORKING_SIZES = (256, 512)
ALIGN_OUTPUT_SIZE = 512  # the original's ``xsize``: faces whose quad is >= 4x this are shrunk first
BORDER_FRACTION = 0.1
MIN_BORDER = 3

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in pixels, right/bottom exclusive."""


class CropMode(str, Enum):
    """What part of the photo the networks see, and whether the result is pasted back (§2.3)."""

    CROP = "crop"  # tight face box
    EXTCROP = "extcrop"  # bordered crop (hair, shoulders)
    RESIZE = "resize"  # whole photo squashed to a square
    FULL = "full"  # tight box, pasted back into the photo
    EXTFULL = "extfull"  # bordered crop, pasted back into the photo

    @classmethod
    def parse(cls, mode: str | CropMode) -> CropMode:
        try:
            return cls(mode)
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise InvalidArgumentError(f"mode={mode!r}: unknown crop mode; choose one of {choices}") from None

    @property
    def extended(self) -> bool:
        """Ext modes keep the whole bordered crop instead of cutting the tight box out of it."""
        return self in (CropMode.EXTCROP, CropMode.EXTFULL)

    @property
    def pastes_back(self) -> bool:
        return self in (CropMode.FULL, CropMode.EXTFULL)


@dataclass(frozen=True)
class CropGeometry:
    """Where the working image comes from in the original photo.

    Attributes:
        image_size: (W, H) of the original photo.
        resized_size: (W, H) after the shrink of very large faces (= ``image_size`` mostly).
        crop_box: bordered crop C in the resized image; None in ``resize`` mode.
        tight_box: tight box Q relative to C, as the original truncates it (may
            reach past C, quirk 13); None in ``resize`` mode.
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
        left, top, right, bottom = self.tight_box
        return self.crop_box[0] + left, self.crop_box[1] + top, self.crop_box[0] + right, self.crop_box[1] + bottom

    @property
    def source_box(self) -> Box:
        """The region of the resized image the working image actually shows (numpy slicing clips Q to C)."""
        if self.crop_box is None:
            return 0, 0, *self.resized_size
        if self.mode.extended:
            return self.crop_box
        crop_left, crop_top, crop_right, crop_bottom = self.crop_box
        left, top, right, bottom = self.tight_box
        return (
            crop_left + left,
            crop_top + top,
            crop_left + min(right, crop_right - crop_left),
            crop_top + min(bottom, crop_bottom - crop_top),
        )

    @property
    def paste_box(self) -> tuple[float, float, float, float]:
        """:attr:`source_box` in ORIGINAL photo pixels (undoing the shrink: quirk 14 fixed)."""
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
            tight_box_float=None if floats is None else tuple(float(v) for v in floats),
            mode=CropMode.parse(values["mode"]),
        )


def _face_quad(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The oriented FFHQ quad (4, 2) float64 and its side length from 68 landmarks."""
    # Kept in the landmarks' own dtype up to the first mixed-type product, as the original computes it.
    eye_left = landmarks[36:42].mean(axis=0)
    eye_right = landmarks[42:48].mean(axis=0)
    eye_centre = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_centre = (landmarks[48] + landmarks[54]) * 0.5
    eye_to_mouth = mouth_centre - eye_centre
    # x axis: eye line minus the eye-to-mouth direction turned by +90 degrees.
    axis_x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    axis_x /= np.hypot(*axis_x)
    axis_x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    axis_y = np.flipud(axis_x) * [-1, 1]
    centre = eye_centre + eye_to_mouth * 0.1
    quad = np.stack(
        [centre - axis_x - axis_y, centre - axis_x + axis_y, centre + axis_x + axis_y, centre + axis_x - axis_y]
    )
    return quad, float(np.hypot(*axis_x) * 2)


def compute_crop_geometry(
    landmarks: np.ndarray | None,
    image_size: tuple[int, int],
    mode: str | CropMode = CropMode.CROP,
    *,
    clamp_bottom_by_height: bool = False,
) -> CropGeometry:
    """The original ``align_face`` crop for ``landmarks`` (68, 2) (x right, y down) in a (W, H) photo.

    Args:
        landmarks: 68 landmarks of the chosen face; unused (may be None) in ``resize`` mode.
        image_size: (W, H) of the photo.
        mode: crop mode (§2.3).
        clamp_bottom_by_height: False reproduces quirk 13 (Q's right and bottom clamped by
            the photo width); True clamps them by the crop's own width and height.
    """
    mode = CropMode.parse(mode)
    width, height = int(image_size[0]), int(image_size[1])
    if mode is CropMode.RESIZE:
        return CropGeometry((width, height), (width, height), None, None, None, mode)
    landmarks = np.asarray(landmarks)
    if landmarks.shape != (68, 2) or not np.isfinite(landmarks).all():
        raise InvalidArgumentError(f"landmarks: expected finite (68, 2) pixel coordinates, got shape {landmarks.shape}")
    quad, quad_size = _face_quad(landmarks)

    shrink = int(math.floor(quad_size / ALIGN_OUTPUT_SIZE * 0.5))
    if shrink > 1:
        width, height = int(np.rint(width / shrink)), int(np.rint(height / shrink))
        quad /= shrink
        quad_size /= shrink

    border = max(int(np.rint(quad_size * BORDER_FRACTION)), MIN_BORDER)
    crop = (
        max(int(np.floor(quad[:, 0].min())) - border, 0),
        max(int(np.floor(quad[:, 1].min())) - border, 0),
        min(int(np.ceil(quad[:, 0].max())) + border, width),
        min(int(np.ceil(quad[:, 1].max())) + border, height),
    )
    if crop[2] - crop[0] < width or crop[3] - crop[1] < height:
        quad -= crop[0:2]

    corners = (quad + 0.5).flatten()
    right_limit, bottom_limit = width, width  # quirk 13: both by the (resized) photo width
    if clamp_bottom_by_height:
        right_limit, bottom_limit = crop[2] - crop[0], crop[3] - crop[1]
    tight = (
        max(min(corners[0], corners[2]), 0),
        max(min(corners[1], corners[7]), 0),
        min(max(corners[4], corners[6]), right_limit),
        min(max(corners[3], corners[5]), bottom_limit),
    )
    return CropGeometry(
        image_size=(int(image_size[0]), int(image_size[1])),
        resized_size=(width, height),
        crop_box=crop,
        tight_box=tuple(int(v) for v in tight),
        tight_box_float=tuple(float(v) for v in tight),
        mode=mode,
    )


def crop_frame(image: np.ndarray, geometry: CropGeometry) -> np.ndarray:
    """Cut ``image`` (H, W, 3) uint8 like the original: resize to the shrunk size, crop C, then Q (non-ext modes)."""
    if geometry.crop_box is None:
        return image
    height, width = image.shape[:2]
    if (width, height) != tuple(geometry.image_size):
        raise InvalidArgumentError(
            f"image: size {width}x{height} differs from the prepared photo {geometry.image_size[0]}x"
            f"{geometry.image_size[1]}; crop frames of the same size as the source"
        )
    if tuple(geometry.resized_size) != (width, height):
        image = cv2.resize(image, tuple(geometry.resized_size), interpolation=cv2.INTER_LINEAR)
    left, top, right, bottom = geometry.crop_box
    cropped = image[top:bottom, left:right]
    if not geometry.mode.extended:
        tight_left, tight_top, tight_right, tight_bottom = geometry.tight_box
        cropped = cropped[tight_top:tight_bottom, tight_left:tight_right]
    return cropped


def crop_working_image(image: np.ndarray, geometry: CropGeometry, size: int) -> np.ndarray:
    """The (size, size, 3) uint8 working image: :func:`crop_frame` then cv2 bilinear resize (§2.5)."""
    cropped = crop_frame(image, geometry)
    if cropped.shape[0] == 0 or cropped.shape[1] == 0:
        raise InvalidArgumentError(
            f"crop box {geometry.source_box} is empty for a {geometry.image_size[0]}x{geometry.image_size[1]} "
            "photo; the landmarks lie outside the image"
        )
    return cv2.resize(np.ascontiguousarray(cropped), (size, size), interpolation=cv2.INTER_LINEAR)


def restore_aspect_size(geometry: CropGeometry, size: int, *, crop_aspect: bool = False) -> tuple[int, int]:
    """(width, height) an S×S rendered frame is resized to for crop-mode outputs (§6.2).

    width = size, height = int(size · h / w) with (w, h) = :attr:`CropGeometry.crop_info_size`.
    ``crop_aspect=True`` uses the size of the region the working image really shows
    instead (fixes quirk 15 in ext modes and the clipped tight box of quirk 13).
    """
    if crop_aspect:
        left, top, right, bottom = geometry.source_box
        box_width, box_height = right - left, bottom - top
    else:
        box_width, box_height = geometry.crop_info_size
    return size, int(size * box_height / box_width)
