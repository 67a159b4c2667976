"""Mouth crops for the TAVC mouth encoder (training, CAR and evaluation share them).

As TAVCE's trainer does: on a 256×256 face
frame the mouth centre is the median of the 20 mouth landmarks (68-point indices
48–67), cast to int; a 72×72 box around it, shifted to lie inside the frame, is
resized bilinearly to 112×112 and scaled to [−1, 1].

Two paths, one geometry (:func:`mouth_box`):

* :func:`crop_mouth` — a NumPy frame (H, W, 3) of 0–255 values, resized with
  OpenCV as stage 1 does (data preparation, evaluation);
* :func:`crop_mouths` — a batch of tensors (B, 3, H, W) in [0, 1], resized with
  ``F.interpolate`` (bilinear, align_corners=False) as stage 2 does; differentiable
  with respect to the images, which is how CAR reaches the generator.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from tavce.errors import InvalidArgumentError, InvalidImageError

MOUTH_LANDMARKS = slice(48, 68)
MOUTH_BOX_SIZE = 72
MOUTH_CROP_SIZE = 112


def mouth_centre(landmarks: np.ndarray) -> tuple[int, int]:
    """(x, y) integer mouth centre: median of 68-point landmarks 48–67, truncated to int.

    Args:
        landmarks: (68, 2) (or (68, 3)) x, y[, z] positions in pixels.
    """
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 2 or landmarks.shape[0] != 68 or landmarks.shape[1] < 2:
        raise InvalidArgumentError(
            f"mouth_centre: landmarks must be (68, 2) in the 68-point layout, got {landmarks.shape}"
        )
    centre = np.median(landmarks[MOUTH_LANDMARKS, :2], axis=0).astype(int)
    return int(centre[0]), int(centre[1])


def mouth_box(centre: tuple[int, int], height: int, width: int, box_size: int = MOUTH_BOX_SIZE) -> tuple[int, int]:
    """Top-left (row, column) of the ``box_size`` square around ``centre`` shifted inside an H×W frame.

    The centre is clamped to [box/2, size − box/2] per axis; the box spans
    centre − box/2 … centre + box/2 − 1.
    """
    half = box_size // 2
    if height < box_size or width < box_size:
        raise InvalidImageError(f"mouth crop: the frame ({height}×{width}) is smaller than the {box_size}-pixel box")
    x = min(max(int(centre[0]), half), width - half)
    y = min(max(int(centre[1]), half), height - half)
    return y - half, x - half


def crop_mouth(
    frame: np.ndarray, centre: tuple[int, int], box_size: int = MOUTH_BOX_SIZE, crop_size: int = MOUTH_CROP_SIZE
) -> np.ndarray:
    """Stage-1 mouth crop of one frame.

    Args:
        frame: (H, W, 3) RGB frame with values 0–255 (uint8 or float), 256×256 in TAVCE.
        centre: (x, y) from :func:`mouth_centre`.

    Returns:
        (3, crop_size, crop_size) float32 in [−1, 1].
    """
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidImageError(f"crop_mouth: frame must be (H, W, 3) RGB, got {frame.shape}")
    top, left = mouth_box(centre, frame.shape[0], frame.shape[1], box_size)
    box = np.ascontiguousarray(frame[top : top + box_size, left : left + box_size], dtype=np.float32)
    resized = cv2.resize(box, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    return ((resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1).astype(np.float32)


def crop_mouths(
    frames: torch.Tensor, centres: torch.Tensor, box_size: int = MOUTH_BOX_SIZE, crop_size: int = MOUTH_CROP_SIZE
) -> torch.Tensor:
    """Stage-2 mouth crops of a batch (differentiable in ``frames``).

    Args:
        frames: (B, 3, H, W) RGB in [0, 1] (real or generated frames).
        centres: (B, 2) integer (x, y) centres from :func:`mouth_centre`.

    Returns:
        (B, 3, crop_size, crop_size) in [−1, 1].
    """
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise InvalidImageError(f"crop_mouths: frames must be (B, 3, H, W), got {tuple(frames.shape)}")
    if tuple(centres.shape) != (frames.shape[0], 2):
        raise InvalidArgumentError(
            f"crop_mouths: centres must be (B, 2) = ({frames.shape[0]}, 2) (x, y), got {tuple(centres.shape)}"
        )
    height, width = frames.shape[2:]
    boxes = []
    for frame, (x, y) in zip(frames, centres.tolist()):
        top, left = mouth_box((int(x), int(y)), height, width, box_size)
        boxes.append(frame[:, top : top + box_size, left : left + box_size])
    normalised = (torch.stack(boxes) - 0.5) / 0.5
    return F.interpolate(normalised, size=(crop_size, crop_size), mode="bilinear", align_corners=False)
