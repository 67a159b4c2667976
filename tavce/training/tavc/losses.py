"""The stage-1 objective of the TAVC metric and its logged similarity.

    L = mean_b[1 − S(R_a, R_v⁺)] + α · mean_b[max(0, S(R_a, R_v⁻))],

S the cosine of the flattened relationship matrices, R_v⁺ the relationship of the
mouths of frames i and i+1, R_v⁻ that of frames i and j (|j − i| ≥ τ). The
original's optional LPIPS reconstruction term (not in the paper)
is added by the trainer (:mod:`tavce.training.tavc.reconstruction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tavce.errors import InvalidArgumentError
from tavce.models.tavc import TAVCMetric, flattened_cosine, relationship_factor, row_cosine
from tavce.models.tavc.metric import DEFAULT_ALPHA

__all__ = [
    "SimilarityAverage",
    "StageOneEmbeddings",
    "StageOneLosses",
    "embed_stage_one_batch",
    "stage_one_losses",
    "stage_one_objective",
]


@dataclass(frozen=True)
class StageOneLosses:
    """Stage-1 objective terms and logged figures for one batch (all scalars but ``cos_*``).

    Attributes:
        total: positive + alpha · negative.
        positive: mean_b(1 − flattened cosine of the adjacent pair).
        negative: mean_b(max(0, flattened cosine of the distant pair)).
        cos_positive, cos_negative: (B,) flattened cosines.
        logged_positive, logged_negative: mean row-wise cosine, the figure the
            original trainer logs (and the paper most likely reports).
    """

    total: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    cos_positive: torch.Tensor
    cos_negative: torch.Tensor
    logged_positive: torch.Tensor
    logged_negative: torch.Tensor


def stage_one_objective(
    audio_relationship: torch.Tensor,
    positive_relationship: torch.Tensor,
    negative_relationship: torch.Tensor,
    alpha: float = DEFAULT_ALPHA,
) -> StageOneLosses:
    """The cosine-embedding terms of stage 1 from (B, D) relationship factors.

    Matches ``F.cosine_embedding_loss`` with targets +1 / −1, margin 0 and mean
    reduction on the flattened (B, D·D) matrices.
    """
    cos_positive = flattened_cosine(audio_relationship, positive_relationship)
    cos_negative = flattened_cosine(audio_relationship, negative_relationship)
    positive = (1 - cos_positive).mean()
    negative = cos_negative.clamp_min(0).mean()
    return StageOneLosses(
        total=positive + alpha * negative,
        positive=positive,
        negative=negative,
        cos_positive=cos_positive,
        cos_negative=cos_negative,
        logged_positive=row_cosine(audio_relationship, positive_relationship).mean(),
        logged_negative=row_cosine(audio_relationship, negative_relationship).mean(),
    )


@dataclass(frozen=True)
class StageOneEmbeddings:
    """Encoder outputs of one stage-1 batch.

    Attributes:
        audio: (B, K, D) embeddings of the windows of frames i, i+1[, j].
        visual: (B, 3, D) embeddings of the mouth crops of frames i, i+1, j.
    """

    audio: torch.Tensor
    visual: torch.Tensor

    def relationships(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, D) factors: audio (i, i+1), positive visual (i, i+1), negative visual (i, j)."""
        return (
            relationship_factor(self.audio[:, 0], self.audio[:, 1]),
            relationship_factor(self.visual[:, 0], self.visual[:, 1]),
            relationship_factor(self.visual[:, 0], self.visual[:, 2]),
        )


def embed_stage_one_batch(metric: TAVCMetric, windows: torch.Tensor, mouths: torch.Tensor) -> StageOneEmbeddings:
    """Both encoders on one batch, one call per modality (frames of a batch together, as the original batches them).

    Args:
        windows: (B, K, 1, 80, 16) audio windows of frames i, i+1 (K = 2), optionally
            followed by frame j's window (K = 3): the original encodes it although no
            loss uses it, which matters only for train-mode BatchNorm statistics.
        mouths: (B, 3, 3, S, S) mouth crops of frames i, i+1 and j, in [−1, 1].
    """
    if windows.ndim < 3 or windows.shape[1] not in (2, 3):
        raise InvalidArgumentError(
            f"stage 1: windows must be (B, 2 or 3, 1, 80, 16) for frames i, i+1[, j], got {tuple(windows.shape)}"
        )
    if mouths.ndim != 5 or mouths.shape[:2] != (windows.shape[0], 3):
        raise InvalidArgumentError(
            f"stage 1: mouths must be (B, 3, 3, S, S) crops of frames i, i+1, j with B = {windows.shape[0]}, "
            f"got {tuple(mouths.shape)}"
        )
    batch = windows.shape[0]
    audio = metric.audio_encoder(windows.flatten(0, 1)).unflatten(0, (batch, windows.shape[1]))
    visual = metric.mouth_encoder(mouths.flatten(0, 1)).unflatten(0, (batch, 3))
    return StageOneEmbeddings(audio=audio, visual=visual)


def stage_one_losses(
    metric: TAVCMetric, windows: torch.Tensor, mouths: torch.Tensor, alpha: float = DEFAULT_ALPHA
) -> StageOneLosses:
    """The stage-1 objective of one batch (shapes as :func:`embed_stage_one_batch`)."""
    return stage_one_objective(*embed_stage_one_batch(metric, windows, mouths).relationships(), alpha)


class SimilarityAverage:
    """The smoothed similarity the original trainer logs (its ``MVal``).

    value ← value·m + (1 − m)·x with m ramping linearly from 0 to ``momentum``
    over the first ``warmup`` updates (the first update sets value = x), then fixed.
    """

    def __init__(self, momentum: float = 0.999, warmup: int = 500) -> None:
        self.momentum_schedule = np.linspace(0.0, momentum, warmup)
        self.momentum = momentum
        self.updates = 0
        self.value = 0.0

    def update(self, similarity: float) -> float:
        """Fold in one batch's similarity; returns the new smoothed value."""
        schedule = self.momentum_schedule
        momentum = float(schedule[self.updates]) if self.updates < len(schedule) else self.momentum
        self.value = self.value * momentum + (1 - momentum) * float(similarity)
        self.updates += 1
        return self.value
