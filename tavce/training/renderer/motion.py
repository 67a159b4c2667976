"""Losses on the predicted head motion and keypoints (as face-vid2vid computes them; the TAVCE code does not show them).

* :func:`expression_loss` (weight 5 in TAVCE): mean over the batch of the L1 norm of the
  driving expression deltas — keeps the MappingNet's keypoint offsets small.
* :func:`keypoint_prior_loss` (0): keypoints at least √0.1 apart, mean depth 0.33.
* :func:`head_pose_loss` (0): L1 between the MappingNet's angles and a pose teacher's
  (face-vid2vid uses Hopenet, which tavce does not ship: pass any network returning
  :class:`~tavce.models.renderer.HeadMotion`-like yaw / pitch / roll bin logits).
* :func:`equivariance_loss` (0): the driving keypoints must follow a random warp of the
  driving frame, measured with the head-pose estimator on the warped frame
  (:class:`RandomWarp`: affine σ 0.05 + thin-plate spline σ 0.005 on a 5×5 grid).

The Jacobian equivariance term of face-vid2vid does not exist here: SadTalker's keypoints
carry no Jacobians (``estimate_jacobian: False``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from tavce.errors import InvalidArgumentError
from tavce.models.renderer.keypoint_transform import bins_to_degrees, transform_keypoints
from tavce.models.renderer.mapping_net import HeadMotion

__all__ = [
    "KEYPOINT_MEAN_DEPTH",
    "KEYPOINT_MIN_SQUARED_DISTANCE",
    "RandomWarp",
    "equivariance_loss",
    "expression_loss",
    "head_pose_loss",
    "keypoint_prior_loss",
]

KEYPOINT_MIN_SQUARED_DISTANCE = 0.1
KEYPOINT_MEAN_DEPTH = 0.33


def expression_loss(driving_motion: HeadMotion) -> torch.Tensor:
    """mean_b ‖δ_b‖₁ over the (B, K·3) expression deltas of the driving motion. Scalar ≥ 0 (unweighted)."""
    return torch.linalg.vector_norm(driving_motion.expression, ord=1, dim=-1).mean()


def keypoint_prior_loss(keypoints: torch.Tensor) -> torch.Tensor:
    """face-vid2vid's keypoint prior on (B, K, 3) keypoints. Scalar ≥ 0 (unweighted).

    Σ_{i,j} mean_b max(0, 0.1 − ‖k_i − k_j‖²) (i = j included, as the original: each adds 0.1)
    + mean_b |mean_k z_k − 0.33|.
    """
    if keypoints.ndim != 3 or keypoints.shape[-1] != 3:
        raise InvalidArgumentError(f"keypoint_prior_loss: expected (B, K, 3) keypoints, got {tuple(keypoints.shape)}")
    # Squared distances directly (no square root): differentiable where two keypoints coincide (i = j).
    squared = (keypoints.unsqueeze(2) - keypoints.unsqueeze(1)).square().sum(-1)
    spread = F.relu(KEYPOINT_MIN_SQUARED_DISTANCE - squared).mean(dim=0).sum()
    depth = (keypoints[:, :, 2].mean(dim=-1) - KEYPOINT_MEAN_DEPTH).abs().mean()
    return spread + depth


def head_pose_loss(driving_motion: HeadMotion, teacher_motion: HeadMotion) -> torch.Tensor:
    """Σ_{yaw,pitch,roll} mean_b |degrees(driving) − degrees(teacher)|, teacher detached. Scalar ≥ 0 (degrees)."""
    total = driving_motion.yaw.new_zeros(())
    for predicted, target in (
        (driving_motion.yaw, teacher_motion.yaw),
        (driving_motion.pitch, teacher_motion.pitch),
        (driving_motion.roll, teacher_motion.roll),
    ):
        total = total + (bins_to_degrees(predicted) - bins_to_degrees(target.detach())).abs().mean()
    return total


def coordinate_grid_2d(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(H, W, 2) grid of (x, y) in [-1, 1] (corner-aligned, face-vid2vid's ``make_coordinate_grid``)."""
    y = 2 * torch.arange(height, dtype=like.dtype, device=like.device) / (height - 1) - 1
    x = 2 * torch.arange(width, dtype=like.dtype, device=like.device) / (width - 1) - 1
    rows, columns = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([columns, rows], dim=-1)


