"""LSE-D / LSE-C: lip-sync error by SyncNet distance and confidence (Wav2Lip's protocol, paper §IV-A).

For a clip of T frames, syncnet_python's evaluation (``SyncNetInstance.evaluate``, the
script behind Wav2Lip's and the paper's numbers):

1. embeds every 5-frame video window starting at frame t and the 20-step (0.2 s) MFCC
   window starting at step 4t, for t = 0 … T' − 6 with T' = min(T, ⌊samples / 640⌋)
   (the original stops one window short; kept for comparable numbers);
2. for each offset k ∈ [−V, V] (V = 15 frames), the mean over t of the distance between
   video window t and audio window t + k, an audio window outside the clip counting as a
   zero embedding (the original pads with zeros);
3. **LSE-D** = the minimum of those 2V + 1 mean distances, **LSE-C** = their median − minimum,
   and the AV offset = −(the k of the minimum) (syncnet_python's sign).

Per-clip values are averaged over clips by the caller (:mod:`tavce.evaluation.report`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np
import torch

from tavce.errors import InvalidArgumentError
from tavce.evaluation.frames import check_frames
from tavce.evaluation.syncnet import pairwise_distance
from tavce.models.base import module_device
from tavce.types import SAMPLES_PER_FRAME, AudioClip

__all__ = ["SyncConfig", "SyncEncoder", "SyncScores", "lse", "offset_distances", "sync_scores"]

FRAMES_PER_WINDOW = 5
AUDIO_STEPS_PER_FRAME = 4  # MFCC at 100 steps/s against video at 25 fps
AUDIO_STEPS_PER_WINDOW = FRAMES_PER_WINDOW * AUDIO_STEPS_PER_FRAME


@runtime_checkable
class SyncEncoder(Protocol):
    """An audio-visual synchronisation network (SyncNet: :class:`~tavce.evaluation.syncnet.SyncNet`).

    Attributes:
        image_size: side of the square face frames the video stream takes (224).
    """

    image_size: int

    def audio_features(self, samples: np.ndarray) -> torch.Tensor:
        """(N,) 16 kHz waveform in [−1, 1] → (C, M) features at 100 steps per second."""
        ...

    def encode_audio(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, 1, C, 20) feature windows (0.2 s) → (B, D) embeddings."""
        ...

    def encode_video(self, windows: torch.Tensor) -> torch.Tensor:
        """(B, 3, 5, S, S) RGB in [0, 1], 5 consecutive frames → (B, D) embeddings."""
        ...


@dataclass(frozen=True)
class SyncConfig:
    """max_offset: offsets searched, ±frames (syncnet_python's ``vshift`` = 15). batch_size: windows per call (20)."""

    max_offset: int = 15
    batch_size: int = 20

    def __post_init__(self) -> None:
        if self.max_offset < 0 or self.batch_size < 1:
            raise InvalidArgumentError(
                f"SyncConfig: max_offset must be >= 0 and batch_size >= 1, got {self.max_offset}, {self.batch_size}"
            )


@dataclass(frozen=True)
class SyncScores:
    """One clip's lip-sync scores.

    Attributes:
        distance: LSE-D, the minimum over offsets of the mean embedding distance (lower is better).
        confidence: LSE-C, median − minimum of the mean distances (higher is better; ≥ 0).
        offset: the AV offset at the minimum, in frames (syncnet_python's sign; 0 for a synchronised clip).
        mean_distances: (2V + 1,) mean distance for each offset k = −V … V (audio window t + k against video window t).
    """

    distance: float
    confidence: float
    offset: int
    mean_distances: np.ndarray

    def __iter__(self):
        """``lse_d, lse_c = lse(frames, audio, encoder)``: the two published numbers."""
        return iter((self.distance, self.confidence))


def offset_distances(
    video_embeddings: torch.Tensor,
    audio_embeddings: torch.Tensor,
    max_offset: int = 15,
    *,
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = pairwise_distance,
) -> np.ndarray:
    """(2V + 1,) mean over t of distance(video t, audio t + k) for k = −V … V (syncnet_python's ``calc_pdist``).

    Args:
        video_embeddings, audio_embeddings: (N, D) window embeddings, row t for window t.
        max_offset: V.
        distance: row-wise distance of two (N, D) tensors → (N,); syncnet_python's by default.

    Audio windows outside 0 … N − 1 are zero vectors, as the original's zero padding makes them.
    """
    if video_embeddings.ndim != 2 or video_embeddings.shape != audio_embeddings.shape:
        raise InvalidArgumentError(
            f"offset_distances: video and audio embeddings must both be (N, D), got {tuple(video_embeddings.shape)} "
            f"and {tuple(audio_embeddings.shape)}"
        )
    count = video_embeddings.shape[0]
    padded = torch.nn.functional.pad(audio_embeddings, (0, 0, max_offset, max_offset))
    means = [distance(video_embeddings, padded[k : k + count]).mean() for k in range(2 * max_offset + 1)]
    return torch.stack(means).double().cpu().numpy()


