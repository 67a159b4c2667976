"""TAVC similarity: the TAVC metric's own audio/mouth agreement, a cheap lip-sync signal (no SyncNet needed).

For every pair of consecutive frames (t − 1, t), t = 1 … T − 1, the metric's audio
relationship of frame t (the change between the mel windows of frames t − 1 and t, the
same factor that drives CERL) is compared with its visual relationship of the two
frames' mouth crops by ``metric.similarity`` (TAVCMetric: the flattened-matrix cosine,
cos² of the two difference vectors, in [0, 1]). Frame 0 has no predecessor and no score.

Mouth crops are the trainer's (:mod:`tavce.preprocess.mouth`): frames are brought to the
metric's 256×256 working size, the mouth centre is the median of landmarks 48–67 and a
72×72 box around it is resized to the mouth encoder's input size. It scores how well a
clip's mouth follows its audio *as the metric sees it*, so it is meaningful with trained
TAVCE weights only and is not comparable across metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from tavce.audio import frame_windows
from tavce.errors import InvalidArgumentError
from tavce.evaluation.frames import check_frames
from tavce.evaluation.landmarks import check_landmarks, video_landmarks
from tavce.models.base import module_device
from tavce.models.tavc.metric import TemporalCorrelationMetric
from tavce.preprocess.landmarks import FaceLandmarker
from tavce.preprocess.mouth import MOUTH_CROP_SIZE, crop_mouth, mouth_centre
from tavce.types import AudioClip, AudioWindows

__all__ = ["TAVCSimilarity", "TAVCSimilarityConfig", "mouth_crops", "tavc_similarity"]

WORKING_SIZE = 256  # the frame size TAVC's mouth box (72 pixels) was defined on


@dataclass(frozen=True)
class TAVCSimilarityConfig:
    """frame_size: frames are resized to this square side before the mouth crop (256, TAVC's).
    batch_size: frame pairs per mouth-encoder call."""

    frame_size: int = WORKING_SIZE
    batch_size: int = 64


@dataclass(frozen=True)
class TAVCSimilarity:
    """per_pair: (T − 1,) similarity of frame pairs (t − 1, t), t = 1 … T − 1. mean: their mean (higher is better)."""

    per_pair: np.ndarray
    mean: float


def _mouth_input_size(metric: TemporalCorrelationMetric) -> int:
    encoder = getattr(metric, "mouth_encoder", None)
    return int(getattr(getattr(encoder, "config", None), "image_size", MOUTH_CROP_SIZE))


def mouth_crops(
    frames: np.ndarray, landmarks: np.ndarray, crop_size: int = MOUTH_CROP_SIZE, frame_size: int = WORKING_SIZE
) -> torch.Tensor:
    """(T, 3, crop_size, crop_size) mouth crops in [−1, 1] of (T, H, W, 3) uint8 frames with (T, 68, 2) landmarks.

    Frames are resized to ``frame_size`` squared first and the landmarks scaled with them.
    """
    crops = []
    for frame, points in zip(frames, landmarks):
        height, width = frame.shape[:2]
        if (height, width) != (frame_size, frame_size):
            frame = cv2.resize(frame, (frame_size, frame_size), interpolation=cv2.INTER_AREA)
            points = points * np.array([frame_size / width, frame_size / height], dtype=np.float32)
        crops.append(crop_mouth(frame, mouth_centre(points), crop_size=crop_size))
    return torch.from_numpy(np.stack(crops))


def tavc_similarity(
    video: np.ndarray,
    audio: AudioClip | AudioWindows,
    metric: TemporalCorrelationMetric,
    *,
    landmarks: np.ndarray | None = None,
    landmarker: FaceLandmarker | None = None,
    config: TAVCSimilarityConfig | None = None,
) -> TAVCSimilarity:
    """The TAVC metric's audio/mouth agreement over a clip (see the module docstring).

    Args:
        video: (T, H, W, 3) uint8 RGB face frames at 25 fps.
        audio: the clip's 16 kHz audio, or its mel windows (:func:`tavce.audio.frame_windows`).
        metric: a :class:`~tavce.models.tavc.TemporalCorrelationMetric` (the pipeline's ``metric``).
        landmarks: (T, 68, 2) landmarks in ``video`` pixels; else found with ``landmarker``.
        landmarker: any :class:`~tavce.preprocess.FaceLandmarker`.

    Clips are cut to the shorter of video and audio.

    Raises:
        InvalidArgumentError: fewer than 2 frames, no landmarks nor landmarker, landmarks of another length.
    """
    config = config or TAVCSimilarityConfig()
    frames = check_frames(video, "tavc_similarity video", minimum=2)
    windows = audio if isinstance(audio, AudioWindows) else frame_windows(audio)
    if landmarks is None:
        if landmarker is None:
            raise InvalidArgumentError(
                "tavc_similarity: mouth crops need landmarks; pass landmarks=(T, 68, 2) or a landmarker"
            )
        landmarks = video_landmarks(frames, landmarker, name="tavc_similarity video")
    landmarks = check_landmarks(landmarks, len(frames), "tavc_similarity")
    count = min(len(frames), windows.num_frames)
    if count < 2:
        raise InvalidArgumentError(
            f"tavc_similarity: {len(frames)} frames and {windows.num_frames} audio frames; at least 2 of both needed"
        )
    mouths = mouth_crops(frames[:count], landmarks[:count], _mouth_input_size(metric), config.frame_size)
    parameters = list(metric.parameters())[:1] if isinstance(metric, torch.nn.Module) else []
    dtype = parameters[0].dtype if parameters else torch.float32
    device = module_device(metric)
    mouths = mouths.to(device, dtype)
    scores = []
    with torch.inference_mode():
        audio_factors = metric.audio_relationships(windows[:count]).differences.to(device, dtype)
        for start in range(1, count, config.batch_size):
            stop = min(count, start + config.batch_size)
            visual = metric.visual_relationship(mouths[start - 1 : stop - 1], mouths[start:stop])
            scores.append(metric.similarity(audio_factors[start:stop], visual).float().cpu())
    per_pair = torch.cat(scores).numpy().astype(np.float64)
    return TAVCSimilarity(per_pair=per_pair, mean=float(per_pair.mean()))
