"""Paste rendered crops back into the original photo (full / extfull modes).

Each S×S frame is resized (cv2 bilinear) to the region the working image was cut
from and alpha-blended into the photo with a feathered mask: the weight rises
smoothly from 0 at the box edge to 1 at ``feather`` × the box's shorter side
inside it, so no box edge is visible. Sides of the box that touch the photo's
border are not feathered. This replaces the original's Poisson blending
(``cv2.seamlessClone``), which is ~70× slower (243 ms against 3.4 ms for a 757 px box in a
1080p photo, one thread) and shifts the face's colours
towards the surroundings.

Deviations from the original: the box is mapped back to full resolution when
the photo was shrunk (the original pasted shrunk-image coordinates at full size);
frames come from memory at their exact size, not from a re-decoded lossy temporary
video; the box is the region the crop really shows (the original pastes into the
unclipped tight box, off by up to the clipped amount when the tight box, clamped by
the photo's width, reaches past the crop).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from tavce.errors import InvalidArgumentError
from tavce.types import PreparedSource

__all__ = ["paste_back", "feather_mask", "DEFAULT_FEATHER"]

DEFAULT_FEATHER = 0.1


def _ramp(length: int, width: float, fade_start: bool, fade_end: bool) -> np.ndarray:
    """(length,) float32 weights: smoothstep from 0 at a feathered end to 1 at ``width`` pixels inside."""
    centres = np.arange(length, dtype=np.float32) + 0.5
    weight = np.ones(length, dtype=np.float32)
    if fade_start:
        weight = np.minimum(weight, centres / width)
    if fade_end:
        weight = np.minimum(weight, (length - centres) / width)
    weight = np.clip(weight, 0.0, 1.0)
    return weight * weight * (3 - 2 * weight)


def feather_mask(
    height: int, width: int, feather: float = DEFAULT_FEATHER, sides: tuple[bool, bool, bool, bool] = (True,) * 4
) -> np.ndarray:
    """(height, width, 1) float32 alpha in [0, 1]; ``sides`` = feather (left, top, right, bottom)."""
    band = max(feather * min(height, width), 1.0)
    rows = _ramp(height, band, sides[1], sides[3])
    columns = _ramp(width, band, sides[0], sides[2])
    return (rows[:, None] * columns[None, :])[..., None]


def _as_uint8_frames(frames: np.ndarray | torch.Tensor) -> tuple[np.ndarray, bool]:
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    frames = np.asarray(frames)
    single = frames.ndim == 3
    if single:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InvalidArgumentError(
            f"frames: expected uint8 (S, S, 3) or (N, S, S, 3), got {frames.dtype} {tuple(frames.shape)}"
        )
    return frames, single


def paste_back(
    frames: np.ndarray | torch.Tensor, source: PreparedSource, *, feather: float = DEFAULT_FEATHER
) -> np.ndarray:
    """Blend rendered frames into the original photo.

    Args:
        frames: (S, S, 3) or (N, S, S, 3) uint8 RGB rendered crops.
        source: the prepared source (mode full or extfull).
        feather: width of the blend band as a fraction of the box's shorter side.

    Returns:
        (H, W, 3) or (N, H, W, 3) uint8 RGB at the photo's original size.
    """
    if not source.mode.pastes_back or source.original_image is None:
        raise InvalidArgumentError(
            f"source: prepared in mode {source.mode.value!r}; paste-back needs mode 'full' or 'extfull'"
        )
    batch, single = _as_uint8_frames(frames)
    photo = source.original_image
    photo_height, photo_width = photo.shape[:2]
    left, top, right, bottom = (int(round(v)) for v in source.geometry.paste_box)
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, photo_width), min(bottom, photo_height)
    box_width, box_height = right - left, bottom - top
    if box_width <= 0 or box_height <= 0:
        raise InvalidArgumentError(f"source: empty paste box {(left, top, right, bottom)}")

    sides = (left > 0, top > 0, right < photo_width, bottom < photo_height)
    alpha = feather_mask(box_height, box_width, feather, sides)[..., 0]
    inverse_alpha = 1.0 - alpha
    background = np.ascontiguousarray(photo[top:bottom, left:right])

    output = np.empty((len(batch), *photo.shape), dtype=np.uint8)
    for frame, canvas in zip(batch, output):
        canvas[...] = photo
        patch = cv2.resize(frame, (box_width, box_height), interpolation=cv2.INTER_LINEAR)
        # cv2.blendLinear: per-pixel weighted sum in C++, rounded and saturated to uint8.
        canvas[top:bottom, left:right] = cv2.blendLinear(patch, background, alpha, inverse_alpha)
    return output[0] if single else output