def sync_scores(mean_distances: np.ndarray) -> SyncScores:
    """LSE-D, LSE-C and the offset from the (2V + 1,) mean distances of :func:`offset_distances`."""
    mean_distances = np.asarray(mean_distances, dtype=np.float64)
    if mean_distances.ndim != 1 or len(mean_distances) % 2 != 1:
        raise InvalidArgumentError(f"sync_scores: expected (2V + 1,) mean distances, got shape {mean_distances.shape}")
    max_offset = len(mean_distances) // 2
    best = int(np.argmin(mean_distances))
    minimum = float(mean_distances[best])
    # torch.median (used by the original) is the lower middle value; with 2V + 1 entries it is the middle one.
    median = float(np.median(mean_distances))
    return SyncScores(distance=minimum, confidence=median - minimum, offset=max_offset - best,
                      mean_distances=mean_distances)  # fmt: skip


def lse(
    frames: np.ndarray, audio: AudioClip | np.ndarray, encoder: SyncEncoder, config: SyncConfig | None = None
) -> SyncScores:
    """LSE-D / LSE-C of one talking-head clip (see the module docstring).

    Args:
        frames: (T, H, W, 3) uint8 RGB face frames at 25 fps (resized to ``encoder.image_size``).
            Published numbers come from syncnet_python's own face crops (docs/evaluation.md).
        audio: the clip's 16 kHz mono audio (an AudioClip or a float waveform in [−1, 1]).
        encoder: the :class:`SyncEncoder` (SyncNet with ``syncnet_v2.model`` for published numbers).

    Raises:
        InvalidArgumentError: fewer than 6 frames (or 6 frames of audio) to compare.
    """
    config = config or SyncConfig()
    samples = audio.samples if isinstance(audio, AudioClip) else np.asarray(audio, dtype=np.float32)
    frames = check_frames(frames, "lse frames")
    usable = min(len(frames), len(samples) // SAMPLES_PER_FRAME)
    windows = usable - FRAMES_PER_WINDOW  # syncnet_python's lastframe: one window fewer than fit
    if windows < 1:
        raise InvalidArgumentError(
            f"lse: {len(frames)} frames and {len(samples) / 16000:.2f} s of audio give {usable} usable frames; "
            f"LSE needs at least {FRAMES_PER_WINDOW + 1} (0.24 s) of both"
        )
    size = int(encoder.image_size)
    device = module_device(encoder)
    resized = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR) for frame in frames[:usable]])
    video = torch.from_numpy(resized).permute(3, 0, 1, 2).float().div(255.0)  # (3, T, S, S)
    features = encoder.audio_features(samples)
    if features.ndim != 2:
        raise InvalidArgumentError(f"sync encoder: audio_features returned {tuple(features.shape)}, expected (C, M)")
    needed = (windows - 1) * AUDIO_STEPS_PER_FRAME + AUDIO_STEPS_PER_WINDOW
    if features.shape[1] < needed:  # the last MFCC steps of a clip cut mid-frame can be missing
        features = torch.nn.functional.pad(features, (0, needed - features.shape[1]), mode="replicate")
    video_embeddings, audio_embeddings = [], []
    with torch.inference_mode():
        for start in range(0, windows, config.batch_size):
            starts = range(start, min(windows, start + config.batch_size))
            clips = torch.stack([video[:, t : t + FRAMES_PER_WINDOW] for t in starts]).to(device)
            mfcc = torch.stack(
                [features[:, AUDIO_STEPS_PER_FRAME * t : AUDIO_STEPS_PER_FRAME * t + AUDIO_STEPS_PER_WINDOW] for t in starts]
            ).unsqueeze(1).to(device)  # fmt: skip
            video_embeddings.append(encoder.encode_video(clips).float().cpu())
            audio_embeddings.append(encoder.encode_audio(mfcc).float().cpu())
    distances = offset_distances(torch.cat(video_embeddings), torch.cat(audio_embeddings), config.max_offset)
    return sync_scores(distances)
