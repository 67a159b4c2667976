"""Synthetic portraits: the standard face drawn with known landmarks, and prepared sources made from it.

:func:`face_landmarks` places the standard 68-point face; :func:`face_photo` draws a
photo around any landmarks. They are the drawing primitives the synthetic videos
(:mod:`tavce.testing.videos`) and the conformance suites build on.
"""

from __future__ import annotations

import numpy as np
import torch

from tavce.types import SOURCE_COEFF_DIM, PreparedSource

__all__ = ["face_landmarks", "face_photo", "synthetic_portrait", "synthetic_source", "PORTRAIT_SIZE"]

PORTRAIT_SIZE = (320, 240)  # (W, H) of synthetic_portrait: not square, so aspect handling shows


def face_landmarks(centre: tuple[float, float], scale: float, roll_degrees: float = 0.0) -> np.ndarray:
    """(68, 2) float32 landmarks (y down) of the standard face, ``scale`` pixels per unit, rotated in-plane."""
    from tavce.preprocess.standard_landmarks import STANDARD_LANDMARKS_3D

    angle = np.deg2rad(roll_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = STANDARD_LANDMARKS_3D[:, :2].astype(np.float64) * [1, -1] @ rotation.T
    return (points * scale + np.asarray(centre)).astype(np.float32)


def face_photo(width: int, height: int, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 synthetic portrait: smooth gradient background, a skin-coloured face ellipse and dark landmark dots."""
    import cv2

    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    photo = np.stack([columns / width * 200 + 20, rows / height * 200 + 20, np.full_like(rows, 90)], -1)
    photo = (photo + rng.normal(0, 4, photo.shape)).clip(0, 255).astype(np.uint8)
    centre = landmarks.mean(axis=0)
    axes = (landmarks.max(axis=0) - landmarks.min(axis=0)) * 0.6
    cv2.ellipse(photo, (int(centre[0]), int(centre[1])), (int(axes[0]), int(axes[1])), 0, 0, 360, (225, 180, 150), -1)
    for x, y in landmarks:
        cv2.circle(photo, (int(round(x)), int(round(y))), 2, (60, 30, 30), -1)
    return photo


def synthetic_portrait() -> tuple[np.ndarray, tuple[float, float, float, float], np.ndarray]:
    """A drawn (240, 320, 3) uint8 portrait, its face box (pixels) and its (68, 2) landmarks."""
    landmarks = face_landmarks((160, 125), 60)
    low, high = landmarks.min(axis=0), landmarks.max(axis=0)
    box = (float(low[0]), float(low[1]), float(high[0]), float(high[1]))
    return face_photo(*PORTRAIT_SIZE, landmarks), box, landmarks


def synthetic_source(size: int = 256, mode: str = "crop", seed: int = 0):
    """A :class:`~tavce.types.PreparedSource` of :func:`synthetic_portrait` with random coefficients.

    The crop is the original's crop math on the known landmarks; no network runs.
    """
    from tavce.preprocess import compute_crop_geometry, crop_working_image

    photo, _, landmarks = synthetic_portrait()
    geometry = compute_crop_geometry(landmarks, PORTRAIT_SIZE, mode)
    working = crop_working_image(photo, geometry, size)
    generator = torch.Generator().manual_seed(seed)
    coefficients = 0.1 * torch.randn(SOURCE_COEFF_DIM, generator=generator)
    return PreparedSource(
        image=torch.from_numpy(working).permute(2, 0, 1).float().div(255).contiguous(),
        coefficients=coefficients,
        reconstruction=torch.zeros(257),
        landmarks=landmarks,
        geometry=geometry,
        original_image=photo if geometry.mode.pastes_back else None,
    )
