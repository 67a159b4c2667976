"""Synthetic photos with known 68 landmarks: the standard 3D face projected at a chosen place and size."""

from __future__ import annotations

import cv2
import numpy as np

from tavce.preprocess.standard_landmarks import STANDARD_LANDMARKS_3D


def face_landmarks(centre: tuple[float, float], scale: float, roll_degrees: float = 0.0) -> np.ndarray:
    """(68, 2) float32 landmarks (y down) of the standard face, ``scale`` pixels per unit, rotated in-plane."""
    angle = np.deg2rad(roll_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = STANDARD_LANDMARKS_3D[:, :2].astype(np.float64) * [1, -1] @ rotation.T
    return (points * scale + np.asarray(centre)).astype(np.float32)


def face_photo(width: int, height: int, landmarks: np.ndarray, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8: smooth gradient background, a skin-coloured face ellipse and dark landmark dots."""
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
