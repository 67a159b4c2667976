"""Random eye-blink control signal for ExpNet."""

from __future__ import annotations

import torch

__all__ = [
    "random_blink_ratio",
]

BLINK_PROFILE = (0.5, 0.9, 1.0, 0.9, 0.5)
MIN_FRAMES_FOR_BLINKS = 21  # clips of 20 frames or fewer never blink (as the original)
MIN_GAP = 10
MAX_GAP = 70


def random_blink_ratio(num_frames: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-frame eye closure in [0, 1]: 5-frame blinks separated by random gaps.

    Starting at f = 0, a gap g is drawn uniformly from [min(10, T), min(T // 2, 70) - 1];
    if f + g + 5 <= T - 1 the profile (0.5, 0.9, 1.0, 0.9, 0.5) is written at frames
    f + g ... f + g + 4 and f moves to f + g + 5, otherwise generation stops.

    Deviation from the original: for T = 21 the original gap range is empty and it
    crashes; here the range is widened to the single gap min(10, T).

    Args:
        num_frames: T >= 0.
        generator: source of the gap draws (same generator state -> same blinks).

    Returns:
        (T, 1) float32; all zeros when T <= 20.
    """
    ratio = torch.zeros(num_frames, 1)
    if num_frames < MIN_FRAMES_FOR_BLINKS:
        return ratio
    low = min(MIN_GAP, num_frames)
    high = max(min(num_frames // 2, MAX_GAP), low + 1)
    profile = torch.tensor(BLINK_PROFILE).unsqueeze(1)
    start = 0
    while True:
        gap = int(torch.randint(low, high, (1,), generator=generator))
        if start + gap + len(BLINK_PROFILE) > num_frames - 1:
            return ratio
        ratio[start + gap : start + gap + len(BLINK_PROFILE)] = profile
        start += gap + len(BLINK_PROFILE)
