"""The Fréchet distance between two Gaussians fitted to feature sets (the statistic behind FID).

    d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2·(Σ_a Σ_b)^{1/2})

Statistics are computed in float64 (float32 covariances of 2048-d features lose
digits FID needs). The matrix square root is :func:`scipy.linalg.sqrtm`; when the
product of the covariances is near-singular (fewer samples than dimensions,
the usual case per video) the square root is retried with ``eps`` added to both
diagonals -- the fallback of the reference implementations (TTUR, pytorch-fid) --
so the numbers agree with theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import linalg

from tavce.errors import InvalidArgumentError

__all__ = ["GaussianStatistics", "frechet_distance", "frechet_distance_from_statistics", "gaussian_statistics"]

logger = logging.getLogger(__name__)

DEFAULT_EPS = 1e-6
IMAGINARY_TOLERANCE = 1e-3
"""Largest imaginary part on the square root's diagonal accepted as rounding noise (pytorch-fid's bound)."""


@dataclass(frozen=True)
class GaussianStatistics:
    """Mean (D,) and covariance (D, D) of a feature set, float64; ``count`` samples went into them."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int


def gaussian_statistics(features: np.ndarray, *, name: str = "features") -> GaussianStatistics:
    """Mean and unbiased covariance (rows are samples) of (N, D) features, N ≥ 2, in float64.

    Raises:
        InvalidArgumentError: not a 2-D array, fewer than 2 rows, or non-finite values.
    """
    array = np.asarray(features)
    if array.ndim != 2:
        raise InvalidArgumentError(
            f"{name}: expected an (N, D) array of N feature vectors, got shape {array.shape}; stack the "
            "per-frame features into one 2-D array"
        )
    if array.shape[0] < 2:
        raise InvalidArgumentError(
            f"{name}: {array.shape[0]} feature vector(s); a covariance needs at least 2 (give more frames)"
        )
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise InvalidArgumentError(f"{name}: contains NaN or infinite values; check the feature extractor's input")
    return GaussianStatistics(
        mean=array.mean(axis=0), covariance=np.atleast_2d(np.cov(array, rowvar=False)), count=len(array)
    )


def frechet_distance_from_statistics(
    a: GaussianStatistics, b: GaussianStatistics, *, eps: float = DEFAULT_EPS
) -> float:
    """d² between two fitted Gaussians (≥ 0 up to rounding); see the module docstring.

    Raises:
        InvalidArgumentError: the two statistics have different dimensions.
    """
    if a.mean.shape != b.mean.shape or a.covariance.shape != b.covariance.shape:
        raise InvalidArgumentError(
            f"frechet_distance: feature sizes differ ({a.mean.shape[0]} vs {b.mean.shape[0]}); both sets must "
            "come from the same feature extractor"
        )
    difference = a.mean - b.mean
    root = _sqrtm(a.covariance @ b.covariance)
    if not np.isfinite(root).all():
        logger.info("Fréchet distance: near-singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(a.covariance.shape[0]) * eps
        root = _sqrtm((a.covariance + offset) @ (b.covariance + offset))
    if np.iscomplexobj(root):
        # Rounding gives the square root of a PSD product a small imaginary part; a large one is a real problem.
        largest = float(np.max(np.abs(np.diagonal(root).imag)))
        if largest > IMAGINARY_TOLERANCE:
            raise InvalidArgumentError(
                f"frechet_distance: the covariance square root has an imaginary part of {largest:.3g}; the features "
                "are degenerate (constant or duplicated); give more, varied frames"
            )
        root = root.real
    distance = difference @ difference + np.trace(a.covariance) + np.trace(b.covariance) - 2.0 * np.trace(root)
    return float(distance)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, *, eps: float = DEFAULT_EPS) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (N may differ, D may not).

    Args:
        features_a, features_b: (N_a, D) and (N_b, D) arrays, N ≥ 2 each, any float dtype.
        eps: diagonal offset of the near-singular fallback.

    Returns:
        d² ≥ 0 (tiny negative values are rounding); 0 for identical sets.
    """
    a = gaussian_statistics(features_a, name="features_a")
    b = gaussian_statistics(features_b, name="features_b")
    return frechet_distance_from_statistics(a, b, eps=eps)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):  # a singular product is handled by the caller's fallback
        return linalg.sqrtm(matrix)
