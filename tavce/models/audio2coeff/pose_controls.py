"""Post-processing of generated motion: smoothing, reference sequences, camera overrides."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.signal import savgol_filter

from tavce.errors import InvalidArgumentError

__all__ = [
    "smooth_pose",
    "tile_to_length",
    "add_reference_motion",
    "camera_degrees",
]

SMOOTHING_WINDOW = 13
SMOOTHING_ORDER = 2


def smooth_pose(pose: torch.Tensor) -> torch.Tensor:
    """Savitzky–Golay filter (order 2, window 13, SciPy ``interp`` edges) along time.

    For T < 13 the window is the largest odd number <= T, as the original.
    Deviation from the original (which crashes there): T <= 2 is returned unchanged instead of crashing.

    Args:
        pose: (T, 6) pose sequence.

    Returns:
        (T, 6) smoothed pose, same dtype and device.
    """
    frames = pose.shape[0]
    if frames <= SMOOTHING_ORDER:
        return pose
    window = SMOOTHING_WINDOW if frames >= SMOOTHING_WINDOW else (frames - 1) // 2 * 2 + 1
    # float32 in, float32 out, like the original (SciPy filters with float64 coefficients).
    smoothed = savgol_filter(pose.detach().cpu().numpy(), window, SMOOTHING_ORDER, axis=0)
    return torch.from_numpy(np.ascontiguousarray(smoothed)).to(device=pose.device, dtype=pose.dtype)


def tile_to_length(sequence: torch.Tensor, num_frames: int, name: str) -> torch.Tensor:
    """Repeat ``sequence`` (T_ref, D) whole, then its first rows, to exactly ``num_frames`` rows.

    Raises:
        InvalidArgumentError: ``sequence`` is not a non-empty 2-D tensor.
    """
    if sequence.ndim != 2 or sequence.shape[0] == 0:
        raise InvalidArgumentError(
            f"{name} must be a (T_ref, D) tensor with at least one frame, got {tuple(sequence.shape)}"
        )
    repeats = -(-num_frames // sequence.shape[0])
    return sequence.repeat(repeats, 1)[:num_frames]


def add_reference_motion(pose: torch.Tensor, ref_pose: torch.Tensor) -> torch.Tensor:
    """pose_i + (ref_i - ref_0) with the reference pose sequence tiled to T.

    Args:
        pose: (T, 6) generated pose.
        ref_pose: (T_ref, 6) reference video pose (radians, translation); tensor or array.
    """
    ref_pose = torch.as_tensor(ref_pose, dtype=pose.dtype, device=pose.device)
    if ref_pose.ndim != 2 or ref_pose.shape[1] != pose.shape[1]:
        raise InvalidArgumentError(f"ref_pose must be (T_ref, {pose.shape[1]}), got {tuple(ref_pose.shape)}")
    tiled = tile_to_length(ref_pose, pose.shape[0], "ref_pose")
    return pose + (tiled - tiled[:1])


def camera_degrees(values: Sequence[int | float], num_frames: int) -> torch.Tensor:
    """Per-frame degrees of a ``--input_yaw/pitch/roll`` list.

    One value -> constant. Several values v0, v1, ...: the total path
    D = Σ|v_{m+1} - v_m| is walked at δ = D / (T - 1) degrees per frame, each segment
    contributing ``arange(v_m, v_{m+1}, ±δ)``; the result is cut or padded (repeating
    the last value) to T. The renderer consumes these degrees: they replace the
    MappingNet's decoded yaw/pitch/roll of the driving frames
    (``CERLRenderer`` ``yaw=``/``pitch=``/``roll=``).

    Deviation from the original: consecutive equal values (and a constant list or
    T = 1) no longer divide by zero; an equal pair contributes no frames.

    Returns:
        (T,) float32 degrees.
    """
    if not values:
        raise InvalidArgumentError("camera override needs at least one angle in degrees, got an empty list")
    if num_frames < 1:
        raise InvalidArgumentError(f"camera override needs num_frames >= 1, got {num_frames}")
    total = sum(abs(after - before) for before, after in zip(values[:-1], values[1:]))
    if len(values) == 1 or total == 0 or num_frames == 1:
        return torch.full((num_frames,), float(values[0]))
    step = total / (num_frames - 1)
    path: list[float] = []
    for before, after in zip(values[:-1], values[1:]):
        if after != before:
            path.extend(np.arange(before, after, step if after > before else -step).tolist())
    path = path[:num_frames] + [path[-1]] * max(0, num_frames - len(path))
    return torch.tensor(path, dtype=torch.float32)
