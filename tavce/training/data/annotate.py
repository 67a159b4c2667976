"""Prepare one video: 25 fps face crops, 16 kHz audio, per-frame landmarks, 3DMM coefficients, mouth centres.

The steps reuse the inference preprocessing pieces, so training data and
inference inputs are cut and measured the same way:

1. frames at 25 fps (:class:`tavce.video_reader.VideoReader`); the face is located on
   the first frame where the landmarker finds one, and that single crop
   (:func:`~tavce.preprocess.compute_crop_geometry`) is applied to every frame
   (:func:`~tavce.preprocess.crop_working_image`), like the original's one static
   box per clip -> ``frames/%06d.png``;
2. the audio track (:func:`tavce.audio.load_audio`, via ffmpeg) -> ``audio.wav``;
3. landmarks detected on every S×S crop; a frame without a detection takes the
   nearest detected frame's landmarks (the original takes the previous one) and
   is flagged in ``face_detected``;
4. 3DMM coefficients per crop: :func:`~tavce.preprocess.align_for_reconstruction`
   + the face-reconstruction network + :func:`~tavce.models.face_recon.source_coefficients`,
   in batches;
5. mouth centres (:func:`~tavce.preprocess.mouth_centre`).

Memory stays bounded by one batch of crops: the crops are written as PNG in step
2 and read back in step 4.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import soundfile
import torch

import tavce
from tavce._kill_points import kill_point
from tavce.audio import load_audio
from tavce.errors import FaceNotDetectedError, InvalidArgumentError, InvalidVideoError, OutputError
from tavce.models.face_recon import FaceReconstructor
from tavce.preprocess.crop import compute_crop_geometry, crop_working_image
from tavce.preprocess.landmarks import FaceLandmarker, select_face
from tavce.preprocess.mouth import mouth_centre
from tavce.preprocess.reference_video import reconstruct_crops
from tavce.training.data.layout import ANNOTATIONS_NAME, AUDIO_NAME, FRAMES_DIR, META_NAME, frame_filename
from tavce.types import CROP_ONLY_MODES, FPS, RENDER_SIZES, SAMPLE_RATE, CropMode
from tavce.video_reader import VideoReader

__all__ = ["PrepareConfig", "prepare_video"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareConfig:
    """How videos are turned into training data.

    Attributes:
        size: side of the stored face crops in pixels (256 as TAVCE trains; 512 also works).
        crop_mode: ``crop`` (tight face box, the networks' framing), ``extcrop`` (with border) or
            ``resize`` (whole frame squashed to a square: for clips that are already face crops).
        max_frames: keep at most this many frames per video (None: all; the original's pipeline kept 200).
        min_frames: a video with fewer usable frames fails ("too short"); 6 = what stage 1 needs (τ + 3).
        face_search_frames: how many leading frames are searched for the face that fixes the crop.
        batch_size: crops per face-reconstruction batch.
    """

    size: int = 256
    crop_mode: str = "crop"
    max_frames: int | None = None
    min_frames: int = 6
    face_search_frames: int = 25
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.size not in RENDER_SIZES:
            raise InvalidArgumentError(f"size={self.size}: crops are stored at {' or '.join(map(str, RENDER_SIZES))}")
        if CropMode.parse(self.crop_mode).pastes_back:
            raise InvalidArgumentError(
                f"crop_mode={self.crop_mode!r}: use {', '.join(CROP_ONLY_MODES)} for training data"
            )
        if self.max_frames is not None and self.max_frames < 1:
            raise InvalidArgumentError(f"max_frames must be at least 1 (or None for all), got {self.max_frames}")
        if self.min_frames < 1 or self.face_search_frames < 1 or self.batch_size < 1:
            raise InvalidArgumentError("min_frames, face_search_frames and batch_size must be at least 1")


def prepare_video(
    video: Path,
    destination: Path,
    *,
    name: str,
    face_recon: FaceReconstructor,
    landmarker: FaceLandmarker,
    config: PrepareConfig,
) -> dict:
    """Write one video's prepared folder into ``destination`` (an empty, existing folder).

    Args:
        name: the video's dataset name (recorded in ``meta.json``; the folder may be a temporary one).

    Returns:
        The ``meta.json`` content (also written, last, into ``destination``).

    Raises:
        InvalidVideoError / InvalidAudioError: unreadable video or audio track;
        FaceNotDetectedError: no face in the first ``face_search_frames`` frames or on any crop.
    """
    started = time.perf_counter()
    (destination / FRAMES_DIR).mkdir()
    num_frames, geometry, info = _write_crops(video, destination / FRAMES_DIR, landmarker, config)
    audio = load_audio(video)
    soundfile.write(destination / AUDIO_NAME, audio.samples, SAMPLE_RATE, subtype="PCM_16")
    usable = min(num_frames, audio.num_frames)
    if usable < config.min_frames:
        raise InvalidVideoError(
            f"{video}: only {usable} usable frames (video {num_frames}, audio {audio.num_frames} at 25 fps); "
            f"at least {config.min_frames} are needed; leave this clip out or lower min_frames"
        )
    landmarks, detected = _crop_landmarks(video, destination / FRAMES_DIR, num_frames, landmarker)
    full, coefficients = _reconstruct(destination / FRAMES_DIR, landmarks, face_recon, config)
    np.savez(
        destination / ANNOTATIONS_NAME,
        landmarks=landmarks,
        coefficients=coefficients,
        full_coefficients=full,
        mouth_centres=np.array([mouth_centre(points) for points in landmarks], dtype=np.int32),
        face_detected=detected,
    )
    meta = {
        "name": name,
        "source": str(video),
        "num_frames": num_frames,
        "audio_frames": audio.num_frames,
        "fps": FPS,
        "size": config.size,
        "source_fps": info.source_fps,
        "source_size": list(info.source_size),
        "crop_geometry": geometry.to_dict(),
        "frames_without_face": int((~detected).sum()),
        "landmarker": landmarker.name,
        "config": asdict(config),
        "tavce_version": tavce.__version__,
        "seconds": round(time.perf_counter() - started, 3),
    }
    kill_point("prepare-data:annotations")
    # meta.json is written last: its presence marks a complete folder.
    (destination / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _write_crops(video: Path, frames_dir: Path, landmarker: FaceLandmarker, config: PrepareConfig):
    """Crop every 25 fps frame with one geometry; returns (frame count, geometry, VideoInfo)."""
    mode = CropMode.parse(config.crop_mode)
    geometry, waiting, count = None, [], 0
    with VideoReader(video) as reader:
        width, height = reader.info.size  # the decoded frames' size (rotation metadata already applied)
        for frame in reader:
            if geometry is None:
                if mode is CropMode.RESIZE:
                    geometry = compute_crop_geometry(None, (width, height), mode)
                else:
                    waiting.append(frame)  # frames before the face is found are cropped once it is
                    faces = landmarker.detect(frame)
                    if not faces:
                        if len(waiting) >= config.face_search_frames:
                            raise FaceNotDetectedError(
                                f"{video}: no face found by the {landmarker.name} detector in the first "
                                f"{len(waiting)} frames; give clips with a visible face from the start"
                            )
                        continue
                    face = select_face(faces, None, (width, height))
                    geometry = compute_crop_geometry(face.landmarks, (width, height), mode)
            ready = waiting or [frame]
            if config.max_frames is not None:
                ready = ready[: config.max_frames - count]
            for image in ready:
                _write_png(frames_dir / frame_filename(count), crop_working_image(image, geometry, config.size))
                count += 1
                kill_point("prepare-data:frame")
            waiting = []
            if config.max_frames is not None and count >= config.max_frames:
                break
        info = reader.info
    if geometry is None:
        raise FaceNotDetectedError(
            f"{video}: no face found by the {landmarker.name} detector in any of its {len(waiting)} frames"
        )
    return count, geometry, info


def _write_png(path: Path, rgb: np.ndarray) -> None:
    # Encoded here and written by Python, so a failed write keeps its errno (cv2.imwrite only says False).
    encoded, data = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not encoded:
        raise OutputError(f"{path}: OpenCV could not encode the frame as PNG")
    path.write_bytes(data.tobytes())


def _read_crop(frames_dir: Path, index: int) -> np.ndarray:
    crop = cast(np.ndarray, cv2.imread(str(frames_dir / frame_filename(index)), cv2.IMREAD_COLOR))
    return np.ascontiguousarray(crop[..., ::-1])


def _crop_landmarks(video: Path, frames_dir: Path, count: int, landmarker: FaceLandmarker):
    """(T, 68, 2) float32 landmarks on the crops and the (T,) detected mask; gaps take the nearest detection."""
    found: list[np.ndarray | None] = []
    for index in range(count):
        crop = _read_crop(frames_dir, index)
        faces = landmarker.detect(crop)
        found.append(select_face(faces, None, crop.shape[1::-1]).landmarks if faces else None)
    detected = np.array([points is not None for points in found])
    if not detected.any():
        raise FaceNotDetectedError(
            f"{video}: the {landmarker.name} detector found no face on any of the {count} crops; "
            "check that the clip shows one face large enough (about 80 px or more)"
        )
    positions = np.flatnonzero(detected)
    nearest = positions[np.abs(np.arange(count)[:, None] - positions[None, :]).argmin(axis=1)]
    landmarks = np.stack([np.asarray(found[source], dtype=np.float32)[:, :2] for source in nearest])
    return landmarks, detected


def _reconstruct(frames_dir: Path, landmarks: np.ndarray, face_recon: FaceReconstructor, config: PrepareConfig):
    """(T, 257) network outputs and (T, 73) stored coefficients, ``batch_size`` crops at a time."""
    full, coefficients = [], []
    for start in range(0, len(landmarks), config.batch_size):
        stop = min(start + config.batch_size, len(landmarks))
        crops = [_read_crop(frames_dir, index) for index in range(start, stop)]
        output, stored = reconstruct_crops(crops, landmarks[start:stop], face_recon)
        full.append(output)
        coefficients.append(stored)
    return torch.cat(full).numpy(), torch.cat(coefficients).numpy()
