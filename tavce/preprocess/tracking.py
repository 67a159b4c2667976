"""The face in every output frame, for the enhancer: the preprocessor's landmarker, or the last face found.

The original enhancer detects faces anew in every frame (the head moves) and leaves
a frame without a detected face unenhanced, which flickers. Here a frame where the
landmarker finds no face reuses the last landmarks found, at first the source
photo's (mapped into the output frame), so every frame is enhanced.
"""

from __future__ import annotations

import numpy as np

from tavce.preprocess.landmarks import FaceLandmarker
from tavce.preprocess.preprocessor import map_landmarks_to_working_image
from tavce.types import PreparedSource

__all__ = ["FaceTracker", "source_landmarks_in_frame"]


def source_landmarks_in_frame(source: PreparedSource, frame_shape: tuple[int, ...]) -> np.ndarray:
    """(68, 2) float32: the source photo's landmarks in an output frame of ``frame_shape`` (H, W, ...).

    Full modes paste back into the photo, so the photo's landmarks hold as they are; the
    other modes show the S×S working image, resized to the frame.
    """
    if source.geometry.mode.pastes_back:
        return source.landmarks.astype(np.float32)
    working = map_landmarks_to_working_image(source.landmarks, source.geometry, source.size)
    height, width = frame_shape[:2]
    scale = np.array([width / source.size, height / source.size])
    return ((working + 0.5) * scale - 0.5).astype(np.float32)


class FaceTracker:
    """68 landmarks of the animated face for each frame of a video, in order.

    Args:
        landmarker: detects faces in a frame; None reuses ``initial`` for every frame.
        initial: (68, 2) landmarks used until a face is detected.

    Attributes:
        detected: frames so far whose landmarks were detected (the others reused earlier ones).
    """

    def __init__(self, landmarker: FaceLandmarker | None, initial: np.ndarray) -> None:
        self.landmarker = landmarker
        self.last = np.asarray(initial, np.float32)
        self.detected = 0

    def landmarks(self, frame: np.ndarray) -> np.ndarray:
        """(68, 2) float32 landmarks of the face in ``frame`` (H, W, 3) uint8 RGB.

        Of several detected faces, the one whose centre is nearest the last landmarks'
        (the animated face, not a bystander in a full-mode photo).
        """
        faces = self.landmarker.detect(frame) if self.landmarker is not None else []
        if faces:
            centre = self.last.mean(axis=0)
            nearest = min(faces, key=lambda face: float(np.linalg.norm(face.landmarks.mean(axis=0) - centre)))
            self.last = np.asarray(nearest.landmarks, np.float32)
            self.detected += 1
        return self.last
