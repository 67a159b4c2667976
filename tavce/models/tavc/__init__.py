"""TAVC: the temporal audio-visual correlation metric of TAVCE (its encoders and relationships).

* :class:`TAVCAudioEncoder` — Wav2Lip encoder + 512→128 projection (also gives CERL its input).
* :class:`MouthEncoder` — IResNet18 on 112×112 mouth crops.
* :mod:`~tavce.models.tavc.relationship` — the rank-one covariance of two embeddings and its similarities.
* :class:`TAVCMetric` / :class:`TemporalCorrelationMetric` — metric and its interface (its
  ``audio_relationships`` is the per-frame sequence CERL consumes).

The training objectives built on it (stage-1 objective, CAR) are in :mod:`tavce.training`.
"""

from tavce.models.tavc.audio import (
    TAVCAudioEncoder,
    TAVCAudioEncoderConfig,
    relationships_from_embeddings,
)
from tavce.models.tavc.metric import TAVCMetric, TAVCMetricConfig, TemporalCorrelationMetric
from tavce.models.tavc.mouth_encoder import MouthEncoder, MouthEncoderConfig
from tavce.models.tavc.relationship import (
    flattened_cosine,
    relationship_factor,
    relationship_matrix,
    row_cosine,
    temporal_relationship,
)

__all__ = [
    "TAVCAudioEncoder",
    "TAVCAudioEncoderConfig",
    "MouthEncoder",
    "MouthEncoderConfig",
    "TemporalCorrelationMetric",
    "TAVCMetric",
    "TAVCMetricConfig",
    "relationships_from_embeddings",
    "relationship_factor",
    "relationship_matrix",
    "temporal_relationship",
    "flattened_cosine",
    "row_cosine",
]
