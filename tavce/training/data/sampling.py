"""Random choices of the training datasets: which video, which frames.

Draws use torch's default generator, which a ``DataLoader`` seeds differently in
every worker, so workers do not repeat each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tavce.errors import InvalidArgumentError
from tavce.training.data.layout import PreparedVideo

__all__ = [
    "coefficient_window",
    "pick_video",
    "sample_stage1_indices",
    "sample_stage2_indices",
    "sampling_units",
    "stage1_min_frames",
]


def sampling_units(videos: Sequence[PreparedVideo], identity_sampling: bool) -> list[list[PreparedVideo]]:
    """One unit per video, or with ``identity_sampling`` one per identity (videos sharing the name's
    text before the first ``#``), so every speaker is drawn equally often whatever their video count."""
    if not identity_sampling:
        return [[video] for video in videos]
    groups: dict[str, list[PreparedVideo]] = {}
    for video in videos:
        groups.setdefault(video.identity, []).append(video)
    return [groups[identity] for identity in sorted(groups)]


def pick_video(unit: Sequence[PreparedVideo]) -> PreparedVideo:
    """A uniformly random video of a unit."""
    return unit[int(torch.randint(len(unit), ()).item())] if len(unit) > 1 else unit[0]


def stage1_min_frames(negative_distance: int) -> int:
    """Fewest usable frames a stage-1 video needs: τ + 3 (the original's rule), and 2τ so that every
    anchor i has a negative at distance ≥ τ."""
    return max(negative_distance + 3, 2 * negative_distance)


def sample_stage1_indices(num_frames: int, negative_distance: int) -> tuple[int, int, int]:
    """(i, i + 1, j): an adjacent pair and a negative with |j − i| ≥ τ, 0-based, uniform.

    i ~ U{0, …, n − 2}; j uniform over the frames at distance ≥ τ from i (the original redraws
    j ~ U{…} until it is far enough, which gives the same distribution).
    """
    if negative_distance < 1:
        raise InvalidArgumentError(f"negative_distance (τ) must be at least 1, got {negative_distance}")
    if num_frames < stage1_min_frames(negative_distance):
        raise InvalidArgumentError(
            f"{num_frames} frames: stage 1 needs at least {stage1_min_frames(negative_distance)} for τ = {negative_distance}"
        )
    anchor = int(torch.randint(num_frames - 1, ()).item())
    before = max(0, anchor - negative_distance + 1)  # frames anchor-τ+1 … anchor+τ-1 are too close
    after = min(num_frames, anchor + negative_distance)
    far = torch.cat([torch.arange(0, before), torch.arange(after, num_frames)])
    negative = int(far[torch.randint(len(far), ())].item())
    return anchor, anchor + 1, negative


def sample_stage2_indices(num_frames: int) -> tuple[int, int, int]:
    """(source i, previous j, driving j + 1): i ~ U{0, …, n − 1}, j ~ U{0, …, n − 2} (n ≥ 2)."""
    if num_frames < 2:
        raise InvalidArgumentError(f"{num_frames} frames: stage 2 needs at least 2")
    source = int(torch.randint(num_frames, ()).item())
    previous = int(torch.randint(num_frames - 1, ()).item())
    return source, previous, previous + 1


def coefficient_window(centre: int, num_frames: int, length: int = 27) -> torch.Tensor:
    """(length,) int64 frame indices centre − length//2 … centre + length//2, clamped to [0, n − 1]."""
    half = length // 2
    return torch.arange(centre - half, centre - half + length).clamp(0, num_frames - 1)
