"""FID: the Fréchet distance between Inception features of real and generated frames (paper §IV-A).

Any :class:`FeatureExtractor` can stand in for the Inception network; numbers are
comparable with published FIDs only with :class:`~tavce.evaluation.inception.FIDInceptionV3`
and pytorch-fid's weights (docs/evaluation.md). The paper pools the frames of all
test videos into one set per side; :func:`fid` does that for whatever frames it gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from tavce.errors import InvalidArgumentError
from tavce.evaluation.frames import check_frames, frame_batches
from tavce.evaluation.frechet import frechet_distance
from tavce.models.base import module_device

__all__ = ["FeatureExtractor", "extract_features", "fid"]

DEFAULT_BATCH_SIZE = 50  # pytorch-fid's default


@runtime_checkable
class FeatureExtractor(Protocol):
    """Image features for FID: (B, 3, H, W) RGB in [0, 1], any H, W → (B, D) features.

    The extractor resizes and normalises as its weights expect (FID's Inception: 299×299, [−1, 1]).
    """

    def __call__(self, frames: torch.Tensor) -> torch.Tensor: ...


def extract_features(
    frames: np.ndarray | Sequence[np.ndarray], extractor: FeatureExtractor, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> np.ndarray:
    """Features of every frame, (N, D) float64.

    Args:
        frames: (N, H, W, 3) uint8 RGB frames.
        extractor: e.g. :class:`~tavce.evaluation.inception.FIDInceptionV3` in eval mode.
        batch_size: frames per network call.
    """
    array = check_frames(frames, "extract_features")
    device = module_device(extractor)
    outputs = []
    with torch.inference_mode():
        for batch in frame_batches(array, batch_size, device=device):
            features = extractor(batch)
            if features.ndim != 2 or features.shape[0] != batch.shape[0]:
                raise InvalidArgumentError(
                    f"feature extractor {type(extractor).__name__}: returned shape {tuple(features.shape)} for "
                    f"{batch.shape[0]} frames; it must return (B, D)"
                )
            outputs.append(features.double().cpu().numpy())
    return np.concatenate(outputs, axis=0)


def fid(
    real_frames: np.ndarray | Sequence[np.ndarray],
    generated_frames: np.ndarray | Sequence[np.ndarray],
    extractor: FeatureExtractor,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> float:
    """FID (≥ 0, lower is better) between two frame sets of at least 2 frames each.

    Args:
        real_frames, generated_frames: (N, H, W, 3) uint8 RGB; sizes and counts may differ between the sets.
        extractor: the feature network (:class:`FeatureExtractor`).
    """
    real = extract_features(check_frames(real_frames, "fid real_frames", minimum=2), extractor, batch_size=batch_size)
    generated = extract_features(
        check_frames(generated_frames, "fid generated_frames", minimum=2), extractor, batch_size=batch_size
    )
    return frechet_distance(real, generated)
