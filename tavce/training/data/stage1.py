"""Stage-1 (TAVC metric) dataset: adjacent frame pairs, a distant negative, their mel windows and mouth crops.

Samples as the original's stage-1 dataset does, on the prepared layout. The original
detects landmarks inside the training loop and skips a batch when one image has
no face; here the landmarks and mouth centres were computed once by
``tavce prepare-data`` (frames without a detection carry the nearest detected
frame's landmarks), so no batch is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tavce.errors import InvalidArgumentError
from tavce.preprocess.mouth import crop_mouth
from tavce.training.data.layout import PreparedVideo, open_prepared_videos
from tavce.training.data.sampling import pick_video, sample_stage1_indices, sampling_units, stage1_min_frames

__all__ = ["TAVCDataset", "TAVCDatasetConfig"]


@dataclass(frozen=True)
class TAVCDatasetConfig:
    """Stage-1 sampling.

    Attributes:
        negative_distance: τ, the least frame distance |j − i| of a negative (3 in TAVCE).
        repeats: each video (or identity) is visited this many times per epoch (``num_repeats``, 1).
        identity_sampling: one item per identity instead of per video (``--id_sampling``).
        return_frames: also return the three whole face crops (costs memory; the losses need only mouths).
    """

    negative_distance: int = 3
    repeats: int = 1
    identity_sampling: bool = False
    return_frames: bool = False

    def __post_init__(self) -> None:
        if self.negative_distance < 1 or self.repeats < 1:
            raise InvalidArgumentError(
                f"negative_distance and repeats must be at least 1, got {self.negative_distance}, {self.repeats}"
            )


class TAVCDataset(Dataset):
    """Items for the stage-1 objective, read from a folder written by ``tavce prepare-data``.

    Each item is a dict:

    * ``mouths``: (3, 3, 112, 112) float32 in [−1, 1] — mouth crops of frames i, i + 1, j
      (:func:`~tavce.preprocess.crop_mouth` at the prepared mouth centres);
    * ``mels``: (3, 1, 80, 16) float32 in [−4, 4] — the mel windows of the same frames;
    * ``indices``: (3,) int64 — i, i + 1, j (0-based frame numbers), with |j − i| ≥ τ;
    * ``frames`` (only with ``return_frames``): (3, 3, S, S) float32 in [0, 1].

    Videos with fewer than max(τ + 3, 2τ) usable frames are left out.
    """

    def __init__(self, root: str | Path, config: TAVCDatasetConfig | None = None) -> None:
        self.config = config or TAVCDatasetConfig()
        self.videos = open_prepared_videos(root, min_frames=stage1_min_frames(self.config.negative_distance))
        self.units = sampling_units(self.videos, self.config.identity_sampling)

    def __len__(self) -> int:
        return len(self.units) * self.config.repeats

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video: PreparedVideo = pick_video(self.units[index % len(self.units)])
        indices = sample_stage1_indices(video.num_frames, self.config.negative_distance)
        centres = video.annotations["mouth_centres"]
        frames = [video.frame(i) for i in indices]
        item = {
            # crop_mouth's (3, S, S) arrays are transposed views; a contiguous batch keeps the encoders on
            # the standard memory format (torch 2.13's CPU conv backward crashes on channels-last strides).
            "mouths": torch.from_numpy(
                np.ascontiguousarray(np.stack([crop_mouth(f, tuple(centres[i])) for f, i in zip(frames, indices)]))
            ),
            "mels": torch.from_numpy(video.mel_windows()[list(indices)]),
            "indices": torch.tensor(indices, dtype=torch.int64),
        }
        if self.config.return_frames:
            item["frames"] = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div(255.0)
        return item
