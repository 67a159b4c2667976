"""Frame batches for the metric backbones: (N, H, W, 3) uint8 RGB video frames → (B, 3, H, W) tensors in [0, 1]."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from tavce.errors import InvalidArgumentError

__all__ = ["check_frames", "frame_batches"]


def check_frames(frames: np.ndarray | Sequence[np.ndarray], name: str, *, minimum: int = 1) -> np.ndarray:
    """``frames`` as one (N, H, W, 3) uint8 array, N ≥ ``minimum``.

    Raises:
        InvalidArgumentError: not RGB frames of one size, not uint8, or too few.
    """
    try:
        array = np.asarray(frames) if isinstance(frames, np.ndarray) else np.stack(list(frames))
    except ValueError as error:
        raise InvalidArgumentError(f"{name}: frames of different sizes ({error}); resize them to one size") from None
    if array.ndim != 4 or array.shape[-1] != 3:
        raise InvalidArgumentError(
            f"{name}: expected (N, H, W, 3) RGB frames, got shape {array.shape}; read videos with "
            "tavce.video_reader.read_video"
        )
    if array.dtype != np.uint8:
        raise InvalidArgumentError(
            f"{name}: expected uint8 frames (0-255), got {array.dtype}; convert with .astype(np.uint8)"
        )
    if len(array) < minimum:
        raise InvalidArgumentError(f"{name}: {len(array)} frame(s), at least {minimum} needed; give a longer video")
    return array


def frame_batches(
    frames: np.ndarray, batch_size: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> Iterator[torch.Tensor]:
    """(B, 3, H, W) tensors in [0, 1], ``batch_size`` frames at a time (the last batch may be smaller)."""
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size={batch_size}: must be at least 1")
    for start in range(0, len(frames), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(frames[start : start + batch_size]))
        yield batch.permute(0, 3, 1, 2).to(device=device, dtype=dtype) / 255.0
