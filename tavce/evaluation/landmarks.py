"""68-point landmarks of every frame of a video, for face alignment (CSIM) and mouth crops (TAVC similarity)."""

from __future__ import annotations

import logging

import numpy as np

from tavce.errors import FaceNotDetectedError, InvalidArgumentError
from tavce.preprocess.landmarks import FaceLandmarker, select_face

__all__ = ["check_landmarks", "five_point_landmarks", "video_landmarks"]

logger = logging.getLogger(__name__)

# 68-point (iBUG) indices of insightface's five alignment points, in its order:
# eye on the image's left, eye on the right, nose tip, mouth corner left, mouth corner right.
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP = 30
_MOUTH_LEFT, _MOUTH_RIGHT = 48, 54


def video_landmarks(frames: np.ndarray, landmarker: FaceLandmarker, *, name: str = "video") -> np.ndarray:
    """(T, 68, 2) float32 landmarks of the largest face of each (H, W, 3) uint8 RGB frame.

    A frame where no face is found takes the nearest earlier frame's landmarks (the first
    frames with none take the first detection's), so one missed detection does not drop a frame.

    Raises:
        FaceNotDetectedError: no face in any frame.
    """
    found: list[np.ndarray | None] = []
    for frame in frames:
        faces = landmarker.detect(frame)
        found.append(select_face(faces, None, (frame.shape[1], frame.shape[0])).landmarks if faces else None)
    detected = [index for index, points in enumerate(found) if points is not None]
    if not detected:
        raise FaceNotDetectedError(
            f"{name}: no face found in any of its {len(found)} frames by the {landmarker.name} landmarker; "
            "check that the video shows a face, or pass landmarks"
        )
    if len(detected) < len(found):
        logger.info("%s: no face in %d of %d frames; using the previous frame's landmarks there",
                    name, len(found) - len(detected), len(found))  # fmt: skip
    filled, last = [], found[detected[0]]
    for points in found:
        last = points if points is not None else last
        filled.append(np.asarray(last, dtype=np.float32)[:, :2])
    return np.stack(filled)


def check_landmarks(landmarks: np.ndarray, num_frames: int, name: str) -> np.ndarray:
    """``landmarks`` as (T, 68, 2) float32 for T = ``num_frames``.

    Raises:
        InvalidArgumentError: another shape or frame count.
    """
    array = np.asarray(landmarks, dtype=np.float32)
    if array.ndim != 3 or array.shape[1] != 68 or array.shape[2] < 2:
        raise InvalidArgumentError(f"{name}: landmarks must be (T, 68, 2) in the 68-point layout, got {array.shape}")
    if len(array) != num_frames:
        raise InvalidArgumentError(
            f"{name}: {len(array)} landmark sets for {num_frames} frames; give one (68, 2) set per frame"
        )
    return array[:, :, :2]


def five_point_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """(..., 68, 2) → (..., 5, 2): eye centres, nose tip and mouth corners, insightface's alignment points."""
    return np.stack(
        [
            landmarks[..., _LEFT_EYE, :].mean(axis=-2),
            landmarks[..., _RIGHT_EYE, :].mean(axis=-2),
            landmarks[..., _NOSE_TIP, :],
            landmarks[..., _MOUTH_LEFT, :],
            landmarks[..., _MOUTH_RIGHT, :],
        ],
        axis=-2,
    )
