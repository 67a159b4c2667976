"""The TAVC metric: how well a mouth movement matches the audio change between two frames.

Stage 1 of TAVCE trains an audio encoder and a mouth
encoder so that the relationship of two adjacent audio windows resembles the
relationship of the two matching mouth crops and not that of a distant crop.
This module holds the networks and the relationships they produce; the stage-1
objective and its trainer are in :mod:`tavce.training.tavc` (models never import
training code).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.audio_encoder import AudioEncoder
from tavce.models.base import TavceModule
from tavce.models.tavc.audio import TAVCAudioEncoder, relationships_from_embeddings
from tavce.models.tavc.mouth_encoder import MouthEncoder
from tavce.models.tavc.relationship import flattened_cosine, relationship_factor
from tavce.types import AudioRelationship, AudioWindows

__all__ = [
    "DEFAULT_ALPHA",
    "TemporalCorrelationMetric",
    "TAVCMetricConfig",
    "TAVCMetric",
]

DEFAULT_ALPHA = 1.0
RELATIONSHIP_BATCH = 64
"""Frames per encoder call in :meth:`TemporalCorrelationMetric.audio_relationships`: bounds memory on long clips."""


def _require_frames(windows: AudioWindows) -> None:
    if windows.num_frames == 0:
        raise InvalidArgumentError("audio_relationships: the windows hold no frame; give at least 0.04 s of audio")


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

        Raises:
            InvalidArgumentError: windows of no frame.
        """
        _require_frames(windows)
        factors = []
        for start in range(0, windows.num_frames, RELATIONSHIP_BATCH):
            current = torch.arange(start, min(start + RELATIONSHIP_BATCH, windows.num_frames))
            previous = (current - 1).clamp(min=0)
            factors.append(self.audio_relationship(windows.select(previous), windows.select(current)))
        return AudioRelationship(differences=torch.cat(factors, dim=0))


@dataclass(frozen=True)
class TAVCMetricConfig:
    """alpha: the weight of the negative term of the stage-1 objective the metric was trained with
    (recorded by ``tavce train tavc``; inference does not use it)."""

    alpha: float = DEFAULT_ALPHA


class TAVCMetric(TavceModule, TemporalCorrelationMetric):
    """Default metric: an audio encoder and a mouth encoder mapping into one embedding space.

    Args:
        config: stage-1 settings.
        audio_encoder: (N, 1, 80, 16) mel windows -> (N, D) (an
            :class:`~tavce.models.audio_encoder.AudioEncoder`); default :class:`TAVCAudioEncoder`.
        mouth_encoder: (N, 3, S, S) mouth crops in [−1, 1] -> (N, D); default :class:`MouthEncoder`.

    TAVCE's correlation checkpoint holds both encoders; the pipeline uses the audio one
    (CERL's relationship), training and evaluation both. The module has no ``forward``:
    callers use the encoders or the relationship methods (the stage-1 objective is
    :func:`tavce.training.tavc.stage_one_losses`).
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
        sizes = [
            getattr(encoder, "embedding_dim", None) or getattr(getattr(encoder, "config", None), "embedding_dim", None)
            for encoder in (audio_encoder, mouth_encoder)
        ]
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

        Raises:
            InvalidArgumentError: windows of no frame.
        """
        _require_frames(windows)
        reference = next(iter(cast(nn.Module, self.audio_encoder).parameters()), None)
        differences: torch.Tensor | None = None
        previous: torch.Tensor | None = None
        # Batch by batch into one result: only one batch of embeddings is held on long clips.
        for start, part in zip(range(0, windows.num_frames, RELATIONSHIP_BATCH), windows.batches(RELATIONSHIP_BATCH)):
            embeddings = self.audio_encoder(part if reference is None else part.to(reference.device, reference.dtype))
            if differences is None:
                differences = embeddings.new_empty(windows.num_frames, embeddings.shape[1])
            context = embeddings if previous is None else torch.cat([previous, embeddings])
            differences[start : start + len(part)] = relationships_from_embeddings(context).differences[-len(part) :]
            previous = embeddings[-1:]
        return AudioRelationship(differences=cast(torch.Tensor, differences))  # set by the first batch

    def audio_relationship(self, previous_windows: torch.Tensor, current_windows: torch.Tensor) -> torch.Tensor:
        embeddings = self.audio_encoder(torch.cat([previous_windows, current_windows], dim=0))
        previous, current = embeddings.chunk(2, dim=0)
        return relationship_factor(previous, current)

    def visual_relationship(self, previous_mouths: torch.Tensor, current_mouths: torch.Tensor) -> torch.Tensor:
        embeddings = self.mouth_encoder(torch.cat([previous_mouths, current_mouths], dim=0))
        previous, current = embeddings.chunk(2, dim=0)
        return relationship_factor(previous, current)