class RandomWarp:
    """A random affine + thin-plate-spline warp per batch item (face-vid2vid ``Transform``).

    Args:
        batch: B.
        sigma_affine: std of the affine matrix's deviation from the identity.
        sigma_tps: std of the spline's control-point weights.
        points_tps: control points per side of the regular grid.
        generator: random source (the trainer's own, for reproducible runs).
    """

    def __init__(
        self,
        batch: int,
        sigma_affine: float,
        sigma_tps: float,
        points_tps: int,
        *,
        generator: torch.Generator | None = None,
        like: torch.Tensor | None = None,
    ) -> None:
        reference = like if like is not None else torch.zeros(())
        noise = torch.randn(batch, 2, 3, generator=generator, dtype=torch.float32) * sigma_affine
        self.theta = (noise + torch.eye(2, 3)).to(reference)
        self.control_points = coordinate_grid_2d(points_tps, points_tps, reference).view(1, 1, -1, 2)
        weights = torch.randn(batch, 1, points_tps**2, generator=generator, dtype=torch.float32) * sigma_tps
        self.control_weights = weights.to(reference)
        self.batch = batch

    def warp_coordinates(self, coordinates: torch.Tensor) -> torch.Tensor:
        """(B or 1, N, 2) (x, y) in [-1, 1] → (B, N, 2) warped coordinates."""
        affine = self.theta.unsqueeze(1)
        warped = (affine[..., :2] @ coordinates.unsqueeze(-1)).squeeze(-1) + affine[..., 2]
        # L1 distances to the control points with the r²·log r kernel, as the original computes them.
        distances = (coordinates.unsqueeze(2) - self.control_points).abs().sum(-1)
        spline = distances.square() * torch.log(distances + 1e-6) * self.control_weights
        return warped + spline.sum(dim=2, keepdim=True).view(self.batch, coordinates.shape[1], 1)

    def warp_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → the frames sampled at the warped grid (reflection padding).

        The grid is corner-aligned, so it is sampled with ``align_corners=True`` (what the original's
        PyTorch 1.x ``grid_sample`` did by default): a zero warp returns the frames unchanged.
        """
        height, width = frames.shape[2:]
        grid = coordinate_grid_2d(height, width, frames).view(1, height * width, 2)
        grid = self.warp_coordinates(grid).view(self.batch, height, width, 2)
        return F.grid_sample(frames, grid, padding_mode="reflection", align_corners=True)


def equivariance_loss(
    driving_keypoints: torch.Tensor,
    canonical_keypoints: torch.Tensor,
    driving_frames: torch.Tensor,
    head_pose_estimator: Callable[[torch.Tensor], HeadMotion],
    warp: RandomWarp,
) -> torch.Tensor:
    """mean |k_drv,xy − warp(k̃_xy)|, k̃ the keypoints of the warped driving frame. Scalar ≥ 0 (unweighted).

    Args:
        driving_keypoints: (B, K, 3) keypoints of the driving frame (from the MappingNet's motion).
        canonical_keypoints: (B, K, 3) keypoint-detector output of the source.
        driving_frames: (B, 3, H, W) in [0, 1].
        head_pose_estimator: image → :class:`HeadMotion` (the training-only estimator).
        warp: the random warp applied to ``driving_frames``.
    """
    warped_motion = head_pose_estimator(warp.warp_frames(driving_frames))
    warped_keypoints = transform_keypoints(canonical_keypoints, warped_motion)
    return (driving_keypoints[..., :2] - warp.warp_coordinates(warped_keypoints[..., :2])).abs().mean()
