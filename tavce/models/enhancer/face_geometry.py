"""Where the enhancer's face goes: five-point alignment to the FFHQ template, and the paste-back.

Alignment: the five points (eye centres, nose tip, mouth corners) are mapped to
the FFHQ template by a four-degree-of-freedom similarity, estimated robustly with
least median of squares (``cv2.estimateAffinePartial2D(..., method=cv2.LMEDS)``,
deterministic), and the frame is warped to an S×S crop whose outside is a
neutral grey (RGB 132, 133, 135).

Paste-back: the frame is resized ×``upscale`` (Lanczos), the restored face is
warped back with the inverse similarity (scaled by ``upscale``, shifted by half a
pixel of the upscaled frame when upscaling) and blended with a soft mask: the
face-parsing mask (face parts only, twice Gaussian-blurred, a 10-pixel border
cleared), or without a parser an eroded, blurred square. The blend is truncated
to uint8.

Frames are (H, W, 3) uint8 RGB; every operation is per channel, so BGR frames give
the same result with the border value reversed.
"""

from __future__ import annotations

import cv2
import numpy as np

from tavce.errors import FaceNotDetectedError, InvalidArgumentError
from tavce.models.enhancer.parsenet import FACE_LABELS

__all__ = [
    "FFHQ_TEMPLATE_512",
    "BORDER_RGB",
    "five_points",
    "alignment_matrix",
    "align_face",
    "inverse_alignment",
    "parsing_mask",
    "paste_face",
]

FFHQ_TEMPLATE_512 = np.array(
    [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935], [201.26117, 371.41043], [313.08905, 371.15118]],
    dtype=np.float32,
)
"""(5, 2) x, y in a 512×512 aligned face: left eye, right eye, nose tip, left and right mouth corner (image left/right)."""

BORDER_RGB = (132, 133, 135)
"""Fill of the aligned crop outside the frame (RGB)."""

_MASK_BLUR = ((101, 101), 11)
_MASK_BORDER = 10


def five_points(landmarks_68: np.ndarray) -> np.ndarray:
    """(..., 68, 2) iBUG landmarks -> (..., 5, 2) float32: eye centres (image left first), nose tip, mouth corners."""
    points = np.asarray(landmarks_68, dtype=np.float32)
    if points.shape[-2:] != (68, 2):
        raise InvalidArgumentError(f"five_points: expected (..., 68, 2) landmarks, got {points.shape}")
    return np.stack(
        [points[..., 36:42, :].mean(-2), points[..., 42:48, :].mean(-2), points[..., 30, :], points[..., 48, :], points[..., 54, :]],
        axis=-2,
    ).astype(np.float32)


def alignment_matrix(points: np.ndarray, face_size: int = 512) -> np.ndarray:
    """(2, 3) float64 similarity taking the five ``points`` (5, 2) onto the template scaled to ``face_size``.

    Raises:
        FaceNotDetectedError: the points are degenerate (no similarity fits them).
    """
    template = FFHQ_TEMPLATE_512 * (face_size / 512)
    matrix, _ = cv2.estimateAffinePartial2D(np.asarray(points, np.float32).reshape(5, 2), template, method=cv2.LMEDS)
    if matrix is None:
        raise FaceNotDetectedError(f"the five face points {np.asarray(points).tolist()} do not define a face alignment")
    return matrix


def align_face(frame: np.ndarray, matrix: np.ndarray, face_size: int = 512, border=BORDER_RGB) -> np.ndarray:
    """(face_size, face_size, 3) uint8 crop of ``frame`` (H, W, 3) uint8 warped by ``matrix`` (bilinear)."""
    return cv2.warpAffine(
        frame, matrix, (face_size, face_size), borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(map(int, border))
    )


def inverse_alignment(matrix: np.ndarray, upscale: float = 1) -> np.ndarray:
    """(2, 3) float64: the inverse of ``matrix``, scaled by ``upscale`` (aligned face -> upscaled frame)."""
    return cv2.invertAffineTransform(matrix) * upscale


def parsing_mask(labels: np.ndarray, face_size: int) -> np.ndarray:
    """(face_size, face_size) float64 soft face mask in [0, 1] from (h, w) parsing labels of the restored face."""
    mask = np.isin(labels, list(FACE_LABELS)).astype(np.float64) * 255
    for _ in range(2):
        mask = cv2.GaussianBlur(mask, *_MASK_BLUR)
    mask[:_MASK_BORDER] = 0
    mask[-_MASK_BORDER:] = 0
    mask[:, :_MASK_BORDER] = 0
    mask[:, -_MASK_BORDER:] = 0
    return cv2.resize(mask / 255, (face_size, face_size))


def paste_face(
    frame: np.ndarray, face: np.ndarray, matrix: np.ndarray, upscale: int = 2, mask: np.ndarray | None = None
) -> np.ndarray:
    """Blend a restored face back into ``frame``, upscaled.

    Args:
        frame: (H, W, 3) uint8, the frame the face was aligned from.
        face: (S, S, 3) uint8 restored face (same colour order as ``frame``).
        matrix: (2, 3) the alignment :func:`alignment_matrix` gave for this frame.
        upscale: output scale factor (1 or more).
        mask: (S, S) soft face mask in [0, 1] (:func:`parsing_mask`); None blends with an
            eroded, blurred square instead.

    Returns:
        (H·upscale, W·upscale, 3) uint8.
    """
    height, width = frame.shape[:2]
    size = (int(width * upscale), int(height * upscale))
    background = cv2.resize(frame, size, interpolation=cv2.INTER_LANCZOS4)
    inverse = inverse_alignment(matrix, upscale)
    if upscale > 1:
        inverse[:, 2] += 0.5 * upscale
    warped = cv2.warpAffine(face, inverse, size)
    if mask is not None:
        alpha = cv2.warpAffine(mask, inverse, size, flags=cv2.INTER_AREA)[:, :, None]
        pasted = warped
    else:
        square = cv2.warpAffine(np.ones(face.shape[:2], np.float32), inverse, size)
        eroded = cv2.erode(square, np.ones((int(2 * upscale), int(2 * upscale)), np.uint8))
        pasted = eroded[:, :, None] * warped
        edge = int(np.sum(eroded) ** 0.5) // 20
        centre = cv2.erode(eroded, np.ones((2 * edge, 2 * edge), np.uint8))
        alpha = cv2.GaussianBlur(centre, (2 * edge + 1, 2 * edge + 1), 0)[:, :, None]
    return (alpha * pasted + (1 - alpha) * background).astype(np.uint8)
