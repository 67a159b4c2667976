"""Head-pose bins → degrees → rotation, and the keypoint transformation.

Reproduced for checkpoint parity: degrees → radians with 3.14 (not π), R = P·Y·R_roll,
and only the y component of the predicted translation used. Unlike the original,
the caller's translation tensor is never modified in place.
"""

from __future__ import annotations

import torch

from tavce.models.renderer.mapping_net import HeadMotion

__all__ = ["bins_to_degrees", "rotation_matrix", "transform_keypoints"]

BIN_WIDTH_DEGREES = 3.0
FIRST_BIN_DEGREES = -99.0
PI_AS_TRAINED = 3.14
"""The original converts degrees with x / 180 · 3.14; the checkpoints were trained with it."""


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """(B, num_bins) logits → (B,) degrees: the softmax expectation of the bin index · 3 − 99."""
    probabilities = torch.softmax(logits, dim=1)
    bins = torch.arange(logits.shape[1], device=logits.device, dtype=logits.dtype)
    return (probabilities * bins).sum(dim=1) * BIN_WIDTH_DEGREES + FIRST_BIN_DEGREES


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(B,) degrees each → (B, 3, 3) rotation P·Y·R_roll (pitch about x, yaw about y, roll about z)."""
    yaw, pitch, roll = (angle / 180 * PI_AS_TRAINED for angle in (yaw, pitch, roll))
    ones, zeros = torch.ones_like(yaw), torch.zeros_like(yaw)

    def matrix(*rows: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    pitch_matrix = matrix(
        (ones, zeros, zeros), (zeros, pitch.cos(), -pitch.sin()), (zeros, pitch.sin(), pitch.cos())
    )
    yaw_matrix = matrix((yaw.cos(), zeros, yaw.sin()), (zeros, ones, zeros), (-yaw.sin(), zeros, yaw.cos()))
    roll_matrix = matrix((roll.cos(), -roll.sin(), zeros), (roll.sin(), roll.cos(), zeros), (zeros, zeros, ones))
    return pitch_matrix @ yaw_matrix @ roll_matrix


def transform_keypoints(
    canonical: torch.Tensor,
    motion: HeadMotion,
    *,
    yaw_override: torch.Tensor | None = None,
    pitch_override: torch.Tensor | None = None,
    roll_override: torch.Tensor | None = None,
    with_expression: bool = True,
) -> torch.Tensor:
    """Move canonical keypoints by a head motion: R·k + (0, t_y, 0) + δ.

    Args:
        canonical: (B, K, 3) canonical keypoints.
        motion: the frame's :class:`HeadMotion` (batch B).
        yaw_override, pitch_override, roll_override: (B,) degrees replacing the decoded ones.
        with_expression: add the expression deltas δ (False: the original's ``wo_exp``).

    Returns:
        (B, K, 3) keypoints.
    """
    degrees = [
        bins_to_degrees(logits) if override is None else override
        for logits, override in ((motion.yaw, yaw_override), (motion.pitch, pitch_override), (motion.roll, roll_override))
    ]
    rotation = rotation_matrix(*degrees)
    keypoints = canonical @ rotation.transpose(1, 2)
    y_only = torch.zeros_like(motion.translation)
    y_only[:, 1] = motion.translation[:, 1]
    keypoints = keypoints + y_only[:, None, :]
    if with_expression:
        keypoints = keypoints + motion.expression.view(canonical.shape[0], -1, 3)
    return keypoints
