"""3DMM alignment: five landmarks, POS similarity fit, 224×224 crop.

The working image is scaled so the face matches the standard 3D landmarks
(rescale factor 102) and a 224×224 window is cut around it with Pillow bicubic,
exactly as Deep3DFaceRecon's ``align_img`` does; out-of-image areas are black.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from tavce.errors import InvalidArgumentError
from tavce.preprocess.standard_landmarks import five_points, standard_five_points

__all__ = ["AlignedFace", "flip_landmarks_y", "fit_similarity", "align_for_reconstruction", "RECON_SIZE"]

RECON_SIZE = 224
RESCALE_FACTOR = 102.0


@dataclass(frozen=True)
class AlignedFace:
    """Output of :func:`align_for_reconstruction`.

    Attributes:
        image: (224, 224, 3) uint8 RGB network input.
        trans_params: (5,) float64 (W, H, s, t_x, t_y): working size, scale and POS translation (y up).
        landmarks: (68, 2) or (5, 2) float64 landmarks inside the 224 crop, y-up convention.
    """

    image: np.ndarray
    trans_params: np.ndarray
    landmarks: np.ndarray


def flip_landmarks_y(landmarks: np.ndarray, height: int) -> np.ndarray:
    """Detector convention (y down) -> the alignment's convention (y up): y <- H - 1 - y. dtype kept."""
    flipped = landmarks.copy()
    flipped[:, 1] = height - 1 - flipped[:, 1]
    return flipped


def fit_similarity(points_2d: np.ndarray, points_3d: np.ndarray) -> tuple[float, np.ndarray]:
    """POS fit of ``points_2d`` (N, 2) to ``points_3d`` (N, 3): p_x = r1·X + t_x, p_y = r2·X + t_y.

    Returns:
        scale (‖r1‖ + ‖r2‖)/2 and the translation (t_x, t_y), float64.
    """
    count = points_3d.shape[0]
    system = np.zeros((2 * count, 8))
    system[0::2, 0:3] = points_3d
    system[0::2, 3] = 1
    system[1::2, 4:7] = points_3d
    system[1::2, 7] = 1
    target = np.reshape(points_2d, (2 * count, 1))
    solution, *_ = np.linalg.lstsq(system, target, rcond=None)
    solution = solution[:, 0]
    scale = (np.linalg.norm(solution[0:3]) + np.linalg.norm(solution[4:7])) / 2
    return float(scale), np.array([solution[3], solution[7]])


def align_for_reconstruction(image: np.ndarray, landmarks_y_up: np.ndarray | None) -> AlignedFace:
    """Scale and crop ``image`` (H, W, 3) uint8 for the 3DMM network.

    Args:
        image: the working image.
        landmarks_y_up: (68, 2) landmarks already flipped by :func:`flip_landmarks_y`,
            or (5, 2) points; None uses the standard face placed in the image
            (the original's fallback: (L5 + 1)/2 scaled by (W, H), no flip).
    """
    height, width = image.shape[:2]
    standard = standard_five_points()
    if landmarks_y_up is None:
        landmarks_y_up = (standard[:, :2] + 1) / 2 * np.array([width, height], dtype=np.float32)
    landmarks_y_up = np.asarray(landmarks_y_up)
    if landmarks_y_up.shape not in ((68, 2), (5, 2)):
        raise InvalidArgumentError(f"landmarks: expected (68, 2) or (5, 2), got {landmarks_y_up.shape}")
    points = landmarks_y_up if landmarks_y_up.shape[0] == 5 else five_points(landmarks_y_up)

    pos_scale, translation = fit_similarity(points, standard)
    scale = RESCALE_FACTOR / pos_scale
    resized_width = np.int32(width * scale)
    resized_height = np.int32(height * scale)
    left = np.int32(resized_width / 2 - RECON_SIZE / 2 + (translation[0] - width / 2) * scale)
    up = np.int32(resized_height / 2 - RECON_SIZE / 2 + (height / 2 - translation[1]) * scale)
    if resized_width < 1 or resized_height < 1:
        raise InvalidArgumentError(f"landmarks: degenerate 3DMM alignment (scale {scale:.3g}); the face is too small")

    resized = Image.fromarray(image).resize((int(resized_width), int(resized_height)), Image.BICUBIC)
    aligned = np.array(resized.crop((int(left), int(up), int(left) + RECON_SIZE, int(up) + RECON_SIZE)))

    offset = np.array([resized_width / 2 - RECON_SIZE / 2, resized_height / 2 - RECON_SIZE / 2])
    centred = landmarks_y_up - translation.reshape(1, 2) + np.array([width / 2, height / 2])
    aligned_landmarks = centred * scale - offset
    trans_params = np.array([width, height, scale, translation[0], translation[1]], dtype=np.float64)
    return AlignedFace(image=aligned, trans_params=trans_params, landmarks=aligned_landmarks)
