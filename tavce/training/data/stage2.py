"""Stage-2 (renderer with CERL + CAR) dataset: source and driving frames, 27-frame coefficient windows,
two mel windows and mouth centres (as the original's ``VoxCMTCDataset``).

The driving coefficients are the prepared ground-truth 3DMM coefficients of the
target frame's neighbourhood (video-driven reconstruction), not Audio2Coeff
predictions; audio enters stage 2 only through the relationship of the two mel
windows (CERL input, CAR target).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from tavce.errors import InvalidArgumentError
from tavce.training.data.layout import PreparedVideo, open_prepared_videos
from tavce.training.data.sampling import coefficient_window, pick_video, sample_stage2_indices, sampling_units

__all__ = ["RendererDataset", "RendererDatasetConfig"]

MIN_FRAMES = 3  # the original rejects shorter videos


@dataclass(frozen=True)
class RendererDatasetConfig:
    """Stage-2 sampling.

    Attributes:
        window: frames per coefficient window (``FRAME_LEN`` = 27), centred on the frame it drives.
        repeats: visits per video (or identity) per epoch (50 in TAVCE's config).
        identity_sampling: one item per identity (text before the first ``#``); on in TAVCE's config.
    """

    window: int = 27
    repeats: int = 1
    identity_sampling: bool = False

    def __post_init__(self) -> None:
        if self.window < 1 or self.window % 2 == 0 or self.repeats < 1:
            raise InvalidArgumentError(
                f"window must be odd and positive and repeats at least 1, got {self.window}, {self.repeats}"
            )


def _image(video: PreparedVideo, index: int) -> torch.Tensor:
    return torch.from_numpy(video.frame(index)).permute(2, 0, 1).float().div(255.0)


class RendererDataset(Dataset):
    """Items for the renderer's stage-2 training, read from a folder written by ``tavce prepare-data``.

    With source frame i, previous frame j and driving frame j + 1, each item is a dict:

    * ``source_image``, ``previous_image``, ``driving_image``: (3, S, S) float32 in [0, 1];
    * ``source_coefficients``: (73, window) float32 — frame i's 73 coefficients repeated;
    * ``driving_coefficients``: (73, window) float32 — frames j + 1 − window//2 … j + 1 + window//2,
      clamped to the video (columns in time order);
    * ``mels``: (2, 1, 80, 16) float32 in [−4, 4] — windows of frames j and j + 1;
    * ``mouth_centres``: (2, 2) int64 — (x, y) of frames j and j + 1 in crop pixels;
    * ``indices``: (3,) int64 — i, j, j + 1.
    """

    def __init__(self, root: str | Path, config: RendererDatasetConfig | None = None) -> None:
        self.config = config or RendererDatasetConfig()
        self.videos = open_prepared_videos(root, min_frames=MIN_FRAMES)
        self.units = sampling_units(self.videos, self.config.identity_sampling)

    def __len__(self) -> int:
        return len(self.units) * self.config.repeats

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video = pick_video(self.units[index % len(self.units)])
        count = video.num_frames
        source, previous, driving = sample_stage2_indices(count)
        coefficients = torch.from_numpy(video.annotations["coefficients"])
        window = coefficient_window(driving, count, self.config.window)
        centres = torch.from_numpy(video.annotations["mouth_centres"][[previous, driving]]).long()
        return {
            "source_image": _image(video, source),
            "previous_image": _image(video, previous),
            "driving_image": _image(video, driving),
            "source_coefficients": coefficients[source].unsqueeze(1).repeat(1, self.config.window),
            "driving_coefficients": coefficients[window].T.contiguous(),
            "mels": torch.from_numpy(video.mel_windows()[[previous, driving]]),
            "mouth_centres": centres,
            "indices": torch.tensor([source, previous, driving], dtype=torch.int64),
        }
