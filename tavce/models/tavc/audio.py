"""The TAVC audio encoder and the per-frame relationship of an embedding sequence.

The encoder is the shared Wav2Lip conv stack (its own, separately trained
weights) followed by a linear projection 512 -> 128. At inference the relationship
of frame j pairs the windows of frames max(j−1, 0) and j; frame 0 pairs a window
with itself, so its relationship is zero (as in the original).
:meth:`TAVCMetric.audio_relationships <tavce.models.tavc.TAVCMetric.audio_relationships>`
gives the renderer's CERL that sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.audio_encoder import AudioEncoder, Wav2LipAudioEncoder
from tavce.models.base import TavceModule
from tavce.models.tavc.relationship import relationship_factor
from tavce.types import MEL_BINS, MEL_STEPS_PER_WINDOW, AudioRelationship

__all__ = [
    "TAVCAudioEncoderConfig",
    "TAVCAudioEncoder",
    "relationships_from_embeddings",
]


@dataclass(frozen=True)
class TAVCAudioEncoderConfig:
    """embedding_dim: size of the relationship space (128 in TAVCE)."""

    embedding_dim: int = 128


class TAVCAudioEncoder(TavceModule):
    """Mel windows (N, 1, 80, 16) in [−4, 4] -> embeddings (N, embedding_dim).

    ``backbone`` is an :class:`~tavce.models.audio_encoder.AudioEncoder`: the Wav2Lip
    encoder by default (initialised from ``wav2lip.pth`` before stage-1 training);
    ``projection`` the linear D -> 128 layer trained from scratch.
    """

    config_class = TAVCAudioEncoderConfig
    component_slots = {"backbone": "backbone"}

    def __init__(self, config: TAVCAudioEncoderConfig | None = None, *, backbone: AudioEncoder | None = None) -> None:
        super().__init__(config or TAVCAudioEncoderConfig())
        self.backbone = backbone if backbone is not None else Wav2LipAudioEncoder()
        self.projection = nn.Linear(self.backbone.embedding_dim, self.config.embedding_dim)

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Args: windows (N, 1, 80, 16). Returns (N, embedding_dim)."""
        expected = (1, MEL_BINS, MEL_STEPS_PER_WINDOW)
        if windows.ndim != 4 or tuple(windows.shape[1:]) != expected:
            raise InvalidArgumentError(
                f"TAVCAudioEncoder: windows must be (N, 1, {MEL_BINS}, {MEL_STEPS_PER_WINDOW}), got "
                f"{tuple(windows.shape)}; build them with tavce.audio.frame_windows."
            )
        return self.projection(self.backbone(windows))


def relationships_from_embeddings(embeddings: torch.Tensor) -> AudioRelationship:
    """Per-frame relationship factors of an embedding sequence.

    Args:
        embeddings: (T, D) one embedding per video frame.

    Returns:
        :class:`~tavce.types.AudioRelationship` whose row j is a_{max(j−1,0)} − a_j
        (row 0 is exactly zero).
    """
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise InvalidArgumentError(f"expected (T, D) embeddings with T >= 1, got {tuple(embeddings.shape)}")
    previous = torch.cat([embeddings[:1], embeddings[:-1]], dim=0)
    return AudioRelationship(differences=relationship_factor(previous, embeddings))
