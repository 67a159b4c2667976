"""3DMM coefficients of every frame of a video: the motion of a reference video (``ref_pose`` / ``ref_eyeblink``).

A reference video is read at 25 fps and cut with one crop, placed from the face on its
first frame that shows one (as SadTalker places it from the first frame) in the crop mode
of the generation; landmarks are then detected on every crop, a frame without a face
taking the previous detection (the frames before the first detection take that one), and
the crops are reconstructed in batches, as ``tavce prepare-data`` measures training videos.
Memory stays bounded by one batch of crops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from tavce.errors import FaceNotDetectedError
from tavce.models.base import module_device, module_dtype
from tavce.models.face_recon import FaceReconstructor, source_coefficients
from tavce.preprocess.alignment import align_for_reconstruction, flip_landmarks_y
from tavce.preprocess.crop import compute_crop_geometry, crop_working_image
from tavce.preprocess.landmarks import FaceLandmarker, select_face
from tavce.types import CropMode

__all__ = ["reconstruct_crops", "video_coefficients"]

logger = logging.getLogger(__name__)

RECONSTRUCTION_BATCH = 16
"""Crops per face-reconstruction batch."""


def reconstruct_crops(
    crops: Sequence[np.ndarray], landmarks: Sequence[np.ndarray] | np.ndarray, face_recon: FaceReconstructor
) -> tuple[torch.Tensor, torch.Tensor]:
    """3DMM reconstruction of S×S working crops, in one batch.

    Args:
        crops: B (S, S, 3) uint8 RGB crops.
        landmarks: B (68, 2) landmarks on the crops (pixels, y down).
        face_recon: the 3DMM network.

    Returns:
        ((B, 257) network outputs, (B, 73) coefficients: expression 64 ‖ angle 3 ‖ translation 3 ‖ crop 3), float32.
    """
    aligned = [
        align_for_reconstruction(crop, flip_landmarks_y(points, crop.shape[0]))
        for crop, points in zip(crops, landmarks)
    ]
    faces = torch.from_numpy(np.stack([face.image for face in aligned])).permute(0, 3, 1, 2)
    with torch.no_grad():
        output = face_recon(faces.to(module_device(face_recon), module_dtype(face_recon)) / 255.0).float().cpu()
    return output, source_coefficients(output, np.stack([face.trans_params for face in aligned]))


def video_coefficients(
    video: str | Path,
    *,
    landmarker: FaceLandmarker,
    face_recon: FaceReconstructor,
    mode: str | CropMode = "crop",
    size: int = 256,
    clamp_bottom_by_height: bool = False,
) -> torch.Tensor:
    """(T, 73) float32 coefficients of the video's T frames at 25 fps (see the module docstring).

    Raises:
        InvalidVideoError: the file is not a readable video.
        FaceNotDetectedError: no face on any frame.
    """
    from tavce.video_reader import VideoReader

    crop_mode = CropMode.parse(mode)
    geometry = None
    batch: list[np.ndarray] = []
    batch_landmarks: list[np.ndarray] = []
    before_first_face: list[np.ndarray] = []  # crops waiting for the first detection's landmarks
    coefficients: list[torch.Tensor] = []
    previous: np.ndarray | None = None

    def flush() -> None:
        coefficients.append(reconstruct_crops(batch, batch_landmarks, face_recon)[1])
        batch.clear()
        batch_landmarks.clear()

    with VideoReader(video) as reader:
        width, height = reader.info.size
        for frame in reader:
            if geometry is None:
                faces = landmarker.detect(frame)
                if not faces and crop_mode is not CropMode.RESIZE:
                    continue
                face = select_face(faces, None, (width, height)).landmarks if faces else None
                geometry = compute_crop_geometry(
                    face, (width, height), crop_mode, clamp_bottom_by_height=clamp_bottom_by_height
                )
            crop = crop_working_image(frame, geometry, size)
            found = landmarker.detect(crop)
            points = select_face(found, None, (size, size)).landmarks[:, :2].astype(np.float32) if found else None
            if points is None:
                if previous is None:
                    before_first_face.append(crop)
                    continue
                points = previous
            elif previous is None:
                batch.extend(before_first_face)
                batch_landmarks.extend([points] * len(before_first_face))
                before_first_face.clear()
            previous = points
            batch.append(crop)
            batch_landmarks.append(points)
            if len(batch) >= RECONSTRUCTION_BATCH:
                flush()
    if previous is None:
        raise FaceNotDetectedError(
            f"{video}: the {landmarker.name} detector found no face in the reference video; give a video "
            "showing one face (about 80 px wide or more) from its start"
        )
    if batch:
        flush()
    result = torch.cat(coefficients)
    logger.info("reference video %s: %d frames of coefficients", video, result.shape[0])
    return result
