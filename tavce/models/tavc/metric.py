"""The TAVC metric: how well a mouth movement matches the audio change between two frames.

Stage 1 of TAVCE (reference-training.md §2) trains an audio encoder and a mouth
encoder so that the relationship of two adjacent audio windows resembles the
relationship of the two matching mouth crops (positive pair, frames i and i+1)
and not that of a distant crop (negative pair, frames i and j, |j − i| ≥ 3):

    L = mean_b[1 − S(R_a, R_v⁺)] + α · mean_b[max(0, S(R_a, R_v⁻))],

S the cosine of the flattened matrices. The original adds an LPIPS reconstruction
term from two auxiliary generators (not in the paper, §5 difference 3); it is
not part of this module — a trainer adds it to :attr:`StageOneLosses.total`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.tavc.relationship import flattened_cosine, relationship_factor, row_cosine

DEFAULT_ALPHA = 1.0


class TemporalCorrelationMetric(ABC):
    """Interface of a temporal audio-visual correlation metric.

    Relationships are exchanged in rank-one factor form, (B, D) differences d of
    the relationship ½·d·dᵀ (see :mod:`tavce.models.tavc.relationship`).
    """

    @abstractmethod
    def audio_relationship(self, previous_windows: torch.Tensor, current_windows: torch.Tensor) -> torch.Tensor:
        """(B, 1, 80, 16) windows of frames t−1 and t -> (B, D) relationship factors."""

    @abstractmethod
    def visual_relationship(self, previous_mouths: torch.Tensor, current_mouths: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) mouth crops of two frames -> (B, D) relationship factors."""

    def similarity(self, audio_relationship: torch.Tensor, visual_relationship: torch.Tensor) -> torch.Tensor:
        """(B,) similarity in [0, 1]; by default the flattened-matrix cosine = cos²(d_a, d_v)."""
        return flattened_cosine(audio_relationship, visual_relationship)


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


class TAVCMetric(nn.Module, TemporalCorrelationMetric):
    """Default metric: an audio encoder and a mouth encoder mapping into one embedding space.

    TAVCE's encoders are :class:`~tavce.models.tavc.TAVCAudioEncoder` and
    :class:`~tavce.models.tavc.MouthEncoder`; any
    modules mapping (N, ...) inputs to (N, D) embeddings can replace them. Not a
    component of its own: the two encoders are the saved, converted parts.
    """

    def __init__(self, audio_encoder: nn.Module, mouth_encoder: nn.Module) -> None:
        super().__init__()
        encoders = (audio_encoder, mouth_encoder)
        sizes = [getattr(getattr(encoder, "config", None), "embedding_dim", None) for encoder in encoders]
        if None not in sizes and sizes[0] != sizes[1]:
            raise InvalidArgumentError(
                f"TAVCMetric: audio embedding size {sizes[0]} differs from mouth embedding size {sizes[1]}; "
                "build both encoders with the same embedding_dim."
            )
        self.audio_encoder = audio_encoder
        self.mouth_encoder = mouth_encoder

    def audio_relationship(self, previous_windows: torch.Tensor, current_windows: torch.Tensor) -> torch.Tensor:
        embeddings = self.audio_encoder(torch.cat([previous_windows, current_windows], dim=0))
        previous, current = embeddings.chunk(2, dim=0)
        return relationship_factor(previous, current)

    def visual_relationship(self, previous_mouths: torch.Tensor, current_mouths: torch.Tensor) -> torch.Tensor:
        embeddings = self.mouth_encoder(torch.cat([previous_mouths, current_mouths], dim=0))
        previous, current = embeddings.chunk(2, dim=0)
        return relationship_factor(previous, current)

    def forward(self, windows: torch.Tensor, mouths: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> StageOneLosses:
        """Stage-1 objective of one batch.

        Args:
            windows: (B, K, 1, 80, 16) audio windows of frames i, i+1 (K = 2), optionally
                followed by frame j's window (K = 3): the original encodes it although no
                loss uses it, which matters only for train-mode BatchNorm statistics.
            mouths: (B, 3, 3, S, S) mouth crops of frames i, i+1 and j, in [−1, 1].
            alpha: weight of the negative term.
        """
        if windows.ndim < 3 or windows.shape[1] not in (2, 3):
            raise InvalidArgumentError(
                f"TAVCMetric: windows must be (B, 2 or 3, 1, 80, 16) for frames i, i+1[, j], got {tuple(windows.shape)}"
            )
        if mouths.ndim != 5 or mouths.shape[:2] != (windows.shape[0], 3):
            raise InvalidArgumentError(
                f"TAVCMetric: mouths must be (B, 3, 3, S, S) crops of frames i, i+1, j with B = {windows.shape[0]}, "
                f"got {tuple(mouths.shape)}"
            )
        batch = windows.shape[0]
        # One call per modality, frames of a batch together, as the original batches them.
        audio = self.audio_encoder(windows.flatten(0, 1)).unflatten(0, (batch, windows.shape[1]))
        visual = self.mouth_encoder(mouths.flatten(0, 1)).unflatten(0, (batch, 3))
        return stage_one_objective(
            relationship_factor(audio[:, 0], audio[:, 1]),
            relationship_factor(visual[:, 0], visual[:, 1]),
            relationship_factor(visual[:, 0], visual[:, 2]),
            alpha,
        )


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
