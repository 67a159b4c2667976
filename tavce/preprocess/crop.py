"""The FFHQ-style quad/crop math of the crop modes (:class:`~tavce.types.CropMode`).

:func:`compute_crop_geometry` turns 68 landmarks into a :class:`~tavce.types.CropGeometry`
(shrunk size, bordered crop box, tight box) exactly like the original
``align_face``; :func:`crop_working_image` cuts a frame with it and resizes the
result to the S×S working image with cv2 bilinear, as the original does.

Two behaviours of the original are reproduced by default: the tight box's right
*and bottom* edges are clamped by the photo's *width* (``clamp_bottom_by_height=True``
clamps them by the crop's own width and height instead), and the ext modes restore
the output to the tight box's aspect ratio although their frames show the whole
bordered crop (:func:`restore_aspect_size` with ``crop_aspect=True`` uses the shown
region instead).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from tavce.errors import InvalidArgumentError
from tavce.types import RENDER_SIZES, CropGeometry, CropMode

__all__ = [
    "compute_crop_geometry",
    "crop_frame",
    "crop_working_image",
    "restore_aspect_size",
    "WORKING_SIZES",
]

WORKING_SIZES = RENDER_SIZES  # kept for callers of the name before it moved to tavce.types
ALIGN_OUTPUT_SIZE = 512  # the original's ``xsize``: faces whose quad is >= 4x this are shrunk first
BORDER_FRACTION = 0.1
MIN_BORDER = 3


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
        mode: crop mode.
        clamp_bottom_by_height: False clamps Q's right and bottom edges by the photo width, as
            the original does; True clamps them by the crop's own width and height.
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
    right_limit, bottom_limit = width, width  # the original clamps both by the (resized) photo width
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
    """The (size, size, 3) uint8 working image: :func:`crop_frame` then cv2 bilinear resize."""
    cropped = crop_frame(image, geometry)
    if cropped.shape[0] == 0 or cropped.shape[1] == 0:
        raise InvalidArgumentError(
            f"crop box {geometry.source_box} is empty for a {geometry.image_size[0]}x{geometry.image_size[1]} "
            "photo; the landmarks lie outside the image"
        )
    return cv2.resize(np.ascontiguousarray(cropped), (size, size), interpolation=cv2.INTER_LINEAR)


def restore_aspect_size(geometry: CropGeometry, size: int, *, crop_aspect: bool = False) -> tuple[int, int]:
    """(width, height) an S×S rendered frame is resized to for crop-mode outputs.

    width = size, height = int(size · h / w) with (w, h) = :attr:`CropGeometry.crop_info_size`
    (the tight box, also in the ext modes, as the original does). ``crop_aspect=True`` uses
    the size of the region the working image really shows instead, which keeps the ext
    modes' proportions and those of a tight box clipped by the crop.
    """
    if crop_aspect:
        left, top, right, bottom = geometry.source_box
        box_width, box_height = right - left, bottom - top
    else:
        box_width, box_height = geometry.crop_info_size
    return size, int(size * box_height / box_width)
