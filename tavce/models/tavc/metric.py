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
from tavce.models.audio_encoder import AudioEncoder
from tavce.models.base import TavceModule
from tavce.models.tavc.audio import TAVCAudioEncoder, relationships_from_embeddings
from tavce.models.tavc.mouth_encoder import MouthEncoder
from tavce.models.tavc.relationship import flattened_cosine, relationship_factor, row_cosine
from tavce.types import AudioRelationship, AudioWindows

DEFAULT_ALPHA = 1.0
RELATIONSHIP_BATCH = 256
"""Frames per encoder call in :meth:`TemporalCorrelationMetric.audio_relationships`: bounds memory on long clips."""


class TemporalCorrelationMetric(ABC):
    """Interface of a temporal audio-visual correlation metric.

    Relationships are exchanged in rank-one factor form, (B, D) differences d of
    the relationship ½·d·dᵀ (see :mod:`tavce.models.tavc.relationship`). The pipeline
    uses :meth:`audio_relationships` (CERL's input); training and evaluation use the rest.
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

    def audio_relationships(self, windows: AudioWindows) -> AudioRelationship:
        """The relationship of every frame of a clip, as CERL consumes it.

        Frame t pairs the windows of frames max(t−1, 0) and t, so row 0 pairs a window
        with itself. This default calls :meth:`audio_relationship` on consecutive pairs,
        ``RELATIONSHIP_BATCH`` frames at a time (bounded memory on long clips); an
        implementation that can encode each window once should override it.

        Returns:
            :class:`~tavce.types.AudioRelationship` with T rows.
        """
        current = windows.windows
        previous = torch.cat([current[:1], current[:-1]], dim=0)
        factors = [
            self.audio_relationship(previous_part, current_part)
            for previous_part, current_part in zip(previous.split(RELATIONSHIP_BATCH), current.split(RELATIONSHIP_BATCH))
        ]
        return AudioRelationship(differences=torch.cat(factors, dim=0))


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
class TAVCMetricConfig:
    """alpha: default weight of the stage-1 negative term (:meth:`TAVCMetric.forward`)."""

    alpha: float = DEFAULT_ALPHA


class TAVCMetric(TavceModule, TemporalCorrelationMetric):
    """Default metric: an audio encoder and a mouth encoder mapping into one embedding space.

    Args:
        config: stage-1 settings.
        audio_encoder: (N, 1, 80, 16) mel windows -> (N, D) (an
            :class:`~tavce.models.audio_encoder.AudioEncoder`); default :class:`TAVCAudioEncoder`.
        mouth_encoder: (N, 3, S, S) mouth crops in [−1, 1] -> (N, D); default :class:`MouthEncoder`.

    TAVCE's correlation checkpoint holds both encoders; the pipeline uses the audio one
    (CERL's relationship), training and evaluation both.
    """

    config_class = TAVCMetricConfig
    component_slots = {"audio_encoder": "audio_encoder", "mouth_encoder": "mouth_encoder"}

    def __init__(
        self,
        config: TAVCMetricConfig | None = None,
        *,
        audio_encoder: AudioEncoder | None = None,
        mouth_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__(config or TAVCMetricConfig())
        audio_encoder = audio_encoder if audio_encoder is not None else TAVCAudioEncoder()
        mouth_encoder = mouth_encoder if mouth_encoder is not None else MouthEncoder()
        sizes = [getattr(getattr(encoder, "config", None), "embedding_dim", None) for encoder in (audio_encoder, mouth_encoder)]
        if None not in sizes and sizes[0] != sizes[1]:
            raise InvalidArgumentError(
                f"TAVCMetric: audio embedding size {sizes[0]} differs from mouth embedding size {sizes[1]}; "
                "build both encoders with the same embedding_dim."
            )
        self.audio_encoder = audio_encoder
        self.mouth_encoder = mouth_encoder

    def audio_relationships(self, windows: AudioWindows) -> AudioRelationship:
        """Each window encoded once (in batches), frame t pairing embeddings max(t−1, 0) and t.

        With the encoder in eval mode this equals the original, which encodes each pair
        separately. Gradients are kept if the caller has them enabled; run it under
        ``torch.inference_mode()`` for inference, or the graph of every window is held.
        """
        reference = next(iter(self.audio_encoder.parameters()), None)
        mels = windows.windows if reference is None else windows.windows.to(reference.device, reference.dtype)
        embeddings = torch.cat([self.audio_encoder(part) for part in mels.split(RELATIONSHIP_BATCH)], dim=0)
        return relationships_from_embeddings(embeddings)

    def audio_relationship(self, previous_windows: torch.Tensor, current_windows: torch.Tensor) -> torch.Tensor:
        embeddings = self.audio_encoder(torch.cat([previous_windows, current_windows], dim=0))
        previous, current = embeddings.chunk(2, dim=0)
        return relationship_factor(previous, current)

    def visual_relationship(self, previous_mouths: torch.Tensor, current_mouths: torch.Tensor) -> torch.Tensor:
        embeddings = self.mouth_encoder(torch.cat([previous_mouths, current_mouths], dim=0))
        previous, current = embeddings.chunk(2, dim=0)
        return relationship_factor(previous, current)

    def forward(self, windows: torch.Tensor, mouths: torch.Tensor, alpha: float | None = None) -> StageOneLosses:
        """Stage-1 objective of one batch.

        Args:
            windows: (B, K, 1, 80, 16) audio windows of frames i, i+1 (K = 2), optionally
                followed by frame j's window (K = 3): the original encodes it although no
                loss uses it, which matters only for train-mode BatchNorm statistics.
            mouths: (B, 3, 3, S, S) mouth crops of frames i, i+1 and j, in [−1, 1].
            alpha: weight of the negative term (default ``config.alpha``).
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
            self.config.alpha if alpha is None else alpha,
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
